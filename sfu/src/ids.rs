//! Identifiers for rooms, participants and tracks.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use str0m::media::Mid;

use crate::SfuError;

/// A participant of one room, unique within one SFU process.
///
/// Shown as `p<number>`; that text is also the MediaStream id (`msid`) of the
/// participant's tracks at every subscriber, so clients can label them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

impl FromStr for ParticipantId {
    type Err = SfuError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix('p')
            .and_then(|n| n.parse().ok())
            .map(ParticipantId)
            .ok_or_else(|| SfuError::InvalidId(s.chars().take(32).collect()))
    }
}

impl Serialize for ParticipantId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ParticipantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <&str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A room name: 1 to 64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RoomId(String);

impl RoomId {
    /// Longest room id accepted.
    pub const MAX_LEN: usize = 64;

    /// Validates a room id.
    pub fn new(id: &str) -> Result<Self, SfuError> {
        let valid = !id.is_empty()
            && id.len() <= Self::MAX_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(RoomId(id.to_owned()))
        } else {
            Err(SfuError::InvalidId(id.chars().take(32).collect()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RoomId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RoomId::new(&s).map_err(serde::de::Error::custom)
    }
}

/// One published track: the publisher and the media section (mid) it arrives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrackKey {
    /// Who publishes it.
    pub publisher: ParticipantId,
    /// The publisher's media section.
    pub mid: Mid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn participant_id_round_trips_and_rejects_garbage() {
        let id: ParticipantId = "p42".parse().unwrap();
        assert_eq!(id, ParticipantId(42));
        assert_eq!(id.to_string(), "p42");
        assert!("42".parse::<ParticipantId>().is_err());
        assert!("p".parse::<ParticipantId>().is_err());
        assert!("p-1".parse::<ParticipantId>().is_err());
    }

    #[test]
    fn room_id_validation() {
        assert!(RoomId::new("team-standup_1").is_ok());
        assert!(RoomId::new("").is_err());
        assert!(RoomId::new("a/b").is_err());
        assert!(RoomId::new(&"x".repeat(65)).is_err());
    }
}
