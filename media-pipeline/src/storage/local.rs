//! The local-directory backend: objects are files under
//! `<root>/objects/<key>`, their content types in `<root>/types/<key>`, and
//! uploads are written to `<root>/tmp/` first and renamed into place, so a
//! reader never sees half an object.
//!
//! Multipart uploads live in `<root>/multipart/<upload id>/`: a `meta` file
//! (key and content type, one per line) and one file per part named
//! `part-<number>.<etag>`, where the ETag is the first 128 bits of the
//! part's SHA-256 in hex. Completion concatenates the named parts into a
//! temporary file, renames it into place and removes the directory; abort
//! just removes the directory.
//!
//! samtale serves these files itself: [`Storage::presign_put`] and
//! [`Storage::presign_get`] return URLs under the configured base URL,
//! signed by a [`LocalSigner`]; the HTTP layer checks them with
//! [`LocalSigner::verify`] and then calls [`LocalStorage::accept_upload`] or
//! [`Storage::get`]. Serve downloads with [`crate::serve::user_object_headers`].

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use sha2::{Digest, Sha256};

use super::local_sign::is_local_upload_id;
use super::{
    MultipartUploadInfo, ObjectBody, ObjectInfo, ObjectKey, PresignedMethod, PresignedRequest,
    Storage, StorageError, VerifiedRequest, check_content_type, check_expiry, check_part_number,
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
        for dir in ["objects", "types", "tmp", "multipart"] {
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

    /// Stores the body of a verified presigned part upload (exactly the
    /// signed length) and returns the part's ETag, unquoted.
    /// [`StorageError::NotFound`] if the upload does not exist (any more).
    pub async fn accept_part<S, E>(
        &self,
        verified: &VerifiedRequest,
        body: S,
    ) -> Result<String, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Display,
    {
        let (Some(part), Some(len)) = (&verified.part, verified.content_length) else {
            return Err(StorageError::Config("not a verified part upload".into()));
        };
        let dir = self.upload_dir(&verified.key, &part.upload_id).await?;
        let (tmp, etag) = self.write_tmp(len, body).await?;
        let name = part_name(part.part_number, &etag);
        let placed = async {
            tokio::fs::rename(&tmp, dir.join(&name)).await?;
            // A part uploaded again replaces the earlier one.
            let stem = format!("part-{:05}.", part.part_number);
            let mut entries = tokio::fs::read_dir(&dir).await?;
            while let Some(entry) = entries.next_entry().await? {
                let other = entry.file_name();
                let other = other.to_string_lossy();
                if other.starts_with(&stem) && other != name {
                    let _ = tokio::fs::remove_file(entry.path()).await;
                }
            }
            Ok::<_, std::io::Error>(())
        }
        .await;
        if let Err(e) = placed {
            let _ = tokio::fs::remove_file(&tmp).await;
            // The upload was aborted or completed meanwhile.
            return Err(not_found_as(e));
        }
        Ok(etag)
    }

    fn multipart_dir(&self, upload_id: &str) -> Result<PathBuf, StorageError> {
        if !is_local_upload_id(upload_id) {
            return Err(StorageError::InvalidUploadId);
        }
        Ok(self.root.join("multipart").join(upload_id))
    }

    /// The directory of an upload for `key`, with its content type.
    async fn upload_meta(
        &self,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<(PathBuf, String), StorageError> {
        let dir = self.multipart_dir(upload_id)?;
        let meta = tokio::fs::read_to_string(dir.join("meta"))
            .await
            .map_err(not_found_as)?;
        match meta.split_once('\n') {
            Some((k, ct)) if k == key.as_str() => Ok((dir, ct.to_owned())),
            _ => Err(StorageError::NotFound),
        }
    }

    async fn upload_dir(&self, key: &ObjectKey, upload_id: &str) -> Result<PathBuf, StorageError> {
        Ok(self.upload_meta(key, upload_id).await?.0)
    }

    fn tmp_path(&self) -> PathBuf {
        self.root
            .join("tmp")
            .join(format!("{:032x}", rand::random::<u128>()))
    }

    /// Writes exactly `declared` bytes of `body` to a fresh temporary file;
    /// returns it and the ETag of its content.
    async fn write_tmp<S, E>(
        &self,
        declared: u64,
        body: S,
    ) -> Result<(PathBuf, String), StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Display,
    {
        let tmp = self.tmp_path();
        let result = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            let mut hash = Sha256::new();
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
                hash.update(&chunk);
                file.write_all(&chunk).await?;
            }
            if written != declared {
                return Err(StorageError::LengthMismatch {
                    declared,
                    actual: written,
                });
            }
            file.sync_all().await?;
            Ok(etag_of(hash))
        }
        .await;
        match result {
            Ok(etag) => Ok((tmp, etag)),
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    /// Moves a finished temporary file into place under `key`.
    async fn place(
        &self,
        tmp: &Path,
        key: &ObjectKey,
        content_type: &str,
    ) -> Result<(), StorageError> {
        let obj = self.object_path(key);
        let ty = self.type_path(key);
        create_parent(&obj).await?;
        create_parent(&ty).await?;
        tokio::fs::write(&ty, content_type.as_bytes()).await?;
        tokio::fs::rename(tmp, &obj).await?;
        Ok(())
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
        let (tmp, _) = self.write_tmp(declared, body).await?;
        let result = self.place(&tmp, key, content_type).await;
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

/// `part-<number>.<etag>`.
fn part_name(part_number: u16, etag: &str) -> String {
    format!("part-{part_number:05}.{etag}")
}

/// The first 128 bits of the SHA-256, in hex (the shape of an S3 ETag).
fn etag_of(hash: Sha256) -> String {
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An ETag as a client reports it (quotes optional), if it has our shape.
fn normalise_etag(etag: &str) -> Option<&str> {
    let e = etag.trim().trim_matches('"');
    (e.len() == 32 && e.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(e)
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

    async fn create_multipart(
        &self,
        key: &ObjectKey,
        content_type: &str,
    ) -> Result<String, StorageError> {
        check_content_type(content_type)?;
        let upload_id = format!("{:032x}", rand::random::<u128>());
        let dir = self.multipart_dir(&upload_id)?;
        tokio::fs::create_dir(&dir).await?;
        // Written whole to a temporary file first: an upload is only known
        // once its meta file exists.
        let tmp = self.tmp_path();
        tokio::fs::write(&tmp, format!("{key}\n{content_type}")).await?;
        tokio::fs::rename(&tmp, dir.join("meta")).await?;
        Ok(upload_id)
    }

    fn presign_upload_part(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        part_number: u16,
        content_length: u64,
        expiry: Duration,
    ) -> Result<PresignedRequest, StorageError> {
        if !is_local_upload_id(upload_id) {
            return Err(StorageError::InvalidUploadId);
        }
        check_part_number(part_number)?;
        check_expiry(expiry)?;
        let expires_at = self.clock.now() + expiry;
        let query = self
            .signer
            .part_query(key, upload_id, part_number, content_length, expires_at);
        Ok(PresignedRequest {
            method: PresignedMethod::Put,
            url: format!("{}/{}?{}", self.base_url, key, query),
            headers: vec![("content-length".to_owned(), content_length.to_string())],
            expires_at,
        })
    }

    async fn complete_multipart(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        etags: &[String],
    ) -> Result<(), StorageError> {
        if etags.is_empty() || etags.len() > usize::from(super::MAX_PARTS) {
            return Err(StorageError::InvalidPart);
        }
        let (dir, content_type) = self.upload_meta(key, upload_id).await?;
        let mut parts = Vec::with_capacity(etags.len());
        for (i, etag) in etags.iter().enumerate() {
            let etag = normalise_etag(etag).ok_or(StorageError::InvalidPart)?;
            let number = u16::try_from(i + 1).map_err(|_| StorageError::InvalidPart)?;
            parts.push(dir.join(part_name(number, etag)));
        }
        let tmp = self.tmp_path();
        let result = async {
            let mut out = tokio::fs::File::create(&tmp).await?;
            for part in &parts {
                let mut file = match tokio::fs::File::open(part).await {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(StorageError::InvalidPart);
                    }
                    Err(e) => return Err(e.into()),
                };
                tokio::io::copy(&mut file, &mut out).await?;
            }
            out.sync_all().await?;
            drop(out);
            self.place(&tmp, key, &content_type).await
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
            return result;
        }
        tokio::fs::remove_dir_all(&dir).await?;
        Ok(())
    }

    async fn abort_multipart(&self, key: &ObjectKey, upload_id: &str) -> Result<(), StorageError> {
        let dir = match self.upload_meta(key, upload_id).await {
            Ok((dir, _)) => dir,
            Err(StorageError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn stale_multipart_uploads(
        &self,
        prefix: &str,
        started_before: SystemTime,
    ) -> Result<Vec<MultipartUploadInfo>, StorageError> {
        let mut out = Vec::new();
        let mut entries = tokio::fs::read_dir(self.root.join("multipart")).await?;
        while let Some(entry) = entries.next_entry().await? {
            let Some(upload_id) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !is_local_upload_id(&upload_id) {
                continue;
            }
            let meta_path = entry.path().join("meta");
            // Being created, finished or aborted meanwhile: skip it.
            let (Ok(meta), Ok(text)) = (
                tokio::fs::metadata(&meta_path).await,
                tokio::fs::read_to_string(&meta_path).await,
            ) else {
                continue;
            };
            let Some(key) = text
                .split_once('\n')
                .and_then(|(k, _)| ObjectKey::new(k).ok())
            else {
                continue;
            };
            let started = meta.modified().ok();
            if key.as_str().starts_with(prefix) && started.is_none_or(|t| t < started_before) {
                out.push(MultipartUploadInfo {
                    key,
                    upload_id,
                    started,
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}
