//! A short-lived cache of bound devices, so that authenticating every
//! request and addressing every envelope does not read the same rows again.
//!
//! Only devices read from the store are cached, for [`DEVICE_CACHE_TTL`];
//! unbinding through this service evicts them at once. Another node
//! unbinding a device (several signaling nodes on one PostgreSQL) takes
//! effect here within the TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ids::DeviceId;
use crate::store::DeviceRecord;

/// How long a cached device is trusted.
pub const DEVICE_CACHE_TTL: Duration = Duration::from_secs(10);
/// Most cached devices; the cache starts over past this.
const MAX_ENTRIES: usize = 100_000;

/// Cached device records.
#[derive(Debug, Default)]
pub struct DeviceCache {
    entries: Mutex<HashMap<DeviceId, (DeviceRecord, Instant)>>,
}

impl DeviceCache {
    /// A fresh entry for `id`.
    pub fn get(&self, id: DeviceId) -> Option<DeviceRecord> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&id)
            .filter(|(_, at)| at.elapsed() < DEVICE_CACHE_TTL)
            .map(|(d, _)| d.clone())
    }

    /// Remember a record just read from the store.
    pub fn put(&self, record: &DeviceRecord) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(record.keys.device_id, (record.clone(), Instant::now()));
    }

    /// Forget devices (unbound).
    pub fn evict(&self, ids: &[DeviceId]) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            map.remove(id);
        }
    }
}
