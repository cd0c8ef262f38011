//! Outgoing datagrams of one socket (to clients, or to peers from one relay
//! socket), batched: one `sendmmsg` carries many of them, and on Linux
//! consecutive datagrams to one destination of one size (the last may be
//! shorter) form a *train* sent with UDP GSO (`UDP_SEGMENT`): it crosses
//! the IP stack once and is split into datagrams at the end. The receiver
//! sees ordinary datagrams.
//!
//! A relay socket drained in one turn yields several datagrams of one media
//! stream for one client, and a client's burst goes to one peer; each of
//! those used to pay the whole stack.
//!
//! A refused train goes again one datagram at a time; GSO stays off only
//! when the kernel cannot offload at all (see [`SendBatch::refused`]), and
//! is never used by a kernel without `UDP_SEGMENT`.

use std::net::SocketAddr;
use std::ops::Range;

use super::batch::BATCH;

/// Datagrams per train. The kernel allows 64 or more (`UDP_MAX_SEGMENTS`).
const MAX_SEGMENTS: usize = 64;
/// Bytes per train: the whole train must fit one IP packet's length field.
const MAX_TRAIN_BYTES: usize = 65_000;
/// Largest datagram that joins a train: a 1500-byte path minus IPv6 and UDP
/// headers. The kernel refuses a train whose segments exceed the path MTU,
/// where lone datagrams of that size would still go (IPv6 fragments them).
const MAX_SEGMENT: usize = 1452;
/// Bytes queued before a flush is due (two full trains): the buffer stays
/// small next to the allocations it serves.
const MAX_QUEUED_BYTES: usize = 128 * 1024;

/// Datagrams to one destination: `segment` bytes each, the last possibly
/// shorter. A train of one is an ordinary datagram.
#[derive(Debug, Clone)]
struct Train {
    to: SocketAddr,
    range: Range<usize>,
    segment: usize,
    /// A shorter datagram ended the train.
    sealed: bool,
}

impl Train {
    fn segments(&self) -> usize {
        if self.segment == 0 {
            1
        } else {
            self.range.len().div_ceil(self.segment)
        }
    }

    fn accepts(&self, to: SocketAddr, len: usize) -> bool {
        !self.sealed
            && self.to == to
            && len > 0
            && len <= self.segment
            && self.segment <= MAX_SEGMENT
            && self.segments() < MAX_SEGMENTS
            && self.range.len() + len <= MAX_TRAIN_BYTES
    }

    /// The `UDP_SEGMENT` size if this is a train of several datagrams.
    fn gso_size(&self) -> Option<u16> {
        if self.segments() > 1 {
            u16::try_from(self.segment).ok()
        } else {
            None
        }
    }
}

/// Datagrams waiting to go out of one socket, copied into one buffer.
pub(super) struct SendBatch {
    bytes: Vec<u8>,
    queued: Vec<Train>,
    gso: bool,
    /// Tests: the kernel refuses every train with this error.
    #[cfg(test)]
    refuse_trains: Option<i32>,
}

impl SendBatch {
    pub(super) fn new() -> Self {
        SendBatch {
            bytes: Vec::with_capacity(BATCH * 2048),
            queued: Vec::with_capacity(BATCH),
            gso: gso_supported(),
            #[cfg(test)]
            refuse_trains: None,
        }
    }

    /// Queues `data` for `to`. Returns true when the batch is full and
    /// should be flushed.
    pub(super) fn push(&mut self, to: SocketAddr, data: &[u8]) -> bool {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        let end = self.bytes.len();
        match self.queued.last_mut() {
            Some(train) if self.gso && train.accepts(to, data.len()) => {
                train.range.end = end;
                train.sealed = data.len() < train.segment;
            }
            _ => self.queued.push(Train {
                to,
                range: start..end,
                segment: data.len(),
                sealed: false,
            }),
        }
        self.queued.len() >= BATCH || self.bytes.len() >= MAX_QUEUED_BYTES
    }

    /// How many sends (trains and lone datagrams) are queued.
    #[cfg(test)]
    fn sends(&self) -> usize {
        self.queued.len()
    }

    /// Sends everything queued. A datagram the kernel refuses is dropped,
    /// as the network would; returns how many were dropped.
    pub(super) fn flush(&mut self, socket: &mio::net::UdpSocket) -> usize {
        let mut dropped = 0;
        let mut next = 0;
        while let Some(first) = self.queued.get(next) {
            let (run, gso_size) = run_sharing_gso_size(&self.queued[next..]);
            let trains = &self.queued[next..next + run];
            #[cfg(test)]
            if let (Some(errno), Some(_)) = (self.refuse_trains, gso_size) {
                let first = first.clone();
                let refusal = std::io::Error::from_raw_os_error(errno);
                dropped += self.refused(socket, &first, &refusal);
                next += 1;
                continue;
            }
            match send_run(socket, &self.bytes, trains, gso_size) {
                Ok(sent) if sent > 0 => next += sent,
                Ok(_) => {
                    dropped += first.segments();
                    next += 1;
                }
                Err(e) => {
                    tracing::debug!(error = %e, to = %first.to, "udp send failed");
                    let first = first.clone();
                    dropped += self.refused(socket, &first, &e);
                    next += 1;
                }
            }
        }
        self.discard();
        dropped
    }

    /// Drops everything queued (its socket is gone).
    pub(super) fn discard(&mut self) {
        self.bytes.clear();
        self.queued.clear();
    }

    /// The kernel refused `train` with `error`. Its datagrams go again one
    /// by one without `UDP_SEGMENT` (a lone datagram may have carried
    /// another train's segment size). GSO goes off for good only when the
    /// kernel says it cannot offload (EIO: no checksum offload, or IPsec);
    /// other refusals concern one destination. Returns how many were
    /// dropped.
    fn refused(
        &mut self,
        socket: &mio::net::UdpSocket,
        train: &Train,
        error: &std::io::Error,
    ) -> usize {
        let data = self.bytes.get(train.range.clone()).unwrap_or_default();
        let dropped = data
            .chunks(train.segment.max(1))
            .chain(data.is_empty().then_some(&[][..]))
            .filter(|datagram| socket.send_to(datagram, train.to).is_err())
            .count();
        if train.segments() > 1 && error.raw_os_error() == Some(EIO) && self.gso {
            tracing::info!("UDP GSO refused by the kernel: sending datagrams one by one");
            self.gso = false;
        }
        dropped
    }
}

/// `EIO` (Linux).
const EIO: i32 = 5;

/// Whether the kernel knows `UDP_SEGMENT` (Linux 4.18 on). An older one
/// would ignore the option and send a train as one large datagram.
fn gso_supported() -> bool {
    #[cfg(target_os = "linux")]
    {
        static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *SUPPORTED.get_or_init(|| {
            std::net::UdpSocket::bind("127.0.0.1:0").is_ok_and(|probe| {
                nix::sys::socket::getsockopt(&probe, nix::sys::socket::sockopt::UdpGsoSegment)
                    .is_ok()
            })
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// How many of `trains` one system call can send, and their `UDP_SEGMENT`
/// size: trains of one size, and lone datagrams no longer than it (the
/// kernel sends a datagram no longer than the segment size as it is).
fn run_sharing_gso_size(trains: &[Train]) -> (usize, Option<u16>) {
    let mut gso_size: Option<u16> = None;
    let mut longest_lone = 0;
    let mut run = 0;
    for train in trains {
        match (train.gso_size(), gso_size) {
            (Some(size), None) if longest_lone <= usize::from(size) => gso_size = Some(size),
            (Some(size), Some(shared)) if size == shared => {}
            (None, None) => longest_lone = longest_lone.max(train.range.len()),
            (None, Some(shared)) if train.range.len() <= usize::from(shared) => {}
            _ => break,
        }
        run += 1;
    }
    (run.max(1), gso_size)
}

/// Sends `trains` in one `sendmmsg`, with `UDP_SEGMENT` set to `gso_size`
/// on each if given. Returns how many were sent.
#[cfg(target_os = "linux")]
fn send_run(
    socket: &mio::net::UdpSocket,
    bytes: &[u8],
    trains: &[Train],
    gso_size: Option<u16>,
) -> std::io::Result<usize> {
    use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    if let ([lone], None) = (trains, gso_size) {
        // One datagram: no batch headers to build.
        socket.send_to(bytes.get(lone.range.clone()).unwrap_or_default(), lone.to)?;
        return Ok(1);
    }
    let slices: Vec<[IoSlice<'_>; 1]> = trains
        .iter()
        .map(|t| [IoSlice::new(bytes.get(t.range.clone()).unwrap_or_default())])
        .collect();
    let addrs: Vec<Option<SockaddrStorage>> = trains
        .iter()
        .map(|t| Some(SockaddrStorage::from(t.to)))
        .collect();
    let fd = socket.as_raw_fd();
    let sent = match gso_size {
        Some(size) => {
            let mut headers = MultiHeaders::preallocate(trains.len(), Some(nix::cmsg_space!(u16)));
            let cmsgs = [ControlMessage::UdpGsoSegments(&size)];
            sendmmsg(fd, &mut headers, &slices, &addrs, cmsgs, MsgFlags::empty())?.count()
        }
        None => {
            let mut headers = MultiHeaders::preallocate(trains.len(), None);
            let cmsgs: [ControlMessage<'_>; 0] = [];
            sendmmsg(fd, &mut headers, &slices, &addrs, cmsgs, MsgFlags::empty())?.count()
        }
    };
    Ok(sent)
}

/// Sends the first of `trains` (never a train of several: GSO is off
/// outside Linux).
#[cfg(not(target_os = "linux"))]
fn send_run(
    socket: &mio::net::UdpSocket,
    bytes: &[u8],
    trains: &[Train],
    _gso_size: Option<u16>,
) -> std::io::Result<usize> {
    let Some(first) = trains.first() else {
        return Ok(0);
    };
    socket.send_to(bytes.get(first.range.clone()).unwrap_or_default(), first.to)?;
    Ok(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::driver::batch::RecvBatch;
    use std::time::{Duration, Instant};

    fn bound() -> mio::net::UdpSocket {
        mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap()
    }

    fn received(socket: &mio::net::UdpSocket, want: usize) -> Vec<Vec<u8>> {
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < want && Instant::now() < deadline {
            for i in 0..batch.recv(socket, false).unwrap() {
                got.push(batch.get(i).unwrap().1.to_vec());
            }
        }
        got
    }

    #[test]
    fn equal_datagrams_to_one_client_form_one_train_and_arrive_apart() {
        let (source, sink) = (bound(), bound());
        let to = sink.local_addr().unwrap();
        let mut batch = SendBatch::new();
        let sent: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 1004]).collect();
        for datagram in &sent {
            batch.push(to, datagram);
        }
        if cfg!(target_os = "linux") {
            assert_eq!(batch.sends(), 1, "one train");
        }
        assert_eq!(batch.flush(&source), 0);
        assert_eq!(received(&sink, 10), sent, "ten datagrams, in order, apart");
        assert!(batch.gso, "the kernel took the train");
    }

    #[test]
    fn ipv6_and_dual_stack_sockets_send_trains_too() {
        let bind = |a: &str| mio::net::UdpSocket::bind(a.parse().unwrap()).unwrap();
        let v6_sink = bind("[::1]:0");
        let v4_sink = bind("127.0.0.1:0");
        let mapped = |s: &mio::net::UdpSocket| {
            let port = s.local_addr().unwrap().port();
            format!("[::ffff:127.0.0.1]:{port}").parse().unwrap()
        };
        // A v6 socket to a v6 client; a dual-stack one to a v4 client seen
        // as IPv4-mapped (as the listener on [::] sees it).
        let cases = [
            (bind("[::1]:0"), v6_sink.local_addr().unwrap(), &v6_sink),
            (bind("[::]:0"), mapped(&v4_sink), &v4_sink),
        ];
        for (source, to, sink) in &cases {
            let mut batch = SendBatch::new();
            let sent: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 1200]).collect();
            for datagram in &sent {
                batch.push(*to, datagram);
            }
            assert_eq!(batch.flush(source), 0);
            let ipv6 = sink.local_addr().unwrap().is_ipv6();
            let mut recv = RecvBatch::new();
            let mut got = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(5);
            while got.len() < sent.len() && Instant::now() < deadline {
                for i in 0..recv.recv(sink, ipv6).unwrap() {
                    got.push(recv.get(i).unwrap().1.to_vec());
                }
            }
            assert_eq!(got, sent, "to {to}");
            assert!(batch.gso, "the kernel took the train to {to}");
        }
    }

    #[test]
    fn a_refused_train_goes_one_by_one_and_gso_stays_off() {
        let (source, sink) = (bound(), bound());
        let to = sink.local_addr().unwrap();
        let mut batch = SendBatch::new();
        batch.refuse_trains = Some(EIO);
        let sent: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 500]).collect();
        for datagram in &sent {
            batch.push(to, datagram);
        }
        if cfg!(target_os = "linux") {
            assert_eq!(batch.sends(), 1, "queued as a train");
        }
        assert_eq!(batch.flush(&source), 0, "nothing lost");
        assert_eq!(received(&sink, 4), sent);
        assert!(!batch.gso, "GSO is off from now on");
        for datagram in &sent {
            batch.push(to, datagram);
        }
        assert_eq!(batch.sends(), 4, "no more trains");
        assert_eq!(batch.flush(&source), 0);
        assert_eq!(received(&sink, 4), sent);
    }

    #[test]
    fn a_train_refused_for_its_destination_goes_one_by_one_and_gso_stays_on() {
        let (source, sink) = (bound(), bound());
        let to = sink.local_addr().unwrap();
        let mut batch = SendBatch::new();
        let gso = batch.gso;
        batch.refuse_trains = Some(22); // EINVAL: e.g. segments over the path MTU
        let sent: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 700]).collect();
        for datagram in &sent {
            batch.push(to, datagram);
        }
        assert_eq!(batch.flush(&source), 0, "nothing lost");
        assert_eq!(received(&sink, 3), sent);
        assert_eq!(batch.gso, gso, "one destination's trouble leaves GSO on");
    }

    #[test]
    fn datagrams_longer_than_a_path_mtu_segment_never_form_trains() {
        let mut batch = SendBatch::new();
        let to = "127.0.0.1:9".parse().unwrap();
        for _ in 0..3 {
            batch.push(to, &[7; MAX_SEGMENT + 1]);
        }
        assert_eq!(batch.sends(), 3);
    }

    #[test]
    fn a_train_ends_at_a_shorter_or_longer_datagram_or_another_client() {
        let (source, x, y) = (bound(), bound(), bound());
        let (to_x, to_y) = (x.local_addr().unwrap(), y.local_addr().unwrap());
        let mut batch = SendBatch::new();
        let for_x = [
            vec![1; 800],
            vec![2; 800],
            vec![3; 300],
            vec![4; 300],
            vec![5; 900],
        ];
        for datagram in &for_x {
            batch.push(to_x, datagram);
        }
        let for_y = [vec![6; 900], vec![7; 900], vec![], vec![8; 900]];
        for datagram in &for_y {
            batch.push(to_y, datagram);
        }
        if cfg!(target_os = "linux") {
            // One call takes x's train (GSO size 800) and the lone 300;
            // the lone 900 is longer than 800 and starts the next call.
            assert_eq!(run_sharing_gso_size(&batch.queued), (2, Some(800)));
            // The rest shares 900: the lone ones fit under y's train.
            assert_eq!(run_sharing_gso_size(&batch.queued[2..]), (4, Some(900)));
            assert_eq!(run_sharing_gso_size(&batch.queued[4..]), (2, None));
            // x: [800, 800, 300] (sealed by the shorter one), [300], [900];
            // y: [900, 900], the empty one alone, [900].
            let trains: Vec<(usize, usize)> = batch
                .queued
                .iter()
                .map(|t| (t.segments(), t.segment))
                .collect();
            assert_eq!(
                trains,
                vec![(3, 800), (1, 300), (1, 900), (2, 900), (1, 0), (1, 900)]
            );
        }
        assert_eq!(batch.flush(&source), 0);
        assert_eq!(received(&x, for_x.len()), for_x.to_vec());
        assert_eq!(received(&y, for_y.len()), for_y.to_vec());
    }

    #[test]
    fn a_long_burst_splits_into_trains_within_kernel_limits() {
        let (source, sink) = (bound(), bound());
        let to = sink.local_addr().unwrap();
        // 100 small datagrams: the segment cap; 60 large ones: the byte cap.
        for (count, size, trains) in [(100u8, 100, 2), (60, 1200, 2)] {
            let mut batch = SendBatch::new();
            let sent: Vec<Vec<u8>> = (0..count).map(|i| vec![i; size]).collect();
            for datagram in &sent {
                assert!(!batch.push(to, datagram), "not full: few sends");
            }
            for train in &batch.queued {
                assert!(train.segments() <= MAX_SEGMENTS);
                assert!(train.range.len() <= MAX_TRAIN_BYTES);
            }
            if cfg!(target_os = "linux") {
                assert_eq!(batch.sends(), trains);
            }
            assert_eq!(batch.flush(&source), 0);
            assert_eq!(received(&sink, sent.len()), sent);
        }
    }
}
