// What the server says (its model and limits at api/health, on-device mode's manifest at
// ondevice/manifest.json) and which mode the camera uses: on this device where it can run, else the server.
import { $, state } from "./state.js";
import { buildBars, setStatus } from "./view.js";

export async function loadHealth() {
  await loadOnDevice();
  const manifest = state.ondevice.manifest;
  if (manifest.static) { // a static export (ferlab export --format web): no server behind the page
    state.classes = manifest.classes;
    state.limits = {};
    $("model-info").textContent = `${manifest.model} · on this device only (static site) · ${manifest.classes.join(", ")}`;
    $("mode-select").value = "ondevice";
    $("mode-select").querySelector('option[value="server"]').disabled = true;
    buildBars();
    showMode();
    return;
  }
  try {
    const res = await fetch("api/health");
    const info = await res.json();
    state.classes = info.classes;
    state.limits = info;
    const model = info.model.split(/[\\/]/).slice(-2).join("/");
    $("model-info").textContent = `${model} · ${info.backend} · ${info.detector} detector · ${info.classes.join(", ")}`;
    buildBars();
  } catch (err) {
    setStatus($("model-info"), `server not reachable: ${err}`, true);
  }
}

async function loadOnDevice() {
  let manifest;
  try {
    manifest = await (await fetch("ondevice/manifest.json")).json();
  } catch (err) {
    manifest = { available: false, why: `the server did not say (${err})` };
  }
  // The bars' smoothing in either mode: the server owns the number (without a manifest, no smoothing).
  state.smoothing = manifest.smoothing ?? 1;
  const browser = typeof WebAssembly !== "object" ? "this browser has no WebAssembly"
    : typeof Worker !== "function" ? "this browser has no web workers" : null;
  state.ondevice = { manifest, why: browser || manifest.why, ok: manifest.available && !browser, engine: null };
  showMode();
  if (state.ondevice.ok) { // fetch and compile now: the first frame is quick, and the service worker
    // holds everything for offline use after this one visit
    ondeviceEngine().then((engine) => state.keepForOffline && state.keepForOffline(engine.loaded)).catch(() => {});
  }
}

// Which mode the camera uses: the choice, else on-device where it can run.
export function chosenMode() {
  const choice = $("mode-select").value;
  if (choice === "server") return { mode: "server", why: "chosen" };
  const od = state.ondevice;
  if (od && od.ok) return { mode: "ondevice", why: choice === "ondevice" ? "chosen" : "the default where it can run" };
  if (od && od.manifest.static) return { mode: "none", why: `this static site runs on the device only, and it cannot run here: ${od.why}` };
  return { mode: "server", why: `on-device mode cannot run: ${od ? od.why : "still loading"}` };
}

export function showMode() {
  const { mode, why } = chosenMode();
  $("mode").textContent = { ondevice: "on this device", server: "on the server", none: "unavailable" }[mode];
  $("mode").dataset.mode = mode;
  $("mode-why").textContent = {
    ondevice: `Camera frames are analysed in this browser and never sent (${why}).`,
    server: `Camera frames are sent to this server (${why}).`,
    none: `The camera cannot be analysed: ${why}.`,
  }[mode];
}

// The on-device engine (static/ondevice/engine.js), made once from the manifest; a failed load is retried.
export function ondeviceEngine() {
  const od = state.ondevice;
  if (!od.engine) {
    const abs = (url) => new URL(url, window.location.href).href; // the module resolves URLs against itself
    const m = od.manifest;
    const manifest = { ...m, runtime: abs(m.runtime), wasm: abs(m.wasm), detector: abs(m.detector), classifier: abs(m.classifier) };
    od.engine = import("../ondevice/engine.js").then((mod) => mod.createEngine(manifest));
    od.engine.catch(() => { od.engine = null; });
  }
  return od.engine;
}
