// One model per worker. The camera's frames then go through a pipeline: while the classifier's worker
// labels one frame's faces, the detector's worker finds the next frame's, and the page's own thread only
// grabs frames and draws; on a phone's (or this machine's) several cores that is more frames a second than
// one thread doing all three in turn, and the page stays responsive. See engine.js for the messages.
//
// A classic worker, not a module worker: LiteRT.js loads its WebAssembly glue with importScripts(), which
// module workers do not have. Modules come in by import() instead.

// LiteRT.js writes its C++ log lines ("INFO: [environment.cc:36] ...", "WARNING: [npu_registry.cc...]")
// through console.error; they are information, not errors: send them to console.debug, leave the rest.
const error = console.error.bind(console);
console.error = (...args) => (/^(INFO|WARNING|VERBOSE): /.test(String(args[0])) ? console.debug(...args) : error(...args));

async function compiled(litert, url) {
  const model = await litert.loadAndCompile(url, { accelerator: "wasm" });
  return {
    model,
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

// The detector's worker: BlazeFace (one with a memory of the stream's last frames, one searching still
// images as a pyramid, both with the manifest's settings: Python's defaults) and the faces' crops, levelled
// by the eyes where Python levels them, cut here where the frame's pixels are.
async function detector(litert, manifest) {
  const [{ BlazeFace }, { cropFace }] = await Promise.all([import("./blazeface.js"), import("./crop.js")]);
  const { model, run } = await compiled(litert, manifest.detector);
  // The outputs by shape: (1, N, 16) box regressors and (1, N, 1) score logits.
  const order = model.getOutputDetails().map((d, i) => [Object.values(d.shape).at(-1), i]).sort((a, b) => b[0] - a[0]);
  const size = Object.values(model.getInputDetails()[0].shape)[1];
  const pass = async (input) => {
    const out = await run(input, [1, size, size, 3]);
    return { regressors: out[order[0][1]], logits: out[order[1][1]] };
  };
  const stream = new BlazeFace(pass, manifest.blazeface, { stream: true });
  const still = new BlazeFace(pass, manifest.blazeface);
  const pixels = { canvas: null, buffer: null, copyTo: true };
  return async ({ rgba, frame, width, height, still: isStill = false, whole = false }) => {
    const started = performance.now();
    if (frame) rgba = await framePixels(frame, width, height, pixels);
    const faces = whole ? [{ x: 0, y: 0, w: width, h: height, score: 1, angle: 0 }]
      : await (isStill ? still : stream).detect(rgba, width, height);
    const crops = faces.map((face) => cropFace(rgba, width, height, face, manifest.face_size));
    return [{ width, height, faces, crops, ms: performance.now() - started }, crops.map((c) => c.buffer)];
  };
}

// A camera frame (VideoFrame or ImageBitmap, closed here) as RGBA pixels. A VideoFrame is converted by
// copyTo() into a buffer kept from frame to frame (one pass, no allocation); where the browser cannot
// convert its format to RGBA, and for an ImageBitmap, it is drawn on an OffscreenCanvas and read back.
async function framePixels(image, width, height, pixels) {
  try {
    if (pixels.copyTo && typeof VideoFrame === "function" && image instanceof VideoFrame) {
      if (!pixels.buffer || pixels.buffer.length !== width * height * 4) pixels.buffer = new Uint8ClampedArray(width * height * 4);
      try {
        await image.copyTo(pixels.buffer, { format: "RGBA", colorSpace: "srgb" });
        return pixels.buffer;
      } catch {
        pixels.copyTo = false; // this browser cannot: the canvas from now on
      }
    }
    if (!pixels.canvas || pixels.canvas.width !== width || pixels.canvas.height !== height) pixels.canvas = new OffscreenCanvas(width, height);
    const ctx = pixels.canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(image, 0, 0);
    return ctx.getImageData(0, 0, width, height).data;
  } finally {
    image.close();
  }
}

// The classifier's worker: class probabilities of grayscale face crops (face_size square), one model call each.
async function classifier(litert, manifest) {
  const { run } = await compiled(litert, manifest.classifier);
  const dtype = manifest.input_dtype === "float32" ? Float32Array : Uint8Array;
  const shape = [1, manifest.face_size, manifest.face_size, 1];
  return async ({ crops }) => {
    const started = performance.now();
    const probabilities = [];
    for (const crop of crops) probabilities.push(Array.from((await run(dtype.from(crop), shape))[0]));
    return [{ probabilities, ms: performance.now() - started }, []];
  };
}

let handle = null;
let queue = Promise.resolve(); // one message at a time, in order: the stream detector remembers frames
self.onmessage = ({ data }) => {
  queue = queue.then(async () => {
    try {
      if (data.op === "load") {
        const litert = await import(data.manifest.runtime);
        // Emscripten looks for the .wasm beside the worker's own script; LiteRT.js's loader passes on a
        // global Module's settings (wasm-utils' createWasmLib), so point it at the runtime's folder.
        self.Module = { locateFile: (file) => new URL(file, data.manifest.wasm).href };
        await litert.loadLiteRt(data.manifest.wasm);
        handle = await { detector, classifier }[data.role](litert, data.manifest);
        // What this worker fetched (its modules, the runtime, the model): the page's service worker keeps them.
        const loaded = [self.location.href, ...performance.getEntriesByType("resource").map((e) => e.name)];
        self.postMessage({ id: data.id, result: { loaded } });
      } else {
        const [result, transfer] = await handle(data);
        self.postMessage({ id: data.id, result }, transfer);
      }
    } catch (err) {
      self.postMessage({ id: data.id, error: String((err && err.message) || err) });
    }
  });
};
