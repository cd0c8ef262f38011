//! A device's whole secret state as one serialisable value, for storing at
//! rest. [`DevicePickle`] holds secret keys in the clear: serialise it only
//! into an encrypted container (the client's `vault`), never into logs.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vodozemac::megolm::{
    GroupSession, GroupSessionPickle, InboundGroupSession, InboundGroupSessionPickle,
};
use vodozemac::olm::{Account, AccountPickle, Session, SessionPickle};

use super::device::{Device, InboundGroup, OutboundGroup};
use crate::ids::{AccountId, ConversationId, DeviceId};

#[derive(Serialize, Deserialize)]
struct OutboundPickle {
    conversation_id: ConversationId,
    session: GroupSessionPickle,
    created_at: DateTime<Utc>,
    sent: u32,
    shared_with: BTreeSet<DeviceId>,
}

#[derive(Serialize, Deserialize)]
struct InboundPickle {
    session_id: String,
    session: InboundGroupSessionPickle,
    conversation_id: ConversationId,
    sender_device: DeviceId,
    seen: BTreeSet<u32>,
}

/// Everything [`Device`] holds. Secret: see the module docs.
#[derive(Serialize, Deserialize)]
pub struct DevicePickle {
    account_id: AccountId,
    device_id: DeviceId,
    account: AccountPickle,
    sessions: HashMap<String, Vec<SessionPickle>>,
    outbound: Vec<OutboundPickle>,
    inbound: Vec<InboundPickle>,
}

impl fmt::Debug for DevicePickle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevicePickle")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

impl Device {
    /// Snapshot the device's secret state.
    pub fn to_pickle(&self) -> DevicePickle {
        DevicePickle {
            account_id: self.account_id,
            device_id: self.device_id,
            account: self.olm.pickle(),
            sessions: self
                .sessions
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().map(Session::pickle).collect()))
                .collect(),
            outbound: self
                .outbound
                .iter()
                .map(|(c, g)| OutboundPickle {
                    conversation_id: *c,
                    session: g.session.pickle(),
                    created_at: g.created_at,
                    sent: g.sent,
                    shared_with: g.shared_with.clone(),
                })
                .collect(),
            inbound: self
                .inbound
                .iter()
                .map(|(id, g)| InboundPickle {
                    session_id: id.clone(),
                    session: g.session.pickle(),
                    conversation_id: g.conversation_id,
                    sender_device: g.sender_device,
                    seen: g.seen.clone(),
                })
                .collect(),
        }
    }

    /// Restore a device from [`Device::to_pickle`].
    pub fn from_pickle(p: DevicePickle) -> Self {
        Device {
            account_id: p.account_id,
            device_id: p.device_id,
            olm: Account::from_pickle(p.account),
            sessions: p
                .sessions
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().map(Session::from_pickle).collect()))
                .collect(),
            outbound: p
                .outbound
                .into_iter()
                .map(|g| {
                    (
                        g.conversation_id,
                        OutboundGroup {
                            session: GroupSession::from_pickle(g.session),
                            created_at: g.created_at,
                            sent: g.sent,
                            shared_with: g.shared_with,
                        },
                    )
                })
                .collect(),
            inbound: p
                .inbound
                .into_iter()
                .map(|g| {
                    (
                        g.session_id,
                        InboundGroup {
                            session: InboundGroupSession::from_pickle(g.session),
                            conversation_id: g.conversation_id,
                            sender_device: g.sender_device,
                            seen: g.seen,
                        },
                    )
                })
                .collect(),
        }
    }
}
