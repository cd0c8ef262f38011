//! Conversions between [`MediaRecord`]s and the rows of the SQL index:
//! times as Unix milliseconds, token hashes as hex, states as text.

use std::time::{Duration, SystemTime};

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{IndexError, MediaRecord, MediaState, MultipartUpload};
use crate::storage::ObjectKey;

pub(super) fn backend(e: sqlx::Error) -> IndexError {
    IndexError::Backend(e.to_string())
}

pub(super) fn corrupt(what: &str) -> IndexError {
    IndexError::Backend(format!("corrupt index row: {what}"))
}

pub(super) fn ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(super) fn time(v: i64) -> Result<SystemTime, IndexError> {
    let v = u64::try_from(v).map_err(|_| corrupt("time"))?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_millis(v))
}

pub(super) fn db_u64(v: u64) -> Result<i64, IndexError> {
    i64::try_from(v).map_err(|_| IndexError::Backend("value out of range".into()))
}

pub(super) fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// The columns of a record that need converting.
struct MediaColumns {
    state: &'static str,
    deadline: Option<i64>,
    upload_id: Option<String>,
    part_size: Option<i64>,
    part_count: Option<i64>,
}

fn columns(r: &MediaRecord) -> Result<MediaColumns, IndexError> {
    let (state, deadline) = match r.state {
        MediaState::PendingUpload { deadline } => ("pending", Some(ms(deadline))),
        MediaState::Stored => ("stored", None),
        MediaState::Consumed => ("consumed", None),
    };
    let (upload_id, part_size, part_count) = match &r.multipart {
        Some(m) => (
            Some(m.upload_id.clone()),
            Some(db_u64(m.part_size)?),
            Some(i64::from(m.part_count)),
        ),
        None => (None, None, None),
    };
    Ok(MediaColumns {
        state,
        deadline,
        upload_id,
        part_size,
        part_count,
    })
}

pub(super) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds a record's twelve columns as `$1..$12`, key first.
pub(super) fn bind_record<'q>(
    query: AnyQuery<'q>,
    r: &MediaRecord,
) -> Result<AnyQuery<'q>, IndexError> {
    let c = columns(r)?;
    Ok(query
        .bind(r.key.as_str().to_owned())
        .bind(r.owner.clone())
        .bind(db_u64(r.size)?)
        .bind(r.content_type.clone())
        .bind(ms(r.created_at))
        .bind(ms(r.expires_at))
        .bind(c.state)
        .bind(c.deadline)
        .bind(i64::from(r.view_once))
        .bind(c.upload_id)
        .bind(c.part_size)
        .bind(c.part_count))
}

pub(super) fn record(row: &AnyRow) -> Result<MediaRecord, IndexError> {
    let get_i64 = |i: usize| row.try_get::<i64, _>(i).map_err(backend);
    let get_opt = |i: usize| row.try_get::<Option<i64>, _>(i).map_err(backend);
    let key: String = row.try_get(0).map_err(backend)?;
    let state: String = row.try_get(6).map_err(backend)?;
    let state = match state.as_str() {
        "pending" => MediaState::PendingUpload {
            deadline: time(get_opt(7)?.ok_or_else(|| corrupt("deadline"))?)?,
        },
        "stored" => MediaState::Stored,
        "consumed" => MediaState::Consumed,
        _ => return Err(corrupt("state")),
    };
    let upload_id: Option<String> = row.try_get(9).map_err(backend)?;
    let multipart = match (upload_id, get_opt(10)?, get_opt(11)?) {
        (Some(upload_id), Some(size), Some(count)) => Some(MultipartUpload {
            upload_id,
            part_size: u64::try_from(size).map_err(|_| corrupt("part size"))?,
            part_count: u16::try_from(count).map_err(|_| corrupt("part count"))?,
        }),
        (None, _, _) => None,
        _ => return Err(corrupt("multipart")),
    };
    Ok(MediaRecord {
        key: ObjectKey::new(key).map_err(|_| corrupt("key"))?,
        owner: row.try_get(1).map_err(backend)?,
        size: u64::try_from(get_i64(2)?).map_err(|_| corrupt("size"))?,
        content_type: row.try_get(3).map_err(backend)?,
        created_at: time(get_i64(4)?)?,
        expires_at: time(get_i64(5)?)?,
        state,
        view_once: get_i64(8)? != 0,
        multipart,
    })
}
