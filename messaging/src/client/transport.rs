//! The client's WebSocket to signaling's `/api/msg/ws`: numbered requests
//! with their answers, and pushed events on a separate queue. A background
//! task owns the socket; when it closes, pending and later requests fail
//! with [`ClientError::Disconnected`].

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::ClientError;

/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

struct Outgoing {
    id: u64,
    frame: String,
    reply: oneshot::Sender<Value>,
}

/// An open connection.
#[derive(Debug)]
pub struct Connection {
    out: mpsc::Sender<Outgoing>,
    events: mpsc::UnboundedReceiver<Value>,
    next_id: u64,
}

impl Connection {
    /// Connect to `base` (`https://host`, `http://host:port`, or the
    /// `wss://`/`ws://` equivalents). TLS trusts the Mozilla roots plus
    /// those given to [`trust_extra_roots`].
    pub async fn connect(base: &str) -> Result<Self, ClientError> {
        let url = ws_url(base)?;
        let connector = if url.starts_with("wss://") {
            Some(tokio_tungstenite::Connector::Rustls(tls_config()?))
        } else {
            None
        };
        let (ws, _) = tokio::time::timeout(
            REQUEST_TIMEOUT,
            tokio_tungstenite::connect_async_tls_with_config(
                url.as_str(),
                Some(ws_config()),
                false,
                connector,
            ),
        )
        .await
        .map_err(|_| ClientError::Timeout)?
        .map_err(|e| ClientError::Transport(e.to_string()))?;
        let (out_tx, mut out_rx) = mpsc::channel::<Outgoing>(64);
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            let mut waiting: HashMap<u64, oneshot::Sender<Value>> = HashMap::new();
            loop {
                tokio::select! {
                    out = out_rx.recv() => {
                        let Some(out) = out else { break };
                        waiting.insert(out.id, out.reply);
                        if sink.send(Message::Text(out.frame.into())).await.is_err() {
                            break;
                        }
                    }
                    frame = stream.next() => {
                        let text = match frame {
                            Some(Ok(Message::Text(t))) => t,
                            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                            Some(Ok(_)) => continue,
                        };
                        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                        match v.get("id").and_then(Value::as_u64) {
                            Some(id) => {
                                if let Some(reply) = waiting.remove(&id) {
                                    let _ = reply.send(v);
                                }
                            }
                            None => {
                                if ev_tx.send(v).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                }
            }
            let _ = sink.close().await;
        });
        Ok(Self {
            out: out_tx,
            events: ev_rx,
            next_id: 1,
        })
    }

    /// Run one operation and return its answer.
    pub async fn request(&mut self, op: &str, body: Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let frame = json!({"id": id, "op": op, "body": body}).to_string();
        let (reply, answer) = oneshot::channel();
        self.out
            .send(Outgoing { id, frame, reply })
            .await
            .map_err(|_| ClientError::Disconnected)?;
        let mut v = tokio::time::timeout(REQUEST_TIMEOUT, answer)
            .await
            .map_err(|_| ClientError::Timeout)?
            .map_err(|_| ClientError::Disconnected)?;
        if let Some(ok) = v.get_mut("ok") {
            return Ok(ok.take());
        }
        let err = v.get("error").cloned().unwrap_or(Value::Null);
        Err(ClientError::Server {
            status: err
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(0),
            code: err
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned(),
            message: err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// Log `device` in with a signed challenge and authenticate this
    /// connection; returns the access token.
    pub async fn authenticate(
        &mut self,
        device: &crate::crypto::Device,
    ) -> Result<String, ClientError> {
        let ch = self.request("challenge", Value::Null).await?;
        let challenge = ch
            .get("challenge")
            .and_then(Value::as_str)
            .ok_or_else(|| ClientError::Protocol("no challenge".into()))?
            .to_owned();
        let signature = device.sign(&crate::service::device_auth_bytes(&challenge));
        let login = self
            .request(
                "login",
                json!({"device_id": device.device_id(), "challenge": challenge, "signature": signature}),
            )
            .await?;
        let token = login
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| ClientError::Protocol("no token".into()))?
            .to_owned();
        self.request("auth", json!({ "token": token })).await?;
        Ok(token)
    }

    /// The next pushed event, waiting at most `timeout`.
    pub async fn event(&mut self, timeout: Duration) -> Result<Option<Value>, ClientError> {
        match tokio::time::timeout(timeout, self.events.recv()).await {
            Ok(Some(v)) => Ok(Some(v)),
            Ok(None) => Err(ClientError::Disconnected),
            Err(_) => Ok(None),
        }
    }
}

/// tungstenite zero-fills its whole read buffer before every read, so a
/// small one is cheaper for our small frames (larger ones still arrive, in
/// several reads).
fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
}

/// See [`ws_config`].
const READ_BUFFER_BYTES: usize = 16 * 1024;

fn ws_url(base: &str) -> Result<String, ClientError> {
    let base = base.trim_end_matches('/');
    let rest = if let Some(r) = base.strip_prefix("http://") {
        format!("ws://{r}")
    } else if let Some(r) = base.strip_prefix("https://") {
        format!("wss://{r}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_owned()
    } else {
        return Err(ClientError::Transport(format!(
            "unsupported server URL {base:?}: use https://, http://, wss:// or ws://"
        )));
    };
    Ok(format!("{rest}/api/msg/ws"))
}

static EXTRA_ROOTS: std::sync::Mutex<Vec<rustls::pki_types::CertificateDer<'static>>> =
    std::sync::Mutex::new(Vec::new());

/// Also trust the CA certificates in `pem` (a private deployment's CA) for
/// every later connection of this process.
pub fn trust_extra_roots(pem: &[u8]) -> Result<usize, ClientError> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Transport(format!("CA certificates: {e}")))?;
    let n = certs.len();
    EXTRA_ROOTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(certs);
    Ok(n)
}

fn tls_config() -> Result<std::sync::Arc<rustls::ClientConfig>, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in EXTRA_ROOTS.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        roots
            .add(cert.clone())
            .map_err(|e| ClientError::Transport(format!("CA certificate: {e}")))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Transport(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}
