//! Group commit for the hot writes: accepting a message (`enqueue`) and a
//! device's acknowledgement (`ack`). Requests queue to one writer task,
//! which runs everything queued in one transaction (each request inside its
//! own savepoint, so one failing request does not undo the others), commits
//! once and only then answers each caller. Durable-before-acknowledged
//! holds for every request; under load many share one fsync instead of
//! queueing for their own.

use sqlx::{AnyConnection, AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::{StoreError, db_seq, ms, seq};
use crate::ids::{ConversationId, DeviceId};
use crate::store::types::{Enqueued, NewMessage};

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
    pub(super) fn spawn(pool: AnyPool, writers: usize) -> Self {
        let writers = (0..writers.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
                tokio::spawn(run(pool.clone(), rx));
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

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Write>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        commit_batch(&pool, batch).await;
    }
}

enum Done {
    Enqueued(
        Result<Enqueued, StoreError>,
        oneshot::Sender<Result<Enqueued, StoreError>>,
    ),
    Acked(
        Result<bool, StoreError>,
        oneshot::Sender<Result<bool, StoreError>>,
    ),
}

async fn commit_batch(pool: &AnyPool, batch: Vec<Write>) {
    let mut tx = match pool.begin().await {
        Ok(tx) => tx,
        Err(e) => {
            let msg = e.to_string();
            for w in batch {
                let err = || StoreError::Database(sqlx::Error::Protocol(msg.clone()));
                match w {
                    Write::Enqueue(_, r) => drop(r.send(Err(err()))),
                    Write::Ack(_, _, _, r) => drop(r.send(Err(err()))),
                }
            }
            return;
        }
    };
    let mut done = Vec::with_capacity(batch.len());
    for w in batch {
        match w {
            Write::Enqueue(m, reply) => {
                let r = async {
                    begin_request(&mut tx).await?;
                    let r = enqueue_in(&mut tx, &m).await;
                    end_request(&mut tx, !matches!(r, Ok((_, false)))).await?;
                    r.map(|(e, _)| e)
                }
                .await;
                done.push(Done::Enqueued(r, reply));
            }
            Write::Ack(device, conv, s, reply) => {
                let r = async {
                    begin_request(&mut tx).await?;
                    let r = ack_in(&mut tx, device, conv, s).await;
                    end_request(&mut tx, r.is_err()).await?;
                    r
                }
                .await;
                done.push(Done::Acked(r, reply));
            }
        }
    }
    // Answer only after the commit: nothing is acknowledged before it is
    // durable.
    let committed = tx.commit().await.map_err(|e| e.to_string());
    for d in done {
        let fail = |m: &String| StoreError::Database(sqlx::Error::Protocol(m.clone()));
        match (d, &committed) {
            (Done::Enqueued(r, reply), Ok(())) => drop(reply.send(r)),
            (Done::Acked(r, reply), Ok(())) => drop(reply.send(r)),
            (Done::Enqueued(_, reply), Err(m)) => drop(reply.send(Err(fail(m)))),
            (Done::Acked(_, reply), Err(m)) => drop(reply.send(Err(fail(m)))),
        }
    }
}

async fn begin_request(conn: &mut AnyConnection) -> Result<(), StoreError> {
    sqlx::query("SAVEPOINT write_request")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Close a request's savepoint, undoing its changes when `undo` (it failed,
/// or it was a duplicate send).
async fn end_request(conn: &mut AnyConnection, undo: bool) -> Result<(), StoreError> {
    if undo {
        sqlx::query("ROLLBACK TO SAVEPOINT write_request")
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("RELEASE SAVEPOINT write_request")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Store a message; returns whether its changes must be undone (a
/// duplicate of an accepted message).
async fn enqueue_in(
    conn: &mut AnyConnection,
    m: &NewMessage,
) -> Result<(Enqueued, bool), StoreError> {
    let conv = m.conversation_id.to_string();
    let sender = m.sender_device.to_string();
    let now = ms(m.now);
    let expires = ms(m.now + m.ttl);
    // Take the write lock first (the conversation row), so SQLite never
    // has to upgrade a read transaction.
    let next = sqlx::query(
        "UPDATE conversations SET next_seq = next_seq + 1 WHERE id = $1 RETURNING next_seq",
    )
    .bind(conv.clone())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound)?;
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
        return Ok((first, true));
    }
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
    }
    let stored = Enqueued {
        seq: seq(n)?,
        duplicate: false,
    };
    Ok((stored, false))
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
