//! The driver side of TCP allocations (RFC 6062): relay listeners that
//! accept peers, connections to peers from the relayed address (both on
//! tokio), and peer connections handed to the client data connection they
//! are joined with, relayed on the core thread ([`super::splice`]). The
//! core decides ([`TcpAction`]); this module only opens, holds and closes
//! sockets.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::debug;

use super::client_streams::ClientStreams;
use super::pace::Pace;
use super::splice::{Joining, Splices};
use super::{CoreWaker, Event, EventSender};
use crate::server::{ConnectionId, FiveTuple, TcpAction};

/// How long a Connect waits for the peer's handshake before 447 (as
/// coturn).
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A peer connection as the driver holds it.
enum Held {
    /// The connection attempt of a Connect request.
    Connecting(AbortHandle),
    /// Connected, waiting for the client's ConnectionBind.
    Ready(TcpStream),
    /// Relayed on the core thread with the data connection of this 5-tuple.
    Spliced(FiveTuple),
}

/// Relay listeners and peer connections of one core thread.
pub(super) struct TcpRelays {
    runtime: Handle,
    events: mpsc::WeakSender<Event>,
    waker: Arc<CoreWaker>,
    /// Accept task and the UDP port held with it, by relay address.
    listeners: HashMap<SocketAddr, (AbortHandle, std::net::UdpSocket)>,
    held: HashMap<ConnectionId, Held>,
    /// Bandwidth budgets of TCP allocations with joined connections.
    paces: HashMap<SocketAddr, Arc<Mutex<Pace>>>,
}

impl TcpRelays {
    pub(super) fn new(
        runtime: Handle,
        events: mpsc::WeakSender<Event>,
        waker: Arc<CoreWaker>,
    ) -> Self {
        TcpRelays {
            runtime,
            events,
            waker,
            listeners: HashMap::new(),
            held: HashMap::new(),
            paces: HashMap::new(),
        }
    }

    /// A sender to this core thread for a task; `None` once tokio is gone.
    fn sender(&self) -> Option<EventSender> {
        Some(EventSender {
            tx: Some(self.events.upgrade()?),
            waker: self.waker.clone(),
        })
    }

    /// Accepts peers on a new TCP relayed address.
    pub(super) fn listen(
        &mut self,
        relay: SocketAddr,
        listener: std::net::TcpListener,
        placeholder: std::net::UdpSocket,
    ) {
        let Some(sender) = self.sender() else {
            return;
        };
        let listener = {
            let _runtime = self.runtime.enter();
            match TcpListener::from_std(listener) {
                Ok(listener) => listener,
                Err(e) => {
                    debug!(%relay, error = %e, "TCP relay not listening");
                    return;
                }
            }
        };
        let task = self.runtime.spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let incoming = Event::PeerIncoming {
                            relay,
                            peer,
                            stream,
                        };
                        if !sender.send(incoming).await {
                            return;
                        }
                    }
                    Err(e) => {
                        // Out of descriptors, say: give the system a moment.
                        debug!(%relay, error = %e, "accept on TCP relay failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        self.listeners
            .insert(relay, (task.abort_handle(), placeholder));
    }

    /// The allocation of `relay` is gone: stop accepting there.
    pub(super) fn close_listener(&mut self, relay: SocketAddr) {
        if let Some((task, _placeholder)) = self.listeners.remove(&relay) {
            task.abort();
        }
        self.paces.remove(&relay);
    }

    /// Carries out what the core decided. A client connection that cannot
    /// take a Join (gone, or its queue is full: stuck) is closed; the core
    /// hears of it when the connection ends.
    pub(super) fn act(
        &mut self,
        action: TcpAction,
        streams: &mut ClientStreams,
        splices: &mut Splices,
    ) {
        match action {
            TcpAction::Connect { id, relay, peer } => {
                let Some(sender) = self.sender() else {
                    return;
                };
                let task = self.runtime.spawn(async move {
                    let outcome = tokio::time::timeout(CONNECT_TIMEOUT, connect_from(relay, peer))
                        .await
                        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()));
                    sender.send(Event::PeerConnected(id, outcome)).await;
                });
                self.held.insert(id, Held::Connecting(task.abort_handle()));
            }
            TcpAction::Join {
                id,
                relay,
                data,
                bytes_per_sec,
            } => {
                let Some(Held::Ready(peer)) = self.held.remove(&id) else {
                    streams.drop_connection(&data);
                    return;
                };
                let pace = self
                    .paces
                    .entry(relay)
                    .or_insert_with(|| {
                        Arc::new(Mutex::new(Pace::new(bytes_per_sec, Instant::now())))
                    })
                    .clone();
                let joined = match streams.take_for_join(&data) {
                    Some(handover) => {
                        let spliced = peer.into_std().ok().and_then(|peer| {
                            let joining = Joining {
                                tuple: data,
                                client: handover.stream,
                                tls: handover.tls,
                                unsent: handover.unsent,
                                early: handover.rest,
                                peer,
                                pace,
                                slot: handover.slot,
                            };
                            splices.join(joining).then_some(Held::Spliced(data))
                        });
                        if spliced.is_none() {
                            // Both connections are gone.
                            streams.note_closed(data);
                        }
                        spliced
                    }
                    None => None,
                };
                if let Some(held) = joined {
                    self.held.insert(id, held);
                } else {
                    debug!(connection = id, "data connection gone before joining");
                    streams.drop_connection(&data);
                }
            }
            TcpAction::Refuse { data: tuple } | TcpAction::CloseClient { tuple } => {
                streams.close_when_written(&tuple)
            }
            TcpAction::Close { id } => match self.held.remove(&id) {
                Some(Held::Connecting(task)) => task.abort(),
                Some(Held::Spliced(data)) => splices.close(&data),
                // Ready: the stream drops.
                _ => {}
            },
        }
    }

    /// A connection attempt ended. True if the core should hear of it (the
    /// attempt was not closed meanwhile); a connected stream is kept.
    pub(super) fn connected(&mut self, id: ConnectionId, outcome: io::Result<TcpStream>) -> bool {
        if !matches!(self.held.get(&id), Some(Held::Connecting(_))) {
            return false;
        }
        match outcome {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                self.held.insert(id, Held::Ready(stream));
            }
            Err(e) => {
                debug!(connection = id, error = %e, "connection to peer failed");
                self.held.remove(&id);
            }
        }
        true
    }

    /// Keeps an accepted peer connection the core took as `id`.
    pub(super) fn accepted(&mut self, id: ConnectionId, stream: TcpStream) {
        self.held.insert(id, Held::Ready(stream));
    }
}

impl Drop for TcpRelays {
    /// A core thread that stops takes its listeners and attempts with it
    /// (an `AbortHandle` dropped alone would leave the task running).
    fn drop(&mut self) {
        for (task, _) in self.listeners.values() {
            task.abort();
        }
        for held in self.held.values() {
            if let Held::Connecting(task) = held {
                task.abort();
            }
        }
    }
}

/// A TCP connection from the relayed address `relay` to `peer`.
async fn connect_from(relay: SocketAddr, peer: SocketAddr) -> io::Result<TcpStream> {
    let socket = if relay.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(relay)?;
    socket.connect(peer).await
}
