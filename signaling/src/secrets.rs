//! Server secrets kept in the data directory: 32 random bytes made once,
//! written readable by the owner only (0600), never logged.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Read `file` in `data_dir`, or make it once.
pub fn load_or_create(data_dir: &Path, file: &str) -> anyhow::Result<[u8; 32]> {
    let path = data_dir.join(file);
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
        let dir = std::env::temp_dir().join(format!("samtale-secret-{:x}", rand::random::<u64>()));
        let first = load_or_create(&dir, "test.key").unwrap();
        let again = load_or_create(&dir, "test.key").unwrap();
        assert_eq!(first, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("test.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.join("test.key"), b"short").unwrap();
        assert!(load_or_create(&dir, "test.key").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
