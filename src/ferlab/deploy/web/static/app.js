// ferlab web page. Camera, on-device mode: the browser detects and classifies (static/ondevice/engine.js),
// no frame leaves it. Camera, server mode: frames over a WebSocket (one in flight at a time). Still images:
// POST /api/predict.
//
// An ES module wiring the page's modules (static/page/) to its controls: state.js (the shared state),
// view.js (bars, face lists, boxes), stage.js (the live overlay and readings), modes.js (what the server
// says, which mode runs), ondevice.js and server.js (the two camera modes), camera.js (start, stop, switch)
// and still.js (still images).
import { startCamera, stopCamera, switchMode } from "./page/camera.js";
import { loadHealth } from "./page/modes.js";
import { applyMirror, drawOverlay, watchOverlay } from "./page/stage.js";
import { $, state } from "./page/state.js";
import { analyseStill } from "./page/still.js";

watchOverlay();
$("start").addEventListener("click", startCamera);
$("stop").addEventListener("click", stopCamera);
$("mirror").addEventListener("change", applyMirror);
$("mode-select").addEventListener("change", switchMode);
$("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) analyseStill(file);
});
$("whole-image").addEventListener("change", () => {
  const file = $("file").files[0];
  if (file) analyseStill(file);
});
window.addEventListener("resize", drawOverlay);
applyMirror();
loadHealth();
// The service worker keeps the page, the runtime and the models for offline use (secure contexts only).
if ("serviceWorker" in navigator && window.isSecureContext) {
  navigator.serviceWorker.register("sw.js").catch((err) => console.warn(`offline use unavailable: ${err}`));
  const keep = (more = []) => navigator.serviceWorker.ready.then((registration) => {
    const loaded = [...performance.getEntriesByType("resource").map((e) => e.name), ...more]
      .filter((u) => !/\/(ws|api\/predict)(\?|$)/.test(new URL(u).pathname));
    registration.active.postMessage({ cache: [window.location.href, ...loaded] });
  });
  window.addEventListener("load", () => keep());
  state.keepForOffline = keep; // again once the on-device models are loaded, with what the workers fetched
}
