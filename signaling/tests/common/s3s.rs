//! s3s-fs for the signaling tests: the media pipeline's test server over
//! a fresh directory, removed on drop.

#[path = "../../../media-pipeline/tests/common/s3s_fs.rs"]
mod s3s_fs;

#[allow(unused_imports)] // not every test target uses the keys
pub use s3s_fs::{ACCESS_KEY, BUCKET, SECRET_KEY};

pub struct S3s {
    pub endpoint: String,
    pub dir: std::path::PathBuf,
    server: Option<s3s_fs::S3sFs>,
}

impl S3s {
    pub fn start() -> Self {
        let dir = super::server::temp_dir("s3s");
        let server = s3s_fs::S3sFs::start(&dir);
        Self {
            endpoint: server.endpoint.clone(),
            dir,
            server: Some(server),
        }
    }

    /// The file s3s-fs keeps an object in.
    pub fn object_file(&self, key: &str) -> std::path::PathBuf {
        self.dir.join(BUCKET).join(key)
    }
}

impl Drop for S3s {
    fn drop(&mut self) {
        drop(self.server.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
