//! Wakes a device's live WebSocket connections when envelopes for it are
//! durable, and closes them when the device is unbound. Only a signal
//! travels here; the connection reads the envelopes from the store, so a
//! missed wake-up costs latency, never a message.

use std::collections::HashMap;
use std::sync::Mutex;

use samtale_messaging::DeviceId;
use tokio::sync::broadcast;

/// What a connection hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// New envelopes are waiting.
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
            .or_insert_with(|| broadcast::channel(16).0)
            .subscribe()
    }

    /// Forget channels nobody listens to any more.
    pub fn release(&self, device: DeviceId) {
        let mut map = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(&device).is_some_and(|tx| tx.receiver_count() == 0) {
            map.remove(&device);
        }
    }

    fn send(&self, device: DeviceId, signal: Signal) {
        let map = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(&device) {
            // A full channel means a wake-up is already queued.
            let _ = tx.send(signal);
        }
    }

    /// Envelopes for these devices are durable.
    pub fn wake(&self, devices: impl Iterator<Item = DeviceId>) {
        for d in devices {
            self.send(d, Signal::Pending);
        }
    }

    /// These devices were unbound.
    pub fn revoke(&self, devices: &[DeviceId]) {
        for d in devices {
            self.send(*d, Signal::Revoked);
        }
    }
}
