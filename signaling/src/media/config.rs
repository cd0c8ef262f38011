//! The `[media]` section of the config file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::seconds;

/// Environment variable with the S3 access key id (when not in the file).
pub const S3_ACCESS_KEY_ENV: &str = "SAMTALE_MEDIA_S3_ACCESS_KEY";
/// Environment variable with the S3 secret key (when not in the file).
pub const S3_SECRET_KEY_ENV: &str = "SAMTALE_MEDIA_S3_SECRET_KEY";

/// Where media objects are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MediaBackend {
    /// A directory (default `<data_dir>/media`), served by samtale itself
    /// through signed, expiring URLs.
    #[default]
    Local,
    /// An S3-compatible bucket; clients get SigV4 presigned URLs.
    S3,
}

/// Path- or virtual-host-style bucket URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum S3UrlStyle {
    /// `https://endpoint/bucket/key` (MinIO, Ceph, s3s).
    #[default]
    Path,
    /// `https://bucket.endpoint/key` (AWS).
    VirtualHost,
}

/// A secret from the config file or the environment; `Debug` hides it.
#[derive(Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretString(pub String);

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `[media.s3]`: the bucket. Keys may come from the environment instead
/// ([`S3_ACCESS_KEY_ENV`], [`S3_SECRET_KEY_ENV`]).
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct S3Settings {
    /// e.g. `https://s3.eu-north-1.amazonaws.com`.
    pub endpoint: String,
    /// e.g. `eu-north-1`.
    pub region: String,
    /// The bucket name.
    pub bucket: String,
    /// Default `path`.
    pub url_style: S3UrlStyle,
    /// Access key id.
    pub access_key: Option<String>,
    /// Secret access key.
    pub secret_key: Option<SecretString>,
}

/// `[media]`. Every key optional.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSettings {
    /// `local` (default) or `s3`.
    pub backend: MediaBackend,
    /// Directory of the local backend. Default `<data_dir>/media`.
    pub local_dir: Option<PathBuf>,
    /// The bucket, for `backend = "s3"`.
    pub s3: Option<S3Settings>,
    /// The media index: `sqlite://…` or `postgres://…`. Default a SQLite
    /// file `media.sqlite3` in the data directory.
    pub index_url: Option<String>,
    /// Largest single upload in bytes. Default 100 MiB.
    pub max_upload_bytes: u64,
    /// Bytes one account may hold at once. Default 2 GiB.
    pub quota_bytes_per_account: u64,
    /// Lifetime of all media, seconds. Default 30 days.
    #[serde(with = "seconds")]
    pub ttl: Duration,
    /// How often the sweeper deletes expired media, seconds. Default 5 min.
    #[serde(with = "seconds")]
    pub sweep_interval: Duration,
    /// Lifetime of presigned upload URLs, seconds. Default 15 min.
    #[serde(with = "seconds")]
    pub upload_url_ttl: Duration,
    /// Lifetime of presigned download URLs, seconds. Default 1 h.
    #[serde(with = "seconds")]
    pub download_url_ttl: Duration,
    /// Lifetime of view-once grants, seconds. Default 7 days.
    #[serde(with = "seconds")]
    pub view_once_ttl: Duration,
    /// Memory for server-side thumbnails already made, bytes. Default
    /// 64 MiB; 0 makes every request decode the original again.
    pub thumbnail_cache_bytes: u64,
}

impl Default for MediaSettings {
    fn default() -> Self {
        let lib = samtale_media::media::MediaConfig::default();
        Self {
            backend: MediaBackend::Local,
            local_dir: None,
            s3: None,
            index_url: None,
            max_upload_bytes: lib.max_upload_bytes,
            quota_bytes_per_account: lib.quota_bytes_per_user,
            ttl: lib.media_ttl,
            sweep_interval: Duration::from_secs(300),
            upload_url_ttl: lib.upload_url_ttl,
            download_url_ttl: lib.download_url_ttl,
            view_once_ttl: lib.view_once_ttl,
            thumbnail_cache_bytes: 64 * 1024 * 1024,
        }
    }
}

impl MediaSettings {
    /// Checks the section; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        let max_presign = samtale_media::storage::MAX_PRESIGN_EXPIRY;
        for (name, d) in [
            ("upload_url_ttl", self.upload_url_ttl),
            ("download_url_ttl", self.download_url_ttl),
        ] {
            if d < Duration::from_secs(1) || d > max_presign {
                return Err(format!("media.{name} must be 1 s to 7 days"));
            }
        }
        if self.ttl < Duration::from_secs(1) || self.view_once_ttl < Duration::from_secs(1) {
            return Err("media.ttl and media.view_once_ttl must be at least 1 s".into());
        }
        if self.sweep_interval < Duration::from_millis(10) {
            return Err("media.sweep_interval must be at least 0.01 s".into());
        }
        if self.backend == MediaBackend::S3 {
            let Some(s3) = &self.s3 else {
                return Err("media.backend = \"s3\" needs a [media.s3] section".into());
            };
            if s3.endpoint.is_empty() || s3.bucket.is_empty() || s3.region.is_empty() {
                return Err("media.s3 needs endpoint, region and bucket".into());
            }
        }
        Ok(())
    }

    /// The local backend's directory.
    pub fn local_dir(&self, data_dir: &Path) -> PathBuf {
        self.local_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("media"))
    }

    /// The library's limits and lifetimes from these settings.
    pub fn media_config(&self) -> samtale_media::media::MediaConfig {
        samtale_media::media::MediaConfig {
            max_upload_bytes: self.max_upload_bytes,
            quota_bytes_per_user: self.quota_bytes_per_account,
            media_ttl: self.ttl,
            upload_url_ttl: self.upload_url_ttl,
            download_url_ttl: self.download_url_ttl,
            view_once_ttl: self.view_once_ttl,
            ..samtale_media::media::MediaConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MediaSettings, String> {
        let s: MediaSettings = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate()?;
        Ok(s)
    }

    #[test]
    fn defaults_and_s3_section() {
        let d = parse("").unwrap();
        assert_eq!(d.backend, MediaBackend::Local);
        assert_eq!(d.ttl, Duration::from_secs(30 * 24 * 3600));
        let s = parse(
            "backend = \"s3\"\nttl = 86400\n[s3]\nendpoint = \"https://s3.eu-north-1.amazonaws.com\"\n\
             region = \"eu-north-1\"\nbucket = \"b\"\nurl_style = \"virtual-host\"\n\
             secret_key = \"very-secret\"",
        )
        .unwrap();
        let s3 = s.s3.clone().unwrap();
        assert_eq!(s3.url_style, S3UrlStyle::VirtualHost);
        assert_eq!(s.media_config().media_ttl, Duration::from_secs(86400));
        assert!(!format!("{s:?}").contains("very-secret"));
    }

    #[test]
    fn example_file_section_parses() {
        // The commented `[media]` block of samtale.example.toml, uncommented.
        let example = include_str!("../../../samtale.example.toml");
        let section: String = example
            .lines()
            .skip_while(|l| *l != "# [media]")
            .skip(1)
            .filter_map(|l| l.strip_prefix("# "))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(section.contains("[s3]") || section.contains("[media.s3]"));
        let section = section.replace("[media.s3]", "[s3]");
        let s = parse(&section).unwrap();
        assert_eq!(s.ttl, Duration::from_secs(30 * 24 * 3600));
        assert_eq!(s.s3.unwrap().region, "eu-north-1");
    }

    #[test]
    fn bad_sections_are_refused() {
        assert!(parse("backend = \"ftp\"").is_err());
        assert!(parse("backend = \"s3\"").is_err());
        assert!(parse("upload_url_ttl = 0").is_err());
        assert!(parse("download_url_ttl = 700000").is_err());
        assert!(parse("max_size = 1").is_err(), "unknown key");
        assert!(parse("[s3]\nendpoint = \"x\"\nregion = \"r\"\nbucket = \"b\"").is_ok());
    }
}
