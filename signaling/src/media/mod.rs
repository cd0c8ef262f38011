//! Media in the samtale process: the `samtale-media` pipeline behind HTTP.
//!
//! [`MediaService::open`] builds the storage backend from `[media]` (a
//! local directory served by samtale through its own signed URLs, or an
//! S3 bucket with SigV4 presigned URLs), the durable index (SQLite in the
//! data directory by default) and the signing secret of local URLs (made
//! once, kept in the data directory with mode 0600, never logged).
//! [`routes`] has the JSON API an authenticated device uses, [`serve`] the
//! byte-carrying routes (local presigned PUT/GET, view-once streaming),
//! [`sweeper`] the timer that deletes what expired. See `docs/MEDIA.md`.

pub mod auth;
pub mod config;
mod error;
pub mod metrics;
pub mod routes;
pub mod serve;
pub mod sweeper;
pub mod thumb_cache;

use std::sync::{Arc, Mutex};

use anyhow::Context;
use samtale_media::SystemClock;
use samtale_media::index::{MediaIndex, SqlIndex};
use samtale_media::media::MediaStore;
use samtale_media::storage::{LocalSigner, LocalStorage, S3Config, S3Storage, Storage, UrlStyle};

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::MediaSettings;
pub use error::MediaApiError;

use crate::Config;
use config::{MediaBackend, S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV, S3UrlStyle};

/// Path under which samtale serves the local backend's objects.
pub const LOCAL_OBJECTS_PATH: &str = "/media/o";

/// File in the data directory holding the local URL-signing secret.
pub const LOCAL_SECRET_FILE: &str = "media-url.key";

/// The media pipeline as the HTTP layer uses it.
#[derive(Debug)]
pub struct MediaService {
    /// Slots, confirmations, downloads, grants, sweeping.
    pub store: MediaStore,
    /// The local backend, when it is the one in use (its routes are served).
    pub local: Option<Arc<LocalStorage>>,
    /// The `[media]` settings.
    pub settings: MediaSettings,
    /// Counters for `/metrics`.
    pub metrics: metrics::MediaMetrics,
    /// Server-side thumbnails already made, and the bound on making them.
    pub thumbnails: thumb_cache::ThumbnailCache,
    sweeper: Mutex<Option<JoinHandle<()>>>,
}

impl MediaService {
    /// Opens storage and index for `config`; local URLs are made under
    /// `public_url`.
    pub async fn open(config: &Config, public_url: &str) -> anyhow::Result<Self> {
        let settings = config.media.clone();
        let clock = Arc::new(SystemClock);
        let (storage, local): (Arc<dyn Storage>, _) = match settings.backend {
            MediaBackend::Local => {
                let secret = crate::secrets::load_or_create(&config.data_dir, LOCAL_SECRET_FILE)?;
                let base = format!("{public_url}{LOCAL_OBJECTS_PATH}");
                let dir = settings.local_dir(&config.data_dir);
                let local = Arc::new(
                    LocalStorage::open(&dir, &base, LocalSigner::new(secret), clock)
                        .await
                        .with_context(|| format!("opening media directory {}", dir.display()))?,
                );
                (local.clone(), Some(local))
            }
            MediaBackend::S3 => (Arc::new(s3_storage(&settings, clock)?), None),
        };
        let index: Arc<dyn MediaIndex> = Arc::new(match &settings.index_url {
            Some(url) => SqlIndex::connect(url)
                .await
                .context("connecting the media index")?,
            None => SqlIndex::open_sqlite_dir(&config.data_dir)
                .await
                .context("opening the media index")?,
        });
        let store = MediaStore::new(storage, index, settings.media_config());
        let thumbnails = thumb_cache::ThumbnailCache::new(
            usize::try_from(settings.thumbnail_cache_bytes).unwrap_or(usize::MAX),
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        );
        Ok(Self {
            store,
            local,
            settings,
            metrics: metrics::MediaMetrics::default(),
            thumbnails,
            sweeper: Mutex::new(None),
        })
    }

    /// Starts the sweeper timer (once); it stops when `shutdown` turns true.
    pub fn start_sweeper(self: &Arc<Self>, shutdown: watch::Receiver<bool>) {
        let mut slot = self.sweeper.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            let interval = self.settings.sweep_interval;
            *slot = Some(sweeper::spawn(self.clone(), interval, shutdown));
        }
    }

    /// Waits for the sweeper timer to end (after shutdown was signalled).
    pub async fn stop_sweeper(&self) {
        let handle = self
            .sweeper
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }

    /// Whether the sweeper timer is running.
    pub fn sweeper_running(&self) -> bool {
        self.sweeper
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|h| !h.is_finished())
    }
}

fn s3_storage(settings: &MediaSettings, clock: Arc<SystemClock>) -> anyhow::Result<S3Storage> {
    let s3 = settings
        .s3
        .as_ref()
        .context("media.backend = \"s3\" needs [media.s3]")?;
    let access_key = match &s3.access_key {
        Some(k) => k.clone(),
        None => std::env::var(S3_ACCESS_KEY_ENV)
            .with_context(|| format!("media.s3.access_key or {S3_ACCESS_KEY_ENV} is needed"))?,
    };
    let secret_key = match &s3.secret_key {
        Some(k) => k.0.clone(),
        None => std::env::var(S3_SECRET_KEY_ENV)
            .with_context(|| format!("media.s3.secret_key or {S3_SECRET_KEY_ENV} is needed"))?,
    };
    let mut s3_config = S3Config::new(&s3.endpoint, &s3.bucket, &s3.region, access_key, secret_key);
    s3_config.url_style = match s3.url_style {
        S3UrlStyle::Path => UrlStyle::Path,
        S3UrlStyle::VirtualHost => UrlStyle::VirtualHost,
    };
    S3Storage::new(s3_config, clock).context("configuring the S3 media bucket")
}
