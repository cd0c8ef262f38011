//! The `samtale-turn` binary as an operator runs it: `/metrics` and
//! `/healthz` answer; SIGHUP reloads the config (a new user can allocate)
//! and the TLS certificate (new connections get the new one) without
//! dropping the allocation that was there; SIGTERM drains: `/healthz`
//! turns 503, new allocations are refused, and the process exits once the
//! last allocation is gone, or when `drain_seconds` have passed.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::child::{BOUND, ChildServer, TempDir, http_get};
use common::{Client, Response, udp};
use samtale_turn::codec::{Attribute, Method, TransactionId};
use tokio_rustls::rustls::{self, client::danger, pki_types};

/// A request over UDP, with the 401/nonce round trip.
fn transact(
    socket: &UdpSocket,
    client: &mut Client,
    method: Method,
    attrs: &[Attribute<'_>],
) -> Response {
    socket.set_read_timeout(Some(BOUND)).unwrap();
    for _ in 0..2 {
        let tid = TransactionId::random();
        socket.send(&client.request(method, tid, attrs)).unwrap();
        let mut buf = [0u8; 1500];
        let n = socket.recv(&mut buf).expect("an answer in time");
        let resp = Response(buf[..n].to_vec());
        assert_eq!(resp.msg().transaction_id(), &tid);
        if resp.error_code() == Some(401) && client.nonce.is_none() {
            client.nonce = resp.nonce();
            continue;
        }
        return resp;
    }
    panic!("no answer after the nonce")
}

/// A UDP client of the server at `server` as `user`.
fn udp_client(server: SocketAddr, user: &str) -> (UdpSocket, Client) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server).unwrap();
    let tuple = udp(&socket.local_addr().unwrap().to_string());
    let client = Client::new(tuple, user, &format!("{user}-pw"));
    (socket, client)
}

fn allocate(socket: &UdpSocket, client: &mut Client) -> Response {
    transact(
        socket,
        client,
        Method::ALLOCATE,
        &[Attribute::RequestedTransport(17)],
    )
}

/// Remembers the certificate the server presented; trusts it (the test
/// compares it with the file, not with a PKI).
#[derive(Debug)]
struct Remember {
    seen: Arc<Mutex<Option<Vec<u8>>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl danger::ServerCertVerifier for Remember {
    fn verify_server_cert(
        &self,
        end_entity: &pki_types::CertificateDer<'_>,
        _: &[pki_types::CertificateDer<'_>],
        _: &pki_types::ServerName<'_>,
        _: &[u8],
        _: pki_types::UnixTime,
    ) -> Result<danger::ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap() = Some(end_entity.to_vec());
        Ok(danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The certificate a new TLS connection to `server` is shown (DER).
fn presented_certificate(server: SocketAddr) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let seen = Arc::new(Mutex::new(None));
    let verifier = Remember {
        seen: seen.clone(),
        provider: provider.clone(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let name = pki_types::ServerName::try_from("localhost").unwrap();
    let mut session = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut stream = std::net::TcpStream::connect(server).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    while session.is_handshaking() {
        session.complete_io(&mut stream).unwrap();
    }
    seen.lock().unwrap().clone().expect("a certificate")
}

fn certificate_der(pem: &Path) -> Vec<u8> {
    use pki_types::pem::PemObject;
    pki_types::CertificateDer::from_pem_file(pem)
        .unwrap()
        .to_vec()
}

/// Makes a certificate and key, and puts them where the config points.
fn install_certificate(dir: &Path, into: &Path) -> Vec<u8> {
    let (cert, key) = samtale_turn::driver::tls::self_signed_localhost(dir)
        .expect("openssl (run ./scripts/test.sh)");
    std::fs::copy(&key, into.join("key.pem")).unwrap();
    std::fs::copy(&cert, into.join("cert.pem")).unwrap();
    certificate_der(&cert)
}

/// Listens on loopback port 0 everywhere (the server prints its ports).
fn config(dir: &Path, users: &[&str], drain_seconds: u64) -> String {
    let users: Vec<String> = users.iter().map(|u| format!("\"{u}:{u}-pw\"")).collect();
    format!(
        "listen_udp = \"127.0.0.1:0\"\nlisten_tls = \"127.0.0.1:0\"\n\
         tls_cert = \"{cert}\"\ntls_key = \"{key}\"\n\
         metrics_listen = \"127.0.0.1:0\"\nregion = \"eu-test-1\"\n\
         core_threads = 1\nrelay_ports = \"47100-47199\"\ndrain_seconds = {drain_seconds}\n\
         users = [{users}]\n",
        cert = dir.join("cert.pem").display(),
        key = dir.join("key.pem").display(),
        users = users.join(", "),
    )
}

/// `/healthz`'s status and body. The server prints its ports once the
/// metrics listener is bound, so it answers from then on.
fn health(metrics: SocketAddr) -> (u16, String) {
    let (code, body) = http_get(metrics, "/healthz").expect("/healthz answers");
    (code, body.trim().to_owned())
}

#[test]
fn sighup_reloads_config_and_certificate_and_sigterm_drains() {
    let temp = TempDir::new("samtale-turn-ops");
    let dir = temp.path();
    let first = install_certificate(&dir.join("first"), dir);
    let mut server = ChildServer::start(dir, &config(dir, &["alice"], 60), None);
    let listening = server.listening;
    let (server_addr, tls_addr) = (listening.udp, listening.tls.expect("TLS"));
    let metrics = listening.metrics.expect("metrics");
    assert_eq!(health(metrics), (200, "ok".to_owned()));

    let (alice_socket, mut alice) = udp_client(server_addr, "alice");
    assert!(allocate(&alice_socket, &mut alice).is_success());
    let (bob_socket, mut bob) = udp_client(server_addr, "bob");
    assert_eq!(
        allocate(&bob_socket, &mut bob).error_code(),
        Some(401),
        "no bob yet"
    );
    assert_eq!(presented_certificate(tls_addr), first);

    // The allocation shows in /metrics. The figures are published once a
    // second and nothing outside marks it, so this polls the page.
    let deadline = Instant::now() + BOUND;
    loop {
        let (_, body) = http_get(metrics, "/metrics").unwrap();
        if body.contains("turn_allocations{region=\"eu-test-1\"} 1\n") {
            break;
        }
        assert!(Instant::now() < deadline, "{body}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // New certificate and a new user, then SIGHUP.
    let second = install_certificate(&dir.join("second"), dir);
    assert_ne!(first, second);
    std::fs::write(dir.join("turn.toml"), config(dir, &["alice", "bob"], 60)).unwrap();
    server.signal("HUP");
    server.wait_for_line("configuration reloaded");
    assert_eq!(presented_certificate(tls_addr), second);
    let (bob_socket, mut bob) = udp_client(server_addr, "bob");
    assert!(
        allocate(&bob_socket, &mut bob).is_success(),
        "bob after the reload"
    );
    let refreshed = transact(&alice_socket, &mut alice, Method::REFRESH, &[]);
    assert!(
        refreshed.is_success(),
        "alice's allocation outlived the reload"
    );

    // SIGTERM: draining refuses new allocations and waits for the old.
    server.signal("TERM");
    // The core logs this after /healthz was switched to 503.
    server.wait_for_line("draining: refusing new allocations");
    assert_eq!(health(metrics).0, 503);
    let (late_socket, mut late) = udp_client(server_addr, "alice");
    assert_eq!(allocate(&late_socket, &mut late).error_code(), Some(508));
    for (socket, client) in [(&alice_socket, &mut alice), (&bob_socket, &mut bob)] {
        let gone = transact(socket, client, Method::REFRESH, &[Attribute::Lifetime(0)]);
        assert!(gone.is_success());
    }
    let status = server.wait_exit(BOUND);
    assert!(status.success(), "{status:?}");
}

/// An allocation that is never released holds a drain for at most
/// `drain_seconds` (1 here).
#[test]
fn a_drain_ends_at_its_bound_with_allocations_left() {
    let temp = TempDir::new("samtale-turn-drain");
    let dir = temp.path();
    install_certificate(&dir.join("cert"), dir);
    let mut server = ChildServer::start(dir, &config(dir, &["alice"], 1), None);
    let metrics = server.listening.metrics.expect("metrics");
    assert_eq!(health(metrics).0, 200);
    let (socket, mut alice) = udp_client(server.listening.udp, "alice");
    assert!(allocate(&socket, &mut alice).is_success());
    let asked = Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(BOUND);
    assert!(status.success(), "{status:?}");
    assert!(
        asked.elapsed() >= Duration::from_secs(1),
        "left before the bound with an allocation alive"
    );
}
