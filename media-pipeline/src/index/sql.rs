//! [`SqlIndex`]: the durable [`MediaIndex`] on sqlx's `Any` driver, a
//! SQLite file in the data directory by default, PostgreSQL for scale-out.
//! One SQL text serves both (`$n` placeholders, `BIGINT`/`TEXT` columns).
//!
//! Times are stored as milliseconds since the Unix epoch (sub-millisecond
//! precision is dropped), token hashes as lowercase hex. The schema is
//! created with `CREATE … IF NOT EXISTS` on open, in tables prefixed
//! `media_`, so the index can share a PostgreSQL database with the
//! messaging store (whose sqlx migration table it leaves alone).
//!
//! [`use_grant`](MediaIndex::use_grant) is one transaction that first
//! writes the grant row (SQLite: takes the write lock; PostgreSQL: locks the
//! row) and then the object's row, so two grants of one object used at the
//! same time are serialised and exactly one of them sees `remaining == 0`.

use std::path::Path;
use std::time::SystemTime;

use async_trait::async_trait;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

use super::sql_codec::{backend, bind_record, corrupt, hex, is_unique_violation, ms, record, time};
use super::{GrantRecord, GrantUse, IndexError, MediaIndex, MediaRecord};
use crate::storage::ObjectKey;

/// File name of the SQLite index inside the data directory.
pub const SQLITE_FILE: &str = "media.sqlite3";

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS media_objects (
        object_key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        size BIGINT NOT NULL,
        content_type TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        state TEXT NOT NULL,
        upload_deadline BIGINT,
        view_once BIGINT NOT NULL,
        multipart_upload_id TEXT,
        multipart_part_size BIGINT,
        multipart_part_count BIGINT
    )",
    "CREATE INDEX IF NOT EXISTS media_objects_owner ON media_objects (owner)",
    "CREATE TABLE IF NOT EXISTS media_grants (
        token_hash TEXT PRIMARY KEY,
        object_key TEXT NOT NULL,
        device TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        used BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS media_grants_object ON media_grants (object_key)",
];

/// The sqlx-backed index.
#[derive(Clone)]
pub struct SqlIndex {
    pool: AnyPool,
}

impl std::fmt::Debug for SqlIndex {
    // The pool's Debug would print the connection URL, password included.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlIndex").finish_non_exhaustive()
    }
}

impl SqlIndex {
    /// Opens (creating if needed) [`SQLITE_FILE`] in `data_dir`.
    pub async fn open_sqlite_dir(data_dir: &Path) -> Result<Self, IndexError> {
        let path = data_dir.join(SQLITE_FILE);
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Connects by URL (`sqlite://path?mode=rwc` or `postgres://…`) and
    /// creates the tables if needed.
    pub async fn connect(url: &str) -> Result<Self, IndexError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        // SQLite has one writer at a time: more connections would only make
        // writers wait in its busy handler; one serialises them in order.
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 1 } else { 16 })
            .connect(url)
            .await
            .map_err(backend)?;
        if sqlite {
            // WAL with the default synchronous=FULL: durable at commit.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await
                .map_err(backend)?;
        }
        for statement in SCHEMA {
            sqlx::query(*statement)
                .execute(&pool)
                .await
                .map_err(backend)?;
        }
        Ok(Self { pool })
    }

    /// Closes the pool (waits for connections to return).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl MediaIndex for SqlIndex {
    async fn insert_media(&self, r: MediaRecord) -> Result<(), IndexError> {
        let result = bind_record(
            sqlx::query(
                "INSERT INTO media_objects (object_key, owner, size, content_type, created_at, \
             expires_at, state, upload_deadline, view_once, multipart_upload_id, \
             multipart_part_size, multipart_part_count) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            ),
            &r,
        )?
        .execute(&self.pool)
        .await;
        match result {
            Err(e) if is_unique_violation(&e) => Err(IndexError::Duplicate),
            r => r.map(|_| ()).map_err(backend),
        }
    }

    async fn media(&self, key: &ObjectKey) -> Result<Option<MediaRecord>, IndexError> {
        let row = sqlx::query(
            "SELECT object_key, owner, size, content_type, created_at, expires_at, state, \
             upload_deadline, view_once, multipart_upload_id, multipart_part_size, \
             multipart_part_count FROM media_objects WHERE object_key = $1",
        )
        .bind(key.as_str().to_owned())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(record).transpose()
    }

    async fn update_media(&self, r: MediaRecord) -> Result<(), IndexError> {
        let done = bind_record(
            sqlx::query(
                "UPDATE media_objects SET owner = $2, size = $3, content_type = $4, \
             created_at = $5, expires_at = $6, state = $7, upload_deadline = $8, \
             view_once = $9, multipart_upload_id = $10, multipart_part_size = $11, \
             multipart_part_count = $12 WHERE object_key = $1",
            ),
            &r,
        )?
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(IndexError::NotFound);
        }
        Ok(())
    }

    async fn remove_media(&self, key: &ObjectKey) -> Result<(), IndexError> {
        sqlx::query("DELETE FROM media_objects WHERE object_key = $1")
            .bind(key.as_str().to_owned())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn bytes_held_by(&self, owner: &str) -> Result<u64, IndexError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM media_objects \
             WHERE owner = $1 AND state <> 'consumed'",
        )
        .bind(owner.to_owned())
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        let sum: i64 = row.try_get(0).map_err(backend)?;
        u64::try_from(sum).map_err(|_| corrupt("size sum"))
    }

    async fn due_for_sweep(&self, now: SystemTime) -> Result<Vec<MediaRecord>, IndexError> {
        let rows = sqlx::query(
            "SELECT object_key, owner, size, content_type, created_at, expires_at, state, \
             upload_deadline, view_once, multipart_upload_id, multipart_part_size, \
             multipart_part_count FROM media_objects \
             WHERE expires_at <= $1 OR state = 'consumed' \
             OR (state = 'pending' AND upload_deadline <= $1) ORDER BY object_key",
        )
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(record).collect()
    }

    async fn insert_grant(&self, g: GrantRecord) -> Result<(), IndexError> {
        let result = sqlx::query(
            "INSERT INTO media_grants (token_hash, object_key, device, expires_at, used) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hex(&g.token_hash))
        .bind(g.key.as_str().to_owned())
        .bind(g.device.clone())
        .bind(ms(g.expires_at))
        .bind(i64::from(g.used))
        .execute(&self.pool)
        .await;
        match result {
            Err(e) if is_unique_violation(&e) => Err(IndexError::Duplicate),
            r => r.map(|_| ()).map_err(backend),
        }
    }

    async fn use_grant(
        &self,
        token_hash: &[u8; 32],
        device: &str,
        now: SystemTime,
    ) -> Result<GrantUse, IndexError> {
        let hash = hex(token_hash);
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // A write first: SQLite takes its write lock, PostgreSQL the row's.
        sqlx::query("UPDATE media_grants SET used = used WHERE token_hash = $1")
            .bind(hash.clone())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let Some(row) = sqlx::query(
            "SELECT object_key, device, expires_at, used FROM media_grants WHERE token_hash = $1",
        )
        .bind(hash.clone())
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?
        else {
            return Ok(GrantUse::Unknown);
        };
        let key: String = row.try_get(0).map_err(backend)?;
        let owner_device: String = row.try_get(1).map_err(backend)?;
        let expires_at = time(row.try_get(2).map_err(backend)?)?;
        let used: i64 = row.try_get(3).map_err(backend)?;
        if owner_device != device {
            return Ok(GrantUse::WrongDevice);
        }
        if used != 0 || expires_at <= now {
            return Ok(GrantUse::Gone);
        }
        // Serialise the grants of one object (PostgreSQL row lock).
        sqlx::query("UPDATE media_objects SET state = state WHERE object_key = $1")
            .bind(key.clone())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("UPDATE media_grants SET used = 1 WHERE token_hash = $1")
            .bind(hash)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let row = sqlx::query(
            "SELECT COUNT(*) FROM media_grants \
             WHERE object_key = $1 AND used = 0 AND expires_at > $2",
        )
        .bind(key.clone())
        .bind(ms(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        let remaining: i64 = row.try_get(0).map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(GrantUse::Granted {
            key: ObjectKey::new(key).map_err(|_| corrupt("key"))?,
            remaining: usize::try_from(remaining).map_err(|_| corrupt("count"))?,
        })
    }

    async fn drop_expired_grants(&self, now: SystemTime) -> Result<usize, IndexError> {
        let done = sqlx::query("DELETE FROM media_grants WHERE expires_at <= $1")
            .bind(ms(now))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        usize::try_from(done.rows_affected()).map_err(|_| corrupt("count"))
    }
}
