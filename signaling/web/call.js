// One call: the signaling WebSocket, the RTCPeerConnection to the SFU, the
// negotiation chain and the reconnect policy. See docs/PROTOCOL.md.

import { SIMULCAST_ENCODINGS, SINGLE_ENCODING, simulcastLayers } from "./media.js";
import { LOCAL_TILE } from "./tiles.js";

const RESTART_ICE_MIN_INTERVAL_MS = 5_000;
const ICE_GIVE_UP_MS = 30_000; // ICE down this long despite restarts: rejoin from scratch
const WATCHDOG_INTERVAL_MS = 5_000;
const PING_INTERVAL_MS = 15_000;
const PONG_TIMEOUT_MS = 10_000; // nothing at all from the server this long after a ping: dead socket
const JOIN_TIMEOUT_MS = 15_000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 8_000;
const MAX_RECONNECT_ATTEMPTS = 10;
const MAX_EVENTS = 5_000;
const FATAL_CODES = new Set(["invalid-token", "expired-token", "room-full"]);

// ---- end-to-end encryption seam ----------------------------------------------
//
// The SFrame transform plugs in here: each function will attach an
// RTCRtpScriptTransform (a worker that encrypts outgoing / decrypts incoming
// encoded frames with the room key) to the sender or receiver. The peer
// connection is deliberately created WITHOUT `encodedInsertableStreams`, which
// RTCRtpScriptTransform does not need.

/** Called once for every RTCRtpSender we publish with. */
export function setupSender(sender) {
  void sender; // E2EE: sender.transform = new RTCRtpScriptTransform(worker, { op: "encrypt" })
}

/** Called for every RTCRtpReceiver, with the publisher's participant id. */
export function setupReceiver(receiver, participantId) {
  void receiver; // E2EE: receiver.transform = new RTCRtpScriptTransform(worker, { op: "decrypt", participantId })
  void participantId;
}

/** Creates the peer connection to the SFU (ICE-lite, bundled, no trickle). */
export function createPeerConnection(iceServers, { relayOnly }) {
  const config = { iceServers: normaliseIceServers(iceServers), bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" };
  if (relayOnly) config.iceTransportPolicy = "relay";
  try {
    return { pc: new RTCPeerConnection(config), warning: null };
  } catch (err) {
    // A malformed ICE server entry must not keep us out of the call.
    if (!config.iceServers.length) throw err;
    config.iceServers = [];
    return { pc: new RTCPeerConnection(config), warning: `Ignoring unusable ICE servers (${err.message}).` };
  }
}

function normaliseIceServers(list) {
  if (!Array.isArray(list)) return [];
  return list
    .filter((s) => s && s.urls && (!Array.isArray(s.urls) || s.urls.length))
    .map((s) => {
      const server = { urls: s.urls };
      if (s.username != null) server.username = s.username;
      if (s.credential != null) server.credential = s.credential;
      return server;
    });
}

// ---- the call ----------------------------------------------------------------

/**
 * Phases: "connecting" (first WebSocket, before `joined`), "joined",
 * "reconnecting", "left", "failed" (fatal error or gave up).
 */
export class Call {
  phase = "connecting";
  participantId = null;
  roomId = null;
  activeSpeaker = null;
  /** The SFU's view of our media path (`connectionState` message). */
  serverMediaState = null;
  /** @type {Map<string, {id:string,name:string,audioMuted:boolean,videoMuted:boolean}>} */
  participants = new Map();
  muted = { audio: false, video: false };

  #token;
  #name;
  #media;
  #grid;
  #ui;
  #options;
  #events;
  /** @type {Session|null} */
  #session = null;
  #attempts = 0;
  #retryTimer = undefined;
  /** receiver track id → publisher participant id (from ontrack) */
  #trackOwners = new Map();
  /** participants that left; late tracks for them must not resurrect a tile */
  #departed = new Set();

  /**
   * @param {object} args
   * @param {string} args.token      room token (never logged)
   * @param {string} args.name       display name
   * @param {import("./media.js").LocalMedia} args.media
   * @param {import("./tiles.js").TileGrid} args.grid
   * @param {{relayOnly:boolean, simulcast:boolean, startMuted:{audio:boolean,video:boolean}}} args.options
   * @param {Array<object>} args.events  log of received server messages (test hook)
   * @param {object} args.ui  { onChange(), onStatus(text, level), onEnded(kind, message) }
   */
  constructor({ token, name, media, grid, options, events, ui }) {
    this.#token = token;
    this.#name = name;
    this.#media = media;
    this.#grid = grid;
    this.#options = options;
    this.#events = events;
    this.#ui = ui;
    for (const kind of ["audio", "video"]) this.#applyMute(kind, Boolean(options.startMuted?.[kind]));
  }

  start() {
    this.#connect();
  }

  /** Leaves the room for good (no reconnect). */
  leave() {
    if (this.phase === "left" || this.phase === "failed") return;
    clearTimeout(this.#retryTimer);
    const session = this.#session;
    if (session?.joined) this.#send(session, { type: "leave" });
    this.#teardown(session);
    this.phase = "left";
    this.#resetRoster();
    this.#changed();
    this.#ui.onEnded("left", "You left the call.");
  }

  /** Mutes or unmutes the microphone or camera and tells the others. */
  setMuted(kind, muted) {
    if (kind !== "audio" && kind !== "video") throw new TypeError(`unknown kind ${kind}`);
    this.#applyMute(kind, Boolean(muted));
    if (this.#session?.joined) this.#send(this.#session, { type: "mute", kind, muted: Boolean(muted) });
    this.#changed();
  }

  /** Asks the server for an ICE restart now (no rate limit). */
  restartIce() {
    const session = this.#session;
    if (!session?.joined) return false;
    session.lastRestartIce = Date.now();
    return this.#send(session, { type: "restartIce" });
  }

  /** Sends `videoSize`; false when there is no joined connection to send it on. */
  sendVideoSize(participantId, width, height) {
    const session = this.#session;
    if (!session?.joined) return false;
    return this.#send(session, { type: "videoSize", participantId, width, height });
  }

  /** The label for #conn-state. */
  connectionLabel() {
    switch (this.phase) {
      case "left":
        return "left";
      case "failed":
        return "disconnected";
      case "reconnecting":
        return "reconnecting";
      case "connecting":
        return "connecting";
      default:
        break;
    }
    const pc = this.#session?.pc;
    switch (pc?.connectionState) {
      case "connected":
        return "connected";
      case "disconnected":
      case "failed":
        return "reconnecting";
      case "closed":
        return "disconnected";
      default:
        return "connecting";
    }
  }

  state() {
    const session = this.#session;
    return {
      participantId: this.participantId,
      roomId: this.roomId,
      wsState: wsStateName(session?.ws),
      pcState: session?.pc?.connectionState ?? "none",
      iceState: session?.pc?.iceConnectionState ?? "none",
      joined: Boolean(session?.joined) && this.phase === "joined",
      remoteIds: [...this.participants.keys()],
      activeSpeaker: this.activeSpeaker,
      phase: this.phase,
      connectionLabel: this.connectionLabel(),
      serverMediaState: this.serverMediaState,
      muted: { ...this.muted },
    };
  }

  /** Receive statistics per remote participant (see the top of app.js). */
  async stats() {
    const remotes = {};
    for (const [id, p] of this.participants) {
      remotes[id] = { name: p.name, video: emptyVideoStats(), audio: emptyAudioStats() };
    }
    const pc = this.#session?.pc;
    if (!pc || pc.connectionState === "closed") {
      return { remotes, selectedCandidatePairType: null, local: null };
    }
    for (const transceiver of pc.getTransceivers()) {
      await this.#collectReceiverStats(transceiver, remotes);
    }
    for (const [id, remote] of Object.entries(remotes)) remote.video.marker = this.#grid.marker(id);
    const report = await pc.getStats();
    return { remotes, selectedCandidatePairType: selectedPairTypes(report), local: outboundStats(report) };
  }

  // ---- connection lifecycle ----------------------------------------------------

  #connect() {
    let ws;
    try {
      ws = new WebSocket(webSocketUrl());
    } catch (err) {
      this.#ui.onStatus(`Cannot open the signaling connection: ${err.message}`, "error");
      this.#scheduleReconnect();
      return;
    }
    /** @type {Session} */
    const session = {
      ws, pc: null, chain: Promise.resolve(), joined: false, closed: false,
      lastRestartIce: 0, lastMessageAt: Date.now(), pingSentAt: 0, iceDownSince: 0, timers: [],
    };
    this.#session = session;
    ws.addEventListener("open", () => this.#onSocketOpen(session));
    ws.addEventListener("message", (ev) => this.#onSocketMessage(session, ev));
    ws.addEventListener("close", (ev) => this.#onSocketClose(session, ev));
    this.#changed();
  }

  #onSocketOpen(session) {
    if (session.closed) return;
    console.debug("signaling: open, joining");
    this.#send(session, { type: "join", token: this.#token, name: this.#name });
    session.timers.push(setTimeout(() => {
      if (!session.joined) this.#abandon(session, "no `joined` in time");
    }, JOIN_TIMEOUT_MS));
    this.#changed();
  }

  #onSocketClose(session, ev) {
    if (session.closed || session !== this.#session) return;
    console.debug("signaling: closed", ev.code, ev.reason);
    this.#teardown(session);
    if (this.phase === "left" || this.phase === "failed") return;
    this.#scheduleReconnect();
  }

  /** Gives up on a connection that looks dead and starts over with a new one. */
  #abandon(session, why) {
    if (session.closed || session !== this.#session) return;
    console.debug("signaling: abandoning the connection:", why);
    this.#teardown(session);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(delayMs) {
    if (this.#attempts >= MAX_RECONNECT_ATTEMPTS) {
      this.#fail("Lost the connection to the server and could not reconnect.");
      return;
    }
    const delay = delayMs ?? Math.min(BACKOFF_FIRST_MS * 2 ** this.#attempts, BACKOFF_MAX_MS);
    this.#attempts += 1;
    this.phase = "reconnecting";
    if (delayMs === undefined) {
      this.#ui.onStatus(`Connection lost. Reconnecting (attempt ${this.#attempts} of ${MAX_RECONNECT_ATTEMPTS})…`, "warn");
    }
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
    this.#changed();
  }

  /** Closes one session's socket and peer connection; its late events are ignored. */
  #teardown(session) {
    if (!session || session.closed) return;
    session.closed = true;
    session.joined = false;
    for (const timer of session.timers) clearInterval(timer); // timeouts and intervals share one id pool
    session.pc?.close();
    if (session.ws.readyState <= WebSocket.OPEN) session.ws.close(1000, "client closing");
    this.#trackOwners.clear();
    this.#grid.clearRemoteMedia();
    this.#changed();
  }

  #fail(message) {
    clearTimeout(this.#retryTimer);
    this.#teardown(this.#session);
    this.phase = "failed";
    this.#resetRoster();
    this.#changed();
    this.#ui.onEnded("failed", message);
  }

  #resetRoster() {
    for (const id of this.participants.keys()) this.#grid.removeRemote(id);
    this.participants.clear();
    this.activeSpeaker = null;
    this.#grid.setSpeaker(null);
  }

  // ---- signaling messages ------------------------------------------------------

  #send(session, message) {
    if (session.closed || session.ws.readyState !== WebSocket.OPEN) return false;
    session.ws.send(JSON.stringify(message));
    return true;
  }

  #onSocketMessage(session, ev) {
    if (session.closed) return;
    session.lastMessageAt = Date.now();
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      this.#ui.onStatus("The server sent an unreadable message.", "warn");
      return;
    }
    if (!msg || typeof msg.type !== "string") return;
    this.#logEvent(msg);
    try {
      this.#dispatch(session, msg);
    } catch (err) {
      this.#ui.onStatus(`Could not handle "${msg.type}": ${err.message}`, "error");
    }
  }

  #dispatch(session, msg) {
    switch (msg.type) {
      case "joined":
        return this.#onJoined(session, msg);
      case "answer":
        return this.#enqueue(session, "apply answer", () => this.#applyAnswer(session, msg.sdp));
      case "offer":
        return this.#enqueue(session, "answer server offer", () => this.#answerOffer(session, msg.sdp));
      case "participantJoined":
        return this.#onParticipantJoined(msg.participant);
      case "participantLeft":
        return this.#onParticipantLeft(msg.participantId);
      case "muted":
        return this.#onMuted(msg);
      case "activeSpeaker":
        this.activeSpeaker = msg.participantId ?? null;
        this.#grid.setSpeaker(this.activeSpeaker);
        return this.#changed();
      case "connectionState":
        this.serverMediaState = msg.state ?? null;
        return this.#changed();
      case "error":
        return this.#onError(msg);
      case "shutdown":
        return this.#onShutdown(session, msg);
      case "pong":
        return undefined;
      default:
        console.debug("signaling: ignoring unknown message type", msg.type);
        return undefined;
    }
  }

  #onJoined(session, msg) {
    if (session.joined) return; // one `joined` per connection
    session.joined = true;
    this.phase = "joined";
    this.#attempts = 0;
    this.participantId = msg.participantId;
    this.roomId = msg.roomId;
    this.activeSpeaker = null;
    this.serverMediaState = null;
    this.#departed.clear();
    this.#grid.setLocalId(this.participantId);
    this.#grid.setSpeaker(null);
    this.#syncRoster(Array.isArray(msg.participants) ? msg.participants : []);
    this.#ui.onStatus("", "info");

    try {
      const { pc, warning } = createPeerConnection(msg.iceServers, { relayOnly: this.#options.relayOnly });
      if (warning) this.#ui.onStatus(warning, "warn");
      session.pc = pc;
      this.#wirePeerConnection(session, pc);
      this.#addLocalTracks(pc);
    } catch (err) {
      this.#fail(`This browser cannot start the media connection: ${err.message}`);
      return;
    }
    this.#enqueue(session, "initial offer", () => this.#sendInitialOffer(session));

    for (const kind of ["audio", "video"]) {
      if (this.muted[kind]) this.#send(session, { type: "mute", kind, muted: true });
    }
    this.#grid.resendSizes();
    this.#startTimers(session);
    this.#changed();
  }

  /** Makes the tiles match the server's participant list (after a (re)join). */
  #syncRoster(list) {
    const ids = new Set(list.map((p) => p.id));
    for (const id of [...this.participants.keys()]) {
      if (!ids.has(id)) this.#onParticipantLeft(id);
    }
    for (const p of list) this.#onParticipantJoined(p);
  }

  #onParticipantJoined(p) {
    if (!p || !p.id || p.id === this.participantId) return;
    this.#departed.delete(p.id);
    const entry = { id: p.id, name: p.name || "Participant", audioMuted: Boolean(p.audioMuted), videoMuted: Boolean(p.videoMuted) };
    this.participants.set(p.id, entry);
    this.#grid.ensureRemote(p.id, entry.name);
    this.#grid.setMuted(p.id, "audio", entry.audioMuted);
    this.#grid.setMuted(p.id, "video", entry.videoMuted);
    this.#changed();
  }

  #onParticipantLeft(id) {
    if (!id) return;
    this.participants.delete(id);
    this.#departed.add(id);
    for (const [trackId, owner] of this.#trackOwners) if (owner === id) this.#trackOwners.delete(trackId);
    this.#grid.removeRemote(id);
    if (this.activeSpeaker === id) {
      this.activeSpeaker = null;
      this.#grid.setSpeaker(null);
    }
    this.#changed();
  }

  #onMuted({ participantId, kind, muted }) {
    if (kind !== "audio" && kind !== "video") return;
    const p = this.participants.get(participantId);
    if (p) p[kind === "audio" ? "audioMuted" : "videoMuted"] = Boolean(muted);
    if (participantId !== this.participantId) this.#grid.setMuted(participantId, kind, muted);
    this.#changed();
  }

  #onError({ code = "", message = "" }) {
    const text = message || code || "unknown error";
    if (code.startsWith("fatal-") || FATAL_CODES.has(code)) {
      this.#fail(describeFatal(code, text));
      return;
    }
    this.#ui.onStatus(`Server: ${text}`, "error");
  }

  #onShutdown(session, msg) {
    const delay = clamp(Number(msg.reconnectAfterMs) || 1_000, 0, 60_000);
    this.#teardown(session);
    this.#attempts = 0;
    this.#ui.onStatus(`Server restarting — reconnecting in ${Math.ceil(delay / 1000)} s…`, "warn");
    this.#scheduleReconnect(delay);
  }

  #logEvent(msg) {
    if (msg.type === "pong") return;
    const event = { type: msg.type, t: Date.now() };
    const participantId = msg.participantId ?? msg.participant?.id;
    if (participantId !== undefined) event.participantId = participantId;
    if (msg.type === "joined") event.participants = (msg.participants || []).map((p) => p.id);
    if (msg.type === "participantLeft") event.reason = msg.reason;
    if (msg.type === "muted") Object.assign(event, { kind: msg.kind, muted: msg.muted });
    if (msg.type === "connectionState") event.state = msg.state;
    if (msg.type === "error") Object.assign(event, { code: msg.code, message: msg.message });
    if (msg.type === "shutdown") Object.assign(event, { reason: msg.reason, reconnectAfterMs: msg.reconnectAfterMs });
    this.#events.push(event);
    if (this.#events.length > MAX_EVENTS) this.#events.splice(0, this.#events.length - MAX_EVENTS);
  }

  // ---- negotiation -------------------------------------------------------------

  /** Runs negotiation steps strictly one after another, in message order. */
  #enqueue(session, what, step) {
    session.chain = session.chain
      .then(() => {
        if (session.closed) return undefined;
        console.debug("negotiation:", what);
        return step();
      })
      .catch((err) => {
        if (session.closed) return;
        this.#ui.onStatus(`Negotiation failed (${what}): ${err.message}`, "error");
      });
  }

  #addLocalTracks(pc) {
    const streams = [this.#media.stream];
    const audio = pc.addTransceiver(this.#media.audioTrack, { direction: "sendonly", streams });
    setupSender(audio.sender);
    const sendEncodings = this.#options.simulcast
      ? SIMULCAST_ENCODINGS.map((e) => ({ ...e }))
      : [{ ...SINGLE_ENCODING }];
    const video = pc.addTransceiver(this.#media.videoTrack, { direction: "sendonly", streams, sendEncodings });
    setupSender(video.sender);
  }

  async #sendInitialOffer(session) {
    const offer = await session.pc.createOffer();
    await session.pc.setLocalDescription(offer);
    this.#send(session, { type: "offer", sdp: session.pc.localDescription.sdp });
    this.#sendLayers(session);
  }

  #sendLayers(session) {
    if (!this.#options.simulcast) return;
    const layers = simulcastLayers(this.#media);
    if (layers) this.#send(session, { type: "layers", layers });
  }

  async #applyAnswer(session, sdp) {
    if (session.pc.signalingState !== "have-local-offer") {
      console.debug("negotiation: ignoring answer in state", session.pc.signalingState);
      return;
    }
    await session.pc.setRemoteDescription({ type: "answer", sdp });
  }

  async #answerOffer(session, sdp) {
    const pc = session.pc;
    if (!pc) throw new Error("offer before the peer connection exists");
    // In "have-local-offer" this rolls our offer back implicitly: the server leads.
    await pc.setRemoteDescription({ type: "offer", sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.#send(session, { type: "answer", sdp: pc.localDescription.sdp });
  }

  // ---- peer connection events --------------------------------------------------

  #wirePeerConnection(session, pc) {
    pc.addEventListener("track", (ev) => this.#onTrack(session, ev));
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "connected") this.#ui.onStatus("", "info");
      this.#changed();
    });
    pc.addEventListener("iceconnectionstatechange", () => {
      console.debug("ice:", pc.iceConnectionState);
      this.#maybeRestartIce(session);
      this.#changed();
    });
  }

  /** Sends `restartIce` when ICE is down, at most once per 5 s. */
  #maybeRestartIce(session) {
    const ice = session.pc?.iceConnectionState;
    if (session.closed || !session.joined || (ice !== "disconnected" && ice !== "failed")) return;
    if (Date.now() - session.lastRestartIce < RESTART_ICE_MIN_INTERVAL_MS) return;
    console.debug("ice: requesting a restart");
    session.lastRestartIce = Date.now();
    this.#send(session, { type: "restartIce" });
  }

  #onTrack(session, ev) {
    if (session.closed) return;
    const stream = ev.streams[0];
    const participantId = stream?.id;
    if (!participantId || participantId === this.participantId) {
      console.debug("ontrack: track without a publisher id, ignored");
      return;
    }
    setupReceiver(ev.receiver, participantId);
    const track = ev.track;
    const previous = this.#trackOwners.get(track.id);
    if (previous && previous !== participantId) this.#grid.detachTrack(previous, track);
    this.#trackOwners.set(track.id, participantId);

    if (this.#departed.has(participantId)) return;
    if (!this.participants.has(participantId)) {
      // The track arrived before `participantJoined`: show it under a placeholder name.
      this.participants.set(participantId, { id: participantId, name: "Participant", audioMuted: false, videoMuted: false });
      this.#grid.ensureRemote(participantId, "Participant");
    }
    this.#grid.attachTrack(participantId, track);
    stream.onremovetrack = (e) => {
      if (this.#trackOwners.get(e.track.id) !== participantId) return;
      this.#trackOwners.delete(e.track.id);
      this.#grid.detachTrack(participantId, e.track);
    };
    this.#changed();
  }

  #startTimers(session) {
    session.timers.push(setInterval(() => this.#keepAlive(session), PING_INTERVAL_MS));
    // ICE may stay down without a state change (e.g. the restart offer was lost).
    session.timers.push(setInterval(() => this.#watchIce(session), WATCHDOG_INTERVAL_MS));
  }

  /**
   * Pings the server; when not even the previous ping got any reply, the
   * socket is dead. (Measured from the ping, not wall time, so throttled
   * timers in a background tab cannot cause false alarms.)
   */
  #keepAlive(session) {
    if (session.closed) return;
    const now = Date.now();
    if (session.pingSentAt && session.lastMessageAt < session.pingSentAt && now - session.pingSentAt > PONG_TIMEOUT_MS) {
      this.#abandon(session, "no reply to ping");
      return;
    }
    if (session.lastMessageAt >= session.pingSentAt) session.pingSentAt = now;
    this.#send(session, { type: "ping" });
  }

  #watchIce(session) {
    if (session.closed || !session.pc) return;
    const ice = session.pc.iceConnectionState;
    if (ice !== "disconnected" && ice !== "failed") {
      session.iceDownSince = 0;
      return;
    }
    session.iceDownSince ||= Date.now();
    if (Date.now() - session.iceDownSince > ICE_GIVE_UP_MS) {
      this.#abandon(session, "ICE still down after restarts");
      return;
    }
    this.#maybeRestartIce(session);
  }

  // ---- helpers -----------------------------------------------------------------

  #applyMute(kind, muted) {
    this.muted[kind] = muted;
    this.#media.track(kind).enabled = !muted;
    this.#grid.setMuted(LOCAL_TILE, kind, muted);
  }

  async #collectReceiverStats(transceiver, remotes) {
    if (transceiver.currentDirection === "stopped" || !transceiver.receiver?.track) return;
    const track = transceiver.receiver.track;
    const owner = this.#trackOwners.get(track.id);
    if (!owner || !remotes[owner]) return;
    const report = await transceiver.receiver.getStats();
    report.forEach((s) => {
      if (s.type !== "inbound-rtp" || s.kind !== track.kind) return;
      const target = remotes[owner][track.kind];
      if (track.kind === "video") {
        if ((s.bytesReceived ?? 0) < target.bytesReceived) return;
        Object.assign(target, {
          framesDecoded: s.framesDecoded ?? 0,
          frameWidth: s.frameWidth ?? 0,
          frameHeight: s.frameHeight ?? 0,
          bytesReceived: s.bytesReceived ?? 0,
        });
      } else {
        if ((s.packetsReceived ?? 0) < target.packetsReceived) return;
        Object.assign(target, {
          totalAudioEnergy: s.totalAudioEnergy ?? 0,
          totalSamplesReceived: s.totalSamplesReceived ?? 0,
          concealedSamples: s.concealedSamples ?? 0,
          packetsReceived: s.packetsReceived ?? 0,
        });
      }
    });
  }

  #changed() {
    this.#ui.onChange();
  }
}

/**
 * @typedef {object} Session  one WebSocket + its peer connection
 * @property {WebSocket} ws
 * @property {RTCPeerConnection|null} pc
 * @property {Promise<void>} chain      negotiation steps, in order
 * @property {boolean} joined
 * @property {boolean} closed           torn down: ignore its events
 * @property {number} lastRestartIce
 * @property {number} lastMessageAt
 * @property {number} pingSentAt       the oldest ping still waiting for a reply (0 = none yet)
 * @property {number} iceDownSince     when ICE went down (0 = up)
 * @property {Array<number>} timers
 */

function webSocketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

function wsStateName(ws) {
  if (!ws) return "none";
  return ["connecting", "open", "closing", "closed"][ws.readyState] ?? "unknown";
}

function describeFatal(code, message) {
  switch (code) {
    case "invalid-token":
      return `This invite link is not valid (${message}).`;
    case "expired-token":
      return "This invite link has expired. Ask for a new one.";
    case "room-full":
      return "This room is full.";
    default:
      return `The server ended the call: ${message}`;
  }
}

function emptyVideoStats() {
  return { framesDecoded: 0, frameWidth: 0, frameHeight: 0, bytesReceived: 0, marker: null };
}

function emptyAudioStats() {
  return { totalAudioEnergy: 0, totalSamplesReceived: 0, concealedSamples: 0, packetsReceived: 0 };
}

/** {local, remote} candidate types of the selected pair, or null. */
function selectedPairTypes(report) {
  let pair = null;
  report.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) ?? pair;
  });
  if (!pair) {
    report.forEach((s) => {
      if (!pair && s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
    });
  }
  if (!pair) return null;
  return {
    local: report.get(pair.localCandidateId)?.candidateType ?? null,
    remote: report.get(pair.remoteCandidateId)?.candidateType ?? null,
  };
}

/** What we send: one entry per outbound stream (per simulcast layer for video). */
function outboundStats(report) {
  const audio = [];
  const video = [];
  report.forEach((s) => {
    if (s.type !== "outbound-rtp") return;
    const base = { rid: s.rid ?? null, bytesSent: s.bytesSent ?? 0, packetsSent: s.packetsSent ?? 0 };
    if (s.kind === "video") {
      video.push({ ...base, framesEncoded: s.framesEncoded ?? 0, frameWidth: s.frameWidth ?? 0, frameHeight: s.frameHeight ?? 0 });
    } else if (s.kind === "audio") {
      audio.push(base);
    }
  });
  return { audio, video };
}

function clamp(value, min, max) {
  return Math.min(max, Math.max(min, value));
}
