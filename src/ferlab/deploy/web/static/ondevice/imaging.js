// Pixels as the Python path sees them: OpenCV's grayscale conversion and resizing, rewritten for the browser.
//
// Why not canvas drawImage or OpenCV.js: a canvas resamples with the browser's own filter (it differs
// between browsers and from OpenCV), and OpenCV.js is ~10 MB to load on a phone for three functions. The
// crops must match the Python runtime's to the pixel for the probabilities to match, so these follow
// OpenCV 4's arithmetic: cv2.cvtColor(BGR2GRAY)'s fixed-point weights, cv2.resize's INTER_AREA (exact
// area coverage when shrinking) and INTER_LINEAR (half-pixel centres, edge clamp), rounded to uint8.

// numpy's and Python's round(): halves to even (Math.round sends halves up).
export function roundEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// Taps of one axis as typed arrays: output d reads source[index[k]] * weight[k] for k in [start[d], start[d+1]).
function taps(table) {
  const start = new Int32Array(table.length + 1);
  table.forEach((entries, d) => { start[d + 1] = start[d] + entries.length; });
  const index = new Int32Array(start[table.length]);
  const weight = new Float32Array(start[table.length]);
  let k = 0;
  for (const entries of table) {
    for (const [s, w] of entries) {
      index[k] = s;
      weight[k++] = w;
    }
  }
  return { start, index, weight };
}

// Area weights of one axis: for each output index, the source indices covering [d * scale, (d + 1) * scale)
// and their shares, summing to 1 (OpenCV's computeResizeAreaTab).
function areaTaps(srcSize, dstSize) {
  const scale = srcSize / dstSize;
  const table = [];
  for (let d = 0; d < dstSize; d++) {
    const f0 = d * scale;
    const f1 = f0 + scale;
    const s0 = Math.ceil(f0);
    const s1 = Math.floor(f1);
    const entries = [];
    if (s0 - f0 > 1e-3) entries.push([s0 - 1, (s0 - f0) / scale]);
    for (let s = s0; s < s1; s++) entries.push([s, 1 / scale]);
    if (f1 - s1 > 1e-3 && s1 < srcSize) entries.push([s1, Math.min(1, f1 - s1) / scale]);
    table.push(entries);
  }
  return taps(table);
}

// Linear taps of one axis: source = (d + 0.5) * scale - 0.5, clamped to the edges (cv2 INTER_LINEAR).
function linearTaps(srcSize, dstSize) {
  const scale = srcSize / dstSize;
  const table = [];
  for (let d = 0; d < dstSize; d++) {
    let f = (d + 0.5) * scale - 0.5;
    let s = Math.floor(f);
    f -= s;
    if (s < 0) {
      s = 0;
      f = 0;
    }
    if (s >= srcSize - 1) {
      s = srcSize - 1;
      f = 0;
    }
    table.push(f === 0 ? [[s, 1]] : [[s, 1 - f], [s + 1, f]]);
  }
  return taps(table);
}

const tapCache = new Map(); // the same few sizes come back every frame
function cachedTaps(kind, srcSize, dstSize) {
  const key = `${kind}:${srcSize}:${dstSize}`;
  let t = tapCache.get(key);
  if (!t) {
    t = (kind === "area" ? areaTaps : linearTaps)(srcSize, dstSize);
    if (tapCache.size > 256) tapCache.clear();
    tapCache.set(key, t);
  }
  return t;
}

// Scratch buffers reused from call to call: a camera frame's resize would otherwise allocate ~1 MB of
// floats 60 times a second.
const scratch = { rows: new Float32Array(0), acc: new Float64Array(0), sums: new Float64Array(0) };
function buffer(name, Type, n) {
  if (scratch[name].length < n) scratch[name] = new Type(n);
  return scratch[name];
}

// Resize an interleaved uint8 image (w x h, `channels` per pixel) to dstW x dstH: INTER_AREA when
// shrinking, INTER_LINEAR otherwise (what the Python code asks OpenCV for). Separable: rows first into
// floats, then columns, rounding once at the end. `view` reads a w x h window of a larger image in place:
// {stride: values per source pixel (4 for RGBA), rowLength: the image's width, x0, y0: the window's corner}.
// The loops are written out per channel count and sum the taps in the same order whatever the layout, so
// the result is the same to the bit; V8 runs these far faster than one generic loop over channels, and a
// camera stream resizes every frame.
export function resize(src, w, h, channels, dstW, dstH, view = {}) {
  const { stride = channels, rowLength = w, x0 = 0, y0 = 0 } = view;
  const kind = w > dstW || h > dstH ? "area" : "linear";
  if (kind === "area" && w % dstW === 0 && h % dstH === 0) return shrinkByBlocks(src, w / dstW, h / dstH, channels, dstW, dstH, stride, rowLength, x0, y0);
  const xs = cachedTaps(kind, w, dstW);
  const ys = cachedTaps(kind, h, dstH);
  const width = dstW * channels;
  const rows = buffer("rows", Float32Array, h * width);
  const { start, weight } = xs;
  const index = stride === 1 ? xs.index : xs.index.map((i) => i * stride); // source offsets (a few hundred)
  for (let y = 0; y < h; y++) {
    const srcRow = ((y + y0) * rowLength + x0) * stride;
    let out = y * width;
    for (let d = 0; d < dstW; d++) {
      const k1 = start[d + 1];
      if (channels === 3) {
        let r = 0;
        let g = 0;
        let b = 0;
        for (let k = start[d]; k < k1; k++) {
          const p = srcRow + index[k];
          const wk = weight[k];
          r += wk * src[p];
          g += wk * src[p + 1];
          b += wk * src[p + 2];
        }
        rows[out++] = r;
        rows[out++] = g;
        rows[out++] = b;
      } else {
        for (let c = 0; c < channels; c++) {
          let acc = 0;
          for (let k = start[d]; k < k1; k++) acc += weight[k] * src[srcRow + index[k] + c];
          rows[out++] = acc;
        }
      }
    }
  }
  const dst = new Uint8Array(dstH * width);
  const acc = buffer("acc", Float64Array, width);
  for (let d = 0; d < dstH; d++) {
    acc.fill(0, 0, width);
    for (let k = ys.start[d]; k < ys.start[d + 1]; k++) {
      const wk = ys.weight[k];
      const from = ys.index[k] * width;
      for (let i = 0; i < width; i++) acc[i] += wk * rows[from + i];
    }
    const out = d * width;
    for (let i = 0; i < width; i++) {
      const v = acc[i];
      dst[out + i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return dst;
}

// INTER_AREA by a whole factor (a 640x480 or 1280x720 camera frame to BlazeFace's 128 px): each output
// pixel is the rounded mean of its fx x fy block, summed in integers, as OpenCV's resizeAreaFast does
// (fewer operations a pixel than the taps above).
function shrinkByBlocks(src, fx, fy, channels, dstW, dstH, stride, rowLength, x0, y0) {
  const width = dstW * channels;
  const sums = buffer("sums", Float64Array, width);
  const dst = new Uint8Array(dstH * width);
  const area = fx * fy;
  for (let d = 0; d < dstH; d++) {
    sums.fill(0, 0, width);
    for (let yy = 0; yy < fy; yy++) {
      let p = ((d * fy + yy + y0) * rowLength + x0) * stride;
      for (let o = 0; o < width; o += channels) {
        if (channels === 3) {
          let r = 0;
          let g = 0;
          let b = 0;
          for (let j = 0; j < fx; j++, p += stride) {
            r += src[p];
            g += src[p + 1];
            b += src[p + 2];
          }
          sums[o] += r;
          sums[o + 1] += g;
          sums[o + 2] += b;
        } else {
          for (let j = 0; j < fx; j++, p += stride) for (let c = 0; c < channels; c++) sums[o + c] += src[p + c];
        }
      }
    }
    const out = d * width;
    for (let i = 0; i < width; i++) dst[out + i] = roundEven(sums[i] / area);
  }
  return dst;
}

// A region [x, y, w, h] of an RGBA frame as packed RGB (channels 3) or OpenCV grayscale (channels 1);
// pixels outside the frame repeat its border (cv2.BORDER_REPLICATE), so a face crop may overhang it.
export function region(rgba, width, height, [x0, y0, w, h], channels) {
  const out = new Uint8Array(w * h * channels);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(height - 1, Math.max(0, y + y0));
    for (let x = 0; x < w; x++) {
      const j = (sy * width + Math.min(width - 1, Math.max(0, x + x0))) * 4;
      const i = (y * w + x) * channels;
      if (channels === 1) out[i] = (rgba[j] * 4899 + rgba[j + 1] * 9617 + rgba[j + 2] * 1868 + 8192) >> 14;
      else {
        out[i] = rgba[j];
        out[i + 1] = rgba[j + 1];
        out[i + 2] = rgba[j + 2];
      }
    }
  }
  return out;
}

// The square (x, y, side) around a face box grown by margin per side (ferlab.deploy.detection.base.square_box).
export function squareBox(face, margin) {
  const side = Math.max(face.w, face.h) * (1 + 2 * margin);
  const cx = face.x + face.w / 2;
  const cy = face.y + face.h / 2;
  return [roundEven(cx - side / 2), roundEven(cy - side / 2), Math.max(1, roundEven(side))];
}

// The classifier's input: a size x size grayscale crop of face from an RGBA frame
// (ferlab.deploy.detection.base.crop_face: gray, replicate the border, resize); size is the manifest's
// face_size (ferlab.face.FACE_SIZE), never a number written here.
export function cropFace(rgba, width, height, face, size, margin = 0) {
  const [x, y, side] = squareBox(face, margin);
  return resize(region(rgba, width, height, [x, y, side, side], 1), side, side, 1, size, size);
}
