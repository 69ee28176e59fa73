// What the page draws, for the camera and still images alike: status lines, the emotion bars, the face list
// and boxes with labels on a canvas.
import { $, state } from "./state.js";

const PALETTE = ["#e5534b", "#b083f0", "#f0b72f", "#57ab5a", "#539bf5", "#db61a2", "#ec775c", "#6cb6ff"];

export const colorOf = (label) => {
  const i = state.classes.indexOf(label);
  return PALETTE[(i < 0 ? 0 : i) % PALETTE.length];
};
export const pct = (p) => `${Math.round(p * 100)}%`;
export const ema = (old, value, weight) => (old === null ? value : old + weight * (value - old));

export function setStatus(el, text, isError = false) {
  el.textContent = text;
  el.classList.toggle("error", isError);
}

// Setting a canvas's size, even to the same size, clears and reallocates it: only when it changes.
export function sizeCanvas(canvas, width, height) {
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
}

export function buildBars() {
  const bars = $("bars");
  bars.replaceChildren();
  for (const name of state.classes) {
    const row = document.createElement("div");
    row.className = "bar";
    row.dataset.class = name;
    row.innerHTML = '<span class="name"></span><div class="track"><div class="fill"></div></div><span class="value">–</span>';
    row.querySelector(".name").textContent = name;
    row.querySelector(".fill").style.background = colorOf(name);
    bars.append(row);
  }
  bars.classList.add("stale");
}

// probabilities: null, no face (the bars go stale); undefined, nothing new. paint: false to only update
// the smoothing. The weight of the newest probabilities is the manifest's smoothing when "smooth bars" is on.
export function updateBars(probabilities, smoothedAlready = false, paint = true) {
  const bars = $("bars");
  if (probabilities === undefined) return;
  if (!probabilities) {
    if (paint) bars.classList.add("stale");
    return;
  }
  const values = state.classes.map((c) => probabilities[c] ?? 0);
  const weight = $("smooth").checked && !smoothedAlready ? state.smoothing : 1;
  state.smoothed = state.smoothed ? state.smoothed.map((old, i) => ema(old, values[i], weight)) : values;
  if (!paint) return;
  bars.classList.remove("stale");
  state.classes.forEach((name, i) => {
    const row = bars.querySelector(`.bar[data-class="${CSS.escape(name)}"]`);
    if (!row) return;
    row.querySelector(".fill").style.width = `${(state.smoothed[i] * 100).toFixed(1)}%`;
    row.querySelector(".value").textContent = pct(state.smoothed[i]);
  });
}

// The faces as a list (also what tests read): one <li> per face with data-label/-confidence/-box.
export function renderList(list, faces) {
  list.replaceChildren();
  faces.forEach((face, i) => {
    const li = document.createElement("li");
    li.dataset.label = face.label;
    li.dataset.confidence = face.confidence;
    li.dataset.box = face.box.join(",");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colorOf(face.label);
    const [x, y, w, h] = face.box;
    li.append(swatch, `${face.label} ${pct(face.confidence)}${i === 0 && faces.length > 1 ? " (bars)" : ""} at ${x},${y} (${w}×${h})`);
    list.append(li);
  });
}

// Boxes and labels on a canvas whose pixels map to the analysed frame by (sx, sy); mirrored flips x.
export function drawFaces(ctx, faces, sx, sy, mirrored, frameWidth) {
  const scale = Math.max(1, ctx.canvas.width / 640);
  ctx.lineWidth = 2.5 * scale;
  ctx.font = `${Math.round(15 * scale)}px system-ui, sans-serif`;
  ctx.textBaseline = "bottom";
  for (const face of faces) {
    let [x, y, w, h] = face.box;
    if (mirrored) x = frameWidth - x - w;
    const color = colorOf(face.label);
    ctx.strokeStyle = color;
    ctx.strokeRect(x * sx, y * sy, w * sx, h * sy);
    const text = `${face.label} ${pct(face.confidence)}`;
    const pad = 4 * scale;
    const tw = ctx.measureText(text).width + 2 * pad;
    const th = 20 * scale;
    const ty = Math.max(th, y * sy);
    ctx.fillStyle = color;
    ctx.fillRect(x * sx - ctx.lineWidth / 2, ty - th, tw, th);
    ctx.fillStyle = "#000";
    ctx.fillText(text, x * sx + pad - ctx.lineWidth / 2, ty - 3 * scale);
  }
}
