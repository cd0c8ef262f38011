//! samtale-media: object storage and media processing for samtale.
//!
//! The pieces, each usable alone (the signaling server composes them):
//!
//! * [`storage`]: the [`Storage`](storage::Storage) trait with two backends,
//!   a local directory ([`LocalStorage`](storage::LocalStorage), served by
//!   samtale itself through HMAC-signed, expiring URLs) and S3-compatible
//!   storage ([`S3Storage`](storage::S3Storage), SigV4 presigned URLs made by
//!   `rusty-s3`).
//! * [`thumbnail`]: bounded, orientation-correct thumbnails of JPEG, PNG,
//!   WebP and GIF, re-encoded so no metadata (GPS!) survives.
//! * [`attachment`]: chunked AES-256-GCM for end-to-end-encrypted files; the
//!   server only ever stores the ciphertext.
//! * [`index`]: what was uploaded, by whom, until when, and the view-once
//!   grants: [`SqlIndex`](index::SqlIndex) (SQLite file or PostgreSQL,
//!   survives restarts) or [`MemoryIndex`](index::MemoryIndex).
//! * [`media`]: upload slots with size and quota limits,
//!   multipart (resumable) uploads of large files, view-once grants (one download per recipient device, then the object is
//!   deleted) and the TTL sweeper, all with injected time.
//! * [`serve`]: the response headers that make serving user uploads from
//!   samtale's own origin safe.

pub mod attachment;
pub mod clock;
pub mod index;
pub mod media;
pub mod serve;
pub mod storage;
pub mod thumbnail;

pub use clock::{Clock, ManualClock, SystemClock};
