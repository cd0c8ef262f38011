//! Writes the seed corpus of the `media_presigned` fuzz target: local
//! presigned GET, PUT and part-upload requests signed with the target's
//! secret, plus a few broken ones.
//!
//! `cargo run -p samtale-media --example media_fuzz_seeds` (from the workspace root).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use samtale_media::ManualClock;
use samtale_media::storage::{LocalSigner, LocalStorage, ObjectKey, PresignedRequest, Storage};

/// The fuzz target's secret and the seeds' expiry.
const SECRET: [u8; 32] = [0x5a; 32];
const EXPIRES: u64 = 2_000_000_000;

fn seed(method: &str, r: &PresignedRequest, ct: &str, len: &str) -> String {
    let (path, query) = r.url.split_once('?').unwrap_or((&r.url, ""));
    let key = path.trim_start_matches("/o/");
    format!("{method}\n{key}\n{query}\n{ct}\n{len}")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::Path::new("fuzz/corpus/media_presigned");
    std::fs::create_dir_all(out)?;
    let scratch = std::env::temp_dir().join(format!("samtale-seeds-{:x}", rand::random::<u64>()));
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(EXPIRES - 3600);
    let clock = Arc::new(ManualClock::new(at));
    let store = LocalStorage::open(&scratch, "/o", LocalSigner::new(SECRET), clock).await?;
    let key = ObjectKey::new("media/0123456789abcdef0123456789abcdef")?;
    let hour = Duration::from_secs(3600);
    let get = store.presign_get(&key, hour)?;
    let put = store.presign_put(&key, "image/jpeg", 1234, hour)?;
    let upload = store.create_multipart(&key, "video/mp4").await?;
    let part = store.presign_upload_part(&key, &upload, 2, 5_242_880, hour)?;
    let seeds = [
        ("get", seed("GET", &get, "", "")),
        ("head", seed("HEAD", &get, "", "")),
        ("put", seed("PUT", &put, "image/jpeg", "1234")),
        ("put-wrong-type", seed("PUT", &put, "text/html", "1234")),
        ("part", seed("PUT", &part, "", "5242880")),
        (
            "tampered",
            seed("GET", &get, "", "").replace("sig=", "sig=A"),
        ),
        (
            "traversal",
            "GET\n../etc/passwd\nexpires=1&sig=x\n\n".to_owned(),
        ),
        (
            "duplicate",
            format!("{}&expires=1", seed("GET", &get, "", "")),
        ),
    ];
    for (name, text) in seeds {
        std::fs::write(out.join(format!("seed-{name}")), text)?;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
