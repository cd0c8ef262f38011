//! A whole batch in a few multi-row statements instead of several per
//! request: one lookup of earlier sends, one counter update per chunk of
//! conversations, one insert per chunk of messages and of envelopes, one
//! delete per chunk of acknowledgements. Row counts are cut into chunks of
//! a few fixed sizes, so a connection prepares a handful of statement
//! shapes rather than one per batch size.
//!
//! The outcome of every request is what running the requests one by one,
//! in batch order, would give. The one case that would need a request's
//! outcome before the counters are updated (a client message id reused in
//! another conversation within the batch, whose first conversation does not
//! exist) returns [`Fallback`], and the caller runs the batch one by one.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::ops::Range;

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::super::{StoreError, db_seq, ms, seq, time};
use crate::ids::{ConversationId, DeviceId};
use crate::store::types::{Enqueued, NewMessage, OutEnvelope, StoredEnvelope};

/// Statement sizes, in rows; every batch is cut into these.
const CHUNK_SIZES: [usize; 4] = [64, 16, 4, 1];

/// This batch needs the one-by-one path.
#[derive(Debug)]
pub(super) struct Fallback;

/// A request's outcome, and the envelopes it made durable.
pub(super) type Sent = (Result<Enqueued, StoreError>, Vec<StoredEnvelope>);

/// `0..n` cut into ranges of the sizes in [`CHUNK_SIZES`], biggest first.
fn chunks(n: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    for size in CHUNK_SIZES {
        while n - at >= size {
            out.push(at..at + size);
            at += size;
        }
    }
    out
}

/// `($1, $2), ($3, $4)`: `rows` rows of `width` placeholders.
fn values(rows: usize, width: usize) -> String {
    let mut s = String::new();
    for r in 0..rows {
        s.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..width {
            let sep = if c == 0 { "" } else { ", " };
            let _ = write!(s, "{sep}${}", r * width + c + 1);
        }
        s.push(')');
    }
    s
}

/// `(a = $1 AND b = $2) OR (a = $3 AND b = $4)`: an index lookup per row
/// on both backends (a row-value `IN (VALUES …)` may become a scan).
fn any_of(columns: &[&str], rows: usize) -> String {
    let mut s = String::new();
    for r in 0..rows {
        s.push_str(if r == 0 { "(" } else { " OR (" });
        for (c, col) in columns.iter().enumerate() {
            let sep = if c == 0 { "" } else { " AND " };
            let _ = write!(s, "{sep}{col} = ${}", r * columns.len() + c + 1);
        }
        s.push(')');
    }
    s
}

/// Earlier sends among these (sender device, client message id) keys:
/// their conversation and sequence.
async fn earlier_sends(
    conn: &mut AnyConnection,
    keys: &[(String, String)],
) -> Result<HashMap<(String, String), (String, i64)>, StoreError> {
    let mut found = HashMap::new();
    for r in chunks(keys.len()) {
        let sql = format!(
            "SELECT sender_device, client_msg_id, conversation_id, seq FROM messages WHERE {}",
            any_of(&["sender_device", "client_msg_id"], r.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (sender, id) in &keys[r] {
            q = q.bind(sender.clone()).bind(id.clone());
        }
        for row in q.fetch_all(&mut *conn).await? {
            found.insert(
                (row.try_get(0)?, row.try_get(1)?),
                (row.try_get(2)?, row.try_get(3)?),
            );
        }
    }
    Ok(found)
}

/// Move each conversation's counter on by its count; the new last
/// sequence of every conversation that exists.
async fn reserve(
    conn: &mut AnyConnection,
    counts: &[(String, i64)],
) -> Result<HashMap<String, i64>, StoreError> {
    let mut last = HashMap::new();
    for r in chunks(counts.len()) {
        let mut cases = String::new();
        let mut ids = String::new();
        for i in 0..r.len() {
            let _ = write!(cases, " WHEN ${} THEN ${}", 2 * i + 1, 2 * i + 2);
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(ids, "{sep}${}", 2 * i + 1);
        }
        let sql = format!(
            "UPDATE conversations SET next_seq = next_seq + CASE id{cases} END \
             WHERE id IN ({ids}) RETURNING id, next_seq"
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (id, n) in &counts[r] {
            q = q.bind(id.clone()).bind(*n);
        }
        for row in q.fetch_all(&mut *conn).await? {
            last.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    Ok(last)
}

/// What the walk over the batch decided for one send.
enum Plan {
    Done(Result<Enqueued, StoreError>),
    /// First accepted send of its key.
    New,
    /// A resend of the new send at this index (same conversation).
    ResendOf(usize),
    /// Same key as the new send at this index, another conversation.
    ConflictWith(usize),
}

/// Accept a batch of sends, in order.
pub(super) async fn enqueue_all(
    conn: &mut AnyConnection,
    sends: &[&NewMessage],
) -> Result<Result<Vec<Sent>, Fallback>, StoreError> {
    let keys: Vec<(String, String)> = sends
        .iter()
        .map(|m| (m.sender_device.to_string(), m.client_msg_id.clone()))
        .collect();
    let unique: Vec<(String, String)> = keys
        .iter()
        .collect::<HashSet<_>>()
        .into_iter()
        .cloned()
        .collect();
    let before = earlier_sends(conn, &unique).await?;
    let mut first_new: HashMap<&(String, String), usize> = HashMap::new();
    let mut counts: Vec<(String, i64)> = Vec::new();
    let mut count_at: HashMap<ConversationId, usize> = HashMap::new();
    let mut plans = Vec::with_capacity(sends.len());
    for (i, (m, key)) in sends.iter().zip(&keys).enumerate() {
        let conv = m.conversation_id.to_string();
        plans.push(if let Some((c, s)) = before.get(key) {
            Plan::Done(if *c == conv {
                seq(*s).map(|seq| Enqueued {
                    seq,
                    duplicate: true,
                })
            } else {
                Err(StoreError::Conflict)
            })
        } else if let Some(&j) = first_new.get(key) {
            if sends[j].conversation_id == m.conversation_id {
                Plan::ResendOf(j)
            } else {
                Plan::ConflictWith(j)
            }
        } else {
            first_new.insert(key, i);
            let at = *count_at.entry(m.conversation_id).or_insert_with(|| {
                counts.push((conv, 0));
                counts.len() - 1
            });
            counts[at].1 += 1;
            Plan::New
        });
    }
    // Lock conversation rows in one order (by id) whatever the batch order,
    // so writers of several nodes never wait on each other in a cycle.
    let mut by_id = counts.clone();
    by_id.sort_unstable();
    let last = reserve(conn, &by_id).await?;
    let mut next: HashMap<String, i64> = counts
        .iter()
        .filter_map(|(c, n)| last.get(c).map(|l| (c.clone(), l - n + 1)))
        .collect();

    let mut results: Vec<Sent> = Vec::with_capacity(sends.len());
    let mut messages = Vec::new();
    for (i, plan) in plans.into_iter().enumerate() {
        let m = sends[i];
        results.push(match plan {
            Plan::Done(r) => (r, Vec::new()),
            Plan::New => match next.get_mut(&m.conversation_id.to_string()) {
                None => (Err(StoreError::NotFound), Vec::new()),
                Some(n) => {
                    let s = *n;
                    *n += 1;
                    messages.push((m, s));
                    let done = Enqueued {
                        seq: seq(s)?,
                        duplicate: false,
                    };
                    (Ok(done), stored_envelopes(m, done.seq)?)
                }
            },
            Plan::ResendOf(j) => match &results[j].0 {
                Ok(e) => (
                    Ok(Enqueued {
                        seq: e.seq,
                        duplicate: true,
                    }),
                    Vec::new(),
                ),
                Err(_) => (Err(StoreError::NotFound), Vec::new()),
            },
            Plan::ConflictWith(j) => match &results[j].0 {
                Ok(_) => (Err(StoreError::Conflict), Vec::new()),
                // One by one, this send would be the first of its key.
                Err(_) => return Ok(Err(Fallback)),
            },
        });
    }
    insert_messages(conn, &messages).await?;
    let envelopes: Vec<(&NewMessage, i64, &OutEnvelope)> = messages
        .iter()
        .flat_map(|&(m, s)| m.envelopes.iter().map(move |e| (m, s, e)))
        .collect();
    insert_envelopes(conn, &envelopes).await?;
    Ok(Ok(results))
}

fn stored_envelopes(m: &NewMessage, s: u64) -> Result<Vec<StoredEnvelope>, StoreError> {
    let created_at = time(ms(m.now))?;
    Ok(m.envelopes
        .iter()
        .map(|e| StoredEnvelope {
            device_id: e.device_id,
            profile_id: e.profile_id,
            conversation_id: m.conversation_id,
            seq: s,
            sender_device: m.sender_device,
            payload: e.payload.clone(),
            created_at,
        })
        .collect())
}

async fn insert_messages(
    conn: &mut AnyConnection,
    rows: &[(&NewMessage, i64)],
) -> Result<(), StoreError> {
    for r in chunks(rows.len()) {
        let sql = format!(
            "INSERT INTO messages (conversation_id, seq, sender_device, client_msg_id, \
             created_at, expires_at) VALUES {}",
            values(r.len(), 6)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (m, s) in &rows[r] {
            q = q
                .bind(m.conversation_id.to_string())
                .bind(*s)
                .bind(m.sender_device.to_string())
                .bind(m.client_msg_id.clone())
                .bind(ms(m.now))
                .bind(ms(m.now + m.ttl));
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_envelopes(
    conn: &mut AnyConnection,
    rows: &[(&NewMessage, i64, &OutEnvelope)],
) -> Result<(), StoreError> {
    for r in chunks(rows.len()) {
        let sql = format!(
            "INSERT INTO envelopes (device_id, profile_id, conversation_id, seq, sender_device, \
             payload, created_at, expires_at) VALUES {}",
            values(r.len(), 8)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (m, s, e) in &rows[r] {
            q = q
                .bind(e.device_id.to_string())
                .bind(e.profile_id.to_string())
                .bind(m.conversation_id.to_string())
                .bind(*s)
                .bind(m.sender_device.to_string())
                .bind(e.payload.clone())
                .bind(ms(m.now))
                .bind(ms(m.now + m.ttl));
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Delete acknowledged envelopes; for each acknowledgement, in order,
/// whether it was pending (a repeat within the batch was not). A sequence
/// no envelope can have is that acknowledgement's own error.
pub(super) async fn ack_all(
    conn: &mut AnyConnection,
    acks: &[(DeviceId, ConversationId, u64)],
) -> Result<Vec<Result<bool, StoreError>>, StoreError> {
    let keys: Vec<Result<(String, String, i64), StoreError>> = acks
        .iter()
        .map(|(d, c, s)| Ok((d.to_string(), c.to_string(), db_seq(*s)?)))
        .collect();
    let unique: Vec<&(String, String, i64)> = keys
        .iter()
        .filter_map(|k| k.as_ref().ok())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut deleted: HashSet<(String, String, i64)> = HashSet::new();
    for r in chunks(unique.len()) {
        let sql = format!(
            "DELETE FROM envelopes WHERE {} RETURNING device_id, conversation_id, seq",
            any_of(&["device_id", "conversation_id", "seq"], r.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (d, c, s) in &unique[r] {
            q = q.bind(d.clone()).bind(c.clone()).bind(*s);
        }
        for row in q.fetch_all(&mut *conn).await? {
            deleted.insert((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
        }
    }
    Ok(keys
        .into_iter()
        .map(|k| k.map(|k| deleted.remove(&k)))
        .collect())
}
