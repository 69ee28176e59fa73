// Camera, on-device mode: the browser detects and classifies (static/ondevice/engine.js); no frame leaves it.
import { ondeviceEngine, showMode } from "./modes.js";
import { connect } from "./server.js";
import { drawOverlay, showReadings } from "./stage.js";
import { $, state } from "./state.js";
import { ema, setStatus } from "./view.js";

const video = $("video");

// A task boundary without setTimeout's 4 ms clamp: timers nested more than five deep wait at least 4 ms
// (HTML spec), and the on-device loop yields once a frame.
const yielder = new MessageChannel();
const nextTick = () => new Promise((resolve) => {
  yielder.port1.onmessage = () => resolve();
  yielder.port2.postMessage(null);
});

export async function ondeviceLoop() {
  let engine;
  try {
    setStatus($("live-status"), "loading the models into this browser…");
    engine = await ondeviceEngine();
  } catch (err) {
    state.ondevice.ok = false;
    state.ondevice.why = `the models did not load here (${err})`;
    showMode();
    if (state.running) {
      state.mode = "server";
      connect();
    }
    return;
  }
  setStatus($("live-status"), "running on this device");
  // A pipeline of two frames: while the detector's worker finds one frame's faces, the classifier's worker
  // labels the frame before and this thread grabs the next one and draws. The next frame is grabbed once
  // the one two back is shown, so the detector has its next frame waiting when it finishes one, and
  // nothing queues up behind a slow device. Labels are given in frame order (tracks and smoothing carry
  // over).
  const inFlight = []; // frames grabbed and not yet shown, oldest first
  let labelled = Promise.resolve();
  let failure = null;
  while (state.running && state.mode === "ondevice" && !failure) {
    if (video.readyState < 2 || !video.videoWidth) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    const width = Math.min(Number($("frame-width").value), video.videoWidth);
    const height = Math.round((video.videoHeight * width) / video.videoWidth);
    const started = performance.now();
    // The frame goes to the detector's worker as a VideoFrame (an ImageBitmap where there is no VideoFrame
    // or the frame is shrunk) and becomes pixels there, not on this thread, which also lays out and
    // draws the page (python -m bench web-ondevice: bench/README.md).
    let image;
    try {
      image = width === video.videoWidth && typeof VideoFrame === "function" ? new VideoFrame(video, { timestamp: 0 })
        : await createImageBitmap(video, width === video.videoWidth ? {} : { resizeWidth: width, resizeHeight: height });
    } catch (err) {
      failure = err;
      break;
    }
    const detected = engine.detect(image, width, height);
    const before = labelled;
    labelled = (async () => {
      const found = await detected;
      await before;
      const answer = await engine.label(found, { smooth: $("smooth").checked });
      if (state.running && state.mode === "ondevice") showOnDevice(answer, started);
    })();
    inFlight.push(labelled.catch((err) => { failure ||= err; }));
    if (inFlight.length >= 2) await inFlight.shift();
    await nextTick(); // let the page paint and handle input between frames
  }
  await labelled.catch(() => {});
  if (failure) setStatus($("live-status"), `on-device analysis stopped: ${failure.message || failure}`, true);
}

function showOnDevice(answer, started) {
  const now = performance.now();
  state.latency = ema(state.latency, now - started, 0.2);
  if (state.lastAnswerAt !== null) state.fps = ema(state.fps, 1000 / Math.max(1, now - state.lastAnswerAt), 0.2);
  state.lastAnswerAt = now;
  state.faces = answer.faces;
  state.frame = { width: answer.width, height: answer.height };
  const stage = $("live-stage");
  stage.dataset.frames = String(Number(stage.dataset.frames || 0) + 1);
  stage.dataset.detectMs = answer.timings_ms.detect.toFixed(2);
  stage.dataset.classifyMs = answer.timings_ms.classify.toFixed(2);
  drawOverlay(); // every frame: the boxes follow the faces
  showReadings(now, answer.faces, true);
}
