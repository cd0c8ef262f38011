//! Device rows and the signed device list, written on one connection so
//! that binding a paired device (list + device + pairing) and unbinding
//! (list + device rows + their keys and envelopes) commit together or not
//! at all.

use sqlx::AnyConnection;

use super::{StoreError, db_seq, ms, to_json, unique_violation};
use crate::crypto::SignedDeviceList;
use crate::ids::{AccountId, DeviceId};
use crate::store::types::DeviceRecord;

pub(super) async fn put_list(
    conn: &mut AnyConnection,
    list: &SignedDeviceList,
    expected: Option<u64>,
) -> Result<(), StoreError> {
    let version = db_seq(list.list.version)?;
    let account = list.list.account_id.to_string();
    let body = to_json(list)?;
    let r = match expected {
        None => sqlx::query(
            "INSERT INTO device_lists (account_id, version, signed_json) VALUES ($1, $2, $3)",
        )
        .bind(account)
        .bind(version)
        .bind(body)
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                StoreError::Conflict
            } else {
                e.into()
            }
        })?,
        Some(old) => {
            sqlx::query(
                "UPDATE device_lists SET version = $2, signed_json = $3 \
                 WHERE account_id = $1 AND version = $4",
            )
            .bind(account)
            .bind(version)
            .bind(body)
            .bind(db_seq(old)?)
            .execute(&mut *conn)
            .await?
        }
    };
    if r.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

pub(super) async fn insert_device(
    conn: &mut AnyConnection,
    d: &DeviceRecord,
) -> Result<(), StoreError> {
    let r = sqlx::query(
        "INSERT INTO devices (id, account_id, curve25519, ed25519, name, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(d.keys.device_id.to_string())
    .bind(d.keys.account_id.to_string())
    .bind(d.keys.curve25519.clone())
    .bind(d.keys.ed25519.clone())
    .bind(d.name.clone())
    .bind(ms(d.created_at))
    .execute(&mut *conn)
    .await;
    match r {
        Err(e) if unique_violation(&e) => Err(StoreError::Conflict),
        r => r.map(|_| ()).map_err(Into::into),
    }
}

pub(super) async fn delete_device(
    conn: &mut AnyConnection,
    device: DeviceId,
) -> Result<(), StoreError> {
    let d = device.to_string();
    let gone = sqlx::query("DELETE FROM devices WHERE id = $1")
        .bind(d.clone())
        .execute(&mut *conn)
        .await?;
    if gone.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    for sql in [
        "DELETE FROM one_time_keys WHERE device_id = $1",
        "DELETE FROM fallback_keys WHERE device_id = $1",
        "DELETE FROM envelopes WHERE device_id = $1",
    ] {
        sqlx::query(sql).bind(d.clone()).execute(&mut *conn).await?;
    }
    Ok(())
}

pub(super) async fn mark_approved(
    conn: &mut AnyConnection,
    code: &str,
    account: AccountId,
) -> Result<(), StoreError> {
    let r =
        sqlx::query("UPDATE pairings SET account_id = $2 WHERE code = $1 AND account_id IS NULL")
            .bind(code.to_owned())
            .bind(account.to_string())
            .execute(&mut *conn)
            .await?;
    if r.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}
