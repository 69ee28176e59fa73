// Camera, server mode: JPEG frames over the WebSocket (ferlab.deploy.web.protocol), one in flight at a time.
import { drawOverlay, showReadings } from "./stage.js";
import { $, state } from "./state.js";
import { ema, setStatus, sizeCanvas } from "./view.js";

const ANSWER_TIMEOUT_MS = 10000; // no answer by then: give up on that frame and send another
const video = $("video");
const grab = document.createElement("canvas");

export function connect() {
  const url = new URL("ws", window.location.href);
  url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url);
  state.ws = ws;
  setStatus($("live-status"), "connecting…");
  ws.onopen = () => {
    state.reconnectMs = 500;
    setStatus($("live-status"), "streaming");
    schedule(0);
  };
  ws.onmessage = (event) => {
    let answer;
    try {
      answer = JSON.parse(event.data);
    } catch {
      return;
    }
    onAnswer(answer);
  };
  ws.onclose = () => {
    if (state.ws !== ws) return;
    if (state.inFlight) clearTimeout(state.inFlight.timer);
    state.inFlight = null;
    state.ws = null;
    if (state.running) {
      setStatus($("live-status"), `connection lost; retrying in ${(state.reconnectMs / 1000).toFixed(1)} s`, true);
      setTimeout(() => state.running && state.mode === "server" && !state.ws && connect(), state.reconnectMs);
      state.reconnectMs = Math.min(state.reconnectMs * 2, 8000);
    }
  };
}

// Closes the socket (stopping the camera, or switching to on-device mode); its onclose then does nothing.
export function disconnect() {
  if (state.ws) state.ws.close();
  state.ws = null;
}

function schedule(delayMs) {
  if (state.scheduled) return;
  state.scheduled = true;
  setTimeout(() => {
    state.scheduled = false;
    sendFrame();
  }, delayMs);
}

// Flow control: a frame is sent only when no answer is awaited, so a slow server never builds a queue.
async function sendFrame() {
  const ws = state.ws;
  if (!state.running || !ws || ws.readyState !== WebSocket.OPEN || state.inFlight) return;
  if (video.readyState < 2 || !video.videoWidth) {
    schedule(50);
    return;
  }
  const width = Math.min(Number($("frame-width").value), video.videoWidth);
  const height = Math.round((video.videoHeight * width) / video.videoWidth);
  sizeCanvas(grab, width, height);
  grab.getContext("2d").drawImage(video, 0, 0, width, height);
  const id = state.nextId++;
  const frame = { id, sentAt: performance.now(), width, height, timer: null };
  state.inFlight = frame;
  const blob = await new Promise((resolve) => grab.toBlob(resolve, "image/jpeg", 0.8));
  if (state.inFlight !== frame) return;
  if (!blob || ws.readyState !== WebSocket.OPEN) {
    state.inFlight = null;
    schedule(100);
    return;
  }
  ws.send(JSON.stringify({ id }));
  ws.send(blob);
  frame.timer = setTimeout(() => {
    if (state.inFlight !== frame) return;
    state.inFlight = null;
    setStatus($("live-status"), `no answer to frame ${id} in ${ANSWER_TIMEOUT_MS / 1000} s; sending another`, true);
    schedule(0);
  }, ANSWER_TIMEOUT_MS);
}

function onAnswer(answer) {
  const frame = state.inFlight;
  if (!frame || answer.id !== frame.id) return; // a late answer to a frame already given up on
  clearTimeout(frame.timer);
  state.inFlight = null;
  const now = performance.now();
  state.latency = ema(state.latency, now - frame.sentAt, 0.2);
  if (state.lastAnswerAt !== null) state.fps = ema(state.fps, 1000 / Math.max(1, now - state.lastAnswerAt), 0.2);
  state.lastAnswerAt = now;
  if (answer.error) {
    setStatus($("live-status"), `frame ${answer.id}: ${answer.error}`, true);
    state.faces = [];
  } else if (!answer.skipped) {
    setStatus($("live-status"), "streaming");
    state.serverMs = ema(state.serverMs, answer.timings_ms.server, 0.2);
    state.faces = answer.faces;
    state.frame = { width: answer.width, height: answer.height };
  }
  $("live-stage").dataset.frames = String(Number($("live-stage").dataset.frames || 0) + 1);
  drawOverlay();
  showReadings(now, answer.error || answer.skipped ? undefined : answer.faces, false);
  schedule(0);
}
