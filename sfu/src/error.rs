//! Errors of the SFU core.

use crate::{ParticipantId, RoomId};

/// What can go wrong when signaling drives the SFU.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SfuError {
    /// The room already holds its maximum number of participants.
    #[error("room {room} is full ({max} participants)")]
    RoomFull {
        /// The room.
        room: RoomId,
        /// Its limit.
        max: usize,
    },
    /// No such participant (it left or never existed).
    #[error("unknown participant {0}")]
    UnknownParticipant(ParticipantId),
    /// A room or participant id that does not parse.
    #[error("invalid id {0:?}")]
    InvalidId(String),
    /// The SDP text did not parse.
    #[error("invalid SDP: {0}")]
    BadSdp(String),
    /// The SDP parsed but str0m could not apply it.
    #[error("negotiation failed: {0}")]
    Negotiation(String),
    /// An answer arrived while no server offer was outstanding.
    #[error("no offer is waiting for an answer")]
    NoPendingOffer,
    /// The SFU is shutting down and takes no new participants.
    #[error("the SFU is shutting down")]
    ShuttingDown,
    /// The driver task is gone.
    #[error("the SFU driver stopped")]
    DriverGone,
}
