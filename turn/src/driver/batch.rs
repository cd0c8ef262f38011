//! Batched UDP receive: many datagrams per system call with `recvmmsg` on
//! Linux; one `recvfrom` per datagram elsewhere. [`RecvBatch`] owns the
//! receive buffers, so the hot path allocates nothing per packet. Sending
//! is in [`super::send_batch`].

use std::io;
use std::net::SocketAddr;

/// Datagrams per receive or send call.
pub(super) const BATCH: usize = 32;
/// One receive slot: the largest UDP payload fits, so nothing is truncated.
const SLOT: usize = 65_536;

/// Buffers for up to [`BATCH`] received datagrams.
pub(super) struct RecvBatch {
    buf: Vec<u8>,
    received: Vec<(SocketAddr, usize)>,
    /// Kernel headers for IPv4 sockets, then IPv6 sockets. Separate: a
    /// header keeps the address length of its last datagram, so a slot that
    /// held an IPv4 source would cut a later IPv6 source short.
    #[cfg(target_os = "linux")]
    headers: [nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>; 2],
}

impl RecvBatch {
    pub(super) fn new() -> Self {
        RecvBatch {
            buf: vec![0; BATCH * SLOT],
            received: Vec::with_capacity(BATCH),
            #[cfg(target_os = "linux")]
            headers: [
                nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
                nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
            ],
        }
    }

    /// Datagram `i` of the last receive: its source and bytes.
    pub(super) fn get(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
        let &(from, n) = self.received.get(i)?;
        let start = i * SLOT;
        Some((from, self.buf.get(start..start + n)?))
    }

    /// Receives what is queued on `socket` (an IPv6 socket if `ipv6`), up to
    /// [`BATCH`] datagrams, without blocking. Returns how many (0 when
    /// nothing was queued). Fewer than [`BATCH`] means the socket was
    /// drained.
    #[cfg(target_os = "linux")]
    pub(super) fn recv(&mut self, socket: &mio::net::UdpSocket, ipv6: bool) -> io::Result<usize> {
        use nix::sys::socket::{MsgFlags, recvmmsg};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        self.received.clear();
        let mut slices: [[IoSliceMut<'_>; 1]; BATCH] = {
            let mut chunks = self.buf.chunks_exact_mut(SLOT);
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())])
        };
        let result = recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers[usize::from(ipv6)],
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        );
        let messages = match result {
            Ok(messages) => messages,
            Err(nix::errno::Errno::EAGAIN) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        for message in messages {
            let from = message.address.as_ref().and_then(socket_addr);
            let truncated = message.flags.contains(MsgFlags::MSG_TRUNC);
            // Keep slot indices aligned with `received` indices: a bad
            // datagram is kept with length 0 and dropped by the caller.
            let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
            match from {
                Some(from) if !truncated => self.received.push((from, message.bytes)),
                _ => self.received.push((unspecified, 0)),
            }
        }
        Ok(self.received.len())
    }

    /// Receives what is queued on `socket`, up to [`BATCH`] datagrams.
    #[cfg(not(target_os = "linux"))]
    pub(super) fn recv(&mut self, socket: &mio::net::UdpSocket, _ipv6: bool) -> io::Result<usize> {
        self.received.clear();
        for slot in self.buf.chunks_exact_mut(SLOT) {
            match socket.recv_from(slot) {
                Ok((n, from)) => self.received.push((from, n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if self.received.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok(self.received.len())
    }
}

#[cfg(target_os = "linux")]
fn socket_addr(storage: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = storage.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    storage.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::driver::send_batch::SendBatch;
    use std::time::{Duration, Instant};

    fn bound() -> mio::net::UdpSocket {
        mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap()
    }

    fn bound_v6() -> mio::net::UdpSocket {
        mio::net::UdpSocket::bind("[::1]:0".parse().unwrap()).unwrap()
    }

    /// Receives until `want` datagrams arrived (bounded by a deadline: the
    /// sockets are non-blocking and loopback delivery is synchronous, so
    /// this normally takes one or two calls).
    fn receive(socket: &mio::net::UdpSocket, want: usize) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < want && Instant::now() < deadline {
            let ipv6 = socket.local_addr().unwrap().is_ipv6();
            let n = batch.recv(socket, ipv6).unwrap();
            assert!(n <= BATCH);
            for i in 0..n {
                let (from, data) = batch.get(i).unwrap();
                got.push((from, data.to_vec()));
            }
        }
        got
    }

    #[test]
    fn more_than_a_batch_arrives_in_order_with_sources() {
        let (a, b, sink) = (bound(), bound(), bound());
        let to = sink.local_addr().unwrap();
        let mut batch = SendBatch::new();
        // Each datagram longer than the one before: none joins a GSO train.
        let datagram = |i: usize| vec![i as u8; i + 1];
        for i in 0..BATCH + 8 {
            if batch.push(to, &datagram(i)) {
                assert_eq!(i, BATCH - 1, "full at exactly BATCH sends");
                assert_eq!(batch.flush(&a), 0);
            }
        }
        assert_eq!(batch.flush(&b), 0);
        let got = receive(&sink, BATCH + 8);
        assert_eq!(got.len(), BATCH + 8);
        for (i, (from, data)) in got.iter().enumerate() {
            assert_eq!(data, &datagram(i));
            let sender = if i < BATCH { &a } else { &b };
            assert_eq!(*from, sender.local_addr().unwrap());
        }
    }

    #[test]
    fn one_batch_reaches_many_destinations_and_sizes_vary() {
        let (source, x, y) = (bound(), bound(), bound());
        let mut batch = SendBatch::new();
        batch.push(x.local_addr().unwrap(), &[1; 1200]);
        batch.push(y.local_addr().unwrap(), &[2; 20]);
        batch.push(x.local_addr().unwrap(), &[]);
        batch.push(y.local_addr().unwrap(), &[3; 9000]);
        assert_eq!(batch.flush(&source), 0);
        let at_x = receive(&x, 2);
        let at_y = receive(&y, 2);
        let src = source.local_addr().unwrap();
        assert_eq!(at_x, vec![(src, vec![1; 1200]), (src, Vec::new())]);
        assert_eq!(at_y, vec![(src, vec![2; 20]), (src, vec![3; 9000])]);
    }

    #[test]
    fn nothing_queued_is_zero_and_a_refused_datagram_is_dropped_alone() {
        let (source, sink) = (bound(), bound());
        assert_eq!(RecvBatch::new().recv(&sink, false).unwrap(), 0);
        let mut batch = SendBatch::new();
        // Port 0 cannot be sent to: the kernel refuses that one datagram.
        batch.push("127.0.0.1:0".parse().unwrap(), b"refused");
        batch.push(sink.local_addr().unwrap(), b"delivered");
        assert_eq!(batch.flush(&source), 1);
        let got = receive(&sink, 1);
        assert_eq!(
            got,
            vec![(source.local_addr().unwrap(), b"delivered".to_vec())]
        );
    }

    #[test]
    fn one_batch_serves_ipv4_and_ipv6_sockets_with_whole_addresses() {
        let (v4, v6) = (bound(), bound_v6());
        let (from4, from6) = (bound(), bound_v6());
        let mut batch = RecvBatch::new();
        for round in 0..3u8 {
            from4.send_to(&[round], v4.local_addr().unwrap()).unwrap();
            from6.send_to(&[round], v6.local_addr().unwrap()).unwrap();
            for (socket, from) in [(&v4, &from4), (&v6, &from6)] {
                let ipv6 = socket.local_addr().unwrap().is_ipv6();
                let deadline = Instant::now() + Duration::from_secs(5);
                while batch.recv(socket, ipv6).unwrap() == 0 {
                    assert!(Instant::now() < deadline, "nothing received");
                }
                let (source, data) = batch.get(0).unwrap();
                assert_eq!((source, data), (from.local_addr().unwrap(), &[round][..]));
            }
        }
    }
}
