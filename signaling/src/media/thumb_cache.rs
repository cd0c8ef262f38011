//! Server-side thumbnails made once: a bounded in-memory cache and a bound
//! on how many are made at once.
//!
//! * The cache holds finished thumbnails by (media, width, height, format),
//!   least recently used out first, up to `media.thumbnail_cache_bytes`
//!   (default 64 MiB; 0 turns it off). A thumbnail larger than an eighth of
//!   that is not kept.
//! * The route checks the media's index record before it looks here, so
//!   deleted or expired media never answer from the cache; an entry also
//!   lives at most [`ENTRY_TTL`], so a deleted photo's thumbnail does not
//!   linger in memory either.
//! * Making one fetches the whole original (up to the thumbnailer's input
//!   limit) and decodes it: at most one job per CPU runs, the rest queue
//!   (and find the thumbnail cached if an equal job made it meanwhile) for
//!   up to [`JOB_WAIT`]. A job's turn ([`ThumbnailCache::job`]) is owned,
//!   so it goes with the decoding thread: a client that hangs up does not
//!   free it before the decode ends.
//!
//! Time is passed in, so tests drive it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use samtale_media::thumbnail::OutputFormat;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a request waits for its turn to make a thumbnail.
pub const JOB_WAIT: Duration = Duration::from_secs(10);
/// How long a cached thumbnail lives at most.
pub const ENTRY_TTL: Duration = Duration::from_secs(600);
/// Bookkeeping counted per entry on top of its bytes.
const ENTRY_OVERHEAD: usize = 128;

/// What a thumbnail is of and how it was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ThumbKey {
    /// The media's storage key.
    pub media: String,
    /// Largest width.
    pub width: u32,
    /// Largest height.
    pub height: u32,
    /// Encoding.
    pub format: OutputFormat,
}

impl ThumbKey {
    fn cost(&self, bytes: &Bytes) -> usize {
        bytes.len() + self.media.len() + ENTRY_OVERHEAD
    }
}

#[derive(Debug)]
struct Entry {
    bytes: Bytes,
    made: Instant,
    /// Position in the use order.
    stamp: u64,
}

#[derive(Debug, Default)]
struct Lru {
    entries: HashMap<ThumbKey, Entry>,
    /// Use order: the smallest stamp was used longest ago.
    order: BTreeMap<u64, ThumbKey>,
    next_stamp: u64,
    used: usize,
}

impl Lru {
    fn remove(&mut self, key: &ThumbKey) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&entry.stamp);
            self.used -= key.cost(&entry.bytes);
        }
    }

    fn stamp(&mut self) -> u64 {
        self.next_stamp += 1;
        self.next_stamp
    }
}

/// Finished thumbnails and the job bound. See the module docs.
#[derive(Debug)]
pub struct ThumbnailCache {
    lru: Mutex<Lru>,
    capacity: usize,
    jobs: Arc<Semaphore>,
}

impl ThumbnailCache {
    /// A cache of up to `capacity` bytes (0: nothing is kept), with
    /// `parallel_jobs` thumbnails made at once (at least one).
    pub fn new(capacity: usize, parallel_jobs: usize) -> Self {
        ThumbnailCache {
            lru: Mutex::new(Lru::default()),
            capacity,
            jobs: Arc::new(Semaphore::new(parallel_jobs.max(1))),
        }
    }

    fn lru(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached thumbnail, if one younger than [`ENTRY_TTL`] is held; it
    /// becomes the most recently used.
    pub fn get(&self, key: &ThumbKey, now: Instant) -> Option<Bytes> {
        let mut lru = self.lru();
        let made = lru.entries.get(key)?.made;
        if now.saturating_duration_since(made) >= ENTRY_TTL {
            lru.remove(key);
            return None;
        }
        let stamp = lru.stamp();
        let entry = lru.entries.get_mut(key)?;
        let old = std::mem::replace(&mut entry.stamp, stamp);
        let bytes = entry.bytes.clone();
        lru.order.remove(&old);
        lru.order.insert(stamp, key.clone());
        Some(bytes)
    }

    /// Keeps `bytes` as the thumbnail for `key`, made at `now`, pushing out
    /// the least recently used (and anything past [`ENTRY_TTL`]) to make
    /// room. Returns whether it was kept.
    pub fn insert(&self, key: ThumbKey, bytes: Bytes, now: Instant) -> bool {
        let cost = key.cost(&bytes);
        if cost > self.capacity / 8 {
            return false;
        }
        let mut lru = self.lru();
        lru.remove(&key);
        let stale: Vec<ThumbKey> = lru
            .entries
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.made) >= ENTRY_TTL)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &stale {
            lru.remove(key);
        }
        while lru.used + cost > self.capacity {
            let Some(oldest) = lru.order.first_key_value().map(|(_, k)| k.clone()) else {
                break;
            };
            lru.remove(&oldest);
        }
        let stamp = lru.stamp();
        lru.order.insert(stamp, key.clone());
        lru.entries.insert(
            key,
            Entry {
                bytes,
                made: now,
                stamp,
            },
        );
        lru.used += cost;
        true
    }

    /// Bytes held, bookkeeping included.
    pub fn used_bytes(&self) -> usize {
        self.lru().used
    }

    /// A turn to make a thumbnail, held until dropped; `None` after
    /// [`JOB_WAIT`] (too many are being made).
    pub async fn job(&self) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(JOB_WAIT, self.jobs.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(media: &str, width: u32) -> ThumbKey {
        ThumbKey {
            media: media.into(),
            width,
            height: width,
            format: OutputFormat::WebP,
        }
    }

    fn bytes(n: usize) -> Bytes {
        Bytes::from(vec![7u8; n])
    }

    #[test]
    fn a_thumbnail_is_found_by_all_of_its_key() {
        let cache = ThumbnailCache::new(1 << 20, 1);
        let now = Instant::now();
        assert!(cache.insert(key("a", 160), bytes(1000), now));
        assert_eq!(cache.get(&key("a", 160), now), Some(bytes(1000)));
        assert_eq!(cache.get(&key("a", 320), now), None);
        assert_eq!(cache.get(&key("b", 160), now), None);
        let jpeg = ThumbKey {
            format: OutputFormat::Jpeg { quality: 82 },
            ..key("a", 160)
        };
        assert_eq!(cache.get(&jpeg, now), None);
    }

    #[test]
    fn the_least_recently_used_goes_first_and_the_bound_holds() {
        // Room for exactly eight entries of 1000 bytes (each costs
        // 1000 + 2 + 128: the bytes, the media key, bookkeeping).
        let cost = 1000 + 2 + ENTRY_OVERHEAD;
        let capacity = 8 * cost;
        let cache = ThumbnailCache::new(capacity, 1);
        let now = Instant::now();
        let media = |i: usize| format!("m{i}");
        for i in 0..8 {
            assert!(cache.insert(key(&media(i), 1), bytes(1000), now));
        }
        assert_eq!(cache.used_bytes(), capacity);
        // m0 is used again, so m1 is now the least recently used.
        assert!(cache.get(&key("m0", 1), now).is_some());
        assert!(cache.insert(key("m8", 1), bytes(1000), now));
        assert_eq!(cache.get(&key("m1", 1), now), None);
        assert!(cache.get(&key("m0", 1), now).is_some());
        assert!(cache.insert(key("m9", 1), bytes(1000), now));
        assert_eq!(cache.get(&key("m2", 1), now), None);
        for i in [0, 3, 4, 5, 6, 7, 8, 9] {
            assert!(cache.get(&key(&media(i), 1), now).is_some(), "m{i}");
        }
        assert_eq!(cache.used_bytes(), capacity);
    }

    #[test]
    fn entries_expire_and_oversized_ones_are_not_kept() {
        let cache = ThumbnailCache::new(80_000, 1);
        let t0 = Instant::now();
        assert!(cache.insert(key("a", 1), bytes(1000), t0));
        assert!(
            cache
                .get(&key("a", 1), t0 + ENTRY_TTL - Duration::from_millis(1))
                .is_some()
        );
        assert_eq!(cache.get(&key("a", 1), t0 + ENTRY_TTL), None);
        assert_eq!(cache.used_bytes(), 0);
        // An eighth of the capacity at most.
        assert!(!cache.insert(key("big", 1), bytes(10_000), t0));
        assert_eq!(cache.get(&key("big", 1), t0), None);
        let off = ThumbnailCache::new(0, 1);
        assert!(!off.insert(key("a", 1), bytes(1), t0));
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_take_turns_and_a_long_wait_gives_up() {
        let cache = ThumbnailCache::new(0, 2);
        let first = cache.job().await.unwrap();
        let _second = cache.job().await.unwrap();
        // Both turns taken: the third waits JOB_WAIT (virtual time) and
        // gives up.
        let started = tokio::time::Instant::now();
        assert!(cache.job().await.is_none());
        assert_eq!(started.elapsed(), JOB_WAIT);
        // A turn handed back is the next one's.
        drop(first);
        assert!(cache.job().await.is_some());
    }

    #[test]
    fn replacing_an_entry_counts_its_bytes_once() {
        let cache = ThumbnailCache::new(1 << 20, 1);
        let now = Instant::now();
        cache.insert(key("a", 1), bytes(1000), now);
        cache.insert(key("a", 1), bytes(500), now);
        assert_eq!(cache.used_bytes(), 500 + 1 + ENTRY_OVERHEAD);
        assert_eq!(cache.get(&key("a", 1), now), Some(bytes(500)));
    }
}
