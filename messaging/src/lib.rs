//! samtale-messaging: the end-to-end-encrypted messaging core.
//!
//! Layers, bottom up:
//! - [`model`] and [`policy`]: one account with work/private/custom/secret
//!   profiles, each with a notification policy evaluated by a pure engine.
//! - [`crypto`]: devices (vodozemac accounts), signed keys and device
//!   lists, pairing, Olm 1:1 and Megolm group encryption.
//! - [`store`]: the `Store` trait on sqlx (SQLite file or PostgreSQL):
//!   accounts, devices, key directory, conversations, store-and-forward.
//! - [`service`]: `MessagingService`, the server API signaling exposes,
//!   with its serde request/response types and guest tokens.
//!
//! The server side keeps only public keys and ciphertext.
//!
//! Signaling (not wired yet) owns one [`service::MessagingService`] over a
//! [`store::SqlStore`] (`SqlStore::open_sqlite_dir(data_dir)` by default,
//! `SqlStore::connect(postgres_url)` to scale) and maps each service method
//! to an HTTP route or WebSocket frame, authenticating devices with
//! `MessagingService::verify_device_auth` over a random challenge, turning
//! `ServiceError::http_status` into the response status, and calling
//! `MessagingService::purge_expired` periodically.

pub mod client;
pub mod clock;
pub mod crypto;
pub mod ids;
pub mod model;
pub mod policy;
pub mod service;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::{AccountId, ConversationId, DeviceId, IdParseError, ProfileId};
