//! Who is in which room, and how to reach their WebSocket sessions.
//!
//! The hub also turns SFU events into messages for the right clients.

use std::collections::HashMap;
use std::sync::Mutex;

use samtale_sfu::{LeaveReason, ParticipantId, SfuEvent};
use tokio::sync::mpsc;
use tracing::debug;

use crate::protocol::{MediaKind, ParticipantInfo, ServerMessage};

/// Messages to one session.
pub type Outbox = mpsc::UnboundedSender<ServerMessage>;

struct Member {
    room: String,
    info: ParticipantInfo,
    outbox: Outbox,
}

/// The registry of joined participants.
#[derive(Default)]
pub struct Hub {
    members: Mutex<HashMap<ParticipantId, Member>>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ParticipantId, Member>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (every update is a single insert/remove), so keep going.
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a participant; returns the others in its room and tells them.
    pub fn register(
        &self,
        room: &str,
        info: ParticipantInfo,
        outbox: Outbox,
    ) -> Vec<ParticipantInfo> {
        let mut members = self.lock();
        let others: Vec<ParticipantInfo> = members
            .values()
            .filter(|m| m.room == room)
            .map(|m| m.info.clone())
            .collect();
        for m in members.values().filter(|m| m.room == room) {
            let _ = m.outbox.send(ServerMessage::ParticipantJoined {
                participant: info.clone(),
            });
        }
        members.insert(
            info.id,
            Member {
                room: room.to_owned(),
                info,
                outbox,
            },
        );
        others
    }

    /// Removes a participant and tells its room. Returns false when it was
    /// already gone. Dropping its outbox ends its session.
    pub fn remove(&self, id: ParticipantId, reason: LeaveReason) -> bool {
        let mut members = self.lock();
        let Some(gone) = members.remove(&id) else {
            return false;
        };
        let _ = gone.outbox.send(ServerMessage::ParticipantLeft {
            participant_id: id,
            reason,
        });
        self.broadcast_locked(
            &members,
            &gone.room,
            None,
            ServerMessage::ParticipantLeft {
                participant_id: id,
                reason,
            },
        );
        true
    }

    /// Records a mute change and tells the room.
    pub fn set_muted(&self, id: ParticipantId, kind: MediaKind, muted: bool) {
        let mut members = self.lock();
        let Some(m) = members.get_mut(&id) else {
            return;
        };
        match kind {
            MediaKind::Audio => m.info.audio_muted = muted,
            MediaKind::Video => m.info.video_muted = muted,
        }
        let room = m.room.clone();
        self.broadcast_locked(
            &members,
            &room,
            Some(id),
            ServerMessage::Muted {
                participant_id: id,
                kind,
                muted,
            },
        );
    }

    /// Whether two participants share a room.
    pub fn same_room(&self, a: ParticipantId, b: ParticipantId) -> bool {
        let members = self.lock();
        matches!((members.get(&a), members.get(&b)), (Some(x), Some(y)) if x.room == y.room)
    }

    /// Sends to one participant.
    pub fn send(&self, id: ParticipantId, message: ServerMessage) {
        if let Some(m) = self.lock().get(&id) {
            let _ = m.outbox.send(message);
        }
    }

    /// Tells every session the server is going away.
    pub fn broadcast_all(&self, message: ServerMessage) {
        for m in self.lock().values() {
            let _ = m.outbox.send(message.clone());
        }
    }

    fn broadcast_locked(
        &self,
        members: &HashMap<ParticipantId, Member>,
        room: &str,
        except: Option<ParticipantId>,
        message: ServerMessage,
    ) {
        for (id, m) in members {
            if m.room == room && Some(*id) != except {
                let _ = m.outbox.send(message.clone());
            }
        }
    }

    /// Routes one SFU event to clients.
    pub fn on_sfu_event(&self, event: SfuEvent) {
        match event {
            SfuEvent::Offer { participant, sdp } => {
                self.send(participant, ServerMessage::Offer { sdp });
            }
            SfuEvent::Connected { participant } => self.send(
                participant,
                ServerMessage::ConnectionState { state: "connected" },
            ),
            SfuEvent::Disconnected { participant } => self.send(
                participant,
                ServerMessage::ConnectionState {
                    state: "disconnected",
                },
            ),
            SfuEvent::Left {
                participant,
                reason,
                ..
            } => {
                self.remove(participant, reason);
            }
            SfuEvent::ActiveSpeaker { room, participant } => {
                let members = self.lock();
                self.broadcast_locked(
                    &members,
                    room.as_str(),
                    None,
                    ServerMessage::ActiveSpeaker {
                        participant_id: participant,
                    },
                );
            }
            SfuEvent::LayerSwitched {
                subscriber,
                publisher,
                rid,
            } => debug!(%subscriber, %publisher, ?rid, "layer switched"),
        }
    }
}
