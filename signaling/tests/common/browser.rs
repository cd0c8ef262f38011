//! Minimal driver for a real headless Chromium over the Chrome DevTools
//! Protocol (CDP), for integration tests.
//!
//! One background tokio task owns the browser-level DevTools WebSocket.
//! Every command gets a fresh id; replies are routed back to the caller
//! through a `oneshot` channel kept in a map behind a mutex. Pages use the
//! "flattened" session mode (`Target.attachToTarget` with `flatten: true`),
//! so all pages share that one connection and are told apart by
//! `sessionId`.
//!
//! ```ignore
//! mod common;
//! use common::browser::{Browser, Page};
//!
//! if common::browser::chromium_path().is_none() { return Ok(()); } // skip
//! let browser = Browser::launch(&[]).await?;
//! let page = browser.new_page("http://127.0.0.1:8080/").await?;
//! page.wait_for("page loaded", "document.readyState === 'complete'", Duration::from_secs(10)).await?;
//! let n = page.eval("1 + 1").await?;
//! ```
//!
//! The profile directory (which also holds `chromium-stderr.log`) is removed
//! when the [`Browser`] is dropped, unless the environment variable
//! `SAMTALE_KEEP_BROWSER_PROFILE` is set.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound for a single CDP command (including `Runtime.evaluate` with
/// `awaitPromise`).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for Chromium to write `DevToolsActivePort`.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);
const PORT_FILE_POLL: Duration = Duration::from_millis(50);
const WAIT_POLL: Duration = Duration::from_millis(200);
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
const STDERR_FILE: &str = "chromium-stderr.log";
const KEEP_PROFILE_ENV: &str = "SAMTALE_KEEP_BROWSER_PROFILE";
const STDERR_TAIL_LINES: usize = 40;

/// Where the Chromium binary is: `$CHROMIUM` if set (an absolute/relative
/// path, or a bare name looked up in `$PATH`), otherwise `/usr/bin/chromium`.
/// `None` if it does not exist, so tests can skip.
pub fn chromium_path() -> Option<PathBuf> {
    let candidate = std::env::var_os("CHROMIUM")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM));
    if candidate.is_absolute() || candidate.components().count() > 1 {
        return candidate.is_file().then_some(candidate);
    }
    let path_var = std::env::var_os("PATH")?;
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(&candidate))
        .find(|p| p.is_file())
}

// ---------------------------------------------------------------------------
// Shared connection state
// ---------------------------------------------------------------------------

type Reply = anyhow::Result<Value>;

struct Pending {
    /// `None` for browser-level commands.
    session: Option<String>,
    tx: oneshot::Sender<Reply>,
}

#[derive(Default)]
struct State {
    pending: HashMap<u64, Pending>,
    /// Sessions that were detached (target closed / crashed away), with why.
    detached: HashMap<String, String>,
    /// Set once the WebSocket task has stopped.
    closed: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    next_id: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked while holding
        // it; the map itself is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fails every pending call of `session`; optionally remembers the
    /// session as dead so later calls fail immediately.
    fn fail_session(&self, session: &str, reason: &str, mark_detached: bool) {
        let failed: Vec<Pending> = {
            let mut st = self.lock();
            if mark_detached {
                st.detached.insert(session.to_owned(), reason.to_owned());
            }
            let ids: Vec<u64> = st
                .pending
                .iter()
                .filter(|(_, p)| p.session.as_deref() == Some(session))
                .map(|(id, _)| *id)
                .collect();
            let mut failed = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(p) = st.pending.remove(&id) {
                    failed.push(p);
                }
            }
            failed
        };
        for p in failed {
            let _ =
                p.tx.send(Err(anyhow!("session {session} is gone: {reason}")));
        }
    }

    /// Marks the connection closed and fails every pending call.
    fn close(&self, reason: &str) {
        let drained: HashMap<u64, Pending> = {
            let mut st = self.lock();
            if st.closed.is_none() {
                st.closed = Some(reason.to_owned());
            }
            std::mem::take(&mut st.pending)
        };
        for (_, p) in drained {
            let _ =
                p.tx.send(Err(anyhow!("DevTools connection closed: {reason}")));
        }
    }

    /// Why calls on `session` (or on the browser, for `None`) can no longer
    /// succeed, if that is known.
    fn dead_reason(&self, session: Option<&str>) -> Option<String> {
        let st = self.lock();
        if let Some(reason) = &st.closed {
            return Some(format!("DevTools connection closed: {reason}"));
        }
        session
            .and_then(|s| st.detached.get(s))
            .map(|reason| format!("session detached: {reason}"))
    }
}

/// Removes a pending entry when the call future finishes or is cancelled
/// (e.g. by an outer `tokio::time::timeout`), so nothing leaks.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.lock().pending.remove(&self.id);
    }
}

/// Cheap handle to the shared browser connection.
#[derive(Clone)]
struct Conn {
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<String>,
}

impl Conn {
    /// Sends one CDP command and waits (at most [`COMMAND_TIMEOUT`]) for its
    /// reply. Returns the `result` object; a CDP `error` becomes `Err`.
    async fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Value> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = serde_json::Map::new();
        msg.insert("id".to_owned(), Value::from(id));
        msg.insert("method".to_owned(), Value::from(method));
        msg.insert("params".to_owned(), params);
        if let Some(s) = session {
            msg.insert("sessionId".to_owned(), Value::from(s));
        }
        let text = Value::Object(msg).to_string();

        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.shared.lock();
            if let Some(reason) = &st.closed {
                bail!("CDP {method}: DevTools connection closed: {reason}");
            }
            if let Some(reason) = session.and_then(|s| st.detached.get(s)) {
                bail!("CDP {method}: session detached: {reason}");
            }
            st.pending.insert(
                id,
                Pending {
                    session: session.map(str::to_owned),
                    tx,
                },
            );
        }
        let _guard = PendingGuard {
            shared: &self.shared,
            id,
        };

        if self.out.send(text).is_err() {
            bail!("CDP {method}: DevTools connection task has stopped");
        }

        let reply = match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
            Err(_) => bail!("CDP {method}: no reply within {COMMAND_TIMEOUT:?}"),
            Ok(Err(_)) => bail!("CDP {method}: DevTools connection dropped before the reply"),
            Ok(Ok(reply)) => reply.with_context(|| format!("CDP {method}"))?,
        };

        match reply {
            Value::Object(mut obj) => {
                if let Some(err) = obj.remove("error") {
                    bail!("CDP {method} failed: {err}");
                }
                Ok(obj.remove("result").unwrap_or(Value::Null))
            }
            other => bail!("CDP {method}: malformed reply {other}"),
        }
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The task that owns the WebSocket: writes queued commands, routes replies,
/// watches for detach events. On exit every pending call is failed.
async fn run_connection(
    mut ws: Ws,
    mut out_rx: mpsc::UnboundedReceiver<String>,
    shared: Arc<Shared>,
) {
    let reason = loop {
        tokio::select! {
            outgoing = out_rx.recv() => match outgoing {
                Some(text) => {
                    if let Err(e) = ws.send(Message::text(text)).await {
                        break format!("WebSocket send failed: {e}");
                    }
                }
                None => {
                    // Every Browser/Page handle is gone.
                    let _ = ws.close(None).await;
                    break "all handles dropped".to_owned();
                }
            },
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(text))) => handle_incoming(&shared, text.as_str()),
                Some(Ok(Message::Binary(bytes))) => {
                    if let Ok(text) = std::str::from_utf8(&bytes) {
                        handle_incoming(&shared, text);
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    break format!("Chromium closed the DevTools WebSocket ({frame:?})");
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break format!("WebSocket error: {e}"),
                None => break "DevTools WebSocket ended".to_owned(),
            },
        }
    };
    shared.close(&reason);
}

fn handle_incoming(shared: &Shared, text: &str) {
    let Ok(msg) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if let Some(id) = msg.get("id").and_then(Value::as_u64) {
        let pending = shared.lock().pending.remove(&id);
        if let Some(p) = pending {
            let _ = p.tx.send(Ok(msg));
        }
        return;
    }
    let params = msg.get("params");
    let param_str = |key: &str| params.and_then(|p| p.get(key)).and_then(Value::as_str);
    match msg
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "Inspector.detached" => {
            if let Some(session) = msg.get("sessionId").and_then(Value::as_str) {
                let why = param_str("reason").unwrap_or("unknown reason");
                shared.fail_session(session, &format!("Inspector.detached ({why})"), true);
            }
        }
        "Target.detachedFromTarget" => {
            if let Some(session) = param_str("sessionId") {
                shared.fail_session(session, "Target.detachedFromTarget", true);
            }
        }
        "Inspector.targetCrashed" => {
            if let Some(session) = msg.get("sessionId").and_then(Value::as_str) {
                shared.fail_session(session, "Inspector.targetCrashed (renderer crashed)", false);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Browser
// ---------------------------------------------------------------------------

/// The Chromium child process plus its profile directory. Dropping it kills
/// the process and removes the directory, also on launch failure paths.
struct ChromiumProcess {
    child: Child,
    user_data_dir: PathBuf,
}

impl Drop for ChromiumProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os(KEEP_PROFILE_ENV).is_some() {
            eprintln!(
                "keeping Chromium profile (and {STDERR_FILE}) at {}",
                self.user_data_dir.display()
            );
            return;
        }
        // Helper processes (renderer, zygote, ...) die right after the
        // browser process and may still be touching files; retry briefly.
        for attempt in 0..5 {
            match std::fs::remove_dir_all(&self.user_data_dir) {
                Ok(()) => return,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                Err(e) if attempt == 4 => {
                    eprintln!(
                        "warning: could not remove Chromium profile {}: {e}",
                        self.user_data_dir.display()
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// A running headless Chromium with a DevTools connection to the browser
/// target. Dropping it kills Chromium and removes its profile directory;
/// [`Page`]s outliving it fail fast.
pub struct Browser {
    conn: Conn,
    task: JoinHandle<()>,
    process: ChromiumProcess,
}

impl Browser {
    /// Launches Chromium (see [`chromium_path`]) headless with fake media
    /// devices, a fresh profile under `std::env::temp_dir()`, and
    /// `--remote-debugging-port=0`, plus `extra_args` (appended last; note
    /// a second `--disable-features=` replaces the built-in one, so repeat
    /// `Translate,OptimizationHints,MediaRouter` if you pass your own).
    /// Waits at most 20 s for `DevToolsActivePort`, then connects.
    pub async fn launch(extra_args: &[String]) -> anyhow::Result<Browser> {
        let exe = chromium_path().ok_or_else(|| {
            anyhow!("Chromium not found: set $CHROMIUM or install {DEFAULT_CHROMIUM}")
        })?;
        let user_data_dir = fresh_temp_dir()?;
        let stderr_path = user_data_dir.join(STDERR_FILE);
        let stderr = match std::fs::File::create(&stderr_path) {
            Ok(f) => f,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&user_data_dir);
                return Err(e).with_context(|| format!("creating {}", stderr_path.display()));
            }
        };

        let mut user_data_flag = OsString::from("--user-data-dir=");
        user_data_flag.push(&user_data_dir);

        let mut cmd = Command::new(&exe);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--autoplay-policy=no-user-gesture-required",
            "--allow-loopback-in-peer-connection",
            "--remote-debugging-port=0",
            "--disable-features=Translate,OptimizationHints,MediaRouter",
            "--disable-default-apps",
        ])
        .arg(&user_data_flag)
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr));

        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&user_data_dir);
                return Err(e).with_context(|| format!("spawning {}", exe.display()));
            }
        };
        // From here on, dropping `process` kills Chromium and cleans up.
        let mut process = ChromiumProcess {
            child,
            user_data_dir,
        };

        let ws_url = wait_for_devtools_url(&mut process).await?;
        let ws = match tokio_tungstenite::connect_async(ws_url.as_str()).await {
            Ok((ws, _response)) => ws,
            Err(e) => bail!(
                "connecting to Chromium DevTools at {ws_url}: {e}; Chromium stderr tail:\n{}",
                stderr_tail(&process.user_data_dir, STDERR_TAIL_LINES)
            ),
        };

        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(1),
        });
        let (out, out_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run_connection(ws, out_rx, Arc::clone(&shared)));

        Ok(Browser {
            conn: Conn { shared, out },
            task,
            process,
        })
    }

    /// Opens a new tab at `url` and attaches to it (flattened session).
    /// Returns as soon as the tab exists: the navigation may still be in
    /// progress, so wait for a condition (e.g. `document.readyState`)
    /// before relying on the page.
    pub async fn new_page(&self, url: &str) -> anyhow::Result<Page> {
        let created = self
            .conn
            .call(None, "Target.createTarget", json!({ "url": url }))
            .await?;
        let target_id = created
            .get("targetId")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("Target.createTarget returned no targetId: {created}"))?
            .to_owned();

        let attached = match self
            .conn
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await
        {
            Ok(v) => v,
            Err(e) => {
                let _ = self
                    .conn
                    .call(None, "Target.closeTarget", json!({ "targetId": target_id }))
                    .await;
                return Err(e);
            }
        };
        let session_id = attached
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("Target.attachToTarget returned no sessionId: {attached}"))?
            .to_owned();

        Ok(Page {
            conn: self.conn.clone(),
            session_id,
            target_id,
        })
    }

    /// Sends a raw browser-level CDP command (no session) and returns its
    /// `result` object.
    pub async fn command(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.conn.call(None, method, params).await
    }

    /// The fresh profile directory (removed on drop).
    pub fn user_data_dir(&self) -> &Path {
        &self.process.user_data_dir
    }

    /// The file Chromium's stderr is written to (inside the profile dir).
    pub fn stderr_log_path(&self) -> PathBuf {
        self.process.user_data_dir.join(STDERR_FILE)
    }

    /// The last `max_lines` lines of Chromium's stderr, for failure messages.
    pub fn stderr_tail(&self, max_lines: usize) -> String {
        stderr_tail(&self.process.user_data_dir, max_lines)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.task.abort();
        // Wake anyone still waiting on a reply (Pages may outlive us).
        self.conn.shared.close("Browser dropped");
        // `self.process` is dropped after this: kills Chromium, waits for
        // it, removes the profile directory.
    }
}

/// Polls (every 50 ms, at most [`LAUNCH_TIMEOUT`]) for `DevToolsActivePort`
/// and returns the browser WebSocket URL.
async fn wait_for_devtools_url(process: &mut ChromiumProcess) -> anyhow::Result<String> {
    let port_file = process.user_data_dir.join("DevToolsActivePort");
    let deadline = Instant::now() + LAUNCH_TIMEOUT;
    loop {
        if let Ok(text) = tokio::fs::read_to_string(&port_file).await
            && let Some(url) = parse_devtools_active_port(&text)
        {
            return Ok(url);
        }
        if let Some(status) = process
            .child
            .try_wait()
            .context("polling the Chromium process")?
        {
            bail!(
                "Chromium exited ({status}) before writing DevToolsActivePort; stderr tail:\n{}",
                stderr_tail(&process.user_data_dir, STDERR_TAIL_LINES)
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "Chromium did not write {} within {LAUNCH_TIMEOUT:?}; stderr tail:\n{}",
                port_file.display(),
                stderr_tail(&process.user_data_dir, STDERR_TAIL_LINES)
            );
        }
        tokio::time::sleep(PORT_FILE_POLL).await;
    }
}

/// `DevToolsActivePort` is "<port>\n/devtools/browser/<uuid>". Returns `None`
/// for an incomplete (still being written) file.
fn parse_devtools_active_port(text: &str) -> Option<String> {
    const PREFIX: &str = "/devtools/browser/";
    let mut lines = text.lines();
    let port: u16 = lines.next()?.trim().parse().ok()?;
    let path = lines.next()?.trim();
    let id = path.strip_prefix(PREFIX)?;
    if port == 0 || id.len() < 36 {
        return None;
    }
    Some(format!("ws://127.0.0.1:{port}{path}"))
}

fn fresh_temp_dir() -> anyhow::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!(
            "samtale-chromium-{}-{nanos}-{n}",
            std::process::id()
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!(
        "could not create a fresh Chromium profile dir under {}",
        base.display()
    )
}

fn stderr_tail(dir: &Path, max_lines: usize) -> String {
    let path = dir.join(STDERR_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(max_lines);
            let tail = lines.get(start..).unwrap_or_default().join("\n");
            if tail.trim().is_empty() {
                format!("<{} is empty>", path.display())
            } else {
                tail
            }
        }
        Err(e) => format!("<could not read {}: {e}>", path.display()),
    }
}

// ---------------------------------------------------------------------------
// Page
// ---------------------------------------------------------------------------

/// One tab, driven through its flattened CDP session on the shared browser
/// connection. Cheap to keep around; not closed on drop (use [`Page::close`]
/// or drop the [`Browser`]).
pub struct Page {
    conn: Conn,
    session_id: String,
    target_id: String,
}

impl Page {
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    pub fn target_id(&self) -> &str {
        &self.target_id
    }

    /// Sends a raw CDP command on this page's session and returns its
    /// `result` object.
    pub async fn command(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.conn.call(Some(&self.session_id), method, params).await
    }

    /// `Runtime.evaluate` with `awaitPromise` and `returnByValue`: returns
    /// the (awaited) value as JSON. `undefined` becomes `null`; NaN/Infinity/
    /// -0/bigints come back as their string form. A thrown exception or a
    /// rejected promise becomes `Err` with the exception text.
    pub async fn eval(&self, expression: &str) -> anyhow::Result<Value> {
        let reply = self
            .command(
                "Runtime.evaluate",
                json!({
                    "expression": expression,
                    "awaitPromise": true,
                    "returnByValue": true,
                    "userGesture": true,
                }),
            )
            .await
            .with_context(|| format!("evaluating `{}`", shorten(expression, 200)))?;
        if let Some(details) = reply.get("exceptionDetails") {
            bail!(
                "JS exception evaluating `{}`: {}",
                shorten(expression, 200),
                describe_exception(details)
            );
        }
        let Some(result) = reply.get("result") else {
            return Ok(Value::Null);
        };
        if let Some(value) = result.get("value") {
            return Ok(value.clone());
        }
        if let Some(unserializable) = result.get("unserializableValue").and_then(Value::as_str) {
            return Ok(Value::String(unserializable.to_owned()));
        }
        Ok(Value::Null)
    }

    /// Polls `expression` every 200 ms until it evaluates to JSON `true`.
    /// Fails after `timeout` with `what` and the last value or error; fails
    /// early if the page/connection is gone.
    pub async fn wait_for(
        &self,
        what: &str,
        expression: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        self.wait_until(what, expression, timeout, |v| v.as_bool() == Some(true))
            .await
            .map(|_| ())
    }

    /// Polls `expression` every 200 ms until `pred` accepts its value and
    /// returns that value. Evaluation errors (e.g. the page is still
    /// navigating) are retried. The whole wait, including a slow evaluation,
    /// is bounded by `timeout`.
    pub async fn wait_until<F: Fn(&Value) -> bool>(
        &self,
        what: &str,
        expression: &str,
        timeout: Duration,
        pred: F,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("expression was never evaluated");
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            match tokio::time::timeout(remaining, self.eval(expression)).await {
                Ok(Ok(value)) => {
                    if pred(&value) {
                        return Ok(value);
                    }
                    last = format!("last value: {}", shorten(&value.to_string(), 2000));
                }
                Ok(Err(e)) => {
                    last = format!("last error: {}", shorten(&format!("{e:#}"), 2000));
                    if let Some(reason) = self.conn.shared.dead_reason(Some(&self.session_id)) {
                        bail!("waiting for {what}: page is gone ({reason}); {last}");
                    }
                }
                Err(_) => {
                    last = format!(
                        "an evaluation was still running at the deadline; before that, {last}"
                    );
                    break;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep_until(std::cmp::min(now + WAIT_POLL, deadline)).await;
        }
        bail!(
            "timed out after {timeout:?} waiting for {what} (`{}`); {last}",
            shorten(expression, 200)
        )
    }

    /// `Page.captureScreenshot` as PNG bytes.
    pub async fn screenshot_png(&self) -> anyhow::Result<Vec<u8>> {
        let reply = self
            .command("Page.captureScreenshot", json!({ "format": "png" }))
            .await?;
        let data = reply
            .get("data")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("Page.captureScreenshot returned no data"))?;
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .context("decoding the screenshot's base64")
    }

    /// Closes the tab (`Target.closeTarget`).
    pub async fn close(self) -> anyhow::Result<()> {
        let reply = self
            .conn
            .call(
                None,
                "Target.closeTarget",
                json!({ "targetId": self.target_id }),
            )
            .await?;
        if reply.get("success").and_then(Value::as_bool) == Some(false) {
            bail!("Target.closeTarget({}) reported failure", self.target_id);
        }
        Ok(())
    }
}

fn describe_exception(details: &Value) -> String {
    let text = details
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("exception");
    let exception = details.get("exception");
    let detail = exception
        .and_then(|e| e.get("description"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            exception
                .and_then(|e| e.get("value"))
                .map(|v| v.to_string())
        });
    match detail {
        Some(detail) => format!("{text}: {detail}"),
        None => text.to_owned(),
    }
}

/// Truncates `s` to at most `max` bytes (on a char boundary) for messages.
fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", s.get(..end).unwrap_or_default(), s.len())
}
