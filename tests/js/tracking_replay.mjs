// Runs the browser's tracker and smoother (static/ondevice/tracking.js) over frames of boxes and probabilities,
// with the smoothing the server's manifest sends. FIXTURE.json: {manifest, frames}.
// Usage: node --experimental-detect-module tests/js/tracking_replay.mjs FIXTURE.json
import { readFileSync } from "node:fs";
import { EMASmoother, FaceTracker } from "../../src/ferlab/deploy/web/static/ondevice/tracking.js";

const { manifest, frames } = JSON.parse(readFileSync(process.argv[2], "utf8"));
const tracker = new FaceTracker();
const smoother = new EMASmoother(manifest.smoothing);
const out = [];
for (const frame of frames) {
  const ids = tracker.update(frame.boxes);
  const smoothed = ids.map((id, i) => smoother.update(id, frame.probabilities[i]));
  smoother.keepOnly(new Set(tracker.tracks.keys()));
  out.push({ ids, smoothed });
}
console.log(JSON.stringify(out));
