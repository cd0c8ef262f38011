//! Routes durable envelopes to a device's live WebSocket connections, and
//! closes them when the device is unbound. The store's commit listener
//! hands over each envelope once it is durable ([`Notifier::deliver`]); a
//! connection that cannot keep up hears [`Signal::Pending`] instead and
//! reads the store, which keeps every envelope until it is acknowledged:
//! a lost push costs latency, never a message.
//!
//! With NATS linked ([`super::fanout`]), what this node commits or revokes
//! is also announced to the device's connections on other nodes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use samtale_messaging::DeviceId;
use samtale_messaging::store::StoredEnvelope;
use tokio::sync::broadcast;

use super::fanout::{Command, Fanout};

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
    /// The other nodes, when NATS is configured.
    fanout: OnceLock<Fanout>,
}

impl Notifier {
    /// Links the other nodes (once; later links are ignored).
    pub(super) fn link(&self, fanout: Fanout) {
        let _ = self.fanout.set(fanout);
    }

    fn tell_others(&self, command: Command) {
        if let Some(fanout) = self.fanout.get() {
            fanout.send(command);
        }
    }

    fn devices(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceId, broadcast::Sender<Signal>>> {
        self.devices.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Listen for `device`.
    pub fn subscribe(&self, device: DeviceId) -> broadcast::Receiver<Signal> {
        let mut map = self.devices();
        let tx = map.entry(device).or_insert_with(|| {
            self.tell_others(Command::Watch(device));
            broadcast::channel(CHANNEL_DEPTH).0
        });
        tx.subscribe()
    }

    /// Forget channels nobody listens to any more.
    pub fn release(&self, device: DeviceId) {
        let mut map = self.devices();
        if map.get(&device).is_some_and(|tx| tx.receiver_count() == 0) {
            map.remove(&device);
            self.tell_others(Command::Unwatch(device));
        }
    }

    /// These envelopes are durable: push them to connected devices, and
    /// tell other nodes to have theirs read the store.
    pub fn deliver(&self, envelopes: &[StoredEnvelope]) {
        let map = self.devices();
        for e in envelopes {
            if let Some(tx) = map.get(&e.device_id) {
                // A lagging receiver hears `Lagged` and reads the store.
                let _ = tx.send(Signal::Deliver(Arc::new(e.clone())));
            }
        }
        drop(map);
        if self.fanout.get().is_some() {
            let devices: HashSet<DeviceId> = envelopes.iter().map(|e| e.device_id).collect();
            for device in devices {
                self.tell_others(Command::Pending(device));
            }
        }
    }

    /// These devices were unbound: close their connections here and on
    /// other nodes.
    pub fn revoke(&self, devices: &[DeviceId]) {
        for &d in devices {
            self.signal_local(d, Signal::Revoked);
            self.tell_others(Command::Revoked(d));
        }
    }

    /// Tells `device`'s connections on this node.
    pub(super) fn signal_local(&self, device: DeviceId, signal: Signal) {
        if let Some(tx) = self.devices().get(&device) {
            let _ = tx.send(signal);
        }
    }

    /// Has every connection on this node read the store.
    pub(super) fn wake_all(&self) {
        for tx in self.devices().values() {
            let _ = tx.send(Signal::Pending);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Command>) -> Vec<Command> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[test]
    fn other_nodes_hear_of_first_and_last_connections_and_revocations() {
        let notifier = Notifier::default();
        let (fanout, mut rx) = Fanout::capture();
        notifier.link(fanout);
        let (phone, laptop) = (DeviceId::new(), DeviceId::new());

        let first = notifier.subscribe(phone);
        let second = notifier.subscribe(phone);
        assert_eq!(commands(&mut rx), [Command::Watch(phone)]);
        drop(first);
        notifier.release(phone);
        assert_eq!(commands(&mut rx), [], "one connection is left");
        drop(second);
        notifier.release(phone);
        assert_eq!(commands(&mut rx), [Command::Unwatch(phone)]);

        let mut live = notifier.subscribe(laptop);
        notifier.revoke(&[laptop, phone]);
        assert_eq!(live.try_recv().unwrap(), Signal::Revoked);
        assert_eq!(
            commands(&mut rx),
            [
                Command::Watch(laptop),
                Command::Revoked(laptop),
                Command::Revoked(phone)
            ]
        );
        notifier.wake_all();
        assert_eq!(live.try_recv().unwrap(), Signal::Pending);
    }

    #[test]
    fn an_announcement_from_another_node_reaches_only_its_device() {
        let notifier = Notifier::default();
        let (device, other) = (DeviceId::new(), DeviceId::new());
        let mut live = notifier.subscribe(device);
        let mut bystander = notifier.subscribe(other);
        notifier.signal_local(device, Signal::Pending);
        assert_eq!(live.try_recv().unwrap(), Signal::Pending);
        assert!(bystander.try_recv().is_err());
    }
}
