// ferlab web page. Camera, on-device mode: the browser detects and classifies (static/ondevice/engine.js),
// no frame leaves it. Camera, server mode: frames over a WebSocket (one in flight at a time). Still images:
// POST /api/predict.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const PALETTE = ["#e5534b", "#b083f0", "#f0b72f", "#57ab5a", "#539bf5", "#db61a2", "#ec775c", "#6cb6ff"];
  const ANSWER_TIMEOUT_MS = 10000; // no answer by then: give up on that frame and send another
  const SMOOTHING = 0.35; // EMA weight of the newest probabilities when "smooth bars" is on
  const TEXT_EVERY_MS = 100; // the live face list, bars and numbers: at most ten updates a second

  const state = {
    classes: [],
    limits: {},
    running: false,
    stream: null,
    ws: null,
    reconnectMs: 500,
    inFlight: null, // {id, sentAt, width, height, timer}
    nextId: 1,
    scheduled: false,
    smoothed: null,
    fps: null,
    latency: null,
    textAt: -Infinity, // when the live readings were last written
    serverMs: null,
    lastAnswerAt: null,
    faces: [],
    frame: { width: 0, height: 0 },
    mode: null, // "ondevice" or "server" while the camera runs
    ondevice: null, // {manifest, why, engine: Promise} once the server said whether it can
  };

  const colorOf = (label) => {
    const i = state.classes.indexOf(label);
    return PALETTE[(i < 0 ? 0 : i) % PALETTE.length];
  };
  const pct = (p) => `${Math.round(p * 100)}%`;
  const ema = (old, value, weight) => (old === null ? value : old + weight * (value - old));

  function setStatus(el, text, isError = false) {
    el.textContent = text;
    el.classList.toggle("error", isError);
  }

  // ------------------------------------------------------------------------------------------ server info
  async function loadHealth() {
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

  function buildBars() {
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

  // ------------------------------------------------------------------------------------------ on-device mode
  async function loadOnDevice() {
    let manifest;
    try {
      manifest = await (await fetch("ondevice/manifest.json")).json();
    } catch (err) {
      manifest = { available: false, why: `the server did not say (${err})` };
    }
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
  function chosenMode() {
    const choice = $("mode-select").value;
    if (choice === "server") return { mode: "server", why: "chosen" };
    const od = state.ondevice;
    if (od && od.ok) return { mode: "ondevice", why: choice === "ondevice" ? "chosen" : "the default where it can run" };
    if (od && od.manifest.static) return { mode: "none", why: `this static site runs on the device only, and it cannot run here: ${od.why}` };
    return { mode: "server", why: `on-device mode cannot run: ${od ? od.why : "still loading"}` };
  }

  function showMode() {
    const { mode, why } = chosenMode();
    $("mode").textContent = { ondevice: "on this device", server: "on the server", none: "unavailable" }[mode];
    $("mode").dataset.mode = mode;
    $("mode-why").textContent = {
      ondevice: `Camera frames are analysed in this browser and never sent (${why}).`,
      server: `Camera frames are sent to this server (${why}).`,
      none: `The camera cannot be analysed: ${why}.`,
    }[mode];
  }

  function ondeviceEngine() {
    const od = state.ondevice;
    if (!od.engine) {
      const abs = (url) => new URL(url, window.location.href).href; // the module resolves URLs against itself
      const m = od.manifest;
      const manifest = { ...m, runtime: abs(m.runtime), wasm: abs(m.wasm), detector: abs(m.detector), classifier: abs(m.classifier) };
      od.engine = import("./ondevice/engine.js").then((mod) => mod.createEngine(manifest));
      od.engine.catch(() => { od.engine = null; });
    }
    return od.engine;
  }

  // Setting a canvas's size, even to the same size, clears and reallocates it: only when it changes.
  function sizeCanvas(canvas, width, height) {
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
  }

  // A task boundary without setTimeout's 4 ms clamp: timers nested more than five deep wait at least 4 ms
  // (HTML spec), and the on-device loop yields once a frame.
  const yielder = new MessageChannel();
  const nextTick = () => new Promise((resolve) => {
    yielder.port1.onmessage = () => resolve();
    yielder.port2.postMessage(null);
  });

  async function ondeviceLoop() {
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

  // The face list, the bars and the numbers under the video, at most ten times a second (as fast as anyone
  // reads them; the bars' smoothing still takes every frame): each change costs the page a style, layout and
  // paint pass, and a camera stream can be labelled far faster than that.
  function showReadings(now, faces, smoothedAlready) {
    const paint = !(now - state.textAt < TEXT_EVERY_MS);
    updateBars(faces ? (faces.length ? faces[0].probabilities : null) : undefined, smoothedAlready, paint);
    if (!paint) return;
    state.textAt = now;
    if (faces) renderList($("live-faces"), faces);
    $("fps").textContent = state.fps === null ? "–" : state.fps.toFixed(1);
    $("latency").textContent = Math.round(state.latency);
    if (state.mode === "server") $("server-ms").textContent = state.serverMs === null ? "–" : Math.round(state.serverMs);
  }

  // probabilities: null, no face (the bars go stale); undefined, nothing new. paint: false to only update
  // the smoothing.
  function updateBars(probabilities, smoothedAlready = false, paint = true) {
    const bars = $("bars");
    if (probabilities === undefined) return;
    if (!probabilities) {
      if (paint) bars.classList.add("stale");
      return;
    }
    const values = state.classes.map((c) => probabilities[c] ?? 0);
    const weight = $("smooth").checked && !smoothedAlready ? SMOOTHING : 1;
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
  function renderList(list, faces) {
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
  function drawFaces(ctx, faces, sx, sy, mirrored, frameWidth) {
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

  // ------------------------------------------------------------------------------------------ live camera
  const video = $("video");
  const overlay = $("overlay");
  const grab = document.createElement("canvas");

  async function startCamera() {
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

  function stopCamera() {
    state.running = false;
    state.mode = null;
    if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
    state.stream = null;
    if (state.ws) state.ws.close();
    state.ws = null;
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

  function connect() {
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

  // The overlay's size in device pixels, kept by a ResizeObserver: reading clientWidth after the page's text
  // changed forced a style and layout pass on every camera frame.
  const overlaySize = { width: 0, height: 0 };
  function measureOverlay() {
    const dpr = window.devicePixelRatio || 1;
    overlaySize.width = Math.round(overlay.clientWidth * dpr);
    overlaySize.height = Math.round(overlay.clientHeight * dpr);
  }
  if (typeof ResizeObserver === "function") new ResizeObserver(() => { measureOverlay(); drawOverlay(); }).observe(overlay);

  function drawOverlay() {
    if (typeof ResizeObserver !== "function") measureOverlay();
    const { width, height } = overlaySize;
    sizeCanvas(overlay, width, height);
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    if (!state.faces.length || !state.frame.width) return;
    drawFaces(ctx, state.faces, width / state.frame.width, height / state.frame.height, $("mirror").checked,
      state.frame.width);
  }

  function applyMirror() {
    $("live-stage").classList.toggle("mirrored", $("mirror").checked);
    drawOverlay();
  }

  // ------------------------------------------------------------------------------------------ still image
  // A still image analysed in this browser (the static site has no server to upload to).
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

  async function analyseStill(file) {
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

  // ------------------------------------------------------------------------------------------ wiring
  $("start").addEventListener("click", startCamera);
  $("stop").addEventListener("click", stopCamera);
  $("mirror").addEventListener("change", applyMirror);
  $("mode-select").addEventListener("change", () => {
    showMode();
    if (!state.running) return;
    const { mode } = chosenMode();
    if (mode === state.mode) return;
    if (state.ws) state.ws.close();
    state.ws = null;
    state.mode = mode;
    if (mode === "ondevice") ondeviceLoop();
    else connect();
  });
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
})();
