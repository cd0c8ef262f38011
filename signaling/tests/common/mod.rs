#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bots;
pub mod browser;
pub mod media_http;
pub mod nats;
pub mod process;
pub mod s3s;
pub mod server;
