// Still images: uploaded to the server (POST api/predict), or analysed in this browser on a static site,
// which has no server to upload to.
import { ondeviceEngine } from "./modes.js";
import { $, state } from "./state.js";
import { drawFaces, renderList, setStatus } from "./view.js";

async function stillOnDevice(file) {
  const engine = await ondeviceEngine();
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  const pixels = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const answer = await engine.analyze(pixels, bitmap.width, bitmap.height, { still: true, whole: $("whole-image").checked });
  return { body: { ...answer, timings_ms: { server: 0, ...answer.timings_ms } }, bitmap };
}

export async function analyseStill(file) {
  const status = $("still-status");
  const list = $("still-faces");
  const canvas = $("still-canvas");
  list.replaceChildren();
  if (state.limits.max_upload_bytes && file.size > state.limits.max_upload_bytes) {
    setStatus(status, `${file.name} is ${file.size.toLocaleString()} bytes, over the server's limit of ` +
      `${state.limits.max_upload_bytes.toLocaleString()}`, true);
    return;
  }
  setStatus(status, `analysing ${file.name}…`);
  if (state.ondevice && state.ondevice.manifest.static) {
    try {
      const { body, bitmap } = await stillOnDevice(file);
      showStill(file, body, bitmap, 0);
    } catch (err) {
      setStatus(status, `${file.name}: cannot analyse it in this browser (${err})`, true);
    }
    return;
  }
  const form = new FormData();
  form.append("file", file);
  const started = performance.now();
  let res;
  let body;
  try {
    const whole = $("whole-image").checked ? "?whole_image=true" : "";
    res = await fetch(`api/predict${whole}`, { method: "POST", body: form });
    body = await res.json().catch(() => ({ error: res.statusText }));
  } catch (err) {
    setStatus(status, `upload failed: ${err}`, true);
    return;
  }
  const elapsed = performance.now() - started;
  if (!res.ok) {
    setStatus(status, `${res.status}: ${body.error || JSON.stringify(body.detail || body)}`, true);
    canvas.width = canvas.height = 0;
    return;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    bitmap = null; // the server read it, this browser cannot: list the faces without the picture
  }
  showStill(file, body, bitmap, elapsed);
}

function showStill(file, body, bitmap, elapsed) {
  const status = $("still-status");
  const list = $("still-faces");
  const canvas = $("still-canvas");
  const scale = Math.min(1, 1280 / Math.max(body.width, body.height));
  canvas.width = Math.round(body.width * scale);
  canvas.height = Math.round(body.height * scale);
  const ctx = canvas.getContext("2d");
  if (bitmap) ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  drawFaces(ctx, body.faces, canvas.width / body.width, canvas.height / body.height, false, body.width);
  renderList(list, body.faces);
  const n = body.faces.length;
  setStatus(status, `${file.name}: ${body.width}×${body.height}, ${n === 0 ? "no face found" : `${n} face${n > 1 ? "s" : ""}`}` +
    (elapsed ? ` · ${Math.round(elapsed)} ms round trip, ${Math.round(body.timings_ms.server)} ms on the server`
      : ` · ${Math.round(body.timings_ms.total)} ms in this browser`));
}
