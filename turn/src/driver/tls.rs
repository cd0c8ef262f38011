//! TLS settings for the TLS listener, reloadable (SIGHUP) without dropping
//! connections: new handshakes use the new certificate.
//!
//! TLS 1.3 and 1.2 are spoken, as RFC 9325 asks; 1.0 and 1.1 are refused
//! (RFC 8996). TURN clients that only know TLS 1.2 (SIP stacks, older
//! WebRTC SDKs) still reach the relay.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{ServerConfig, SupportedProtocolVersion, version};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file is unreadable or empty.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the pair.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Certificate and key files plus the acceptor built from them.
#[derive(Clone)]
pub struct TlsSettings {
    cert: PathBuf,
    key: PathBuf,
    acceptor: Arc<RwLock<TlsAcceptor>>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("cert", &self.cert)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Spelled out: without rustls's `tls12` feature this would not build,
/// instead of the listener silently refusing TLS 1.2 clients.
const PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] = &[&version::TLS13, &version::TLS12];

fn load(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let pem_err = |path: &Path, e: &dyn std::fmt::Display| TlsError::Pem {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_err(cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(cert, &e))?;
    if certs.is_empty() {
        return Err(pem_err(cert, &"no certificate"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, &e))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl TlsSettings {
    /// Loads the PEM files.
    pub fn new(cert: PathBuf, key: PathBuf) -> Result<Self, TlsError> {
        let acceptor = load(&cert, &key)?;
        Ok(TlsSettings {
            cert,
            key,
            acceptor: Arc::new(RwLock::new(acceptor)),
        })
    }

    /// Re-reads the PEM files; on error the old certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let acceptor = load(&self.cert, &self.key)?;
        if let Ok(mut a) = self.acceptor.write() {
            *a = acceptor;
        }
        Ok(())
    }

    pub(super) fn acceptor(&self) -> TlsAcceptor {
        match self.acceptor.read() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Makes a self-signed P-256 certificate for `localhost` in `dir`
/// (`cert.pem`, `key.pem`) with the `openssl` command. For tests,
/// benchmarks and trying the server out, not for serving clients.
pub fn self_signed_localhost(dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()?;
    if !made.success() {
        return Err(std::io::Error::other(
            "openssl could not make a certificate",
        ));
    }
    Ok((cert, key))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::process::{Command, Stdio};
    use std::time::Duration;

    use tokio_rustls::rustls::{self, ProtocolVersion, ServerConnection};

    use super::*;

    /// The server's side of one handshake with `openssl s_client` offering
    /// only `version` (an independent TLS stack): the version agreed, or
    /// rustls's error.
    fn handshake_with_openssl(version: &str) -> Result<Option<ProtocolVersion>, rustls::Error> {
        let dir =
            std::env::temp_dir().join(format!("samtale-tls-versions-{}", rand::random::<u64>()));
        let (cert, key) = self_signed_localhost(&dir).expect("openssl (run ./scripts/test.sh)");
        let config = TlsSettings::new(cert, key)
            .unwrap()
            .acceptor()
            .config()
            .clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        // Security level 0, so OpenSSL 3 really offers TLS 1.0 and 1.1.
        let mut client = Command::new("openssl")
            .args([
                "s_client",
                version,
                "-cipher",
                "DEFAULT:@SECLEVEL=0",
                "-connect",
            ])
            .arg(&address)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl");
        // Bounded: an openssl that never connects fails the test.
        let (accepted, accepting) = std::sync::mpsc::channel();
        std::thread::spawn(move || accepted.send(listener.accept().map(|(socket, _)| socket)));
        let mut socket = accepting
            .recv_timeout(Duration::from_secs(10))
            .expect("openssl never connected")
            .unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut session = ServerConnection::new(config).unwrap();
        let mut outcome = Ok(());
        while session.is_handshaking() {
            if let Err(e) = session.complete_io(&mut socket) {
                outcome = Err(e);
                break;
            }
        }
        let _ = client.kill();
        let _ = client.wait();
        std::fs::remove_dir_all(dir).ok();
        match outcome {
            Ok(()) => Ok(session.protocol_version()),
            Err(e) => Err(*e
                .into_inner()
                .and_then(|inner| inner.downcast::<rustls::Error>().ok())
                .expect("a TLS error, not an I/O one")),
        }
    }

    #[test]
    fn tls_1_3_and_1_2_clients_are_served() {
        assert_eq!(
            handshake_with_openssl("-tls1_3"),
            Ok(Some(ProtocolVersion::TLSv1_3))
        );
        assert_eq!(
            handshake_with_openssl("-tls1_2"),
            Ok(Some(ProtocolVersion::TLSv1_2))
        );
    }

    #[test]
    fn tls_1_1_and_1_0_clients_are_refused() {
        for version in ["-tls1_1", "-tls1"] {
            let refused = handshake_with_openssl(version);
            assert!(
                matches!(refused, Err(rustls::Error::PeerIncompatible(_))),
                "{version}: {refused:?}"
            );
        }
    }
}
