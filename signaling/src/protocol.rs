//! The WebSocket messages (see `docs/PROTOCOL.md`).

use samtale_sfu::ParticipantId;
use serde::{Deserialize, Serialize};

use crate::config::IceServer;

/// Longest display name kept (characters).
pub const MAX_NAME_CHARS: usize = 64;

/// Client → server.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum ClientMessage {
    /// Join the room named in the token.
    Join {
        /// Room token.
        token: String,
        /// Display name.
        #[serde(default)]
        name: String,
        /// Region hint for TURN node choice, e.g. `eu-north-1`.
        #[serde(default)]
        region: Option<String>,
    },
    /// The client's offer.
    Offer {
        /// SDP.
        sdp: String,
    },
    /// Answer to a server offer.
    Answer {
        /// SDP.
        sdp: String,
    },
    /// Ask for an ICE-restart offer.
    RestartIce,
    /// Mute state changed.
    Mute {
        /// `audio` or `video`.
        kind: MediaKind,
        /// Muted or not.
        muted: bool,
    },
    /// Size a publisher's video is shown at.
    VideoSize {
        /// The publisher.
        participant_id: ParticipantId,
        /// Pixels.
        width: u32,
        /// Pixels.
        height: u32,
    },
    /// The client's own simulcast layer sizes.
    Layers {
        /// One per rid.
        layers: Vec<LayerSize>,
    },
    /// Leave the room.
    Leave,
    /// Keep-alive.
    Ping,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum MediaKind {
    /// Microphone.
    Audio,
    /// Camera.
    Video,
}

/// One simulcast layer's size.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LayerSize {
    /// The rid.
    pub rid: String,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
}

/// A participant as others see it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantInfo {
    /// Id.
    pub id: ParticipantId,
    /// Display name.
    pub name: String,
    /// Microphone muted.
    pub audio_muted: bool,
    /// Camera off.
    pub video_muted: bool,
}

/// Server → client.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ServerMessage {
    /// Join accepted.
    Joined {
        /// Your id.
        participant_id: ParticipantId,
        /// The room.
        room_id: String,
        /// Everybody else.
        participants: Vec<ParticipantInfo>,
        /// ICE servers to use.
        ice_servers: Vec<IceServer>,
    },
    /// Answer to the client's offer.
    Answer {
        /// SDP.
        sdp: String,
    },
    /// Renegotiation.
    Offer {
        /// SDP.
        sdp: String,
    },
    /// Someone joined.
    ParticipantJoined {
        /// Who.
        participant: ParticipantInfo,
    },
    /// Someone left.
    ParticipantLeft {
        /// Who.
        participant_id: ParticipantId,
        /// Why.
        reason: samtale_sfu::LeaveReason,
    },
    /// Someone muted or unmuted.
    Muted {
        /// Who.
        participant_id: ParticipantId,
        /// What.
        kind: MediaKind,
        /// Now muted.
        muted: bool,
    },
    /// The loudest participant changed.
    ActiveSpeaker {
        /// Who.
        participant_id: ParticipantId,
    },
    /// The SFU's view of this client's media path.
    ConnectionState {
        /// `connected` or `disconnected`.
        state: &'static str,
    },
    /// A refused message.
    Error {
        /// Machine-readable code.
        code: &'static str,
        /// Human-readable text.
        message: String,
    },
    /// The server is going away.
    Shutdown {
        /// Why.
        reason: &'static str,
        /// When to reconnect.
        reconnect_after_ms: u64,
    },
    /// Keep-alive answer.
    Pong,
}

impl ServerMessage {
    /// An error frame.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
        }
    }
}

/// Trims a display name to something safe to show.
pub fn clean_name(name: &str, fallback: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        fallback.to_owned()
    } else {
        cleaned.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_client_messages() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"join","token":"t","name":"Ada"}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::Join {
                token: "t".into(),
                name: "Ada".into(),
                region: None,
            }
        );
        let m: ClientMessage = serde_json::from_str(
            r#"{"type":"videoSize","participantId":"p3","width":320,"height":180}"#,
        )
        .unwrap();
        assert!(matches!(m, ClientMessage::VideoSize { width: 320, .. }));
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"nope"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"offer"}"#).is_err());
        assert!(
            serde_json::from_str::<ClientMessage>(
                r#"{"type":"videoSize","participantId":"x","width":1,"height":1}"#
            )
            .is_err()
        );
    }

    #[test]
    fn serializes_server_messages() {
        let m = ServerMessage::ParticipantLeft {
            participant_id: ParticipantId(4),
            reason: samtale_sfu::LeaveReason::Timeout,
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"type":"participantLeft","participantId":"p4","reason":"timeout"}"#
        );
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("  Ada\u{7}  ", "x"), "Ada");
        assert_eq!(clean_name("", "Guest"), "Guest");
        assert_eq!(
            clean_name(&"é".repeat(100), "x").chars().count(),
            MAX_NAME_CHARS
        );
    }
}
