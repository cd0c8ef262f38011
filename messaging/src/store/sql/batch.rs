//! Group commit for the hot writes: accepting a message (`enqueue`) and a
//! device's acknowledgement (`ack`). Requests queue to one writer task,
//! which runs everything queued in one transaction, commits once and only
//! then answers each caller; if the database fails a statement, each
//! request runs again in its own transaction, so one bad request never
//! undoes the others. Durable-before-acknowledged holds for every request;
//! under load many share one fsync instead of queueing for their own.
//!
//! After each commit the writer hands the envelopes it made durable to the
//! [`CommitListener`], in commit order, so live connections can push them
//! without reading them back.

use std::sync::{Arc, OnceLock};

use sqlx::{AnyConnection, AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::{StoreError, db_seq, ms, seq, time};
use crate::ids::{ConversationId, DeviceId};
use crate::store::types::{CommitListener, Enqueued, NewMessage, StoredEnvelope};

mod multi;

/// The listener, set once after the store opens.
pub(super) type Listener = Arc<OnceLock<CommitListener>>;

/// Most requests in one transaction.
const MAX_BATCH: usize = 256;

enum Write {
    Enqueue(
        Box<NewMessage>,
        oneshot::Sender<Result<Enqueued, StoreError>>,
    ),
    Ack(
        DeviceId,
        ConversationId,
        u64,
        oneshot::Sender<Result<bool, StoreError>>,
    ),
}

/// Handle to the writer tasks. A conversation always goes to the same
/// writer, so its requests stay in order and never wait on each other's row
/// locks; several writers only help a server database (SQLite has one
/// writer anyway).
#[derive(Debug, Clone)]
pub(super) struct Batcher {
    writers: Vec<mpsc::Sender<Write>>,
}

fn gone() -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}

impl Batcher {
    pub(super) fn spawn(pool: AnyPool, writers: usize, listener: Listener) -> Self {
        let writers = (0..writers.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
                tokio::spawn(run(pool.clone(), rx, listener.clone()));
                tx
            })
            .collect();
        Self { writers }
    }

    fn writer(&self, conversation: ConversationId) -> &mpsc::Sender<Write> {
        let n = self.writers.len();
        // ULIDs end in 80 random bits.
        let i = (conversation.ulid().random() % n as u128) as usize;
        &self.writers[i]
    }

    pub(super) async fn enqueue(&self, m: &NewMessage) -> Result<Enqueued, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer(m.conversation_id)
            .send(Write::Enqueue(Box::new(m.clone()), reply))
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    pub(super) async fn ack(
        &self,
        device: DeviceId,
        conversation: ConversationId,
        s: u64,
    ) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer(conversation)
            .send(Write::Ack(device, conversation, s, reply))
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Write>, listener: Listener) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        commit_batch(&pool, batch, &listener).await;
    }
}

/// What one request came to, before its answer is sent.
enum Outcome {
    Enqueued(Result<Enqueued, StoreError>, Vec<StoredEnvelope>),
    Acked(Result<bool, StoreError>),
}

/// Run the batch in one transaction, in a few multi-row statements (see
/// [`multi`]). A request's own refusal (not found, conflict, duplicate)
/// writes nothing and is part of its outcome. A database error aborts the
/// transaction; `Ok(None)` and errors send the batch down the one-by-one
/// path.
async fn run_together(pool: &AnyPool, batch: &[Write]) -> Result<Option<Vec<Outcome>>, StoreError> {
    let sends: Vec<&NewMessage> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Enqueue(m, _) => Some(&**m),
            Write::Ack(..) => None,
        })
        .collect();
    let acks: Vec<(DeviceId, ConversationId, u64)> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Ack(d, c, s, _) => Some((*d, *c, *s)),
            Write::Enqueue(..) => None,
        })
        .collect();
    let mut tx = pool.begin().await?;
    // Acknowledgements first: an envelope created in this batch has a
    // sequence nobody has been told yet, so an ack of it is a guess and
    // finds nothing, as if it had come first one by one.
    let acked = multi::ack_all(&mut tx, &acks).await?;
    let Ok(sent) = multi::enqueue_all(&mut tx, &sends).await? else {
        return Ok(None);
    };
    // Nothing is answered before the commit: acknowledged means durable.
    tx.commit().await?;
    let (mut sent, mut acked) = (sent.into_iter(), acked.into_iter());
    Ok(batch
        .iter()
        .map(|w| match w {
            Write::Enqueue(..) => sent.next().map(|(r, stored)| Outcome::Enqueued(r, stored)),
            Write::Ack(..) => acked.next().map(Outcome::Acked),
        })
        .collect())
}

/// Run one request in its own transaction (after a batch failed).
async fn run_alone(pool: &AnyPool, w: &Write) -> Outcome {
    let fail = |e: sqlx::Error| StoreError::Database(e);
    match w {
        Write::Enqueue(m, _) => {
            let r = async {
                let mut tx = pool.begin().await.map_err(fail)?;
                let r = enqueue_in(&mut tx, m).await?;
                tx.commit().await.map_err(fail)?;
                Ok::<_, StoreError>(r)
            }
            .await;
            match r {
                Ok((done, stored)) => Outcome::Enqueued(Ok(done), stored),
                Err(e) => Outcome::Enqueued(Err(e), Vec::new()),
            }
        }
        Write::Ack(device, conv, s, _) => Outcome::Acked(
            async {
                let mut tx = pool.begin().await.map_err(fail)?;
                let r = ack_in(&mut tx, *device, *conv, *s).await?;
                tx.commit().await.map_err(fail)?;
                Ok(r)
            }
            .await,
        ),
    }
}

async fn commit_batch(pool: &AnyPool, batch: Vec<Write>, listener: &Listener) {
    let outcomes = match run_together(pool, &batch).await {
        Ok(Some(o)) => o,
        r => {
            if let Err(e) = r {
                tracing::debug!(error = %e, requests = batch.len(), "write batch failed; one by one");
            }
            let mut o = Vec::with_capacity(batch.len());
            for w in &batch {
                o.push(run_alone(pool, w).await);
            }
            o
        }
    };
    let durable: Vec<StoredEnvelope> = outcomes
        .iter()
        .flat_map(|o| match o {
            Outcome::Enqueued(_, stored) => stored.as_slice(),
            Outcome::Acked(_) => &[],
        })
        .cloned()
        .collect();
    if let Some(l) = listener.get().filter(|_| !durable.is_empty()) {
        l(&durable);
    }
    for (w, o) in batch.into_iter().zip(outcomes) {
        match (w, o) {
            (Write::Enqueue(_, reply), Outcome::Enqueued(r, _)) => drop(reply.send(r)),
            (Write::Ack(_, _, _, reply), Outcome::Acked(r)) => drop(reply.send(r)),
            (Write::Enqueue(_, reply), Outcome::Acked(_)) => drop(reply.send(Err(gone()))),
            (Write::Ack(_, _, _, reply), Outcome::Enqueued(..)) => drop(reply.send(Err(gone()))),
        }
    }
}

/// Store a message and its envelopes. A resend of an accepted message
/// (same sender and client id) writes nothing and returns the first result;
/// so does every refusal, so the batch around it can go on.
async fn enqueue_in(
    conn: &mut AnyConnection,
    m: &NewMessage,
) -> Result<(Enqueued, Vec<StoredEnvelope>), StoreError> {
    let conv = m.conversation_id.to_string();
    let sender = m.sender_device.to_string();
    let now = ms(m.now);
    let expires = ms(m.now + m.ttl);
    let existing = sqlx::query(
        "SELECT conversation_id, seq FROM messages WHERE sender_device = $1 AND client_msg_id = $2",
    )
    .bind(sender.clone())
    .bind(m.client_msg_id.clone())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = existing {
        if row.try_get::<String, _>(0)? != conv {
            return Err(StoreError::Conflict);
        }
        let first = Enqueued {
            seq: seq(row.try_get(1)?)?,
            duplicate: true,
        };
        return Ok((first, Vec::new()));
    }
    let next = sqlx::query(
        "UPDATE conversations SET next_seq = next_seq + 1 WHERE id = $1 RETURNING next_seq",
    )
    .bind(conv.clone())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound)?;
    let n: i64 = next.try_get(0)?;
    sqlx::query(
        "INSERT INTO messages (conversation_id, seq, sender_device, client_msg_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(conv.clone())
    .bind(n)
    .bind(sender.clone())
    .bind(m.client_msg_id.clone())
    .bind(now)
    .bind(expires)
    .execute(&mut *conn)
    .await?;
    let created_at = time(now)?;
    let mut stored = Vec::with_capacity(m.envelopes.len());
    for e in &m.envelopes {
        sqlx::query(
            "INSERT INTO envelopes (device_id, profile_id, conversation_id, seq, sender_device, \
             payload, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(e.device_id.to_string())
        .bind(e.profile_id.to_string())
        .bind(conv.clone())
        .bind(n)
        .bind(sender.clone())
        .bind(e.payload.clone())
        .bind(now)
        .bind(expires)
        .execute(&mut *conn)
        .await?;
        stored.push(StoredEnvelope {
            device_id: e.device_id,
            profile_id: e.profile_id,
            conversation_id: m.conversation_id,
            seq: seq(n)?,
            sender_device: m.sender_device,
            payload: e.payload.clone(),
            created_at,
        });
    }
    let done = Enqueued {
        seq: seq(n)?,
        duplicate: false,
    };
    Ok((done, stored))
}

async fn ack_in(
    conn: &mut AnyConnection,
    device: DeviceId,
    conversation: ConversationId,
    s: u64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "DELETE FROM envelopes WHERE device_id = $1 AND conversation_id = $2 AND seq = $3",
    )
    .bind(device.to_string())
    .bind(conversation.to_string())
    .bind(db_seq(s)?)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}
