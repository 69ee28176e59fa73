// MediaPipe's BlazeFace short-range detector in the browser: the same steps, settings and framing as
// ferlab.deploy.detection.blazeface (read that module's notes for why each step is there). The model
// runs wherever `run` says (LiteRT.js here); everything else is plain arithmetic, so it is tested in Node
// against the Python detector on the same model outputs.
import { resize, roundEven } from "./imaging.js";

export const SHORT_RANGE = { name: "short", inputSize: 128, strides: [8, 16, 16, 16], anchorsPerLayer: 2, minScore: 0.5 };
export const SUPPRESSION_IOU = 0.3;
// BlazeFace box -> FER2013 framing (side scale, centre shift x, y in box sides); measured by
// `python -m bench detectors --calibrate` (FER2013_FRAMING in the Python module).
export const FER2013_FRAMING = { short: [1.19, 0.0, -0.1] };

// (N * 2) anchor centres in [0, 1], in the model's output order (MediaPipe's SsdAnchorsCalculator).
export function ssdAnchors(model) {
  const centres = [];
  let layer = 0;
  while (layer < model.strides.length) {
    const stride = model.strides[layer];
    let same = 1;
    while (layer + same < model.strides.length && model.strides[layer + same] === stride) same++;
    const grid = Math.ceil(model.inputSize / stride);
    for (let y = 0; y < grid; y++) {
      for (let x = 0; x < grid; x++) {
        for (let k = 0; k < same * model.anchorsPerLayer; k++) centres.push((x + 0.5) / grid, (y + 0.5) / grid);
      }
    }
    layer += same;
  }
  return Float32Array.from(centres);
}

// MediaPipe's weighted non-maximum suppression over rows of 16 (box x0 y0 x1 y1, six key points):
// best first, each cluster (overlap > iou) averaged by score, keeping the best's score.
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

// Square tiles (x, y, side) covering a frame (ferlab's tile_grid: six on 640x480).
export function tileGrid(height, width, share = 0.6, overlap = 0.3) {
  const side = Math.max(1, roundEven(Math.min(height, width) * share));
  const step = (1 - overlap) * side;
  const across = Math.max(2, Math.ceil((width - side) / step) + 1);
  const down = Math.max(2, Math.ceil((height - side) / step) + 1);
  const spaced = (n, end) => Array.from({ length: n }, (_, i) => roundEven((end * i) / (n - 1)));
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

function sameFace(a, b) {
  const inside = (p, q) => {
    const cx = (p[0] + p[2]) / 2;
    const cy = (p[1] + p[3]) / 2;
    return q[0] <= cx && cx <= q[2] && q[1] <= cy && cy <= q[3];
  };
  return inside(a, b) || inside(b, a);
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

// Candidates of one model pass: rows of 16 in frame pixels and their scores.
export function decode(regressors, logits, anchors, model, minScore, place) {
  const size = model.inputSize;
  const threshold = Math.log(minScore / (1 - minScore));
  const { scale, padX, padY, left, top } = place;
  const rows = [];
  const scores = [];
  for (let a = 0; a < logits.length; a++) {
    if (!(logits[a] > threshold)) continue;
    const r = regressors.subarray(a * 16, a * 16 + 16);
    const ax = anchors[2 * a];
    const ay = anchors[2 * a + 1];
    const cx = r[0] / size + ax;
    const cy = r[1] / size + ay;
    const hw = r[2] / size / 2;
    const hh = r[3] / size / 2;
    const row = [cx - hw, cy - hh, cx + hw, cy + hh];
    for (let k = 0; k < 6; k++) row.push(r[4 + 2 * k] / size + ax, r[5 + 2 * k] / size + ay);
    const toFrame = size / scale;
    const offX = left - padX / scale;
    const offY = top - padY / scale;
    rows.push(row.map((v, k) => v * toFrame + (k % 2 === 0 ? offX : offY)));
    scores.push(1 / (1 + Math.exp(-Math.min(100, Math.max(-100, logits[a])))));
  }
  return { rows, scores };
}

// BlazeFace on RGB frames. `run(Float32Array input) -> Promise<{regressors: Float32Array (N*16), logits: Float32Array (N)}>`.
// Tiles when the whole frame finds nothing; with stream = true (camera), the regions around faces the
// last frame saw and this frame missed, then one tile a frame in turn (as the Python detector).
export class BlazeFace {
  constructor(run, { model = SHORT_RANGE, minScore = null, framing = null, stream = false } = {}) {
    this.run = run;
    this.model = model;
    this.minScore = minScore ?? model.minScore;
    this.framing = framing ?? FER2013_FRAMING[model.name];
    this.stream = stream;
    this.anchors = ssdAnchors(model);
    this.frames = 0;
    this.previous = null; // {width, height, boxes}
    this.input = new Float32Array(model.inputSize * model.inputSize * 3);
    this.passes = 0; // model calls, for the page's stage timings
  }

  // Letterbox one region of the RGBA frame into the model input; returns where it went.
  letterbox(rgba, width, height, [x, y, w, h]) {
    const size = this.model.inputSize;
    const scale = size / Math.max(h, w);
    const newW = Math.max(1, roundEven(w * scale));
    const newH = Math.max(1, roundEven(h * scale));
    const padX = Math.floor((size - newW) / 2);
    const padY = Math.floor((size - newH) / 2);
    // The region lies inside the frame (whole frame, tiles, around()): read the RGBA pixels in place.
    const small = resize(rgba, w, h, 3, newW, newH, { stride: 4, rowLength: width, x0: x, y0: y });
    this.input.fill(-1); // black, in [-1, 1]
    for (let yy = 0; yy < newH; yy++) {
      for (let xx = 0; xx < newW; xx++) {
        const s = (yy * newW + xx) * 3;
        const d = ((yy + padY) * size + xx + padX) * 3;
        for (let c = 0; c < 3; c++) this.input[d + c] = small[s + c] * (1 / 127.5) - 1;
      }
    }
    return { scale, padX, padY, left: x, top: y };
  }

  async search(rgba, width, height, regions) {
    const rows = [];
    const scores = [];
    for (const where of regions) {
      const place = this.letterbox(rgba, width, height, where);
      const { regressors, logits } = await this.run(this.input);
      this.passes++;
      const found = decode(regressors, logits, this.anchors, this.model, this.minScore, place);
      rows.push(...found.rows);
      scores.push(...found.scores);
    }
    return { rows, scores };
  }

  async rawBoxes(rgba, width, height) {
    this.frames++;
    const tiles = tileGrid(height, width).map(([x, y, side]) => [x, y, side, side]);
    const whole = await this.search(rgba, width, height, [[0, 0, width, height]]);
    let found = weightedNms(whole.rows, whole.scores);
    if (!this.stream) {
      if (found.length) return found;
      const tiled = await this.search(rgba, width, height, tiles);
      return weightedNms(tiled.rows, tiled.scores);
    }
    let { rows, scores } = whole;
    const previous = this.previous && this.previous.width === width && this.previous.height === height ? this.previous.boxes : [];
    const lost = previous.filter((box) => !found.some((f) => sameFace(box, f.row.slice(0, 4))));
    if (lost.length) {
      const more = await this.search(rgba, width, height, lost.map((box) => around(box, height, width)));
      rows = rows.concat(more.rows);
      scores = scores.concat(more.scores);
      found = weightedNms(rows, scores);
    }
    const next = found.length ? [tiles[(this.frames - 1) % tiles.length]] : tiles;
    const tiled = await this.search(rgba, width, height, next);
    if (tiled.rows.length) found = weightedNms(rows.concat(tiled.rows), scores.concat(tiled.scores));
    this.previous = { width, height, boxes: found.map((f) => f.row.slice(0, 4)) };
    return found;
  }

  // Faces {x, y, w, h, score}, framed like FER2013's crops (no margin needed), largest first.
  async detect(rgba, width, height) {
    const [scale, dx, dy] = this.framing;
    const faces = [];
    for (const { row, score } of await this.rawBoxes(rgba, width, height)) {
      const side = Math.max(row[2] - row[0], row[3] - row[1]);
      if (side <= 0) continue;
      const [cx0, cy0] = faceCentre(row);
      const cx = cx0 + dx * side;
      const cy = cy0 + dy * side;
      const framed = scale * side;
      faces.push({ x: roundEven(cx - framed / 2), y: roundEven(cy - framed / 2), w: roundEven(framed), h: roundEven(framed), score });
    }
    return suppressNested(faces);
  }
}
