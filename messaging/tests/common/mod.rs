//! Helpers shared by the integration tests: a throwaway PostgreSQL cluster
//! and the store behaviour suite run against every backend.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

pub mod pg;
pub mod suite;
