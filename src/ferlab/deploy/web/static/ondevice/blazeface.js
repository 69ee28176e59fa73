// MediaPipe's BlazeFace short-range detector in the browser: the same steps, settings and framing as
// ferlab.deploy.detection.blazeface (read that module's notes for why each step is there). The model
// runs wherever `run` says (LiteRT.js here); everything else is plain arithmetic, so it is tested in Node
// against the Python detector on the same model outputs.
import { eyeRoll, faceCentre, suppressNested, tileGrid, weightedNms } from "./boxes.js";
import { resize, roundEven } from "./imaging.js";
import { follow, pyramid } from "./search.js";

export const SHORT_RANGE = { name: "short", inputSize: 128, strides: [8, 16, 16, 16], anchorsPerLayer: 2, minScore: 0.5 };
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

// BlazeFace on RGBA frames. `run(Float32Array input) -> Promise<{regressors: Float32Array (N*16), logits:
// Float32Array (N)}>`. `settings`: the manifest's "blazeface" (OnDevice.manifest: the still pyramid's
// numbers and whether crops are levelled, Python's). A still image is searched as a pyramid (search.js;
// tiles = "fallback": the whole frame, tiles only where it finds nothing, as blazeface-fast); with stream
// = true (camera), the regions around faces the last frame saw and this frame missed, then one tile a
// frame in turn. Each face's angle is its head's roll from the eye key points (0 unless settings.level).
export class BlazeFace {
  constructor(run, settings, { model = SHORT_RANGE, minScore = null, framing = null, stream = false, tiles = "pyramid" } = {}) {
    if (!settings || !Array.isArray(settings.pyramid)) throw new Error("BlazeFace: the manifest's blazeface settings are missing");
    if (!["pyramid", "fallback"].includes(tiles)) throw new Error(`BlazeFace tiles: "pyramid" or "fallback", got ${tiles}`);
    this.run = run;
    this.settings = settings;
    this.model = model;
    this.minScore = minScore ?? model.minScore;
    this.framing = framing ?? FER2013_FRAMING[model.name];
    this.stream = stream;
    this.tiles = tiles;
    this.level = Boolean(settings.level);
    this.anchors = ssdAnchors(model);
    this.frames = 0;
    this.previous = null; // {width, height, boxes}: the last frame's, on a stream
    this.input = new Float32Array(model.inputSize * model.inputSize * 3);
    this.passes = 0; // model calls, for the page's stage timings
  }

  // Letterbox one region of an image ({pixels, width, height, stride}: 4 for the RGBA frame, 3 for packed
  // RGB) into the model input; returns where it went.
  letterbox(image, [x, y, w, h]) {
    const size = this.model.inputSize;
    const scale = size / Math.max(h, w);
    const newW = Math.max(1, roundEven(w * scale));
    const newH = Math.max(1, roundEven(h * scale));
    const padX = Math.floor((size - newW) / 2);
    const padY = Math.floor((size - newH) / 2);
    // The region lies inside the image (whole frame, tiles, around()): read the pixels in place.
    const small = resize(image.pixels, w, h, 3, newW, newH, { stride: image.stride, rowLength: image.width, x0: x, y0: y });
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

  // One model pass per region of `image`: the candidates above minScore (null: the detector's), in image pixels.
  async search(image, regions, minScore = null) {
    const rows = [];
    const scores = [];
    for (const where of regions) {
      const place = this.letterbox(image, where);
      const { regressors, logits } = await this.run(this.input);
      this.passes++;
      const found = decode(regressors, logits, this.anchors, this.model, minScore ?? this.minScore, place);
      rows.push(...found.rows);
      scores.push(...found.scores);
    }
    return { rows, scores };
  }

  async rawBoxes(rgba, width, height) {
    this.frames++;
    const frame = { pixels: rgba, width, height, stride: 4 };
    if (this.tiles === "pyramid" && !this.stream) return pyramid(this, frame);
    const tiles = tileGrid(height, width).map(([x, y, side]) => [x, y, side, side]);
    const whole = await this.search(frame, [[0, 0, width, height]]);
    if (this.stream) return follow(this, frame, whole, tiles);
    const found = weightedNms(whole.rows, whole.scores);
    if (found.length) return found;
    const tiled = await this.search(frame, tiles);
    return weightedNms(tiled.rows, tiled.scores);
  }

  // Faces {x, y, w, h, score, angle}, framed like FER2013's crops (no margin needed), largest first; angle:
  // the roll (degrees) that turns the face upright, which cropFace (crop.js) turns its crop by.
  async detect(rgba, width, height) {
    const verified = this.tiles === "pyramid" && !this.stream && this.settings.verify_score != null;
    const [scale, dx, dy] = verified ? this.settings.pyramid_framing : this.framing;
    const faces = [];
    for (const { row, score } of await this.rawBoxes(rgba, width, height)) {
      const side = Math.max(row[2] - row[0], row[3] - row[1]);
      if (side <= 0) continue;
      const angle = this.level ? eyeRoll(row) : 0;
      // The framing's shift is along the face's own axes: turned with its roll.
      const turn = angle * (Math.PI / 180);
      const cos = Math.cos(turn);
      const sin = Math.sin(turn);
      const [cx0, cy0] = faceCentre(row);
      const cx = cx0 + (dx * cos - dy * sin) * side;
      const cy = cy0 + (dx * sin + dy * cos) * side;
      const framed = scale * side;
      faces.push({ x: roundEven(cx - framed / 2), y: roundEven(cy - framed / 2), w: roundEven(framed), h: roundEven(framed), score, angle });
    }
    return suppressNested(faces); // a tile that cuts a big face may see part of it as a face
  }
}
