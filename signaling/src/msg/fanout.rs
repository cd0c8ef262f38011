//! Pushes across nodes over NATS, for several samtale nodes on one
//! PostgreSQL (`messaging_nats_url`).
//!
//! A node listens on `samtale.msg.device.<device id>` while that device has
//! a WebSocket on it, and announces on that subject what it committed or
//! revoked for the device: `pending` (read the store) or `revoked` (close).
//! The subject carries no content: the envelope itself is read from the
//! shared store, which also keeps the order the push path keeps locally.
//! NATS routes by interest, so an announcement for a device connected
//! nowhere else costs one publish and goes nowhere.
//!
//! NATS is a wake-up, never the record: a lost announcement costs latency,
//! not a message. When a subscription starts, and after the connection to
//! NATS comes back, the node's connections re-read the store once the
//! server has confirmed the subscriptions (a round trip), so nothing
//! committed while nobody listened waits for the next push. While NATS is
//! unreachable, `pending` announcements are dropped rather than queued
//! (that re-read covers them); `revoked` ones are rare and kept.
//!
//! Anyone who may publish on `samtale.msg.device.>` can close a device's
//! connections or make them re-read the store: give the samtale nodes a
//! NATS account of their own.
//! Connections do not hear their own node's announcements (`no_echo`): the
//! local path already pushed the envelopes themselves.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use anyhow::Context;
use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, Event, RequestErrorKind};
use axum::body::Bytes;
use futures_util::StreamExt;
use samtale_messaging::DeviceId;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::notify::{Notifier, Signal};

/// Subjects are `<SUBJECT_PREFIX>.<device id>`.
pub const SUBJECT_PREFIX: &str = "samtale.msg.device";
const PENDING: &[u8] = b"pending";
const REVOKED: &[u8] = b"revoked";

/// What the notifier asks of the fan-out task.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Command {
    /// A device got its first connection on this node.
    Watch(DeviceId),
    /// Its last connection here went away.
    Unwatch(DeviceId),
    /// Tell the device's other nodes: envelopes are waiting.
    Pending(DeviceId),
    /// Tell them: the device was unbound.
    Revoked(DeviceId),
}

/// The notifier's side: commands go to the task without waiting.
#[derive(Debug)]
pub(super) struct Fanout {
    commands: mpsc::UnboundedSender<Command>,
}

impl Fanout {
    /// A fan-out whose commands the test reads.
    #[cfg(test)]
    pub(super) fn capture() -> (Fanout, mpsc::UnboundedReceiver<Command>) {
        let (commands, rx) = mpsc::unbounded_channel();
        (Fanout { commands }, rx)
    }

    pub(super) fn send(&self, command: Command) {
        // The task ends only with the process.
        let _ = self.commands.send(command);
    }
}

fn subject(device: DeviceId) -> String {
    format!("{SUBJECT_PREFIX}.{device}")
}

/// Connects to NATS at `url` and links `notifier` to the other nodes.
pub async fn connect(url: &str, notifier: &Arc<Notifier>) -> anyhow::Result<()> {
    let weak = Arc::downgrade(notifier);
    let on_event = weak.clone();
    // The event callback needs the client that `connect` is about to make.
    let connected: Arc<OnceLock<Client>> = Arc::default();
    let for_events = connected.clone();
    let client = ConnectOptions::new()
        .name("samtale messaging")
        .no_echo()
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            let notifier = on_event.clone();
            let client = for_events.get().cloned();
            async move {
                match event {
                    // Back after an outage: announcements may have been
                    // lost. Once the server has the subscriptions again,
                    // every connection here reads the store.
                    Event::Connected => {
                        info!("messaging: NATS connected");
                        if let Some(client) = client {
                            tokio::spawn(async move {
                                round_trip(&client).await;
                                if let Some(n) = notifier.upgrade() {
                                    n.wake_all();
                                }
                            });
                        }
                    }
                    Event::Disconnected => warn!("messaging: NATS disconnected, reconnecting"),
                    other => debug!(event = %other, "messaging: NATS"),
                }
            }
        })
        .connect(url)
        .await
        .with_context(|| format!("connecting to NATS at {}", redacted(url)))?;
    let _ = connected.set(client.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(client, rx, weak));
    notifier.link(Fanout { commands: tx });
    Ok(())
}

/// Waits until the server has handled everything this client sent before
/// (its subscriptions among it): a request to an inbox nobody serves comes
/// back "no responders" from the server, after the commands queued ahead
/// of it. If it does not come back, the caller goes on regardless.
async fn round_trip(client: &Client) {
    match client.request(client.new_inbox(), Bytes::new()).await {
        Ok(_) => {}
        Err(e) if e.kind() == RequestErrorKind::NoResponders => {}
        Err(e) => debug!(error = %e, "messaging: NATS round trip failed"),
    }
}

/// The URL without credentials, for messages.
fn redacted(url: &str) -> String {
    match url.split_once("://").zip(url.rsplit_once('@')) {
        Some(((scheme, _), (_, host))) => format!("{scheme}://…@{host}"),
        None => url.to_owned(),
    }
}

async fn run(
    client: Client,
    mut commands: mpsc::UnboundedReceiver<Command>,
    notifier: Weak<Notifier>,
) {
    let mut watching: HashMap<DeviceId, JoinHandle<()>> = HashMap::new();
    while let Some(command) = commands.recv().await {
        match command {
            Command::Watch(device) => {
                let listener = tokio::spawn(listen(client.clone(), device, notifier.clone()));
                if let Some(old) = watching.insert(device, listener) {
                    old.abort();
                }
            }
            Command::Unwatch(device) => {
                if let Some(listener) = watching.remove(&device) {
                    listener.abort();
                }
            }
            // While NATS is away the re-read after it comes back covers
            // these; queueing them would only flood it then.
            Command::Pending(device) if client.connection_state() == State::Connected => {
                announce(&client, device, PENDING).await;
            }
            Command::Pending(_) => {}
            Command::Revoked(device) => announce(&client, device, REVOKED).await,
        }
    }
}

async fn announce(client: &Client, device: DeviceId, what: &'static [u8]) {
    if let Err(e) = client
        .publish(subject(device), Bytes::from_static(what))
        .await
    {
        warn!(error = %e, "messaging: NATS publish failed");
    }
}

/// Forwards announcements for `device` to its connections on this node
/// until aborted (dropping the subscription unsubscribes).
async fn listen(client: Client, device: DeviceId, notifier: Weak<Notifier>) {
    let mut retry = Duration::from_millis(100);
    let mut subscription = loop {
        match client.subscribe(subject(device)).await {
            Ok(s) => break s,
            Err(e) => {
                warn!(error = %e, "messaging: NATS subscribe failed, retrying");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(5));
            }
        }
    };
    // Once the server has the subscription, read the store: anything
    // committed elsewhere before it took effect was announced to nobody.
    round_trip(&client).await;
    if let Some(n) = notifier.upgrade() {
        n.signal_local(device, Signal::Pending);
    }
    while let Some(message) = subscription.next().await {
        let signal = match &message.payload[..] {
            PENDING => Signal::Pending,
            REVOKED => Signal::Revoked,
            other => {
                debug!(
                    bytes = other.len(),
                    "messaging: unknown NATS announcement ignored"
                );
                continue;
            }
        };
        let Some(n) = notifier.upgrade() else { return };
        n.signal_local(device, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_messages() {
        assert_eq!(
            redacted("nats://user:secret@nats.internal:4222"),
            "nats://…@nats.internal:4222"
        );
        assert_eq!(redacted("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}
