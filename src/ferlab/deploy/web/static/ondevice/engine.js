// On-device mode: the camera frame never leaves the browser. BlazeFace finds the faces, the zoo (or your)
// classifier labels each 48x48 crop, tracks and smoothing as in `ferlab live`; both models run in
// LiteRT.js (WebAssembly, XNNPACK), loaded from this server or a static export (no CDN).
import { BlazeFace } from "./blazeface.js";
import { cropFace } from "./imaging.js";
import { EMASmoother, FaceTracker } from "./tracking.js";

// Whether this browser can run on-device mode, and if not, why (the page says so and uses the server).
export function support() {
  if (typeof WebAssembly !== "object") return { ok: false, why: "this browser has no WebAssembly" };
  if (!window.isSecureContext) return { ok: false, why: "the page is not a secure context (HTTPS or localhost)" };
  return { ok: true, why: "WebAssembly is available" };
}

// LiteRT.js writes its C++ log lines ("INFO: [environment.cc:36] ...", "WARNING: [npu_registry.cc...]")
// through console.error; they are information, not errors: send them to console.debug, leave the rest.
let logsQuieted = false;
let runtimeLoaded = null;
function quietRuntimeLogs() {
  if (logsQuieted) return;
  logsQuieted = true;
  const error = console.error.bind(console);
  console.error = (...args) => (/^(INFO|WARNING|VERBOSE): /.test(String(args[0])) ? console.debug(...args) : error(...args));
}

async function compiled(litert, url) {
  const model = await litert.loadAndCompile(url, { accelerator: "wasm" });
  const outputs = model.getOutputDetails();
  return {
    model,
    outputs,
    async run(data, shape) {
      const input = new litert.Tensor(data, shape);
      try {
        const results = await model.run(input);
        try {
          return results.map((r) => r.toTypedArray().slice());
        } finally {
          results.forEach((r) => r.delete());
        }
      } finally {
        input.delete();
      }
    },
  };
}

// manifest: {runtime: URL of LiteRT.js's module, wasm: folder URL, detector: URL, classifier: URL,
//            classes: [...], input_dtype: "uint8" | "float32", min_confidence: number}
export async function createEngine(manifest, { smoothing = 0.35 } = {}) {
  quietRuntimeLogs();
  const litert = await import(manifest.runtime);
  runtimeLoaded ||= litert.loadLiteRt(manifest.wasm); // once per page: more engines share it
  await runtimeLoaded;
  const detectorModel = await compiled(litert, manifest.detector);
  const classifierModel = await compiled(litert, manifest.classifier);
  // The detector's outputs by shape: (1, N, 16) box regressors and (1, N, 1) score logits.
  const order = detectorModel.outputs.map((d, i) => [Object.values(d.shape).at(-1), i]).sort((a, b) => b[0] - a[0]);
  const inputSize = Object.values(detectorModel.model.getInputDetails()[0].shape)[1];
  const detector = new BlazeFace(async (input) => {
    const out = await detectorModel.run(input, [1, inputSize, inputSize, 3]);
    return { regressors: out[order[0][1]], logits: out[order[1][1]] };
  }, { stream: true });
  const stillDetector = new BlazeFace(detector.run, {}); // still images: no memory of other frames
  const dtype = manifest.input_dtype === "float32" ? Float32Array : Uint8Array;
  const tracker = new FaceTracker();
  const smoother = new EMASmoother(smoothing);
  const classes = manifest.classes;
  const minConfidence = manifest.min_confidence || 0;

  async function classify(crop) {
    const [probs] = await classifierModel.run(dtype.from(crop), [1, 48, 48, 1]);
    return Array.from(probs);
  }

  function labelOf(probabilities) {
    let best = 0;
    probabilities.forEach((p, i) => { if (p > probabilities[best]) best = i; });
    return probabilities[best] < minConfidence ? "uncertain" : classes[best];
  }

  // One camera frame (RGBA pixels) -> faces as the server's WebSocket answers them, plus stage times.
  // {still: true}: one image, no tracking or smoothing; {whole: true}: the image is one face crop.
  async function analyze(rgba, width, height, { smooth = true, still = false, whole = false } = {}) {
    const t0 = performance.now();
    const faces = whole ? [{ x: 0, y: 0, w: width, h: height, score: 1 }]
      : await (still ? stillDetector : detector).detect(rgba, width, height);
    const t1 = performance.now();
    const results = [];
    for (const face of faces) {
      const raw = await classify(cropFace(rgba, width, height, face));
      results.push({ face, raw });
    }
    const t2 = performance.now();
    const ids = still ? results.map((r, i) => i + 1) : tracker.update(results.map((r) => [r.face.x, r.face.y, r.face.w, r.face.h]));
    const answer = results.map((r, i) => {
      const p = smooth && !still ? smoother.update(ids[i], r.raw) : r.raw;
      return {
        track: ids[i], box: [r.face.x, r.face.y, r.face.w, r.face.h], score: r.face.score, label: labelOf(p),
        confidence: Math.max(...p), probabilities: Object.fromEntries(classes.map((c, k) => [c, p[k]])),
        raw_probabilities: r.raw,
      };
    });
    if (!still) smoother.keepOnly(new Set(tracker.tracks.keys()));
    return { width, height, faces: answer, timings_ms: { detect: t1 - t0, classify: t2 - t1, total: performance.now() - t0 } };
  }

  return { analyze, classify, detector, classes };
}
