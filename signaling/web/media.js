// Local capture for the samtale web client: microphone, camera, or a
// synthetic canvas video track (the `fake=` test hook, and the fallback when
// there is no camera).

/** The simulcast layers the client publishes, lowest first. */
export const SIMULCAST_ENCODINGS = Object.freeze([
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
]);

/** The single encoding used when simulcast is off. */
export const SINGLE_ENCODING = Object.freeze({ maxBitrate: 1_500_000 });

const RAW_AUDIO = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };
const CAMERA = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
const FAKE_FPS = 30;

/**
 * Acquires the local microphone and camera (or a canvas track).
 *
 * @param {object} opts
 * @param {string|null} opts.fakeColour  CSS colour: use a canvas instead of the camera
 * @param {number} opts.fakeWidth
 * @param {number} opts.fakeHeight
 * @param {boolean} opts.rawAudio        disable echo cancellation etc.
 * @param {string} opts.name             display name (colour of the fallback canvas)
 * @returns {Promise<LocalMedia>}
 */
export async function acquireLocalMedia(opts) {
  const audioConstraints = opts.rawAudio || opts.fakeColour ? RAW_AUDIO : true;
  const warnings = [];
  let audioTrack = null;
  let videoTrack = null;

  if (opts.fakeColour) {
    audioTrack = await captureTrack({ audio: audioConstraints }, "audio", warnings);
  } else {
    ({ audioTrack, videoTrack } = await captureBoth(audioConstraints, warnings));
  }

  let silence = null;
  if (!audioTrack) {
    silence = silentAudioTrack();
    audioTrack = silence.track;
    warnings.push("No microphone available: others will not hear you.");
  }

  let canvas = null;
  if (!videoTrack) {
    const colour = opts.fakeColour ? normaliseColour(opts.fakeColour) : colourFromName(opts.name);
    if (!opts.fakeColour) warnings.push("No camera available: sending a placeholder picture.");
    canvas = canvasVideoTrack(colour, opts.fakeWidth, opts.fakeHeight);
    videoTrack = canvas.track;
  }

  return new LocalMedia(audioTrack, videoTrack, { isCamera: !canvas, warnings, canvas, silence });
}

/** The local tracks and what is needed to stop them. */
export class LocalMedia {
  #extras;

  constructor(audioTrack, videoTrack, { isCamera, warnings, canvas, silence }) {
    this.audioTrack = audioTrack;
    this.videoTrack = videoTrack;
    this.stream = new MediaStream([audioTrack, videoTrack]);
    this.isCamera = isCamera;
    this.warnings = warnings;
    this.fallbackSize = canvas ? { width: canvas.width, height: canvas.height } : null;
    this.#extras = [canvas, silence].filter(Boolean);
  }

  /** The track of `kind` ("audio" | "video"). */
  track(kind) {
    return kind === "audio" ? this.audioTrack : this.videoTrack;
  }

  /** The capture size of the video track, or null when unknown. */
  videoSize() {
    const settings = this.videoTrack.getSettings ? this.videoTrack.getSettings() : {};
    const width = settings.width || this.fallbackSize?.width;
    const height = settings.height || this.fallbackSize?.height;
    return width && height ? { width, height } : null;
  }

  /** Stops every track (camera light off). */
  stop() {
    this.audioTrack.stop();
    this.videoTrack.stop();
    for (const extra of this.#extras) extra.stop();
  }
}

/** The `layers` message payload for the current capture size, or null. */
export function simulcastLayers(media) {
  const size = media.videoSize();
  if (!size) return null;
  return SIMULCAST_ENCODINGS.map((enc) => ({
    rid: enc.rid,
    width: Math.floor(size.width / enc.scaleResolutionDownBy),
    height: Math.floor(size.height / enc.scaleResolutionDownBy),
  }));
}

/** A stable, pleasant colour for a display name. */
export function colourFromName(name) {
  let hash = 0;
  for (const ch of String(name || "?")) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${hash % 360}, 45%, 38%)`;
}

async function captureBoth(audio, warnings) {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio, video: CAMERA });
    return { audioTrack: stream.getAudioTracks()[0] || null, videoTrack: stream.getVideoTracks()[0] || null };
  } catch (err) {
    // One device missing or refused: try them one at a time.
    console.debug("getUserMedia(audio+video) failed, trying separately:", err.name);
  }
  const audioTrack = await captureTrack({ audio }, "audio", warnings);
  const videoTrack = await captureTrack({ video: CAMERA }, "video", warnings);
  return { audioTrack, videoTrack };
}

async function captureTrack(constraints, kind, warnings) {
  if (!navigator.mediaDevices?.getUserMedia) {
    warnings.push("This browser cannot capture media (insecure origin?).");
    return null;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    return stream.getTracks().find((t) => t.kind === kind) || null;
  } catch (err) {
    if (err.name === "NotAllowedError") warnings.push(`Permission for the ${kind === "audio" ? "microphone" : "camera"} was denied.`);
    return null;
  }
}

/** Accepts `red`, `%23ff0000` (decoded `#ff0000`) and bare hex `ff0000`. */
function normaliseColour(colour) {
  const value = /^[0-9a-f]{3}([0-9a-f]{3})?$/i.test(colour) ? `#${colour}` : colour;
  const probe = document.createElement("canvas").getContext("2d");
  probe.fillStyle = "#010203";
  probe.fillStyle = value;
  return probe.fillStyle === "#010203" && value.toLowerCase() !== "#010203" ? "#808080" : value;
}

/**
 * A canvas.captureStream() video track: the whole frame in `colour`, with a
 * small white square moving in the top-left corner so that every frame
 * differs and the encoder keeps sending. The centre stays `colour`.
 */
function canvasVideoTrack(colour, width = 1280, height = 720) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d", { alpha: false });
  const square = Math.max(8, Math.round(Math.min(width, height) / 12));
  const margin = Math.max(2, Math.round(square / 4));
  const travel = square * 2;
  let frame = 0;

  const draw = () => {
    ctx.fillStyle = colour;
    ctx.fillRect(0, 0, width, height);
    const step = frame % (2 * travel);
    const offset = step < travel ? step : 2 * travel - step; // back and forth
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(margin + offset, margin, square, square);
    frame += 2;
  };
  draw();
  const timer = setInterval(draw, 1000 / FAKE_FPS);
  const track = canvas.captureStream(FAKE_FPS).getVideoTracks()[0];
  track.addEventListener("ended", () => clearInterval(timer));
  return {
    track,
    width,
    height,
    stop() {
      clearInterval(timer);
      track.stop();
    },
  };
}

/** A silent audio track, so the call still works without a microphone. */
function silentAudioTrack() {
  const context = new AudioContext();
  const destination = context.createMediaStreamDestination();
  const track = destination.stream.getAudioTracks()[0];
  context.resume().catch(() => {});
  return {
    track,
    stop() {
      track.stop();
      context.close().catch(() => {});
    },
  };
}
