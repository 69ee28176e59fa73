// Replays the Python BlazeFace detector's model outputs through the browser's code (static/ondevice) and
// prints what the browser would have computed: the model inputs, the faces and the crops (of the manifest's
// face_size, levelled as the page's worker cuts them). FIXTURE.json: {stream, manifest, frames}; each
// frame's passes, in Python's order: the model input as uint8 pixels, the outputs as float32, all base64.
// Usage: node --experimental-detect-module tests/js/blazeface_replay.mjs FIXTURE.json
import { readFileSync } from "node:fs";
import { BlazeFace } from "../../src/ferlab/deploy/web/static/ondevice/blazeface.js";
import { cropFace } from "../../src/ferlab/deploy/web/static/ondevice/crop.js";

const bytes = (b64) => Uint8Array.from(Buffer.from(b64, "base64"));
const floats = (b64) => new Float32Array(bytes(b64).buffer);

const fixture = JSON.parse(readFileSync(process.argv[2], "utf8"));
const report = { frames: [] };
for (const frame of fixture.frames) {
  const rgba = bytes(frame.rgba);
  const passes = frame.passes.map((p) => ({ regressors: floats(p.regressors), logits: floats(p.logits), input: bytes(p.input) }));
  let pass = 0;
  const inputs = []; // per pass: [the largest difference, in grey levels; how many values differ]
  const detector = new BlazeFace(async (input) => {
    const recorded = passes[pass++];
    if (!recorded) throw new Error(`the browser ran more model passes than Python (${pass})`);
    let most = 0;
    let over = 0;
    for (let i = 0; i < input.length; i++) {
      const levels = Math.abs(input[i] - (recorded.input[i] * (1 / 127.5) - 1)) * 127.5;
      most = Math.max(most, levels);
      if (levels > 0.5) over++;
    }
    inputs.push([most, over]);
    return recorded;
  }, fixture.manifest.blazeface, { stream: fixture.stream });
  const out = [];
  for (let k = 0; k < (frame.repeat || 1); k++) out.push(await detector.detect(rgba, frame.width, frame.height));
  const faces = out.at(-1);
  const crops = faces.map((f) => Array.from(cropFace(rgba, frame.width, frame.height, f, fixture.manifest.face_size)));
  report.frames.push({ passes: pass, inputs, faces, crops });
}
console.log(JSON.stringify(report));
