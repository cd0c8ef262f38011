//! The client TCP/TLS connections a core thread writes to.
//!
//! Client connections live on the core thread itself ([`CoreStream`]): its
//! poller reads them, the core answers, and what it sends waits in the
//! connection's buffer until the end of the turn, when it leaves in one
//! write (over TLS: encrypted by rustls on this thread, after the handshake
//! on tokio). A frame crosses no thread.
//!
//! Over TLS each frame is a record of its own, as coturn writes them:
//! clients that take one record for one message (coturn's own
//! `turnutils_uclient` does) would otherwise drop every message after the
//! first of a record. The records of a turn still leave in one write.
//!
//! A connection whose ConnectionBind (RFC 6062) succeeds leaves this set
//! with what it holds (and its TLS session) and is relayed raw with its
//! peer connection on this thread too ([`super::splice`]).

use std::collections::VecDeque;
use std::io::{ErrorKind, Write};
use std::net::TcpStream as StdTcpStream;
use std::os::fd::OwnedFd;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use tokio_rustls::rustls::ServerConnection;
use tracing::debug;

use super::conn_limit::ConnectionSlot;
use super::frames::FrameBuffer;
use super::slots::Slots;
use crate::server::FiveTuple;

/// Bytes waiting for a slow client before frames to it are dropped, as a
/// full UDP socket would (whole frames: the framing stays intact).
const MAX_UNSENT: usize = 256 * 1024;
/// Plaintext handed to a TLS session at once, its records all out: well
/// under rustls's 64 KiB of records waiting, so each frame goes whole.
const TLS_BATCH: usize = 32 * 1024;
/// What a record adds to its plaintext, at most (header, tag, padding).
const RECORD_OVERHEAD: usize = 64;

/// A client connection owned by the core thread.
pub(super) struct CoreStream {
    pub stream: TcpStream,
    pub tuple: FiveTuple,
    /// Read and not yet handled. Taken out while its frames are handled.
    pub input: FrameBuffer,
    /// Answered and not yet written (over TLS: not yet encrypted).
    unsent: Vec<u8>,
    /// Over TLS: the lengths of the frames in `unsent`, one record each.
    unsent_frames: VecDeque<usize>,
    /// The TLS session of a TLS connection.
    tls: Option<Box<ServerConnection>>,
    /// Closes after writing what the kernel takes now (a refused
    /// ConnectionBind, no allocation in time, the client's end of stream).
    closing: bool,
    /// Listed among the connections to write at the end of the turn.
    dirty: bool,
    /// Its place under `max_client_connections`.
    slot: ConnectionSlot,
}

impl CoreStream {
    /// Reads what the client sent into [`Self::input`]: the bytes added (0
    /// at the end of the stream), or the error (`WouldBlock`: nothing
    /// there yet).
    pub(super) fn read(&mut self) -> std::io::Result<usize> {
        let Some(tls) = &mut self.tls else {
            return self.input.read_from(&mut self.stream);
        };
        loop {
            match self.input.read_from(&mut tls.reader()) {
                // Ok(0): the client's close_notify.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if tls.read_tls(&mut self.stream)? == 0 {
                return Ok(0);
            }
            tls.process_new_packets()
                .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))?;
        }
    }

    /// Writes what it can; true if the connection failed.
    fn write_out(&mut self) -> bool {
        let Some(tls) = &mut self.tls else {
            return write_plain(&mut self.stream, &mut self.unsent);
        };
        loop {
            // Records already encrypted go first; then the next batch.
            while tls.wants_write() {
                match tls.write_tls(&mut self.stream) {
                    Ok(0) => return true,
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return true,
                }
            }
            // Every byte queued over TLS belongs to a listed frame, and each
            // call below takes at least one: the loop ends.
            debug_assert_eq!(self.unsent_frames.iter().sum::<usize>(), self.unsent.len());
            if self.unsent_frames.is_empty() {
                return false;
            }
            if encrypt_frames(tls, &mut self.unsent, &mut self.unsent_frames) {
                return true;
            }
        }
    }
}

/// Hands the frames at the front of `unsent` to a TLS session whose
/// records are all out, each as a record of its own, up to
/// [`TLS_BATCH`] (a first frame longer than that goes anyway: rustls
/// splits it into records). True if the session failed.
fn encrypt_frames(
    tls: &mut ServerConnection,
    unsent: &mut Vec<u8>,
    frames: &mut VecDeque<usize>,
) -> bool {
    let (mut taken, mut budget) = (0, 0);
    while let Some(len) = frames.front_mut() {
        // Each record adds its header and tag to rustls's count.
        if taken > 0 && budget + *len + RECORD_OVERHEAD > TLS_BATCH {
            break;
        }
        budget += *len + RECORD_OVERHEAD;
        let frame = unsent.get(taken..taken + *len).unwrap_or_default();
        match tls.writer().write(frame) {
            // rustls's limit reached after some frames: the rest wait.
            Ok(0) if taken > 0 => break,
            Ok(0) | Err(_) => return true,
            Ok(n) if n < *len => {
                // Over rustls's limit: the rest follows its records.
                *len -= n;
                taken += n;
                break;
            }
            Ok(n) => {
                taken += n;
                frames.pop_front();
            }
        }
    }
    unsent.drain(..taken);
    false
}

/// Writes `unsent` until the socket would block; what was written leaves
/// the buffer. True if the connection failed.
fn write_plain(stream: &mut TcpStream, unsent: &mut Vec<u8>) -> bool {
    let mut written = 0;
    let failed = loop {
        let Some(rest) = unsent.get(written..).filter(|r| !r.is_empty()) else {
            break false;
        };
        match stream.write(rest) {
            Ok(0) => break true,
            Ok(n) => written += n,
            // The rest goes when the poller says the client is writable.
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break true,
        }
    };
    unsent.drain(..written);
    failed
}

/// A data connection taken out of the client set to be relayed raw (see
/// [`ClientStreams::take_for_join`]).
pub(super) struct Handover {
    pub stream: StdTcpStream,
    /// A TLS client's session.
    pub tls: Option<Box<ServerConnection>>,
    /// Answers not yet written (the ConnectionBind success): they go first.
    pub unsent: Vec<u8>,
    /// Bytes the client sent behind its ConnectionBind: for the peer.
    pub rest: Vec<u8>,
    /// Its place under `max_client_connections`.
    pub slot: ConnectionSlot,
}

/// Every client stream of one core thread, by token and by 5-tuple.
pub(super) struct ClientStreams {
    registry: Registry,
    first_token: usize,
    conns: Slots<FiveTuple, CoreStream>,
    /// Slots with bytes to write at the end of the turn.
    dirty: Vec<usize>,
    /// Connections closed here whose end the core has not heard of yet.
    closed: Vec<FiveTuple>,
}

impl ClientStreams {
    pub(super) fn new(registry: Registry, first_token: usize) -> Self {
        ClientStreams {
            registry,
            first_token,
            conns: Slots::new(),
            dirty: Vec::new(),
            closed: Vec::new(),
        }
    }

    /// Whether `token` names one of these connections.
    pub(super) fn owns(&self, token: Token) -> bool {
        token.0 >= self.first_token
    }

    /// Takes a connection over from tokio; its token, or `None` if it could
    /// not be polled (it is closed).
    pub(super) fn adopt(
        &mut self,
        stream: StdTcpStream,
        tuple: FiveTuple,
        input: FrameBuffer,
        tls: Option<Box<ServerConnection>>,
        slot: ConnectionSlot,
    ) -> Option<Token> {
        let token = Token(self.first_token + self.conns.next_slot());
        let mut stream = TcpStream::from_std(stream);
        if let Err(e) =
            self.registry
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
        {
            debug!(client = %tuple.client, error = %e, "client connection not polled");
            return None;
        }
        let conn = CoreStream {
            stream,
            tuple,
            input,
            unsent: Vec::new(),
            unsent_frames: VecDeque::new(),
            tls,
            closing: false,
            dirty: false,
            slot,
        };
        let slot = self.conns.insert(tuple, conn);
        // A TLS session may hold records to send (session tickets).
        self.mark_dirty(slot);
        Some(token)
    }

    fn slot(&self, token: Token) -> Option<usize> {
        token.0.checked_sub(self.first_token)
    }

    pub(super) fn get_mut(&mut self, token: Token) -> Option<&mut CoreStream> {
        let slot = self.slot(token)?;
        self.conns.get_mut(slot)
    }

    /// Queues a frame for the client of `tuple` (dropped if it is gone or
    /// stuck).
    pub(super) fn send(&mut self, tuple: &FiveTuple, frame: &[u8]) {
        if frame.is_empty() {
            return;
        }
        if let Some(slot) = self.conns.slot_of(tuple) {
            let Some(conn) = self.conns.get_mut(slot) else {
                return;
            };
            if conn.unsent.len() + frame.len() > MAX_UNSENT {
                return;
            }
            conn.unsent.extend_from_slice(frame);
            if conn.tls.is_some() {
                conn.unsent_frames.push_back(frame.len());
            }
            self.mark_dirty(slot);
        }
    }

    /// Lists the connection of `slot` to be written at the end of the turn.
    fn mark_dirty(&mut self, slot: usize) {
        if let Some(conn) = self.conns.get_mut(slot)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(slot);
        }
    }

    /// Input was read from `token`'s connection: a TLS session may have
    /// records to answer with (alerts, key updates).
    pub(super) fn after_read(&mut self, token: Token) {
        if let Some(slot) = self.slot(token) {
            self.mark_dirty(slot);
        }
    }

    /// Writes what every connection has queued (at the end of a turn).
    pub(super) fn flush(&mut self) {
        while let Some(slot) = self.dirty.pop() {
            if let Some(conn) = self.conns.get_mut(slot) {
                conn.dirty = false;
            }
            self.write(slot);
        }
    }

    /// The client is writable again: writes what waits for it.
    pub(super) fn writable(&mut self, token: Token) {
        if let Some(slot) = self.slot(token) {
            self.write(slot);
        }
    }

    fn write(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let mut failed = conn.write_out();
        if conn.closing && !failed {
            // Last words: the answers, then (TLS) close_notify. What the
            // kernel took is delivered after the close; a client too slow
            // to take them now loses them.
            if let Some(tls) = &mut conn.tls {
                tls.send_close_notify();
                failed = conn.write_out();
            }
        }
        if failed {
            debug!(client = %conn.tuple.client, "client write failed");
        }
        if failed || conn.closing {
            self.close_slot(slot);
        } else if conn.unsent.capacity() > MAX_UNSENT && conn.unsent.len() < MAX_UNSENT / 4 {
            conn.unsent.shrink_to(MAX_UNSENT / 4);
        }
    }

    /// Closes the connection of `token` (bad input, failure).
    pub(super) fn close(&mut self, token: Token) {
        if let Some(slot) = self.slot(token) {
            self.close_slot(slot);
        }
    }

    /// The client of `token` ended its stream: the answers to what it sent
    /// go out, then the connection closes.
    pub(super) fn finish(&mut self, token: Token) {
        if let Some(slot) = self.slot(token) {
            self.close_after_writing(slot);
        }
    }

    fn close_after_writing(&mut self, slot: usize) {
        if let Some(conn) = self.conns.get_mut(slot) {
            conn.closing = true;
        }
        self.write(slot);
    }

    /// The core was not told of a connection that left this set and then
    /// failed to start relaying (see [`Self::take_for_join`]): tell it now.
    pub(super) fn note_closed(&mut self, tuple: FiveTuple) {
        self.closed.push(tuple);
    }

    fn close_slot(&mut self, slot: usize) {
        if let Some(conn) = self.remove_slot(slot) {
            self.closed.push(conn.tuple);
        }
    }

    fn remove_slot(&mut self, slot: usize) -> Option<CoreStream> {
        let (_, mut conn) = self.conns.remove(slot)?;
        let _ = self.registry.deregister(&mut conn.stream);
        Some(conn)
    }

    /// The next connection closed here that the core should hear of.
    pub(super) fn take_closed(&mut self) -> Option<FiveTuple> {
        self.closed.pop()
    }

    /// Whether a connection of `tuple` is open here.
    pub(super) fn holds(&self, tuple: &FiveTuple) -> bool {
        self.conns.slot_of(tuple).is_some()
    }

    /// Writes what is queued for the connection of `tuple` (as much as the
    /// kernel takes now), then closes it: its ConnectionBind was refused,
    /// or it held no allocation in time.
    pub(super) fn close_when_written(&mut self, tuple: &FiveTuple) {
        if let Some(slot) = self.conns.slot_of(tuple) {
            self.close_after_writing(slot);
        }
    }

    /// The connection of `tuple`, to be joined with a peer connection,
    /// leaves this set with what it holds. The core hears of its end from
    /// where it is relayed (or, if that fails to start, from
    /// [`Self::note_closed`]).
    pub(super) fn take_for_join(&mut self, tuple: &FiveTuple) -> Option<Handover> {
        let slot = self.conns.slot_of(tuple)?;
        let conn = self.remove_slot(slot)?;
        Some(Handover {
            stream: StdTcpStream::from(OwnedFd::from(conn.stream)),
            tls: conn.tls,
            unsent: conn.unsent,
            rest: conn.input.into_rest(),
            slot: conn.slot,
        })
    }

    /// Closes the connection of `tuple`.
    pub(super) fn drop_connection(&mut self, tuple: &FiveTuple) {
        if let Some(slot) = self.conns.slot_of(tuple) {
            self.close_slot(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Read;
    use std::time::Duration;

    use mio::{Events, Poll};

    use super::super::test_tls::tls_pair;
    use super::*;
    use crate::server::Transport;

    /// A core-side connection adopted from a loopback pair, and the
    /// client's end.
    fn adopted(poll: &Poll) -> (ClientStreams, Token, FiveTuple, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, addr) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let tuple = FiveTuple {
            client: addr,
            server: listener.local_addr().unwrap(),
            transport: Transport::Tcp,
        };
        let mut streams = ClientStreams::new(poll.registry().try_clone().unwrap(), 100);
        let token = streams
            .adopt(
                server,
                tuple,
                FrameBuffer::new(),
                None,
                ConnectionSlot::untracked(),
            )
            .unwrap();
        (streams, token, tuple, client)
    }

    /// Everything the server writes until it closes (within 5 s).
    fn read_until_closed(stream: &mut std::net::TcpStream) -> Vec<u8> {
        let mut got = Vec::new();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.read_to_end(&mut got).unwrap();
        got
    }

    /// Waits (bounded) until the poller reports `token` writable.
    fn wait_writable(poll: &mut Poll, token: Token) {
        let mut events = Events::with_capacity(8);
        for _ in 0..100 {
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
            if events.iter().any(|e| e.token() == token && e.is_writable()) {
                return;
            }
        }
        panic!("never writable");
    }

    #[test]
    fn a_client_that_does_not_read_loses_whole_frames_past_the_cap_and_gets_the_rest_in_order() {
        let mut poll = Poll::new().unwrap();
        let (mut streams, token, tuple, mut client) = adopted(&poll);
        // 4-byte frames numbered in order, far more than the kernel buffers
        // and the cap hold together.
        let frames = 2_000_000u32;
        for i in 0..frames {
            streams.send(&tuple, &i.to_be_bytes());
            if i % 1000 == 0 {
                streams.flush();
            }
        }
        streams.flush();
        let unsent = streams.get_mut(token).unwrap().unsent.len();
        assert!(unsent > 0 && unsent <= MAX_UNSENT, "{unsent}");
        // The client reads everything; the rest follows as it drains.
        client
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match client.read(&mut buf) {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ if streams.get_mut(token).unwrap().unsent.is_empty() => break,
                _ => {
                    wait_writable(&mut poll, token);
                    streams.writable(token);
                }
            }
        }
        assert_eq!(got.len() % 4, 0, "whole frames only");
        let numbers: Vec<u32> = got
            .chunks(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "in order");
        assert_eq!(numbers[0], 0);
        assert!(
            numbers.len() < frames as usize,
            "frames past the cap were dropped"
        );
        assert!(streams.take_closed().is_none(), "still open");
    }

    /// Reads the TLS records that are there (`raw` keeps a partial one)
    /// and decrypts them one at a time: the plaintext of each record that
    /// carried any. `Ok(0)` when none was whole.
    fn read_records(
        client: &mut std::net::TcpStream,
        session: &mut tokio_rustls::rustls::ClientConnection,
        raw: &mut Vec<u8>,
        records: &mut Vec<Vec<u8>>,
    ) -> std::io::Result<usize> {
        let mut chunk = vec![0u8; 1 << 16];
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        raw.extend_from_slice(&chunk[..n]);
        let mut whole = 0;
        while raw.len() >= 5 {
            let len = 5 + usize::from(u16::from_be_bytes([raw[3], raw[4]]));
            if raw.len() < len {
                break;
            }
            let record: Vec<u8> = raw.drain(..len).collect();
            let mut rest = &record[..];
            while !rest.is_empty() {
                session.read_tls(&mut rest).unwrap();
                session.process_new_packets().unwrap();
            }
            let mut plaintext = Vec::new();
            let _ = session.reader().read_to_end(&mut plaintext);
            if !plaintext.is_empty() {
                records.push(plaintext);
            }
            whole += 1;
        }
        Ok(whole)
    }

    #[test]
    fn a_slow_tls_client_gets_every_frame_queued_for_it_in_order_a_record_each() {
        slow_tls_client_gets_frames_of(1000);
    }

    /// Tiny frames: rustls counts each record's header and tag too.
    #[test]
    fn a_slow_tls_client_gets_thousands_of_tiny_frames_a_record_each() {
        slow_tls_client_gets_frames_of(8);
    }

    fn slow_tls_client_gets_frames_of(frame_len: usize) {
        let mut poll = Poll::new().unwrap();
        let (server, session, mut client, mut client_session) = tls_pair();
        let tuple = FiveTuple {
            client: client.local_addr().unwrap(),
            server: client.peer_addr().unwrap(),
            transport: Transport::Tls,
        };
        let mut streams = ClientStreams::new(poll.registry().try_clone().unwrap(), 100);
        let token = streams
            .adopt(
                server,
                tuple,
                FrameBuffer::new(),
                Some(Box::new(session)),
                ConnectionSlot::untracked(),
            )
            .unwrap();
        // Four times rustls' own 64 KiB buffer limit, within ours; the
        // client reads nothing yet.
        let data: Vec<u8> = (0..MAX_UNSENT as u32 - 4096)
            .map(|i| (i % 251) as u8)
            .collect();
        let frames: Vec<&[u8]> = data.chunks(frame_len).collect();
        for frame in &frames {
            streams.send(&tuple, frame);
        }
        streams.flush();
        assert!(streams.take_closed().is_none(), "still open");
        let (mut raw, mut records) = (Vec::new(), Vec::new());
        let mut events = Events::with_capacity(8);
        for _ in 0..1000 {
            if records.iter().map(Vec::len).sum::<usize>() >= data.len() {
                break;
            }
            match read_records(&mut client, &mut client_session, &mut raw, &mut records) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    poll.poll(&mut events, Some(Duration::from_millis(100)))
                        .unwrap();
                    streams.writable(token);
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(records.len(), frames.len(), "one record per frame");
        assert!(
            records.iter().zip(&frames).all(|(r, f)| r == f),
            "each record holds its frame, in order"
        );
        assert!(streams.take_closed().is_none(), "still open");
    }

    #[test]
    fn a_refused_tls_connection_gets_its_answer_before_close_notify() {
        let poll = Poll::new().unwrap();
        let (server, session, mut client, mut client_session) = tls_pair();
        client.set_nonblocking(false).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let tuple = FiveTuple {
            client: client.local_addr().unwrap(),
            server: client.peer_addr().unwrap(),
            transport: Transport::Tls,
        };
        let mut streams = ClientStreams::new(poll.registry().try_clone().unwrap(), 100);
        streams
            .adopt(
                server,
                tuple,
                FrameBuffer::new(),
                Some(Box::new(session)),
                ConnectionSlot::untracked(),
            )
            .unwrap();
        streams.send(&tuple, b"answer");
        streams.close_when_written(&tuple);
        assert_eq!(streams.take_closed(), Some(tuple));
        let mut got = Vec::new();
        loop {
            if client_session.read_tls(&mut client).unwrap() == 0 {
                break;
            }
            let state = client_session.process_new_packets().unwrap();
            let mut buf = [0u8; 64];
            while let Ok(n) = client_session.reader().read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            if state.peer_has_closed() {
                break;
            }
        }
        assert_eq!(got, b"answer");
        assert!(
            client_session.reader().read(&mut [0u8; 8]).unwrap() == 0,
            "then close_notify"
        );
    }

    #[test]
    fn an_old_connection_ending_spares_its_successor_under_the_same_tuple() {
        let poll = Poll::new().unwrap();
        let (mut streams, token, tuple, mut client) = adopted(&poll);
        // A second connection under the same 5-tuple (the client came back
        // from the same port before the first one's end was handled).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut successor = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (near, _) = listener.accept().unwrap();
        near.set_nonblocking(true).unwrap();
        let second = streams
            .adopt(
                near,
                tuple,
                FrameBuffer::new(),
                None,
                ConnectionSlot::untracked(),
            )
            .unwrap();
        streams.send(&tuple, b"to the successor");
        streams.finish(token);
        assert_eq!(streams.take_closed(), Some(tuple));
        let rest = read_until_closed(&mut client);
        assert!(rest.is_empty(), "the old one only ends");
        streams.send(&tuple, b", still reachable");
        streams.finish(second);
        let got = read_until_closed(&mut successor);
        assert_eq!(got, b"to the successor, still reachable");
    }

    #[test]
    fn a_refused_connection_gets_its_answer_then_closes() {
        let poll = Poll::new().unwrap();
        let (mut streams, token, tuple, mut client) = adopted(&poll);
        streams.send(&tuple, b"answer");
        streams.close_when_written(&tuple);
        assert!(streams.get_mut(token).is_none());
        assert_eq!(streams.take_closed(), Some(tuple));
        let got = read_until_closed(&mut client);
        assert_eq!(got, b"answer");
    }

    #[test]
    fn a_joined_connection_leaves_with_its_unsent_answer_and_unread_bytes() {
        let poll = Poll::new().unwrap();
        let (mut streams, token, tuple, _client) = adopted(&poll);
        streams.get_mut(token).unwrap().input = {
            let mut input = FrameBuffer::new();
            input.read_from(&mut &b"raw"[..]).unwrap();
            input
        };
        streams.send(&tuple, b"bound");
        let handover = streams.take_for_join(&tuple).unwrap();
        assert_eq!(handover.unsent, b"bound");
        assert_eq!(handover.rest, b"raw");
        assert!(streams.get_mut(token).is_none());
        streams.flush();
        assert!(streams.take_closed().is_none(), "the relay task reports it");
    }
}
