//! Joined data connections (RFC 6062) relayed on the core thread: a
//! client's TCP or TLS connection and its peer connection, bytes copied both ways
//! through one buffer the thread shares among all of them. A connection
//! keeps bytes of its own only while the side they go to is blocked, and
//! reads nothing more that way until they are out, so TCP flow control
//! slows the sender and nothing is dropped.
//!
//! A TLS client's side is read and written through its rustls session.
//! As coturn does:
//! - both directions of every data connection of one allocation share its
//!   bandwidth budget; over it, the connection waits for its next turn;
//! - when either side ends its stream (or fails), what it sent is
//!   delivered, the other side's sending is shut, and both connections
//!   close, as coturn does.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use tokio_rustls::rustls::ServerConnection;
use tracing::debug;

use super::conn_limit::ConnectionSlot;
use super::pace::Pace;
use super::slots::Slots;
use crate::server::FiveTuple;

/// Bytes of the shared buffer: one read's worth.
pub(super) const SCRATCH: usize = 16 * 1024;
/// Reads per direction per turn before other connections get theirs.
const READS_PER_TURN: usize = 8;

/// Which way bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    ToPeer,
    ToClient,
}

/// One end of a pair: a socket, and for a TLS client its session.
struct End {
    stream: TcpStream,
    tls: Option<Box<ServerConnection>>,
    /// The TLS session failed on a record: what it decrypted before still
    /// goes, then the stream ends as failed.
    broken: bool,
    /// close_notify is queued.
    notified: bool,
}

impl End {
    /// Reads what the other side sent (decrypted): the bytes, 0 at the end
    /// of its stream, or the error (`WouldBlock`: nothing there yet).
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(tls) = &mut self.tls else {
            return self.stream.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                // Ok(0): its close_notify.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.broken {
                return Err(ErrorKind::InvalidData.into());
            }
            if tls.read_tls(&mut self.stream)? == 0 {
                return Ok(0);
            }
            self.broken = tls.process_new_packets().is_err();
            // Records the session answers with (alerts) go now.
            let _ = flush_records(&mut self.stream, tls);
        }
    }

    /// Writes `bytes` until the socket would block: how many it took, or
    /// an error if the connection failed. A TLS session takes what its
    /// buffer allows once its records are out, and sends what it can.
    fn write_some(&mut self, bytes: &[u8]) -> Result<usize, ()> {
        let Some(tls) = &mut self.tls else {
            return write_some(&mut self.stream, bytes);
        };
        flush_records(&mut self.stream, tls)?;
        if tls.wants_write() || bytes.is_empty() {
            return Ok(0);
        }
        let taken = match tls.writer().write(bytes) {
            Ok(0) | Err(_) => return Err(()),
            Ok(n) => n,
        };
        flush_records(&mut self.stream, tls)?;
        Ok(taken)
    }

    /// Sends a TLS session's encrypted records that wait.
    fn flush(&mut self) -> Result<(), ()> {
        match &mut self.tls {
            Some(tls) => flush_records(&mut self.stream, tls),
            None => Ok(()),
        }
    }

    /// Whether records wait in a TLS session (the socket blocked).
    fn holds_output(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }

    /// Ends this side's incoming stream: close_notify, then FIN once it
    /// is out. False while the close_notify waits for the socket.
    fn shut(&mut self) -> bool {
        if let Some(tls) = &mut self.tls {
            if !self.notified {
                tls.send_close_notify();
                self.notified = true;
            }
            if flush_records(&mut self.stream, tls).is_ok() && tls.wants_write() {
                return false;
            }
        }
        let _ = self.stream.shutdown(Shutdown::Write);
        true
    }
}

/// Writes a TLS session's records until the socket would block.
fn flush_records(stream: &mut TcpStream, tls: &mut ServerConnection) -> Result<(), ()> {
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(0) => return Err(()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    Ok(())
}

/// One joined pair.
struct Splice {
    tuple: FiveTuple,
    client: End,
    peer: End,
    /// Read from the client, not yet taken by the peer.
    to_peer: Vec<u8>,
    /// Read from the peer (or answered by the core), not yet taken by the
    /// client.
    to_client: Vec<u8>,
    /// Bytes relayed (to the peer, to the client).
    relayed: (u64, u64),
    pace: Arc<Mutex<Pace>>,
    /// Over the budget: nothing is read before this.
    paused_until: Option<Instant>,
    /// One side ended: the way its last bytes go, still being delivered.
    ending: Option<Way>,
    /// The client connection's place under `max_client_connections`,
    /// freed with the pair.
    _slot: ConnectionSlot,
}

/// What a turn of one connection came to.
#[derive(Debug, PartialEq, Eq)]
enum Pumped {
    /// Waiting for the poller (or a pause to end).
    Idle,
    /// Stopped with input left: look again next turn.
    More,
    Ended,
}

impl Splice {
    fn pump(&mut self, scratch: &mut [u8], now: Instant) -> Pumped {
        if write_pending(&mut self.peer, &mut self.to_peer).is_err()
            || write_pending(&mut self.client, &mut self.to_client).is_err()
        {
            return Pumped::Ended;
        }
        if let Some(way) = self.ending {
            return self.end_when_delivered(way);
        }
        if self.paused_until.is_some_and(|until| now < until) {
            return Pumped::Idle;
        }
        self.paused_until = None;
        let mut more = false;
        for way in [Way::ToPeer, Way::ToClient] {
            match self.relay(way, scratch, now) {
                Pumped::Idle => {}
                Pumped::More => more = true,
                Pumped::Ended => return Pumped::Ended,
            }
            if self.ending.is_some() || self.paused_until.is_some() {
                return self
                    .ending
                    .map_or(Pumped::Idle, |w| self.end_when_delivered(w));
            }
        }
        if more { Pumped::More } else { Pumped::Idle }
    }

    /// Copies one way until the source has nothing, the destination
    /// blocks, the budget runs out or the turn's reads are used.
    fn relay(&mut self, way: Way, scratch: &mut [u8], now: Instant) -> Pumped {
        let (from, to, pending, count) = match way {
            Way::ToPeer => (
                &mut self.client,
                &mut self.peer,
                &mut self.to_peer,
                &mut self.relayed.0,
            ),
            Way::ToClient => (
                &mut self.peer,
                &mut self.client,
                &mut self.to_client,
                &mut self.relayed.1,
            ),
        };
        for _ in 0..READS_PER_TURN {
            if !pending.is_empty() || to.holds_output() {
                // The destination's writable event brings us back.
                return Pumped::Idle;
            }
            let n = match from.read(scratch) {
                Ok(0) => {
                    self.ending = Some(way);
                    return Pumped::Idle;
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Pumped::Idle,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!(client = %self.tuple.client, error = %e, "data connection read failed");
                    self.ending = Some(way);
                    return Pumped::Idle;
                }
            };
            let bytes = scratch.get(..n).unwrap_or_default();
            *count += n as u64;
            // Straight on; only what the destination does not take now
            // is kept.
            let Ok(written) = to.write_some(bytes) else {
                return Pumped::Ended;
            };
            pending.extend_from_slice(bytes.get(written..).unwrap_or_default());
            let wait = self
                .pace
                .lock()
                .map_or(Duration::ZERO, |mut pace| pace.take(n, now));
            if !wait.is_zero() {
                self.paused_until = Some(now + wait);
                return Pumped::Idle;
            }
        }
        Pumped::More
    }

    /// The side bytes came from `way` ended: once they are delivered, the
    /// other side's sending is shut and the pair ends.
    fn end_when_delivered(&mut self, way: Way) -> Pumped {
        let (to, pending) = match way {
            Way::ToPeer => (&mut self.peer, &self.to_peer),
            Way::ToClient => (&mut self.client, &self.to_client),
        };
        if pending.is_empty() && !to.holds_output() && to.shut() {
            Pumped::Ended
        } else {
            Pumped::Idle
        }
    }
}

/// Writes `bytes` until the socket would block: how many it took, or an
/// error if the connection failed.
fn write_some(to: &mut TcpStream, bytes: &[u8]) -> Result<usize, ()> {
    let mut written = 0;
    while let Some(rest) = bytes.get(written..).filter(|r| !r.is_empty()) {
        match to.write(rest) {
            Ok(0) => return Err(()),
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    Ok(written)
}

/// Writes what waits for `to` until its socket would block; what was
/// written leaves `pending`, and an emptied buffer gives its memory back.
/// An error if the connection failed.
fn write_pending(to: &mut End, pending: &mut Vec<u8>) -> Result<(), ()> {
    to.flush()?;
    if pending.is_empty() {
        return Ok(());
    }
    // A TLS session takes at most its buffer's worth per call.
    loop {
        let written = to.write_some(pending)?;
        pending.drain(..written);
        if written == 0 || pending.is_empty() {
            break;
        }
    }
    if pending.is_empty() {
        *pending = Vec::new();
    }
    Ok(())
}

/// A data connection to relay here: the client's connection with what it
/// is owed and what it sent early, and the peer connection.
pub(super) struct Joining {
    pub tuple: FiveTuple,
    pub client: std::net::TcpStream,
    /// The client's TLS session, for a TLS client.
    pub tls: Option<Box<ServerConnection>>,
    /// Answers to the client not yet written (the ConnectionBind success).
    pub unsent: Vec<u8>,
    /// What the client sent behind its ConnectionBind.
    pub early: Vec<u8>,
    pub peer: std::net::TcpStream,
    pub pace: Arc<Mutex<Pace>>,
    /// The client connection's place under `max_client_connections`.
    pub slot: ConnectionSlot,
}

/// The core thread's joined data connections. Each has two tokens, its
/// client's and its peer's.
pub(super) struct Splices {
    registry: Registry,
    first_token: usize,
    pairs: Slots<FiveTuple, Splice>,
    scratch: Vec<u8>,
    /// Paused connections and when they may read again.
    paused: Vec<(Instant, usize)>,
    /// Ended here, not yet told to the core.
    ended: Vec<FiveTuple>,
    /// Bytes relayed (to peers, to clients) not yet counted by the core:
    /// its figures stay live while connections last.
    unreported: (u64, u64),
}

impl Splices {
    pub(super) fn new(registry: Registry, first_token: usize) -> Self {
        Splices {
            registry,
            first_token,
            pairs: Slots::new(),
            scratch: vec![0; SCRATCH],
            paused: Vec::new(),
            ended: Vec::new(),
            unreported: (0, 0),
        }
    }

    /// Whether `token` names one of these connections.
    pub(super) fn owns(&self, token: Token) -> bool {
        token.0 >= self.first_token
    }

    /// Starts relaying a joined pair; false if the poller refused it (both
    /// connections then close).
    pub(super) fn join(&mut self, joining: Joining) -> bool {
        let base = self.first_token + 2 * self.pairs.next_slot();
        let mut client = TcpStream::from_std(joining.client);
        let mut peer = TcpStream::from_std(joining.peer);
        let both = Interest::READABLE | Interest::WRITABLE;
        let registered = self
            .registry
            .register(&mut client, Token(base), both)
            .and_then(|()| self.registry.register(&mut peer, Token(base + 1), both));
        if let Err(e) = registered {
            debug!(client = %joining.tuple.client, error = %e, "data connection not polled");
            let _ = self.registry.deregister(&mut client);
            return false;
        }
        let early = joining.early.len() as u64;
        // Registering reports both writable: the first turn writes these.
        let splice = Splice {
            tuple: joining.tuple,
            client: End {
                stream: client,
                tls: joining.tls,
                broken: false,
                notified: false,
            },
            peer: End {
                stream: peer,
                tls: None,
                broken: false,
                notified: false,
            },
            to_peer: joining.early,
            to_client: joining.unsent,
            relayed: (early, 0),
            pace: joining.pace,
            paused_until: None,
            ending: None,
            _slot: joining.slot,
        };
        self.pairs.insert(joining.tuple, splice);
        self.unreported.0 += early;
        true
    }

    fn slot(&self, token: Token) -> Option<usize> {
        Some(token.0.checked_sub(self.first_token)? / 2)
    }

    /// Relays the pair of `token` for a turn; true if it may still hold
    /// input.
    pub(super) fn pump(&mut self, token: Token, now: Instant) -> bool {
        let Some(slot) = self.slot(token) else {
            return false;
        };
        let Some(splice) = self.pairs.get_mut(slot) else {
            return false;
        };
        let before = splice.relayed;
        let pumped = splice.pump(&mut self.scratch, now);
        self.unreported.0 += splice.relayed.0 - before.0;
        self.unreported.1 += splice.relayed.1 - before.1;
        match pumped {
            Pumped::Idle => {
                if let Some(until) = splice.paused_until
                    && !self.paused.iter().any(|&(_, s)| s == slot)
                {
                    self.paused.push((until, slot));
                }
                false
            }
            Pumped::More => true,
            Pumped::Ended => {
                self.end(slot);
                false
            }
        }
    }

    /// When the next paused connection may read again.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.paused.iter().map(|&(at, _)| at).min()
    }

    /// Tokens of paused connections whose pause is over (to pump now).
    pub(super) fn take_due(&mut self, now: Instant, due: &mut Vec<Token>) {
        let first_token = self.first_token;
        self.paused.retain(|&(at, slot)| {
            let over = at <= now;
            if over {
                due.push(Token(first_token + 2 * slot));
            }
            !over
        });
    }

    /// The core closed the data connection of `tuple` (its allocation is
    /// gone, say): both connections close now.
    pub(super) fn close(&mut self, tuple: &FiveTuple) {
        if let Some(slot) = self.pairs.slot_of(tuple) {
            self.end(slot);
        }
    }

    fn end(&mut self, slot: usize) {
        let Some((_, mut splice)) = self.pairs.remove(slot) else {
            return;
        };
        if splice.client.tls.is_some() && !splice.client.notified {
            // A TLS client hears the end from its session too (best
            // effort: the socket closes now).
            splice.client.shut();
        }
        let _ = self.registry.deregister(&mut splice.client.stream);
        let _ = self.registry.deregister(&mut splice.peer.stream);
        self.paused.retain(|&(_, s)| s != slot);
        self.ended.push(splice.tuple);
    }

    /// The next data connection that ended here, for the core to hear of.
    pub(super) fn take_ended(&mut self) -> Option<FiveTuple> {
        self.ended.pop()
    }

    /// Bytes relayed (to peers, to clients) since the last call.
    pub(super) fn take_unreported(&mut self) -> (u64, u64) {
        std::mem::take(&mut self.unreported)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{Read, Write};

    use mio::{Events, Poll};

    use super::*;
    use crate::driver::conn_limit::ConnectionLimit;
    use crate::server::Transport;

    /// A connected loopback pair: (our end, the far end), both
    /// non-blocking.
    fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let far = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (near, _) = listener.accept().unwrap();
        near.set_nonblocking(true).unwrap();
        far.set_nonblocking(true).unwrap();
        (near, far)
    }

    struct Rig {
        poll: Poll,
        events: Events,
        splices: Splices,
        tuple: FiveTuple,
        client: std::net::TcpStream,
        peer: std::net::TcpStream,
        /// The cap the client connection's slot counts under.
        limit: ConnectionLimit,
    }

    fn rig(bytes_per_sec: u64, unsent: &[u8], early: &[u8], now: Instant) -> Rig {
        let poll = Poll::new().unwrap();
        let mut splices = Splices::new(poll.registry().try_clone().unwrap(), 10);
        let (client_near, client) = pair();
        let (peer_near, peer) = pair();
        let tuple = FiveTuple {
            client: client.local_addr().unwrap(),
            server: client.peer_addr().unwrap(),
            transport: Transport::Tcp,
        };
        let limit = ConnectionLimit::new(1);
        let slot = limit.try_take().unwrap();
        assert!(splices.join(Joining {
            tuple,
            client: client_near,
            unsent: unsent.to_vec(),
            early: early.to_vec(),
            peer: peer_near,
            tls: None,
            pace: Arc::new(Mutex::new(Pace::new(bytes_per_sec, now))),
            slot,
        }));
        Rig {
            poll,
            events: Events::with_capacity(16),
            splices,
            tuple,
            client,
            peer,
            limit,
        }
    }

    /// What a non-blocking read of a far end found.
    #[derive(Debug, PartialEq)]
    enum Read_ {
        Bytes(Vec<u8>),
        Nothing,
        End,
    }

    fn read_some(from: &mut std::net::TcpStream) -> Read_ {
        let mut buf = vec![0u8; 1 << 16];
        match from.read(&mut buf) {
            Ok(0) => Read_::End,
            Ok(n) => Read_::Bytes(buf[..n].to_vec()),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Read_::Nothing,
            Err(e) => panic!("{e}"),
        }
    }

    impl Rig {
        /// Waits (at most 100 ms) for the poller and pumps what it names.
        fn step(&mut self, now: Instant) {
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(100)))
                .unwrap();
            for event in &self.events {
                while self.splices.pump(event.token(), now) {}
            }
        }

        /// Pumps and reads `far` (the client's end, or the peer's) until
        /// `n` bytes came or it ended.
        fn collect(&mut self, to_client: bool, n: usize, now: Instant) -> Vec<u8> {
            let mut got = Vec::new();
            for _ in 0..10_000 {
                if got.len() >= n {
                    return got;
                }
                self.step(now);
                let far = if to_client {
                    &mut self.client
                } else {
                    &mut self.peer
                };
                loop {
                    match read_some(far) {
                        Read_::Bytes(b) => got.extend_from_slice(&b),
                        Read_::Nothing => break,
                        Read_::End => return got,
                    }
                }
            }
            panic!("only {} of {n} bytes", got.len());
        }

        fn relayed(&self) -> (u64, u64) {
            self.splices.pairs.get(0).unwrap().1.relayed
        }
    }

    #[test]
    fn bytes_flow_both_ways_and_one_side_ending_closes_both() {
        let now = Instant::now();
        let mut rig = rig(0, b"bound", b"early", now);
        assert_eq!(rig.collect(true, 5, now), b"bound");
        rig.client.write_all(b" and later").unwrap();
        assert_eq!(rig.collect(false, 15, now), b"early and later");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        rig.peer.set_nonblocking(false).unwrap();
        rig.peer.write_all(&data).unwrap();
        rig.peer.set_nonblocking(true).unwrap();
        assert!(rig.collect(true, data.len(), now) == data);
        // The peer ends its stream: the pair ends with its counts, and the
        // client sees the end too.
        rig.peer.shutdown(Shutdown::Write).unwrap();
        for _ in 0..50 {
            if !rig.splices.ended.is_empty() {
                break;
            }
            rig.step(now);
        }
        assert_eq!(rig.splices.take_ended(), Some(rig.tuple));
        assert_eq!(rig.limit.open(), 0, "the pair's place is free");
        assert_eq!(rig.splices.take_unreported(), (15, 100_000));
        assert_eq!(rig.splices.take_unreported(), (0, 0), "counted once");
        assert_eq!(rig.collect(true, 1, now), b"", "the client's end");
    }

    #[test]
    fn a_blocked_client_stops_reading_from_the_peer_and_loses_nothing() {
        let now = Instant::now();
        let mut rig = rig(0, b"", b"", now);
        // The peer sends more than the kernel buffers on both sides hold.
        let data: Vec<u8> = (0..32_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut writer = rig.peer.try_clone().unwrap();
        writer.set_nonblocking(false).unwrap();
        let sent = data.clone();
        let feeding = std::thread::spawn(move || writer.write_all(&sent));
        let held = |rig: &Rig| rig.splices.pairs.get(0).unwrap().1.to_client.len();
        // The client reads nothing until the splice holds bytes for it.
        let mut most_held = 0;
        for _ in 0..1000 {
            rig.step(now);
            most_held = most_held.max(held(&rig));
            if most_held > 0 {
                break;
            }
        }
        assert!(most_held > 0, "the client blocked");
        let mut got = Vec::new();
        for _ in 0..100_000 {
            if got.len() >= data.len() {
                break;
            }
            rig.step(now);
            most_held = most_held.max(held(&rig));
            while let Read_::Bytes(b) = read_some(&mut rig.client) {
                got.extend_from_slice(&b);
            }
        }
        feeding.join().unwrap().unwrap();
        assert!(got == data, "in order, nothing lost ({} bytes)", got.len());
        assert!(most_held <= SCRATCH, "held at most one read: {most_held}");
    }

    #[test]
    fn over_the_budget_it_waits_for_its_time_then_reads_on() {
        let t0 = Instant::now();
        let mut rig = rig(10_000, b"", b"", t0);
        rig.peer.write_all(&[1u8; 40_000]).unwrap();
        // At t0: the burst (one second's worth) and the read that crossed it.
        for _ in 0..50 {
            if rig.splices.next_due().is_some() {
                break;
            }
            rig.step(t0);
        }
        let first = rig.relayed().1;
        assert!(
            (10_000..=10_000 + SCRATCH as u64).contains(&first),
            "{first}"
        );
        let due = rig.splices.next_due().unwrap();
        let owed = Duration::from_secs_f64((first - 10_000) as f64 / 10_000.0);
        assert!(due >= t0 + owed && due <= t0 + owed + Duration::from_millis(1));
        // Nothing more before then, whatever the poller says.
        let token = Token(10);
        assert!(!rig.splices.pump(token, due - Duration::from_millis(1)));
        assert_eq!(rig.relayed().1, first);
        let mut due_tokens = Vec::new();
        rig.splices
            .take_due(due - Duration::from_millis(1), &mut due_tokens);
        assert!(due_tokens.is_empty());
        rig.splices.take_due(due, &mut due_tokens);
        assert_eq!(due_tokens, [token]);
        rig.splices.pump(token, due);
        assert!(rig.relayed().1 > first);
    }

    /// Reads what the TLS client's end has (decrypted), and whether its
    /// close_notify (or the end of the stream) came.
    fn read_tls_some(
        sock: &mut std::net::TcpStream,
        session: &mut tokio_rustls::rustls::ClientConnection,
    ) -> (Vec<u8>, bool) {
        let mut got = Vec::new();
        match session.read_tls(sock) {
            Ok(0) => return (got, true),
            Ok(_) => {
                session.process_new_packets().unwrap();
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = session.reader().read(&mut buf) {
                    if n == 0 {
                        return (got, true);
                    }
                    got.extend_from_slice(&buf[..n]);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        (got, false)
    }

    #[test]
    fn a_tls_client_is_relayed_through_its_session_both_ways() {
        let now = Instant::now();
        let poll = Poll::new().unwrap();
        let mut splices = Splices::new(poll.registry().try_clone().unwrap(), 10);
        let (server, session, mut client, mut client_session) = super::super::test_tls::tls_pair();
        let (peer_near, mut peer) = pair();
        let tuple = FiveTuple {
            client: client.local_addr().unwrap(),
            server: client.peer_addr().unwrap(),
            transport: Transport::Tls,
        };
        let limit = ConnectionLimit::new(1);
        assert!(splices.join(Joining {
            tuple,
            client: server,
            tls: Some(Box::new(session)),
            unsent: b"bound".to_vec(),
            early: b"early".to_vec(),
            peer: peer_near,
            pace: Arc::new(Mutex::new(Pace::new(0, now))),
            slot: limit.try_take().unwrap(),
        }));
        let mut rig = Rig {
            poll,
            events: Events::with_capacity(16),
            splices,
            tuple,
            client: client.try_clone().unwrap(),
            peer: peer.try_clone().unwrap(),
            limit,
        };
        // Client → peer: 300 000 bytes through the session.
        let up: Vec<u8> = (0..300_000u32).map(|i| (i % 249) as u8).collect();
        client_session.set_buffer_limit(None);
        client_session.writer().write_all(&up).unwrap();
        let mut at_peer = Vec::new();
        let mut at_client = Vec::new();
        for _ in 0..10_000 {
            if at_peer.len() >= 5 + up.len() && at_client.len() >= 5 {
                break;
            }
            while client_session.wants_write() {
                match client_session.write_tls(&mut client) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            rig.step(now);
            if let Read_::Bytes(b) = read_some(&mut peer) {
                at_peer.extend_from_slice(&b);
            }
            at_client.extend(read_tls_some(&mut client, &mut client_session).0);
        }
        assert!(at_peer[..5] == *b"early" && at_peer[5..] == up[..], "up");
        assert_eq!(at_client, b"bound");
        // Peer → client: 300 000 bytes, then the peer ends: the client gets
        // them all, then close_notify.
        let down: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
        let mut writer = peer.try_clone().unwrap();
        writer.set_nonblocking(false).unwrap();
        let sent = down.clone();
        let feeding = std::thread::spawn(move || {
            writer.write_all(&sent).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let mut closed = false;
        at_client.clear();
        for _ in 0..10_000 {
            rig.step(now);
            let (got, ended) = read_tls_some(&mut client, &mut client_session);
            at_client.extend_from_slice(&got);
            if ended {
                closed = true;
                break;
            }
        }
        feeding.join().unwrap();
        assert!(
            at_client == down,
            "{} of {} bytes down",
            at_client.len(),
            down.len()
        );
        assert!(closed, "close_notify after the last byte");
        assert_eq!(rig.splices.take_ended(), Some(tuple));
        // ("bound" is the core's answer, not relayed.)
        assert_eq!(rig.splices.take_unreported(), (5 + 300_000, 300_000));
    }

    #[test]
    fn the_core_closing_it_closes_both_connections() {
        let now = Instant::now();
        let mut rig = rig(0, b"", b"", now);
        rig.client.write_all(b"ping").unwrap();
        assert_eq!(rig.collect(false, 4, now), b"ping");
        assert_eq!(rig.limit.open(), 1);
        rig.splices.close(&rig.tuple);
        assert_eq!(rig.splices.take_ended(), Some(rig.tuple));
        assert_eq!(rig.limit.open(), 0, "the pair's place is free");
        assert_eq!(rig.splices.take_unreported(), (4, 0));
        assert_eq!(rig.collect(true, 1, now), b"");
        assert_eq!(rig.collect(false, 1, now), b"");
        rig.splices.close(&rig.tuple);
        assert_eq!(rig.splices.take_ended(), None, "once");
    }
}
