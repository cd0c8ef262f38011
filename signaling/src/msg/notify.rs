//! Routes durable envelopes to a device's live WebSocket connections, and
//! closes them when the device is unbound. The store's commit listener
//! hands over each envelope once it is durable ([`Notifier::deliver`]); a
//! connection that cannot keep up hears [`Signal::Pending`] instead and
//! reads the store, which keeps every envelope until it is acknowledged:
//! a lost push costs latency, never a message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use samtale_messaging::DeviceId;
use samtale_messaging::store::StoredEnvelope;
use tokio::sync::broadcast;

/// Pushes queued per connection before it falls back to reading the store.
const CHANNEL_DEPTH: usize = 64;

/// What a connection hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// This envelope is durable (per conversation in sequence order). The
    /// connection encodes it, not the store's writer.
    Deliver(Arc<StoredEnvelope>),
    /// Envelopes may be waiting that this connection was not handed: read
    /// the store.
    Pending,
    /// The device was unbound: close.
    Revoked,
}

/// Per-device channels.
#[derive(Debug, Default)]
pub struct Notifier {
    devices: Mutex<HashMap<DeviceId, broadcast::Sender<Signal>>>,
}

impl Notifier {
    /// Listen for `device`.
    pub fn subscribe(&self, device: DeviceId) -> broadcast::Receiver<Signal> {
        let mut map = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(device)
            .or_insert_with(|| broadcast::channel(CHANNEL_DEPTH).0)
            .subscribe()
    }

    /// Forget channels nobody listens to any more.
    pub fn release(&self, device: DeviceId) {
        let mut map = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(&device).is_some_and(|tx| tx.receiver_count() == 0) {
            map.remove(&device);
        }
    }

    /// These envelopes are durable: push them to connected devices.
    pub fn deliver(&self, envelopes: &[StoredEnvelope]) {
        let map = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        for e in envelopes {
            if let Some(tx) = map.get(&e.device_id) {
                // A lagging receiver hears `Lagged` and reads the store.
                let _ = tx.send(Signal::Deliver(Arc::new(e.clone())));
            }
        }
    }

    /// These devices were unbound.
    pub fn revoke(&self, devices: &[DeviceId]) {
        let map = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        for d in devices {
            if let Some(tx) = map.get(d) {
                let _ = tx.send(Signal::Revoked);
            }
        }
    }
}
