//! The same store suite against a real PostgreSQL server, started in a temp
//! dir on a free loopback port for this test (skipped when `pg_ctl` and
//! `initdb` are missing, unless `SAMTALE_REQUIRE_PG=1`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::pg::PgCluster;
use common::suite;
use samtale_messaging::store::{Backend, SqlStore};

#[tokio::test]
async fn postgres_passes_the_store_suite() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let store = SqlStore::connect(&cluster.url()).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    assert_eq!(format!("{store:?}"), "SqlStore { backend: Postgres, .. }");
    suite::all(&store).await;
    // Migrations are idempotent across reconnects.
    store.close().await;
    let again = SqlStore::connect(&cluster.url()).await.unwrap();
    suite::pairing(&again).await;
    again.close().await;
}
