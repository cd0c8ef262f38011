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

use std::io::Write as _;
use std::path::Path;
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
                let secret = load_or_create_secret(&config.data_dir)?;
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
        Ok(Self {
            store,
            local,
            settings,
            metrics: metrics::MediaMetrics::default(),
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

/// The local URL-signing secret: read from the data directory, or made
/// once and written there readable by the owner only.
fn load_or_create_secret(data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = data_dir.join(LOCAL_SECRET_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            return <[u8; 32]>::try_from(bytes.as_slice())
                .ok()
                .with_context(|| format!("{} is not a 32-byte secret", path.display()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let secret: [u8; 32] = rand::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(&secret)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_made_once_and_private() {
        let dir =
            std::env::temp_dir().join(format!("samtale-media-key-{:x}", rand::random::<u64>()));
        let first = load_or_create_secret(&dir).unwrap();
        let again = load_or_create_secret(&dir).unwrap();
        assert_eq!(first, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(LOCAL_SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.join(LOCAL_SECRET_FILE), b"short").unwrap();
        assert!(load_or_create_secret(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
