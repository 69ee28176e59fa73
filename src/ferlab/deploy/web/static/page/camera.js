// The live camera: start and stop it, and run it in the mode chosen (on this device, or on the server).
import { chosenMode, showMode } from "./modes.js";
import { ondeviceLoop } from "./ondevice.js";
import { connect, disconnect } from "./server.js";
import { drawOverlay } from "./stage.js";
import { $, state } from "./state.js";
import { setStatus, updateBars } from "./view.js";

const video = $("video");

export async function startCamera() {
  const live = $("live-status");
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus(live, "The camera needs a secure page: open http://localhost on this computer, or serve over HTTPS " +
      "(--ssl-certfile/--ssl-keyfile) or a tunnel for other devices.", true);
    return;
  }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false,
    });
  } catch (err) {
    setStatus(live, `camera not available: ${err.name}: ${err.message}`, true);
    return;
  }
  video.srcObject = state.stream;
  await video.play().catch(() => {});
  $("camera-hint").hidden = true;
  $("start").disabled = true;
  $("stop").disabled = false;
  state.running = true;
  state.fps = state.latency = state.serverMs = state.lastAnswerAt = null;
  state.mode = chosenMode().mode;
  showMode();
  if (state.mode === "ondevice") ondeviceLoop();
  else if (state.mode === "server") connect();
}

export function stopCamera() {
  state.running = false;
  state.mode = null;
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  state.stream = null;
  disconnect();
  if (state.inFlight) clearTimeout(state.inFlight.timer);
  state.inFlight = null;
  video.srcObject = null;
  state.faces = [];
  drawOverlay();
  $("camera-hint").hidden = false;
  $("start").disabled = false;
  $("stop").disabled = true;
  setStatus($("live-status"), "stopped");
  updateBars(null);
}

// The mode choice changed: say so, and move a running camera to the new mode.
export function switchMode() {
  showMode();
  if (!state.running) return;
  const { mode } = chosenMode();
  if (mode === state.mode) return;
  disconnect();
  state.mode = mode;
  if (mode === "ondevice") ondeviceLoop();
  else connect();
}
