// The live camera's stage: the boxes drawn over the video, and the readings under it (bars, face list, FPS,
// latency), whichever mode produced the faces.
import { $, state } from "./state.js";
import { drawFaces, renderList, sizeCanvas, updateBars } from "./view.js";

const TEXT_EVERY_MS = 100; // the live face list, bars and numbers: at most ten updates a second
const overlay = $("overlay"); // a module runs once the document is parsed: the element is there

// The overlay's size in device pixels, kept by a ResizeObserver: reading clientWidth after the page's text
// changed forced a style and layout pass on every camera frame.
const overlaySize = { width: 0, height: 0 };
function measureOverlay() {
  const dpr = window.devicePixelRatio || 1;
  overlaySize.width = Math.round(overlay.clientWidth * dpr);
  overlaySize.height = Math.round(overlay.clientHeight * dpr);
}

export function watchOverlay() {
  if (typeof ResizeObserver === "function") new ResizeObserver(() => { measureOverlay(); drawOverlay(); }).observe(overlay);
}

export function drawOverlay() {
  if (typeof ResizeObserver !== "function") measureOverlay();
  const { width, height } = overlaySize;
  sizeCanvas(overlay, width, height);
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  if (!state.faces.length || !state.frame.width) return;
  drawFaces(ctx, state.faces, width / state.frame.width, height / state.frame.height, $("mirror").checked,
    state.frame.width);
}

export function applyMirror() {
  $("live-stage").classList.toggle("mirrored", $("mirror").checked);
  drawOverlay();
}

// The face list, the bars and the numbers under the video, at most ten times a second (as fast as anyone
// reads them; the bars' smoothing still takes every frame): each change costs the page a style, layout and
// paint pass, and a camera stream can be labelled far faster than that.
export function showReadings(now, faces, smoothedAlready) {
  const paint = !(now - state.textAt < TEXT_EVERY_MS);
  updateBars(faces ? (faces.length ? faces[0].probabilities : null) : undefined, smoothedAlready, paint);
  if (!paint) return;
  state.textAt = now;
  if (faces) renderList($("live-faces"), faces);
  $("fps").textContent = state.fps === null ? "–" : state.fps.toFixed(1);
  $("latency").textContent = Math.round(state.latency);
  if (state.mode === "server") $("server-ms").textContent = state.serverMs === null ? "–" : Math.round(state.serverMs);
}
