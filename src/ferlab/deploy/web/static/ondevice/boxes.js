// Box arithmetic of the BlazeFace search, as ferlab.deploy.detection.blazeface and .base do it: rows of 16
// (box x0 y0 x1 y1, then six key points x, y: right eye, left eye, nose tip, mouth centre, right and left
// ear tragion) in frame pixels, merged by weighted suppression; faces {x, y, w, h, score, angle}.
import { roundEven } from "./imaging.js";

export const SUPPRESSION_IOU = 0.3;

// MediaPipe's weighted non-maximum suppression over rows of 16: best first, each cluster (overlap > iou)
// averaged by score, keeping the best's score.
export function weightedNms(rows, scores, iou = SUPPRESSION_IOU) {
  const order = scores.map((s, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  const area = (r) => Math.max(r[2] - r[0], 0) * Math.max(r[3] - r[1], 0);
  const alive = new Array(rows.length).fill(true);
  const kept = [];
  for (const i of order) {
    if (!alive[i]) continue;
    const best = rows[i];
    const mean = new Float64Array(best.length);
    let total = 0;
    for (const j of order) {
      if (!alive[j]) continue;
      const r = rows[j];
      const inter = Math.max(Math.min(best[2], r[2]) - Math.max(best[0], r[0]), 0) *
        Math.max(Math.min(best[3], r[3]) - Math.max(best[1], r[1]), 0);
      const overlap = inter / Math.max(area(best) + area(r) - inter, 1e-9);
      if (j !== i && !(overlap > iou)) continue;
      for (let k = 0; k < r.length; k++) mean[k] += scores[j] * r[k];
      total += scores[j];
      alive[j] = false;
    }
    kept.push({ row: mean.map((v) => v / total), score: scores[i] });
  }
  return kept;
}

// Square tiles (x, y, side) covering a frame, side `share` of its shorter side (ferlab's tile_grid: six of
// 0.6 on 640x480); the corners spaced as numpy.linspace spaces them, then rounded half to even.
export function tileGrid(height, width, share = 0.6, overlap = 0.3) {
  const side = Math.max(1, roundEven(Math.min(height, width) * share));
  const step = (1 - overlap) * side;
  const across = Math.max(2, Math.ceil((width - side) / step) + 1);
  const down = Math.max(2, Math.ceil((height - side) / step) + 1);
  const spaced = (n, end) => Array.from({ length: n }, (_, i) => roundEven(i === n - 1 ? end : i * (end / (n - 1))));
  const tiles = [];
  for (const y of spaced(down, height - side)) for (const x of spaced(across, width - side)) tiles.push([x, y, side]);
  return tiles;
}

// The square region grow x a box's side around its centre, inside the frame.
export function around(box, height, width, grow = 2.5) {
  const [x0, y0, x1, y1] = box;
  const side = Math.trunc(Math.min(Math.min(height, width), Math.max(16, grow * Math.max(x1 - x0, y1 - y0))));
  const x = Math.trunc(Math.min(Math.max(0, (x0 + x1) / 2 - side / 2), width - side));
  const y = Math.trunc(Math.min(Math.max(0, (y0 + y1) / 2 - side / 2), height - side));
  return [x, y, side, side];
}

// Halfway between the box centre and the midpoint of the eyes' centre and the mouth.
export function faceCentre(row) {
  const bx = (row[0] + row[2]) / 2;
  const by = (row[1] + row[3]) / 2;
  const ex = ((row[4] + row[6]) / 2 + row[10]) / 2;
  const ey = ((row[5] + row[7]) / 2 + row[11]) / 2;
  return [(bx + ex) / 2, (by + ey) / 2];
}

// The head's roll from the eye key points (eye_roll): degrees, counter-clockwise as OpenCV turns images,
// that make the line from the right eye to the left eye horizontal; 0 for an upright face.
export function eyeRoll(row) {
  return Math.atan2(row[7] - row[5], row[6] - row[4]) * (180 / Math.PI);
}

// Whether a box's centre lies inside an (x0, y0, x1, y1) box.
export function holds(box, cx, cy) {
  return box[0] <= cx && cx <= box[2] && box[1] <= cy && cy <= box[3];
}

// Whether two (x0, y0, x1, y1) boxes are one face: either's centre inside the other.
export function sameFace(a, b) {
  return holds(b, (a[0] + a[2]) / 2, (a[1] + a[3]) / 2) || holds(a, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2);
}

// Drop every box whose centre lies inside a larger one (ferlab's suppress_nested); largest first.
export function suppressNested(faces) {
  const kept = [];
  for (const f of [...faces].sort((a, b) => b.w * b.h - a.w * a.h)) {
    const cx = f.x + f.w / 2;
    const cy = f.y + f.h / 2;
    if (!kept.some((k) => k.x <= cx && cx <= k.x + k.w && k.y <= cy && cy <= k.y + k.h)) kept.push(f);
  }
  return kept;
}
