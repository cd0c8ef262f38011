//! samtale-media: object storage and media processing.
//!
//! It will own the storage trait (local directory by default, S3-compatible
//! storage with SigV4 presigned URLs to scale), thumbnails, view-once media and
//! the media TTL sweeper. Nothing is built yet.
