//! Short-lived caches of rows the hot path reads on every request: bound
//! devices (authenticating each request, addressing each envelope) and
//! conversations with their members (checking each send).
//!
//! Only what was read from the store is cached, for [`CACHE_TTL`]; changes
//! made through this service evict at once. A change made by another node
//! (several signaling nodes on one PostgreSQL) takes effect here within the
//! TTL.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a cached row is trusted.
pub const CACHE_TTL: Duration = Duration::from_secs(10);
/// Most cached rows per cache; the cache starts over past this.
const MAX_ENTRIES: usize = 100_000;

/// Rows by key, each with the time it was read.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A fresh entry for `key`.
    pub fn get(&self, key: &K) -> Option<V> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(v, _)| v.clone())
    }

    /// Remember a row just read from the store.
    pub fn put(&self, key: K, value: V) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, (value, Instant::now()));
    }

    /// Forget rows (changed or gone).
    pub fn evict<'a>(&self, keys: impl IntoIterator<Item = &'a K>)
    where
        K: 'a,
    {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            map.remove(k);
        }
    }
}
