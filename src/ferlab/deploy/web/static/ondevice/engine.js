// On-device mode: the camera frame never leaves the browser. BlazeFace finds the faces, the zoo (or your)
// classifier labels each face crop, tracks and smoothing as in `ferlab live`; both models run in
// LiteRT.js (WebAssembly, XNNPACK), loaded from this server or a static export (no CDN), each in its own
// worker (worker.js), so that a camera stream is a pipeline: `detect` one frame while the last one is
// labelled. `analyze` does both for one image.
import { EMASmoother, FaceTracker } from "./tracking.js";

// A worker running one model (worker.js); `call(message, transfer)` answers its result or throws its error.
function spawn(role, manifest) {
  const worker = new Worker(new URL("./worker.js", import.meta.url)); // classic: see worker.js
  const waiting = new Map();
  let next = 0;
  const fail = (why) => {
    for (const { reject } of waiting.values()) reject(new Error(`the ${role} worker: ${why}`));
    waiting.clear();
  };
  worker.onmessage = ({ data }) => {
    const call = waiting.get(data.id);
    waiting.delete(data.id);
    if (data.error !== undefined) call.reject(new Error(`the ${role} worker: ${data.error}`));
    else call.resolve(data.result);
  };
  worker.onerror = (event) => fail(event.message || "it could not start");
  worker.onmessageerror = () => fail("a message could not be read");
  const call = (message, transfer = []) => new Promise((resolve, reject) => {
    const id = next++;
    waiting.set(id, { resolve, reject });
    worker.postMessage({ ...message, id }, transfer);
  });
  return { call, loaded: call({ op: "load", role, manifest }) };
}

// manifest: {runtime: URL of LiteRT.js's module, wasm: folder URL, detector: URL, classifier: URL,
//            classes: [...], input_dtype: "uint8" | "float32", min_confidence: number, face_size: the
//            classifier's input side in pixels, smoothing: the tracks' EMA weight, blazeface: the detector's
//            search settings}; URLs absolute. The server writes it (ferlab.deploy.web.ondevice.OnDevice.manifest),
//            with the numbers Python owns.
export async function createEngine(manifest) {
  const detector = spawn("detector", manifest);
  const classifier = spawn("classifier", manifest);
  const files = await Promise.all([detector.loaded, classifier.loaded]);
  const tracker = new FaceTracker();
  const smoother = new EMASmoother(manifest.smoothing);
  const classes = manifest.classes;
  const minConfidence = manifest.min_confidence || 0;

  function labelOf(probabilities) {
    let best = 0;
    probabilities.forEach((p, i) => { if (p > probabilities[best]) best = i; });
    return probabilities[best] < minConfidence ? "uncertain" : classes[best];
  }

  // The faces of one frame and their crops: {width, height, faces, crops, ms}. The frame: RGBA pixels
  // (copied to the worker), or a camera frame as a VideoFrame or ImageBitmap, which moves to the worker
  // (the caller's is closed) and becomes pixels there, off the page's thread. {still: true}: one image, no
  // memory of earlier frames; {whole: true}: the image is one face crop.
  async function detect(image, width, height, { still = false, whole = false } = {}) {
    const frame = (typeof VideoFrame === "function" && image instanceof VideoFrame)
      || (typeof ImageBitmap === "function" && image instanceof ImageBitmap);
    return frame ? detector.call({ op: "detect", frame: image, width, height, still, whole }, [image])
      : detector.call({ op: "detect", rgba: image, width, height, still, whole });
  }

  // What detect() found, labelled: the faces as the server's WebSocket answers them, plus stage times.
  // Frames of a stream must come in order (tracks and smoothing carry over); {still: true} touches neither.
  async function label(found, { smooth = true, still = false } = {}) {
    const { probabilities, ms } = found.crops.length ? await classifier.call({ op: "classify", crops: found.crops })
      : { probabilities: [], ms: 0 };
    const boxes = found.faces.map((f) => [f.x, f.y, f.w, f.h]);
    const ids = still ? boxes.map((b, i) => i + 1) : tracker.update(boxes);
    const faces = found.faces.map((face, i) => {
      const raw = probabilities[i];
      const p = smooth && !still ? smoother.update(ids[i], raw) : raw;
      return {
        track: ids[i], box: boxes[i], score: face.score, label: labelOf(p), confidence: Math.max(...p),
        probabilities: Object.fromEntries(classes.map((c, k) => [c, p[k]])), raw_probabilities: raw,
      };
    });
    if (!still) smoother.keepOnly(new Set(tracker.tracks.keys()));
    return { width: found.width, height: found.height, faces, timings_ms: { detect: found.ms, classify: ms } };
  }

  // One image, start to end (uploads, tests): detect, then label.
  async function analyze(rgba, width, height, options = {}) {
    return label(await detect(rgba, width, height, options), options);
  }

  async function classify(crop) {
    return (await classifier.call({ op: "classify", crops: [crop] })).probabilities[0];
  }

  // Every URL the workers fetched, for the service worker's offline copy.
  const loaded = [...new Set(files.flatMap((f) => f.loaded))];
  return { analyze, detect, label, classify, classes, loaded };
}
