// The video grid: one tile per participant (plus the local preview), remote
// audio playback, and the `videoSize` reports that let the SFU pick a
// simulcast layer for each tile.

const SIZE_DEBOUNCE_MS = 300;
const GRID_GAP_PX = 8; // keep in step with --gap in style.css
const MIN_TILE_WIDTH_PX = 200;
const ASPECT = 16 / 9;
export const LOCAL_TILE = "local";

const ICON_MIC_OFF =
  '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-8.3 3.7l-1.4 1.4A7 7 0 0 0 11 17.9V21h2v-3.1A7 7 0 0 0 19 11zM3.3 3.3 2 4.6l18 18 1.3-1.3z"/></svg>';
const ICON_CAM_OFF =
  '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M21 6.5l-4 4V7a1 1 0 0 0-1-1H9.8L21 17.2zM3.3 2 2 3.3 4.7 6H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12c.2 0 .4 0 .5-.2l3.2 3.2 1.3-1.3z"/></svg>';

/**
 * @typedef {object} Tile
 * @property {string} id
 * @property {HTMLElement} el
 * @property {HTMLVideoElement} video
 * @property {HTMLElement} nameEl
 * @property {HTMLElement} avatarEl
 * @property {MediaStreamTrack|null} videoTrack
 * @property {MediaStreamTrack|null} audioTrack
 * @property {HTMLAudioElement|null} audio
 * @property {AbortController|null} videoListeners
 * @property {{width:number,height:number}|null} cssSize  null until first measured
 * @property {string|null} lastSent   "WxH" last reported to the server
 * @property {number|undefined} sizeTimer
 */

export class TileGrid {
  /** @type {Map<string, Tile>} */
  #tiles = new Map();
  /** @type {Map<string, {width:number,height:number}>} sizes pinned by tests */
  #pins = new Map();
  #container;
  #sendVideoSize;
  #onAudioBlocked;
  #videoObserver;
  #localId = null;
  #speakerId = null;
  #markerCtx = null;

  /**
   * @param {HTMLElement} container
   * @param {object} hooks
   * @param {(id:string, w:number, h:number) => boolean} hooks.sendVideoSize  true when sent
   * @param {() => void} hooks.onAudioBlocked  the browser refused to autoplay sound
   */
  constructor(container, { sendVideoSize, onAudioBlocked }) {
    this.#container = container;
    this.#sendVideoSize = sendVideoSize;
    this.#onAudioBlocked = onAudioBlocked;
    this.#videoObserver = new ResizeObserver((entries) => this.#onVideoResize(entries));
    new ResizeObserver(() => this.#layout()).observe(container);
    document.addEventListener("visibilitychange", () => this.#sendAllSizes());
  }

  // ---- tiles -------------------------------------------------------------

  /** Shows the local preview (muted, mirrored when it is a real camera). */
  setLocal(media, name) {
    const tile = this.#tiles.get(LOCAL_TILE) || this.#createTile(LOCAL_TILE, name, true);
    tile.el.classList.toggle("mirrored", media.isCamera);
    tile.video.srcObject = new MediaStream([media.videoTrack]);
    tile.videoTrack = media.videoTrack;
    tile.el.classList.remove("no-video");
    this.#playVideo(tile.video);
    this.setName(LOCAL_TILE, name);
  }

  /** The participant id the local tile stands for (for the speaker highlight). */
  setLocalId(participantId) {
    this.#localId = participantId;
    this.#applySpeaker();
  }

  /** The remote tile for `id`, created when missing. */
  ensureRemote(id, name) {
    const existing = this.#tiles.get(id);
    if (existing) {
      if (name) this.setName(id, name);
      return existing;
    }
    const tile = this.#createTile(id, name || "Participant", false);
    this.#videoObserver.observe(tile.video);
    return tile;
  }

  removeRemote(id) {
    const tile = this.#tiles.get(id);
    if (!tile || id === LOCAL_TILE) return;
    this.#detachVideo(tile);
    this.#detachAudio(tile);
    clearTimeout(tile.sizeTimer);
    this.#videoObserver.unobserve(tile.video);
    tile.el.remove();
    this.#tiles.delete(id);
    this.#pins.delete(id);
    this.#layout();
  }

  /** Removes every tile, the local one included. */
  clear() {
    for (const id of [...this.#tiles.keys()]) this.removeRemote(id);
    const local = this.#tiles.get(LOCAL_TILE);
    if (local) {
      local.video.srcObject = null;
      local.el.remove();
      this.#tiles.delete(LOCAL_TILE);
    }
    this.#speakerId = null;
    this.#localId = null;
  }

  remoteIds() {
    return [...this.#tiles.keys()].filter((id) => id !== LOCAL_TILE);
  }

  setName(id, name) {
    const tile = this.#tiles.get(id);
    if (!tile) return;
    const label = id === LOCAL_TILE ? `${name} (you)` : name;
    tile.nameEl.textContent = label;
    tile.el.setAttribute("aria-label", label);
    tile.avatarEl.textContent = initials(name);
  }

  /** Shows the muted-mic or camera-off badge. */
  setMuted(id, kind, muted) {
    const tile = this.#tiles.get(id);
    if (tile) tile.el.classList.toggle(kind === "audio" ? "audio-muted" : "video-muted", Boolean(muted));
  }

  /** Highlights the active speaker (a remote id or the local participant id). */
  setSpeaker(participantId) {
    this.#speakerId = participantId;
    this.#applySpeaker();
  }

  // ---- remote media --------------------------------------------------------

  /** Plays a received track in `id`'s tile (video) or its own <audio> (audio). */
  attachTrack(id, track) {
    const tile = this.#tiles.get(id);
    if (!tile) return;
    if (track.kind === "video") this.#attachVideo(tile, track);
    else this.#attachAudio(tile, track);
  }

  detachTrack(id, track) {
    const tile = this.#tiles.get(id);
    if (!tile) return;
    if (tile.videoTrack === track) this.#detachVideo(tile);
    if (tile.audioTrack === track) this.#detachAudio(tile);
  }

  /** Drops every received track (the peer connection was closed). */
  clearRemoteMedia() {
    for (const tile of this.#tiles.values()) {
      if (tile.id === LOCAL_TILE) continue;
      this.#detachVideo(tile);
      this.#detachAudio(tile);
    }
  }

  /** Retries playback of remote audio after a user gesture. */
  async resumeAudio() {
    const plays = [...this.#tiles.values()].filter((t) => t.audio).map((t) => t.audio.play());
    await Promise.all(plays);
  }

  /** The centre pixel colour of `id`'s video as [r, g, b], or null without frames. */
  marker(id) {
    const video = this.#tiles.get(id)?.video;
    if (!video || video.readyState < 2 || !video.videoWidth) return null;
    if (!this.#markerCtx) {
      const canvas = document.createElement("canvas");
      canvas.width = 16;
      canvas.height = 16;
      this.#markerCtx = canvas.getContext("2d", { willReadFrequently: true });
    }
    this.#markerCtx.drawImage(video, 0, 0, 16, 16);
    const [r, g, b] = this.#markerCtx.getImageData(8, 8, 1, 1).data;
    return [r, g, b];
  }

  // ---- video sizes -----------------------------------------------------------

  /**
   * Reports a fixed size for `id` now and stops the automatic updates for it
   * (test hook). Returns true when the message was sent.
   */
  pinSize(id, width, height) {
    const size = { width: Math.max(0, Math.round(width)), height: Math.max(0, Math.round(height)) };
    this.#pins.set(id, size);
    const tile = this.#tiles.get(id);
    if (tile) clearTimeout(tile.sizeTimer);
    const sent = this.#sendVideoSize(id, size.width, size.height);
    if (tile && sent) tile.lastSent = sizeKey(size);
    return sent;
  }

  /** Reports every tile's size again (after a reconnect the server forgot them). */
  resendSizes() {
    for (const tile of this.#remoteTiles()) {
      tile.lastSent = null;
      this.#sendSize(tile);
    }
  }

  #onVideoResize(entries) {
    for (const entry of entries) {
      const tile = this.#remoteTiles().find((t) => t.video === entry.target);
      if (!tile) continue;
      tile.cssSize = { width: entry.contentRect.width, height: entry.contentRect.height };
      clearTimeout(tile.sizeTimer);
      tile.sizeTimer = setTimeout(() => this.#sendSize(tile), SIZE_DEBOUNCE_MS);
    }
  }

  /** Visibility changed: 0×0 for everything when hidden, real sizes again when shown. */
  #sendAllSizes() {
    for (const tile of this.#remoteTiles()) {
      clearTimeout(tile.sizeTimer);
      this.#sendSize(tile);
    }
  }

  #sendSize(tile) {
    const size = this.#wantedSize(tile);
    if (!size) return; // not laid out yet: the ResizeObserver will report it
    const key = sizeKey(size);
    if (key === tile.lastSent) return;
    if (this.#sendVideoSize(tile.id, size.width, size.height)) tile.lastSent = key;
  }

  #wantedSize(tile) {
    const pinned = this.#pins.get(tile.id);
    if (pinned) return pinned;
    if (document.visibilityState === "hidden") return { width: 0, height: 0 };
    if (!tile.cssSize) return null;
    const dpr = window.devicePixelRatio || 1;
    return { width: Math.round(tile.cssSize.width * dpr), height: Math.round(tile.cssSize.height * dpr) };
  }

  // ---- internals -------------------------------------------------------------

  #createTile(id, name, isLocal) {
    const el = document.createElement("figure");
    el.className = `tile no-video${isLocal ? " local" : ""}`;
    el.dataset.participantId = id;

    const video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true;
    video.setAttribute("playsinline", "");
    video.setAttribute("muted", "");

    const avatarEl = document.createElement("div");
    avatarEl.className = "avatar";
    avatarEl.setAttribute("aria-hidden", "true");

    const caption = document.createElement("figcaption");
    caption.className = "label";
    const nameEl = document.createElement("span");
    nameEl.className = "name";
    caption.append(nameEl, badge("badge-mic", ICON_MIC_OFF, "microphone muted"), badge("badge-cam", ICON_CAM_OFF, "camera off"));

    el.append(video, avatarEl, caption);
    /** @type {Tile} */
    const tile = {
      id, el, video, nameEl, avatarEl,
      videoTrack: null, audioTrack: null, audio: null, videoListeners: null,
      cssSize: null, lastSent: null, sizeTimer: undefined,
    };
    this.#tiles.set(id, tile);
    if (isLocal) this.#container.prepend(el);
    else this.#container.append(el);
    this.setName(id, name);
    this.#applySpeaker();
    this.#layout();
    return tile;
  }

  #attachVideo(tile, track) {
    if (tile.videoTrack === track) return;
    this.#detachVideo(tile);
    tile.videoTrack = track;
    tile.videoListeners = new AbortController();
    const { signal } = tile.videoListeners;
    const update = () => tile.el.classList.toggle("no-video", track.muted || track.readyState === "ended");
    track.addEventListener("mute", update, { signal });
    track.addEventListener("unmute", update, { signal });
    track.addEventListener("ended", update, { signal });
    tile.video.srcObject = new MediaStream([track]);
    update();
    this.#playVideo(tile.video);
  }

  #detachVideo(tile) {
    tile.videoListeners?.abort();
    tile.videoListeners = null;
    tile.videoTrack = null;
    tile.video.srcObject = null;
    tile.el.classList.add("no-video");
  }

  #attachAudio(tile, track) {
    if (tile.audioTrack === track) return;
    this.#detachAudio(tile);
    // Chromium counts received audio only when it plays through an unmuted element.
    const audio = new Audio();
    audio.autoplay = true;
    audio.srcObject = new MediaStream([track]);
    tile.audio = audio;
    tile.audioTrack = track;
    audio.play().catch((err) => {
      if (err.name === "NotAllowedError") this.#onAudioBlocked();
    });
  }

  #detachAudio(tile) {
    if (tile.audio) {
      tile.audio.pause();
      tile.audio.srcObject = null;
    }
    tile.audio = null;
    tile.audioTrack = null;
  }

  #playVideo(video) {
    // Muted video may always autoplay; a rejection here means the source was
    // replaced before playback started, which is harmless.
    video.play().catch(() => {});
  }

  #applySpeaker() {
    for (const tile of this.#tiles.values()) {
      const id = tile.id === LOCAL_TILE ? this.#localId : tile.id;
      tile.el.classList.toggle("speaking", id !== null && id === this.#speakerId);
    }
  }

  #remoteTiles() {
    return [...this.#tiles.values()].filter((t) => t.id !== LOCAL_TILE);
  }

  /** Picks the column count that makes 16:9 tiles as large as the area allows. */
  #layout() {
    const count = this.#tiles.size;
    const style = getComputedStyle(this.#container);
    const width = this.#container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const height = this.#container.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
    if (!count || width <= 0 || height <= 0) {
      this.#container.classList.remove("laid-out");
      return;
    }
    let best = { cols: 1, tileWidth: 0 };
    for (let cols = 1; cols <= count; cols++) {
      const rows = Math.ceil(count / cols);
      const byWidth = (width - GRID_GAP_PX * (cols - 1)) / cols;
      const byHeight = ((height - GRID_GAP_PX * (rows - 1)) / rows) * ASPECT;
      const tileWidth = Math.min(byWidth, byHeight);
      if (tileWidth > best.tileWidth) best = { cols, tileWidth };
    }
    if (best.tileWidth < Math.min(MIN_TILE_WIDTH_PX, width)) {
      // Too many to fit: keep tiles readable and let the grid scroll.
      const cols = Math.max(1, Math.floor((width + GRID_GAP_PX) / (MIN_TILE_WIDTH_PX + GRID_GAP_PX)));
      best = { cols, tileWidth: (width - GRID_GAP_PX * (cols - 1)) / cols };
    }
    this.#container.style.setProperty("--cols", String(best.cols));
    this.#container.style.setProperty("--tile-w", `${Math.floor(best.tileWidth)}px`);
    this.#container.classList.add("laid-out");
  }
}

function badge(className, icon, label) {
  const el = document.createElement("span");
  el.className = `badge ${className}`;
  el.title = label;
  el.innerHTML = icon; // static markup only
  const text = document.createElement("span");
  text.className = "visually-hidden";
  text.textContent = label;
  el.append(text);
  return el;
}

function initials(name) {
  const words = String(name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : words;
  return letters.map((w) => [...w][0]).join("").toUpperCase() || "?";
}

function sizeKey(size) {
  return `${size.width}x${size.height}`;
}
