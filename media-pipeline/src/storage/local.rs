//! The local-directory backend: objects are files under
//! `<root>/objects/<key>`, their content types in `<root>/types/<key>`, and
//! uploads are written to `<root>/tmp/` first and renamed into place, so a
//! reader never sees half an object.
//!
//! samtale serves these files itself: [`Storage::presign_put`] and
//! [`Storage::presign_get`] return URLs under the configured base URL,
//! signed by a [`LocalSigner`]; the HTTP layer checks them with
//! [`LocalSigner::verify`] and then calls [`LocalStorage::accept_upload`] or
//! [`Storage::get`]. Serve downloads with [`crate::serve::user_object_headers`].

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    ObjectBody, ObjectInfo, ObjectKey, PresignedMethod, PresignedRequest, Storage, StorageError,
    VerifiedRequest, check_content_type, check_expiry,
};
use crate::clock::Clock;
use crate::storage::LocalSigner;

const READ_CHUNK: usize = 64 * 1024;

/// Objects in a local directory, with samtale-signed URLs.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
    base_url: String,
    signer: LocalSigner,
    clock: Arc<dyn Clock>,
}

impl LocalStorage {
    /// Opens (creating if needed) the store under `root`. `base_url` is
    /// where the HTTP layer serves it, e.g. `/media` or
    /// `https://chat.example/media`; keys are appended after a `/`.
    pub async fn open(
        root: impl Into<PathBuf>,
        base_url: &str,
        signer: LocalSigner,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StorageError> {
        let root = root.into();
        for dir in ["objects", "types", "tmp"] {
            tokio::fs::create_dir_all(root.join(dir)).await?;
        }
        Ok(Self {
            root,
            base_url: base_url.trim_end_matches('/').to_owned(),
            signer,
            clock,
        })
    }

    /// The signer the HTTP layer verifies requests with.
    pub fn signer(&self) -> &LocalSigner {
        &self.signer
    }

    /// The clock this store signs with (and the HTTP layer verifies with).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn object_path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join("objects").join(key.as_str())
    }

    fn type_path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join("types").join(key.as_str())
    }

    /// Stores the body of a verified presigned PUT, refusing it unless it
    /// has exactly the signed length. Nothing is visible under the key until
    /// the whole body has arrived.
    pub async fn accept_upload<S, E>(
        &self,
        verified: &VerifiedRequest,
        body: S,
    ) -> Result<(), StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Display,
    {
        let (Some(ct), Some(len)) = (&verified.content_type, verified.content_length) else {
            return Err(StorageError::Config("not a verified upload".into()));
        };
        self.write_stream(&verified.key, ct, len, body).await
    }

    async fn write_stream<S, E>(
        &self,
        key: &ObjectKey,
        content_type: &str,
        declared: u64,
        body: S,
    ) -> Result<(), StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Display,
    {
        check_content_type(content_type)?;
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{:032x}", rand::random::<u128>()));
        let result = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            let mut written: u64 = 0;
            let mut body = std::pin::pin!(body);
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| StorageError::Transport(e.to_string()))?;
                written += chunk.len() as u64;
                if written > declared {
                    return Err(StorageError::LengthMismatch {
                        declared,
                        actual: written,
                    });
                }
                file.write_all(&chunk).await?;
            }
            if written != declared {
                return Err(StorageError::LengthMismatch {
                    declared,
                    actual: written,
                });
            }
            file.sync_all().await?;
            drop(file);
            let obj = self.object_path(key);
            let ty = self.type_path(key);
            create_parent(&obj).await?;
            create_parent(&ty).await?;
            tokio::fs::write(&ty, content_type.as_bytes()).await?;
            tokio::fs::rename(&tmp, &obj).await?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    fn presign(
        &self,
        method: PresignedMethod,
        key: &ObjectKey,
        upload: Option<(&str, u64)>,
        expiry: Duration,
    ) -> Result<PresignedRequest, StorageError> {
        check_expiry(expiry)?;
        let expires_at = self.clock.now() + expiry;
        let query = self.signer.query(method, key, upload, expires_at);
        let headers = upload
            .map(|(ct, len)| {
                vec![
                    ("content-type".to_owned(), ct.to_owned()),
                    ("content-length".to_owned(), len.to_string()),
                ]
            })
            .unwrap_or_default();
        Ok(PresignedRequest {
            method,
            url: format!("{}/{}?{}", self.base_url, key, query),
            headers,
            expires_at,
        })
    }
}

async fn create_parent(path: &Path) -> Result<(), StorageError> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    Ok(())
}

fn not_found_as(e: std::io::Error) -> StorageError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StorageError::NotFound
    } else {
        StorageError::Io(e)
    }
}

#[async_trait]
impl Storage for LocalStorage {
    async fn put(
        &self,
        key: &ObjectKey,
        content_type: &str,
        body: Bytes,
    ) -> Result<(), StorageError> {
        let len = body.len() as u64;
        let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
        self.write_stream(key, content_type, len, stream).await
    }

    async fn get(&self, key: &ObjectKey) -> Result<ObjectBody, StorageError> {
        let file = tokio::fs::File::open(self.object_path(key))
            .await
            .map_err(not_found_as)?;
        let meta = file.metadata().await?;
        if !meta.is_file() {
            return Err(StorageError::NotFound);
        }
        let size = meta.len();
        let content_type = tokio::fs::read_to_string(self.type_path(key)).await.ok();
        let stream = futures_util::stream::try_unfold(file, |mut file| async move {
            let mut buf = vec![0u8; READ_CHUNK];
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            buf.truncate(n);
            Ok(Some((Bytes::from(buf), file)))
        });
        Ok(ObjectBody {
            size: Some(size),
            content_type,
            stream: Box::pin(stream),
        })
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectInfo, StorageError> {
        let meta = tokio::fs::metadata(self.object_path(key))
            .await
            .map_err(not_found_as)?;
        if !meta.is_file() {
            return Err(StorageError::NotFound);
        }
        Ok(ObjectInfo {
            key: key.clone(),
            size: meta.len(),
            last_modified: meta.modified().ok(),
            content_type: tokio::fs::read_to_string(self.type_path(key)).await.ok(),
        })
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        for path in [self.object_path(key), self.type_path(key)] {
            match tokio::fs::remove_file(path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let base = self.root.join("objects");
        let mut out = Vec::new();
        let mut dirs = vec![(base, String::new())];
        while let Some((dir, rel)) = dirs.pop() {
            let mut entries = tokio::fs::read_dir(&dir).await?;
            while let Some(entry) = entries.next_entry().await? {
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let rel_name = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let meta = match entry.metadata().await {
                    Ok(meta) => meta,
                    // Deleted while listing.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                if meta.is_dir() {
                    dirs.push((entry.path(), rel_name));
                } else if rel_name.starts_with(prefix)
                    && let Ok(key) = ObjectKey::new(rel_name)
                {
                    out.push(ObjectInfo {
                        key,
                        size: meta.len(),
                        last_modified: meta.modified().ok(),
                        content_type: None,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn presign_put(
        &self,
        key: &ObjectKey,
        content_type: &str,
        content_length: u64,
        expiry: Duration,
    ) -> Result<PresignedRequest, StorageError> {
        check_content_type(content_type)?;
        self.presign(
            PresignedMethod::Put,
            key,
            Some((content_type, content_length)),
            expiry,
        )
    }

    fn presign_get(
        &self,
        key: &ObjectKey,
        expiry: Duration,
    ) -> Result<PresignedRequest, StorageError> {
        self.presign(PresignedMethod::Get, key, None, expiry)
    }
}
