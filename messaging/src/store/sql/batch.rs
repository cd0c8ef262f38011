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

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
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

/// Run one request in its own transaction (after a batch failed): the
/// batch statements with one row.
async fn run_alone(pool: &AnyPool, w: &Write) -> Outcome {
    let r = async {
        let mut tx = pool.begin().await?;
        let outcome = match w {
            Write::Enqueue(m, _) => match multi::enqueue_all(&mut tx, &[&**m]).await? {
                Ok(mut sent) => sent.pop().map(|(r, stored)| Outcome::Enqueued(r, stored)),
                // Only a second send in the same batch can need this.
                Err(multi::Fallback) => None,
            },
            Write::Ack(d, c, s, _) => multi::ack_all(&mut tx, &[(*d, *c, *s)])
                .await?
                .pop()
                .map(Outcome::Acked),
        };
        let outcome = outcome.ok_or_else(gone)?;
        // A refusal wrote nothing; committing it is harmless.
        tx.commit().await?;
        Ok::<_, StoreError>(outcome)
    }
    .await;
    r.unwrap_or_else(|e| match w {
        Write::Enqueue(..) => Outcome::Enqueued(Err(e), Vec::new()),
        Write::Ack(..) => Outcome::Acked(Err(e)),
    })
}

async fn commit_batch(pool: &AnyPool, batch: Vec<Write>, listener: &Listener) {
    let mut outcomes = match run_together(pool, &batch).await {
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
    let mut durable: Vec<StoredEnvelope> = Vec::new();
    for o in &mut outcomes {
        if let Outcome::Enqueued(_, stored) = o {
            durable.append(stored);
        }
    }
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
