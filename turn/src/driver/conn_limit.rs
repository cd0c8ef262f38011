//! The cap on open client TCP/TLS connections (`max_client_connections`).
//! Each accepted connection takes a [`ConnectionSlot`], which goes with it
//! through the TLS handshake, to its core thread and into its splice if it
//! becomes a data connection, and frees its place when dropped, however
//! the connection ends. At the cap a new connection is closed at once, so
//! its client tries another server instead of waiting in the accept queue.
//!
//! Also here: the process's open-file limit, raised at start-up, since
//! every allocation holds a relay socket and every connection a socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Open client connections and the cap on them; clones share the count.
#[derive(Clone, Debug)]
pub(super) struct ConnectionLimit {
    inner: Arc<Counts>,
}

#[derive(Debug)]
struct Counts {
    open: AtomicUsize,
    refused: AtomicU64,
    max: usize,
}

/// One open connection's place under the cap.
#[derive(Debug)]
pub(super) struct ConnectionSlot(Arc<Counts>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnectionLimit {
    pub(super) fn new(max: usize) -> Self {
        ConnectionLimit {
            inner: Arc::new(Counts {
                open: AtomicUsize::new(0),
                refused: AtomicU64::new(0),
                max,
            }),
        }
    }

    /// A place for a new connection, or `None` (counted as refused) at the
    /// cap.
    pub(super) fn try_take(&self) -> Option<ConnectionSlot> {
        let max = self.inner.max;
        let taken = self
            .inner
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if taken {
            Some(ConnectionSlot(self.inner.clone()))
        } else {
            self.inner.refused.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// Connections open now.
    pub(super) fn open(&self) -> usize {
        self.inner.open.load(Ordering::Acquire)
    }

    /// Connections closed at once for the cap since start.
    pub(super) fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
impl ConnectionSlot {
    /// A slot of a limit of its own, for tests that adopt connections
    /// directly.
    pub(super) fn untracked() -> Self {
        ConnectionLimit::new(1)
            .try_take()
            .unwrap_or_else(|| unreachable!())
    }
}

/// Raises the soft limit on open files to the hard limit (systemd gives
/// services 1024 soft and 524 288 hard): 10 000 allocations need 10 000
/// relay sockets. Returns the limit now in force, `None` where it cannot
/// be read.
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            let raised = Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                return limit.maximum;
            }
        }
        limit.current
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Whether an accept error means the process or system ran out of
/// something (files, buffers, memory): the listener stays readable, so
/// accepting again at once would spin.
pub(super) fn out_of_resources(error: &std::io::Error) -> bool {
    const ENOMEM: i32 = 12;
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    #[cfg(target_os = "linux")]
    const ENOBUFS: i32 = 105;
    #[cfg(not(target_os = "linux"))]
    const ENOBUFS: i32 = 55;
    matches!(
        error.raw_os_error(),
        Some(ENOMEM | ENFILE | EMFILE | ENOBUFS)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn places_come_back_when_slots_drop_and_refusals_are_counted() {
        let limit = ConnectionLimit::new(2);
        let a = limit.try_take().unwrap();
        let b = limit.clone().try_take().unwrap();
        assert!(limit.try_take().is_none());
        assert_eq!((limit.open(), limit.refused()), (2, 1));
        drop(a);
        assert_eq!(limit.open(), 1);
        let c = limit.try_take().unwrap();
        assert!(limit.try_take().is_none());
        drop((b, c));
        assert_eq!((limit.open(), limit.refused()), (0, 2));
    }

    #[test]
    fn resource_errors_are_told_from_others() {
        let err = std::io::Error::from_raw_os_error;
        assert!(out_of_resources(&err(24)));
        assert!(out_of_resources(&err(23)));
        assert!(!out_of_resources(&err(103))); // ECONNABORTED
        assert!(!out_of_resources(&std::io::Error::other("x")));
    }
}
