//! [`SqlStore`]: the [`Store`] on sqlx's `Any` driver. One SQL text serves
//! SQLite and PostgreSQL (`$n` placeholders work in both; `RETURNING` needs
//! SQLite 3.35, which the bundled library has). Schemas differ only in type
//! names, so each backend has its own embedded migration directory.

use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};

use super::types::*;

mod batch;
mod devices;
use super::{Store, StoreError};
use crate::crypto::{KeyUpload, PairingOffer, SignedDeviceList, SignedOneTimeKey};
use crate::ids::{AccountId, ConversationId, DeviceId, ProfileId};
use crate::model::{Account, Profile};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// File name of the SQLite database inside the data directory.
pub const SQLITE_FILE: &str = "messaging.sqlite3";

/// Times a claim retries when a concurrent claim took the key it picked.
const CLAIM_RETRIES: usize = 8;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// The sqlx-backed store.
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// Group commit for message sends and acknowledgements.
    writes: batch::Batcher,
    /// Told about every commit of the writers.
    listener: batch::Listener,
}

impl std::fmt::Debug for SqlStore {
    // The pool's Debug would print the connection URL, password included.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(v: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(v).ok_or(StoreError::Corrupt("timestamp"))
}

fn id<T: FromStr>(s: &str, what: &'static str) -> Result<T, StoreError> {
    s.parse().map_err(|_| StoreError::Corrupt(what))
}

fn json<T: serde::de::DeserializeOwned>(s: &str, what: &'static str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|_| StoreError::Corrupt(what))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|_| StoreError::Corrupt("serialize"))
}

fn seq(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt("seq"))
}

fn db_seq(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::NotFound)
}

fn unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

impl SqlStore {
    /// Open (creating if needed) `messaging.sqlite3` in `data_dir`.
    pub async fn open_sqlite_dir(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join(SQLITE_FILE);
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Connect by URL (`sqlite://path?mode=rwc` or `postgres://…`) and run
    /// the embedded migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let max = match backend {
            // SQLite has one writer at a time; several connections only
            // make writers wait in SQLite's busy handler (sleeps of up to
            // 100 ms). One connection serialises in FIFO order instead, and
            // WAL keeps each statement short.
            Backend::Sqlite => 1,
            Backend::Postgres => 16,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .connect(url)
            .await?;
        if backend == Backend::Sqlite {
            // WAL with the default synchronous=FULL: durable at commit.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
        }
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        tracing::debug!(?backend, "messaging store open");
        let writers = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => 8,
        };
        let listener = batch::Listener::default();
        let writes = batch::Batcher::spawn(pool.clone(), writers, listener.clone());
        Ok(Self {
            listener,
            pool,
            backend,
            writes,
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Close the pool (waits for connections to return).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn members(&self, conv: ConversationId) -> Result<Vec<Member>, StoreError> {
        let rows = sqlx::query(
            "SELECT account_id, profile_id FROM conversation_members \
             WHERE conversation_id = $1 ORDER BY profile_id",
        )
        .bind(conv.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Member {
                    account_id: id(&r.try_get::<String, _>(0)?, "account id")?,
                    profile_id: id(&r.try_get::<String, _>(1)?, "profile id")?,
                })
            })
            .collect()
    }

    fn device_row(r: &AnyRow) -> Result<DeviceRecord, StoreError> {
        Ok(DeviceRecord {
            keys: crate::crypto::DeviceKeys {
                device_id: id(&r.try_get::<String, _>(0)?, "device id")?,
                account_id: id(&r.try_get::<String, _>(1)?, "account id")?,
                curve25519: r.try_get(2)?,
                ed25519: r.try_get(3)?,
            },
            name: r.try_get(4)?,
            created_at: time(r.try_get(5)?)?,
        })
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn create_account(&self, account: &Account) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("INSERT INTO accounts (id, created_at) VALUES ($1, $2)")
            .bind(account.id.to_string())
            .bind(ms(account.created_at))
            .execute(&mut *tx)
            .await;
        match r {
            Err(e) if unique_violation(&e) => return Err(StoreError::Conflict),
            r => r?,
        };
        for p in &account.profiles {
            sqlx::query("INSERT INTO profiles (id, account_id, profile_json) VALUES ($1, $2, $3)")
                .bind(p.id.to_string())
                .bind(account.id.to_string())
                .bind(to_json(p)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn account(&self, account_id: AccountId) -> Result<Account, StoreError> {
        let row = sqlx::query("SELECT created_at FROM accounts WHERE id = $1")
            .bind(account_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        let created_at = time(row.try_get(0)?)?;
        let rows =
            sqlx::query("SELECT profile_json FROM profiles WHERE account_id = $1 ORDER BY id")
                .bind(account_id.to_string())
                .fetch_all(&self.pool)
                .await?;
        let profiles = rows
            .iter()
            .map(|r| json::<Profile>(&r.try_get::<String, _>(0)?, "profile"))
            .collect::<Result<_, _>>()?;
        Ok(Account {
            id: account_id,
            created_at,
            profiles,
        })
    }

    async fn put_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO profiles (id, account_id, profile_json) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET profile_json = excluded.profile_json",
        )
        .bind(profile.id.to_string())
        .bind(profile.account_id.to_string())
        .bind(to_json(profile)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn add_device(&self, d: &DeviceRecord) -> Result<(), StoreError> {
        devices::insert_device(&mut *self.pool.acquire().await?, d).await
    }

    async fn device(&self, device: DeviceId) -> Result<DeviceRecord, StoreError> {
        let row = sqlx::query(
            "SELECT id, account_id, curve25519, ed25519, name, created_at FROM devices WHERE id = $1",
        )
        .bind(device.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        Self::device_row(&row)
    }

    async fn devices(&self, account: AccountId) -> Result<Vec<DeviceRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, account_id, curve25519, ed25519, name, created_at FROM devices \
             WHERE account_id = $1 ORDER BY id",
        )
        .bind(account.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::device_row).collect()
    }

    async fn remove_device(&self, device: DeviceId) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        devices::delete_device(&mut tx, device).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn device_list(
        &self,
        account: AccountId,
    ) -> Result<Option<SignedDeviceList>, StoreError> {
        let row = sqlx::query("SELECT signed_json FROM device_lists WHERE account_id = $1")
            .bind(account.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| json(&r.try_get::<String, _>(0)?, "device list"))
            .transpose()
    }

    async fn put_device_list(
        &self,
        list: &SignedDeviceList,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        devices::put_list(&mut *self.pool.acquire().await?, list, expected).await
    }

    async fn bind_paired_device(
        &self,
        list: &SignedDeviceList,
        expected: u64,
        device: &DeviceRecord,
        pairing_code: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        devices::put_list(&mut tx, list, Some(expected)).await?;
        devices::insert_device(&mut tx, device).await?;
        devices::mark_approved(&mut tx, pairing_code, device.keys.account_id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn unbind_devices(
        &self,
        list: &SignedDeviceList,
        expected: u64,
        removed: &[DeviceId],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        devices::put_list(&mut tx, list, Some(expected)).await?;
        for d in removed {
            match devices::delete_device(&mut tx, *d).await {
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn upload_keys(&self, device: DeviceId, upload: &KeyUpload) -> Result<u64, StoreError> {
        let d = device.to_string();
        let mut tx = self.pool.begin().await?;
        for k in &upload.one_time_keys {
            sqlx::query(
                "INSERT INTO one_time_keys (device_id, key_id, key_json) VALUES ($1, $2, $3) \
                 ON CONFLICT (device_id, key_id) DO NOTHING",
            )
            .bind(d.clone())
            .bind(k.key_id.clone())
            .bind(to_json(k)?)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(f) = &upload.fallback {
            sqlx::query(
                "INSERT INTO fallback_keys (device_id, key_json) VALUES ($1, $2) \
                 ON CONFLICT (device_id) DO UPDATE SET key_json = excluded.key_json",
            )
            .bind(d.clone())
            .bind(to_json(f)?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.one_time_key_count(device).await
    }

    async fn one_time_key_count(&self, device: DeviceId) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM one_time_keys WHERE device_id = $1")
            .bind(device.to_string())
            .fetch_one(&self.pool)
            .await?;
        seq(row.try_get(0)?)
    }

    async fn claim_key(&self, device: DeviceId) -> Result<SignedOneTimeKey, StoreError> {
        let d = device.to_string();
        for _ in 0..CLAIM_RETRIES {
            let row = sqlx::query(
                "DELETE FROM one_time_keys WHERE device_id = $1 AND key_id = \
                 (SELECT key_id FROM one_time_keys WHERE device_id = $1 ORDER BY key_id LIMIT 1) \
                 RETURNING key_json",
            )
            .bind(d.clone())
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                return json(&row.try_get::<String, _>(0)?, "one-time key");
            }
            // Nothing deleted: either none left, or a concurrent claim took
            // the one we picked (PostgreSQL); look again in the latter case.
            if self.one_time_key_count(device).await? == 0 {
                break;
            }
        }
        let row = sqlx::query("SELECT key_json FROM fallback_keys WHERE device_id = $1")
            .bind(d)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        json(&row.try_get::<String, _>(0)?, "fallback key")
    }

    async fn put_pairing(
        &self,
        code: &str,
        offer: &PairingOffer,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let r =
            sqlx::query("INSERT INTO pairings (code, offer_json, expires_at) VALUES ($1, $2, $3)")
                .bind(code.to_owned())
                .bind(to_json(offer)?)
                .bind(ms(expires_at))
                .execute(&self.pool)
                .await;
        match r {
            Err(e) if unique_violation(&e) => Err(StoreError::Conflict),
            r => r.map(|_| ()).map_err(Into::into),
        }
    }

    async fn pairing(&self, code: &str) -> Result<PairingRecord, StoreError> {
        let row =
            sqlx::query("SELECT offer_json, expires_at, account_id FROM pairings WHERE code = $1")
                .bind(code.to_owned())
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
        let approved: Option<String> = row.try_get(2)?;
        Ok(PairingRecord {
            offer: json(&row.try_get::<String, _>(0)?, "pairing offer")?,
            expires_at: time(row.try_get(1)?)?,
            approved_into: approved.map(|a| id(&a, "account id")).transpose()?,
        })
    }

    async fn approve_pairing(&self, code: &str, account: AccountId) -> Result<(), StoreError> {
        devices::mark_approved(&mut *self.pool.acquire().await?, code, account).await
    }

    async fn delete_pairing(&self, code: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pairings WHERE code = $1")
            .bind(code.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_conversation(&self, c: &Conversation) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "INSERT INTO conversations (id, kind, created_at, next_seq) VALUES ($1, $2, $3, 0)",
        )
        .bind(c.id.to_string())
        .bind(c.kind.as_str())
        .bind(ms(c.created_at))
        .execute(&mut *tx)
        .await;
        match r {
            Err(e) if unique_violation(&e) => return Err(StoreError::Conflict),
            r => r?,
        };
        for m in &c.members {
            sqlx::query(
                "INSERT INTO conversation_members (conversation_id, profile_id, account_id) \
                 VALUES ($1, $2, $3) ON CONFLICT (conversation_id, profile_id) DO NOTHING",
            )
            .bind(c.id.to_string())
            .bind(m.profile_id.to_string())
            .bind(m.account_id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn conversation(&self, conv: ConversationId) -> Result<Conversation, StoreError> {
        let row = sqlx::query("SELECT kind, created_at FROM conversations WHERE id = $1")
            .bind(conv.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        let kind = ConversationKind::parse(&row.try_get::<String, _>(0)?)
            .ok_or(StoreError::Corrupt("conversation kind"))?;
        Ok(Conversation {
            id: conv,
            kind,
            created_at: time(row.try_get(1)?)?,
            members: self.members(conv).await?,
        })
    }

    async fn conversations_for_profile(
        &self,
        profile: ProfileId,
    ) -> Result<Vec<Conversation>, StoreError> {
        let rows = sqlx::query(
            "SELECT conversation_id FROM conversation_members WHERE profile_id = $1 \
             ORDER BY conversation_id",
        )
        .bind(profile.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(
                self.conversation(id(&r.try_get::<String, _>(0)?, "conversation id")?)
                    .await?,
            );
        }
        Ok(out)
    }

    async fn add_member(&self, conv: ConversationId, m: Member) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO conversation_members (conversation_id, profile_id, account_id) \
             VALUES ($1, $2, $3) ON CONFLICT (conversation_id, profile_id) DO NOTHING",
        )
        .bind(conv.to_string())
        .bind(m.profile_id.to_string())
        .bind(m.account_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove_member(
        &self,
        conv: ConversationId,
        profile: ProfileId,
    ) -> Result<(), StoreError> {
        let r = sqlx::query(
            "DELETE FROM conversation_members WHERE conversation_id = $1 AND profile_id = $2",
        )
        .bind(conv.to_string())
        .bind(profile.to_string())
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn put_contact(&self, c: &Contact) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO contacts (owner_profile, contact_profile, contact_account, display_name) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (owner_profile, contact_profile) \
             DO UPDATE SET display_name = excluded.display_name",
        )
        .bind(c.owner_profile.to_string())
        .bind(c.contact_profile.to_string())
        .bind(c.contact_account.to_string())
        .bind(c.display_name.clone())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn contacts(&self, owner: ProfileId) -> Result<Vec<Contact>, StoreError> {
        let rows = sqlx::query(
            "SELECT contact_profile, contact_account, display_name FROM contacts \
             WHERE owner_profile = $1 ORDER BY contact_profile",
        )
        .bind(owner.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Contact {
                    owner_profile: owner,
                    contact_profile: id(&r.try_get::<String, _>(0)?, "profile id")?,
                    contact_account: id(&r.try_get::<String, _>(1)?, "account id")?,
                    display_name: r.try_get(2)?,
                })
            })
            .collect()
    }

    fn on_commit(&self, listener: CommitListener) -> bool {
        self.listener.set(listener).is_ok()
    }

    async fn enqueue(&self, m: &NewMessage) -> Result<Enqueued, StoreError> {
        self.writes.enqueue(m).await
    }

    async fn pending(
        &self,
        device: DeviceId,
        profile: Option<ProfileId>,
        limit: u32,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        macro_rules! cols {
            () => {
                "SELECT device_id, profile_id, conversation_id, seq, sender_device, \
                 payload, created_at FROM envelopes WHERE device_id = $1"
            };
        }
        let rows = match profile {
            None => {
                sqlx::query(concat!(cols!(), " ORDER BY conversation_id, seq LIMIT $2"))
                    .bind(device.to_string())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(p) => {
                sqlx::query(concat!(
                    cols!(),
                    " AND profile_id = $2 ORDER BY conversation_id, seq LIMIT $3"
                ))
                .bind(device.to_string())
                .bind(p.to_string())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(StoredEnvelope {
                    device_id: id(&r.try_get::<String, _>(0)?, "device id")?,
                    profile_id: id(&r.try_get::<String, _>(1)?, "profile id")?,
                    conversation_id: id(&r.try_get::<String, _>(2)?, "conversation id")?,
                    seq: seq(r.try_get(3)?)?,
                    sender_device: id(&r.try_get::<String, _>(4)?, "device id")?,
                    payload: r.try_get(5)?,
                    created_at: time(r.try_get(6)?)?,
                })
            })
            .collect()
    }

    async fn ack(
        &self,
        device: DeviceId,
        conversation: ConversationId,
        s: u64,
    ) -> Result<bool, StoreError> {
        self.writes.ack(device, conversation, s).await
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let now = ms(now);
        let mut tx = self.pool.begin().await?;
        let env = sqlx::query("DELETE FROM envelopes WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        for sql in [
            "DELETE FROM messages WHERE expires_at <= $1",
            "DELETE FROM pairings WHERE expires_at <= $1",
        ] {
            sqlx::query(sql).bind(now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(env.rows_affected())
    }

    async fn envelope_count(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM envelopes")
            .fetch_one(&self.pool)
            .await?;
        seq(row.try_get(0)?)
    }
}
