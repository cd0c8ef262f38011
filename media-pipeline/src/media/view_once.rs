//! View-once media: one single-use grant per recipient device; the object
//! is streamed through samtale (a presigned GET could be replayed until it
//! expires) and deleted once every grant is used, or when the grants or
//! the media expire (the sweeper).
//!
//! A grant is consumed when the download *starts*: a recipient whose
//! connection breaks mid-way does not get a second try (view-once wins over
//! retry). The object is deleted before the end of the stream is reported,
//! so when a client has seen the whole file it is already gone; a stream
//! dropped early deletes in a background task, and the sweeper catches what
//! that misses (the record is marked consumed first).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures_util::Stream;
use sha2::{Digest, Sha256};

use super::{MediaError, MediaStore};
use crate::index::{GrantRecord, GrantUse, MediaIndex, MediaState};
use crate::storage::{ByteStream, ObjectKey, Storage, StorageError};

/// A grant to hand to one recipient device (inside its E2EE message).
#[derive(Clone, PartialEq, Eq)]
pub struct ViewOnceGrant {
    /// The device it is for.
    pub device: String,
    /// The bearer token (256 random bits, base64url). Never log it.
    pub token: String,
    /// When it stops working.
    pub expires_at: SystemTime,
}

impl fmt::Debug for ViewOnceGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ViewOnceGrant")
            .field("device", &self.device)
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

type CleanupFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

struct Cleanup {
    storage: Arc<dyn Storage>,
    index: Arc<dyn MediaIndex>,
    key: ObjectKey,
}

impl Cleanup {
    fn run(self) -> CleanupFuture {
        Box::pin(async move {
            match self.storage.delete(&self.key).await {
                Ok(()) => {
                    if let Err(e) = self.index.remove_media(&self.key).await {
                        tracing::warn!(error = %e, "view-once: index clean-up failed; the sweeper retries");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "view-once: delete failed; the sweeper retries");
                }
            }
        })
    }
}

/// A view-once download in progress: stream it to the client. When this
/// was the last grant, the object is deleted before the stream ends.
pub struct ViewOnceDownload {
    /// Size, when known.
    pub size: Option<u64>,
    /// The declared content type.
    pub content_type: String,
    inner: ByteStream,
    cleanup: Option<Cleanup>,
    running: Option<CleanupFuture>,
}

impl fmt::Debug for ViewOnceDownload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ViewOnceDownload")
            .field("size", &self.size)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

impl Stream for ViewOnceDownload {
    type Item = Result<Bytes, StorageError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(running) = this.running.as_mut() {
            return match running.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.running = None;
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            };
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(None) => match this.cleanup.take() {
                Some(cleanup) => {
                    this.running = Some(cleanup.run());
                    // Poll the clean-up right away.
                    Pin::new(this).poll_next(cx)
                }
                None => Poll::Ready(None),
            },
            other => other,
        }
    }
}

impl Drop for ViewOnceDownload {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(cleanup.run());
        }
    }
}

impl MediaStore {
    /// Issues one single-use grant per device for the owner's stored
    /// view-once media. The media then expires no later than the grants.
    pub async fn issue_view_once_grants(
        &self,
        owner: &str,
        key: &ObjectKey,
        devices: &[String],
        now: SystemTime,
    ) -> Result<Vec<ViewOnceGrant>, MediaError> {
        let mut record = self.owned_record(owner, key).await?;
        if !record.view_once {
            return Err(MediaError::NotViewOnce);
        }
        match record.state {
            MediaState::Stored => {}
            MediaState::PendingUpload { .. } => return Err(MediaError::NotUploaded),
            MediaState::Consumed => return Err(MediaError::Gone),
        }
        let expires_at = (now + self.config.view_once_ttl).min(record.expires_at);
        let mut grants = Vec::with_capacity(devices.len());
        for device in devices {
            let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
            self.index
                .insert_grant(GrantRecord {
                    token_hash: token_hash(&token),
                    key: key.clone(),
                    device: device.clone(),
                    expires_at,
                    used: false,
                })
                .await?;
            grants.push(ViewOnceGrant {
                device: device.clone(),
                token,
                expires_at,
            });
        }
        record.expires_at = expires_at;
        self.index.update_media(record).await?;
        Ok(grants)
    }

    /// Uses a grant: the first use by its device streams the object; any
    /// later use is [`MediaError::Gone`].
    pub async fn redeem_view_once(
        &self,
        token: &str,
        device: &str,
        now: SystemTime,
    ) -> Result<ViewOnceDownload, MediaError> {
        let (key, remaining) = match self
            .index
            .use_grant(&token_hash(token), device, now)
            .await?
        {
            GrantUse::Unknown => return Err(MediaError::UnknownGrant),
            GrantUse::WrongDevice => return Err(MediaError::WrongDevice),
            GrantUse::Gone => return Err(MediaError::Gone),
            GrantUse::Granted { key, remaining } => (key, remaining),
        };
        let mut record = self.index.media(&key).await?.ok_or(MediaError::Gone)?;
        if record.expires_at <= now || record.state == MediaState::Consumed {
            return Err(MediaError::Gone);
        }
        let last = remaining == 0;
        if last {
            record.state = MediaState::Consumed;
            self.index.update_media(record.clone()).await?;
        }
        let body = match self.storage.get(&key).await {
            Ok(body) => body,
            Err(StorageError::NotFound) => return Err(MediaError::Gone),
            Err(e) => return Err(e.into()),
        };
        Ok(ViewOnceDownload {
            size: body.size,
            content_type: record.content_type,
            inner: body.stream,
            cleanup: last.then(|| Cleanup {
                storage: self.storage.clone(),
                index: self.index.clone(),
                key,
            }),
            running: None,
        })
    }
}
