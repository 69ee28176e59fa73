// Replays the Python BlazeFace detector's model outputs through the browser's code (static/ondevice) and
// prints what the browser would have computed: the model inputs, the faces and the crops (of the manifest's
// face_size, as the page's worker cuts them). FIXTURE.json: {stream, manifest, frames}.
// Usage: node --experimental-detect-module tests/js/blazeface_replay.mjs FIXTURE.json
import { readFileSync } from "node:fs";
import { BlazeFace } from "../../src/ferlab/deploy/web/static/ondevice/blazeface.js";
import { cropFace } from "../../src/ferlab/deploy/web/static/ondevice/imaging.js";

const fixture = JSON.parse(readFileSync(process.argv[2], "utf8"));
const report = { frames: [] };
for (const frame of fixture.frames) {
  const rgba = Uint8Array.from(Buffer.from(frame.rgba, "base64"));
  const passes = frame.passes.map((p) => ({ regressors: Float32Array.from(p.regressors), logits: Float32Array.from(p.logits), input: p.input }));
  let pass = 0;
  let maxInputDiff = 0;
  const detector = new BlazeFace(async (input) => {
    const recorded = passes[pass++];
    if (!recorded) throw new Error(`the browser ran more model passes than Python (${pass})`);
    for (let i = 0; i < input.length; i++) maxInputDiff = Math.max(maxInputDiff, Math.abs(input[i] - recorded.input[i]));
    return recorded;
  }, { stream: fixture.stream });
  const out = [];
  for (let k = 0; k < (frame.repeat || 1); k++) out.push(await detector.detect(rgba, frame.width, frame.height));
  const faces = out.at(-1);
  const crops = faces.map((f) => Array.from(cropFace(rgba, frame.width, frame.height, f, fixture.manifest.face_size)));
  report.frames.push({ passes: pass, maxInputDiff, faces, crops });
}
console.log(JSON.stringify(report));
