//! Tests' TLS sessions: a real rustls client against the server's own
//! settings, handshake done on blocking sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tokio_rustls::rustls::ServerConnection;

/// A TLS session between a real rustls client and the server's
/// settings (a fresh self-signed certificate), handshake done.
pub(super) fn tls_pair() -> (
    std::net::TcpStream,
    ServerConnection,
    std::net::TcpStream,
    tokio_rustls::rustls::ClientConnection,
) {
    use std::sync::Arc;
    use tokio_rustls::rustls::{self, client::danger, pki_types};

    /// Trusts any certificate: the test checks the relay, not the PKI.
    #[derive(Debug)]
    struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);
    impl danger::ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _: &pki_types::CertificateDer<'_>,
            _: &[pki_types::CertificateDer<'_>],
            _: &pki_types::ServerName<'_>,
            _: &[u8],
            _: pki_types::UnixTime,
        ) -> Result<danger::ServerCertVerified, rustls::Error> {
            Ok(danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<danger::HandshakeSignatureValid, rustls::Error> {
            Ok(danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<danger::HandshakeSignatureValid, rustls::Error> {
            Ok(danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    let dir = std::env::temp_dir().join(format!("samtale-core-tls-{}", rand::random::<u64>()));
    let (cert, key) =
        super::tls::self_signed_localhost(&dir).expect("openssl (run ./scripts/test.sh)");
    let settings = super::TlsSettings::new(cert, key).unwrap();
    let server_config = settings.acceptor().config().clone();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client_config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let shaking = std::thread::spawn(move || {
        let mut session = ServerConnection::new(server_config).unwrap();
        while session.is_handshaking() {
            session.complete_io(&mut server).unwrap();
        }
        (server, session)
    });
    let name = pki_types::ServerName::try_from("localhost").unwrap();
    let mut client_session = rustls::ClientConnection::new(Arc::new(client_config), name).unwrap();
    while client_session.is_handshaking() {
        client_session.complete_io(&mut client).unwrap();
    }
    let (server, server_session) = shaking.join().unwrap();
    server.set_nonblocking(true).unwrap();
    client.set_nonblocking(true).unwrap();
    (server, server_session, client, client_session)
}
