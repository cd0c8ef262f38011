//! One participant's state: its str0m `Rtc`, what it publishes and what it
//! receives.

use std::collections::HashMap;
use std::time::Instant;

use str0m::Rtc;
use str0m::change::SdpPendingOffer;
use str0m::media::{MediaKind, Mid, Rid};

use crate::layers::BitrateMeter;
use crate::rewrite::StreamRewriter;
use crate::{ParticipantId, RoomId, TrackKey};

/// A participant of a room.
pub(crate) struct Participant {
    pub id: ParticipantId,
    pub room: RoomId,
    pub rtc: Rtc,
    pub joined_at: Instant,
    /// ICE is connected now.
    pub connected: bool,
    /// It has been connected at least once.
    pub ever_connected: bool,
    /// When ICE went away (cleared when it comes back).
    pub disconnected_since: Option<Instant>,
    /// The client's first offer was accepted; server offers may follow.
    pub offered: bool,
    /// The server's offer waiting for the client's answer.
    pub pending: Option<SdpPendingOffer>,
    /// The client asked for an ICE restart.
    pub ice_restart: bool,
    /// Tracks this participant sends.
    pub published: Vec<Published>,
    /// Tracks this participant receives.
    pub subs: Vec<Subscription>,
    /// Latest egress bandwidth estimate toward this participant, bits/s.
    pub estimate: u64,
    /// Width at which this participant shows each publisher's video.
    pub wanted_widths: HashMap<ParticipantId, u32>,
    /// Sizes of this participant's own simulcast layers, by rid.
    pub layer_widths: HashMap<Rid, u32>,
    /// When its `Rtc` next wants a timeout.
    pub next_timeout: Instant,
}

/// A track arriving from a publisher.
pub(crate) struct Published {
    pub mid: Mid,
    pub kind: MediaKind,
    /// Simulcast layers seen so far (`None` rid for a plain track).
    pub layers: Vec<(Option<Rid>, BitrateMeter)>,
}

/// Negotiation state of one outgoing media section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubState {
    /// Needs an m-line in the next server offer.
    ToOpen,
    /// Offered, waiting for the answer.
    Negotiating(Mid),
    /// Negotiated: media flows.
    Open(Mid),
    /// Its publisher left: stop it in the next offer.
    ToStop(Mid),
    /// Stop offered, waiting for the answer.
    NegotiatingStop(Mid),
}

/// A track sent to this participant.
pub(crate) struct Subscription {
    pub source: TrackKey,
    pub kind: MediaKind,
    pub state: SubState,
    pub rewriter: StreamRewriter,
    /// The layer being forwarded now.
    pub current: Option<Option<Rid>>,
    /// The layer wanted; forwarding moves there at its next keyframe.
    pub target: Option<Option<Rid>>,
}

impl Subscription {
    pub fn new(source: TrackKey, kind: MediaKind) -> Self {
        let clock = if kind == MediaKind::Audio {
            48_000
        } else {
            90_000
        };
        Subscription {
            source,
            kind,
            state: SubState::ToOpen,
            rewriter: StreamRewriter::new(clock),
            current: None,
            target: None,
        }
    }

    /// The negotiated outgoing mid, when media may flow.
    pub fn open_mid(&self) -> Option<Mid> {
        match self.state {
            SubState::Open(m) => Some(m),
            _ => None,
        }
    }
}
