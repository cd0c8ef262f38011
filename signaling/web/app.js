/**
 * samtale web client — entry point (screens, controls, test hooks).
 *
 * Modules: app.js (this), call.js (signaling + RTCPeerConnection + reconnect),
 * tiles.js (video grid, remote audio, videoSize reports), media.js (capture).
 *
 * ============================ TEST HOOKS (stable) ============================
 * Used by headless-Chromium integration tests over the DevTools protocol.
 *
 * URL:  /?room=<id>[&options]#token=<room token>
 *   autojoin=1      join at once (name from `name=`, else the remembered one, else "Guest")
 *   name=<text>     display name to use (also prefills the pre-join field)
 *   fake=<colour>   send a canvas video track instead of the camera: the whole
 *                   frame is <colour> (any CSS colour; `%23rrggbb` or bare
 *                   `rrggbb` hex), with a small white square moving in the
 *                   top-left corner. Microphone audio is still captured, with
 *                   echo cancellation / noise suppression / AGC off.
 *   fakew=, fakeh=  canvas size (default 1280x720)
 *   rawaudio=1      microphone processing off without `fake`
 *   relay=1         iceTransportPolicy "relay" (TURN only)
 *   simulcast=0     publish one video encoding instead of the q/h/f layers
 *
 * window.samtale:
 *   state() → { participantId, roomId, wsState, pcState, iceState, joined,
 *               remoteIds: [...], activeSpeaker, phase, connectionLabel,
 *               serverMediaState, muted: {audio, video} }
 *       wsState: "none"|"connecting"|"open"|"closing"|"closed";
 *       pcState/iceState: RTCPeerConnection states, or "none";
 *       phase: "idle"|"connecting"|"joined"|"reconnecting"|"left"|"failed".
 *   async stats() → {
 *       remotes: { [participantId]: { name,
 *         video: { framesDecoded, frameWidth, frameHeight, bytesReceived,
 *                  marker: [r,g,b] | null },   // centre pixel of the <video>
 *         audio: { totalAudioEnergy, totalSamplesReceived, concealedSamples,
 *                  packetsReceived } } },     // zeros until media arrives
 *       selectedCandidatePairType: { local, remote } | null,  // candidateType
 *       local: { audio: [{rid, bytesSent, packetsSent}],
 *                video: [{rid, bytesSent, packetsSent, framesEncoded, frameWidth, frameHeight}] } | null }
 *   setVideoSize(participantId, w, h) → bool (sent now); pins that size and
 *       stops the automatic (ResizeObserver / tab-hidden) reports for it.
 *   leave()                      same as the Leave button
 *   restartIce() → bool          sends `restartIce` now (no rate limit)
 *   mute(kind, muted)            kind "audio"|"video", same as the buttons
 *   join(name?)                  joins (or rejoins) as from the pre-join panel
 *   events                       array of received server messages, oldest
 *       first: { type, t, participantId?, ... } — participantJoined /
 *       participantLeft / muted / activeSpeaker carry participantId; `joined`
 *       carries our participantId and `participants` (ids); also `reason`,
 *       `kind`/`muted`, `state`, `code`/`message`, `reconnectAfterMs`.
 *       `pong` is not logged; capped at the newest 5000 entries.
 *
 * DOM: #conn-state (text and data-state: "connecting" | "connected" |
 *   "reconnecting" | "disconnected" | "left"), #status-text, and one
 *   figure.tile[data-participant-id] per participant (the local one is
 *   "local"), with classes speaking / audio-muted / video-muted / no-video.
 * ============================================================================
 *
 * The room token is a secret: never log it.
 */

import { acquireLocalMedia } from "./media.js";
import { TileGrid } from "./tiles.js";
import { Call } from "./call.js";

const NAME_KEY = "samtale.displayName";
const ADMIN_KEY = "samtale.adminToken";
const DEFAULT_NAME = "Guest";
const MAX_NAME_LENGTH = 64;
const INFO_STATUS_MS = 5_000;

const $ = (id) => document.getElementById(id);

const config = readConfig();
const events = [];
const grid = new TileGrid($("tiles"), {
  sendVideoSize: (id, width, height) => call?.sendVideoSize(id, width, height) ?? false,
  onAudioBlocked: offerAudioUnblock,
});

/** @type {Call|null} */
let call = null;
/** @type {import("./media.js").LocalMedia|null} */
let media = null;
let joining = false;
let lastName = null;
let statusTimer;

// ---- configuration --------------------------------------------------------

function readConfig() {
  const query = new URLSearchParams(location.search);
  const hash = new URLSearchParams(location.hash.slice(1));
  return {
    room: query.get("room"),
    token: hash.get("token") || query.get("token"),
    autojoin: query.get("autojoin") === "1",
    name: query.get("name"),
    relayOnly: query.get("relay") === "1",
    simulcast: query.get("simulcast") !== "0",
    fakeColour: query.get("fake") || null,
    fakeWidth: positiveInt(query.get("fakew"), 1280),
    fakeHeight: positiveInt(query.get("fakeh"), 720),
    rawAudio: query.get("rawaudio") === "1",
  };
}

function positiveInt(text, fallback) {
  const n = Number.parseInt(text ?? "", 10);
  return Number.isFinite(n) && n > 0 && n <= 4096 ? n : fallback;
}

// ---- screens ----------------------------------------------------------------

const SCREENS = ["landing", "prejoin", "call", "ended"];

function showScreen(name) {
  for (const id of SCREENS) $(id).hidden = id !== name;
}

function setConnState(label) {
  const el = $("conn-state");
  el.textContent = label;
  el.dataset.state = label;
}

/** Shows a message in the status line; info messages fade after a while. */
function setStatus(text, level = "info", action = null) {
  clearTimeout(statusTimer);
  const el = $("status-text");
  el.textContent = text;
  el.dataset.level = level;
  const button = $("status-action");
  button.hidden = !action;
  if (action) {
    button.textContent = action.label;
    button.onclick = action.run;
  }
  if (text && level === "info" && !action) {
    statusTimer = setTimeout(() => setStatus(""), INFO_STATUS_MS);
  }
}

function showNotice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

// ---- landing: create a room -----------------------------------------------------

function showLanding() {
  showScreen("landing");
  setConnState("idle");
}

function onCreateSubmit(ev) {
  ev.preventDefault();
  const askedForToken = !$("admin-field").hidden;
  const token = askedForToken ? $("admin-token").value.trim() : readStored(sessionStorage, ADMIN_KEY);
  createRoom(token || null);
}

async function createRoom(adminToken) {
  const button = $("create-room");
  button.disabled = true;
  setStatus("Creating a room…");
  try {
    const headers = { "Content-Type": "application/json" };
    if (adminToken) headers.Authorization = `Bearer ${adminToken}`;
    const res = await fetch("/api/rooms", { method: "POST", headers, body: "{}" });
    if (res.status === 401 || (res.status === 403 && adminToken)) {
      askForAdminToken(Boolean(adminToken));
      return;
    }
    if (!res.ok) throw new Error(await httpErrorMessage(res));
    const body = await res.json();
    if (!body.joinUrl) throw new Error("the server answered without a join link");
    if (adminToken) writeStored(sessionStorage, ADMIN_KEY, adminToken);
    setStatus("Room created. Opening it…");
    location.assign(body.joinUrl);
  } catch (err) {
    setStatus(`Could not create a room: ${err.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

function askForAdminToken(rejected) {
  writeStored(sessionStorage, ADMIN_KEY, null);
  $("admin-field").hidden = false;
  $("create-room").textContent = "Create room";
  $("admin-token").focus();
  setStatus(rejected ? "That admin token was not accepted." : "Enter the admin token to create a room.", rejected ? "error" : "warn");
}

async function httpErrorMessage(res) {
  try {
    const body = await res.json();
    return body?.error?.message || body?.error?.code || `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}

// ---- pre-join ---------------------------------------------------------------

function showPrejoin() {
  showScreen("prejoin");
  setConnState("idle");
  $("prejoin-room").textContent = `Room ${config.room}`;
  const input = $("display-name");
  if (!input.value) input.value = config.name || readStored(localStorage, NAME_KEY) || "";
  input.focus();
}

function onJoinSubmit(ev) {
  ev.preventDefault();
  join($("display-name").value, { audio: !$("join-mic").checked, video: !$("join-cam").checked });
}

function cleanName(name) {
  const trimmed = String(name ?? "").trim().replace(/\s+/g, " ");
  return [...trimmed].slice(0, MAX_NAME_LENGTH).join("") || DEFAULT_NAME;
}

// ---- the call ---------------------------------------------------------------

/** Captures media and joins the room (also used to rejoin). */
async function join(rawName, startMuted = { audio: false, video: false }) {
  if (joining || (call && ["connecting", "joined", "reconnecting"].includes(call.phase))) return;
  joining = true;
  const name = cleanName(rawName ?? lastName ?? config.name ?? readStored(localStorage, NAME_KEY));
  lastName = name;
  writeStored(localStorage, NAME_KEY, name);
  showScreen("call");
  setConnState("connecting");
  setStatus("Starting microphone and camera…");
  try {
    const { fakeColour, fakeWidth, fakeHeight, rawAudio } = config;
    media = await acquireLocalMedia({ fakeColour, fakeWidth, fakeHeight, rawAudio, name });
  } catch (err) {
    joining = false;
    setStatus(`Could not start microphone or camera: ${err.message}`, "error");
    showPrejoin();
    return;
  }
  showNotice(media.warnings.join(" "));
  grid.setLocal(media, name);
  call = new Call({
    token: config.token,
    name,
    media,
    grid,
    events,
    options: { relayOnly: config.relayOnly, simulcast: config.simulcast, startMuted },
    ui: { onChange: render, onStatus: setStatus, onEnded: showEnded },
  });
  joining = false;
  setStatus("Connecting…");
  call.start();
  render();
}

/** Reflects the call state in the top bar and the control buttons. */
function render() {
  if (!call) return;
  setConnState(call.connectionLabel());
  const count = call.participants.size + 1;
  $("room-label").textContent = call.roomId
    ? `Room ${call.roomId} · ${count} ${count === 1 ? "person" : "people"}`
    : `Room ${config.room ?? ""}`;
  renderToggle($("btn-mic"), call.muted.audio, ["Mute", "Mute microphone"], ["Unmute", "Unmute microphone"]);
  renderToggle($("btn-cam"), call.muted.video, ["Stop video", "Turn camera off"], ["Start video", "Turn camera on"]);
}

function renderToggle(button, off, [onText, onLabel], [offText, offLabel]) {
  button.classList.toggle("off", off);
  button.querySelector(".control-text").textContent = off ? offText : onText;
  button.setAttribute("aria-label", off ? offLabel : onLabel);
}

function showEnded(kind, message) {
  media?.stop();
  media = null;
  grid.clear();
  showNotice("");
  render();
  showScreen("ended");
  $("ended-title").textContent = kind === "left" ? "You left" : "Disconnected";
  $("ended-message").textContent = kind === "left" ? "You left the call." : message;
  setStatus(kind === "left" ? "" : message, kind === "left" ? "info" : "error");
  $("btn-rejoin").focus();
}

function wireControls() {
  $("create-form").addEventListener("submit", onCreateSubmit);
  $("join-form").addEventListener("submit", onJoinSubmit);
  $("btn-mic").addEventListener("click", () => toggleMute("audio"));
  $("btn-cam").addEventListener("click", () => toggleMute("video"));
  $("btn-invite").addEventListener("click", copyInvite);
  $("btn-leave").addEventListener("click", () => call?.leave());
  $("btn-rejoin").addEventListener("click", () => {
    const muted = call ? { ...call.muted } : undefined;
    join(lastName, muted);
  });
  // Leaving the page: tell the server now instead of letting it time out.
  window.addEventListener("pagehide", () => call?.leave());
}

function toggleMute(kind) {
  if (!call || !media) return;
  call.setMuted(kind, !call.muted[kind]);
  render();
}

function inviteLink() {
  const url = new URL("/", location.href);
  url.searchParams.set("room", call?.roomId || config.room);
  url.hash = `token=${config.token}`;
  return url.href;
}

async function copyInvite() {
  const link = inviteLink();
  try {
    await navigator.clipboard.writeText(link);
    setStatus("Invite link copied.");
  } catch {
    if (copyWithSelection(link)) setStatus("Invite link copied.");
    else window.prompt("Copy this invite link:", link);
  }
}

/** Clipboard fallback for insecure origins. */
function copyWithSelection(text) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  let copied = false;
  try {
    copied = document.execCommand("copy");
  } catch {
    copied = false;
  }
  area.remove();
  return copied;
}

function offerAudioUnblock() {
  setStatus("The browser blocked sound.", "warn", {
    label: "Enable sound",
    run: () =>
      grid.resumeAudio().then(
        () => setStatus("Sound enabled."),
        (err) => setStatus(`Could not play sound: ${err.message}`, "error"),
      ),
  });
}

// ---- storage (may be unavailable, e.g. in private mode) ------------------------

function readStored(storage, key) {
  try {
    return storage.getItem(key);
  } catch {
    return null;
  }
}

function writeStored(storage, key, value) {
  try {
    if (value === null) storage.removeItem(key);
    else storage.setItem(key, value);
  } catch {
    // Not remembering is fine.
  }
}

// ---- test hooks -------------------------------------------------------------

function idleState() {
  return {
    participantId: null, roomId: config.room, wsState: "none", pcState: "none", iceState: "none",
    joined: false, remoteIds: [], activeSpeaker: null, phase: "idle", connectionLabel: "idle",
    serverMediaState: null, muted: { audio: false, video: false },
  };
}

window.samtale = Object.freeze({
  events,
  state: () => (call ? call.state() : idleState()),
  stats: async () => (call ? call.stats() : { remotes: {}, selectedCandidatePairType: null, local: null }),
  setVideoSize: (participantId, width, height) => grid.pinSize(participantId, width, height),
  leave: () => call?.leave(),
  restartIce: () => call?.restartIce() ?? false,
  mute: (kind, muted) => {
    if (!call) return;
    call.setMuted(kind, muted);
    render();
  },
  join: (name) => join(name),
});

// ---- start ------------------------------------------------------------------

function main() {
  wireControls();
  if (!config.room) {
    showLanding();
  } else if (!config.token) {
    showScreen("ended");
    $("ended-title").textContent = "Invalid link";
    $("ended-message").textContent = "This invite link has no access token. Ask for the full link.";
    $("btn-rejoin").hidden = true;
  } else if (config.autojoin) {
    join(config.name);
  } else {
    showPrejoin();
  }
}

main();
