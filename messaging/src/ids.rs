//! Identifiers: ULID newtypes for accounts, profiles, devices and
//! conversations, so one kind of id cannot be passed where another is meant.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// Error for a string that is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("invalid {kind} id")]
pub struct IdParseError {
    /// Which kind of id was expected.
    pub kind: &'static str,
}

macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Ulid);

        impl $name {
            /// A fresh, globally unique id.
            pub fn new() -> Self {
                Self(Ulid::new())
            }

            /// The id as a ULID.
            pub fn ulid(&self) -> Ulid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Ulid> for $name {
            fn from(u: Ulid) -> Self {
                Self(u)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($kind, ":{}"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ulid::from_string(s)
                    .map(Self)
                    .map_err(|_| IdParseError { kind: $kind })
            }
        }
    };
}

ulid_id!(
    /// One person's global account.
    AccountId,
    "account"
);
ulid_id!(
    /// A profile (work, private, …) under an account.
    ProfileId,
    "profile"
);
ulid_id!(
    /// One device (phone, laptop, browser) bound to an account.
    DeviceId,
    "device"
);
ulid_id!(
    /// A 1:1, group or note-to-self conversation.
    ConversationId,
    "conversation"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = DeviceId::new();
        let parsed: DeviceId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
        assert!(format!("{id:?}").starts_with("device:"));
        assert_eq!(
            "not-a-ulid".parse::<ProfileId>(),
            Err(IdParseError { kind: "profile" })
        );
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
    }
}
