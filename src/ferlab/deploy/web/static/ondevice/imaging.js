// Pixels as the Python path sees them: OpenCV's grayscale conversion and resizing, rewritten for the browser.
//
// Why not canvas drawImage or OpenCV.js: a canvas resamples with the browser's own filter (it differs
// between browsers and from OpenCV), and OpenCV.js is ~10 MB to load on a phone for three functions. The
// crops must match the Python runtime's to the pixel for the probabilities to match, so these follow
// OpenCV 4's arithmetic: cv2.cvtColor(BGR2GRAY)'s fixed-point weights, cv2.resize's INTER_AREA (exact
// area coverage when shrinking, in float32) and INTER_LINEAR (half-pixel centres, fixed-point weights);
// step by step, so a small change of rounding cannot move a face by a pixel: BlazeFace's boxes follow its
// inputs closely, and the pyramid's regions follow its boxes.

// numpy's and Python's round(): halves to even (Math.round sends halves up).
export function roundEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// Area taps of one axis (OpenCV's computeResizeAreaTab): for each output index d, the source indices
// covering [d * scale, (d + 1) * scale) and their shares as float32, in OpenCV's order.
function areaTaps(srcSize, dstSize) {
  const scale = 1 / (dstSize / srcSize); // as cv::resize derives it
  const start = new Int32Array(dstSize + 1);
  const index = [];
  const weight = [];
  for (let d = 0; d < dstSize; d++) {
    const f0 = d * scale;
    const f1 = f0 + scale;
    const cell = Math.min(scale, srcSize - f0);
    const s1 = Math.min(Math.floor(f1), srcSize - 1);
    const s0 = Math.min(Math.ceil(f0), s1);
    const add = (s, share) => {
      index.push(s);
      weight.push(share);
    };
    if (s0 - f0 > 1e-3) add(s0 - 1, (s0 - f0) / cell);
    for (let s = s0; s < s1; s++) add(s, 1 / cell);
    if (f1 - s1 > 1e-3) add(s1, Math.min(f1 - s1, 1, cell) / cell);
    start[d + 1] = index.length;
  }
  return { start, index: Int32Array.from(index), weight: Float32Array.from(weight) };
}

// Linear taps of one axis as OpenCV's fixed-point INTER_LINEAR takes them: source = (d + 0.5) * scale - 0.5
// in float32, its two weights in 1/2048. `clamp` (the horizontal axis): past an edge, the edge pixel alone.
function linearTaps(srcSize, dstSize, clamp) {
  const scale = 1 / (dstSize / srcSize);
  const index = new Int32Array(dstSize);
  const w0 = new Int32Array(dstSize);
  const w1 = new Int32Array(dstSize);
  for (let d = 0; d < dstSize; d++) {
    let f = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = Math.fround(f - s);
    if (clamp && s < 0) [s, f] = [0, 0];
    if (clamp && s >= srcSize - 1) [s, f] = [srcSize - 1, 0];
    index[d] = s;
    w0[d] = roundEven(Math.fround(1 - f) * 2048);
    w1[d] = roundEven(f * 2048);
  }
  return { index, w0, w1 };
}

const tapCache = new Map(); // the same few sizes come back every frame
function cachedTaps(kind, srcSize, dstSize) {
  const key = `${kind}:${srcSize}:${dstSize}`;
  let t = tapCache.get(key);
  if (!t) {
    t = kind === "area" ? areaTaps(srcSize, dstSize) : linearTaps(srcSize, dstSize, kind === "linear-x");
    if (tapCache.size > 256) tapCache.clear();
    tapCache.set(key, t);
  }
  return t;
}

// Scratch buffers reused from call to call: a camera frame's resize would otherwise allocate ~1 MB 60 times
// a second.
const scratch = { rows: new Float32Array(0), mixed: new Int32Array(0), acc: new Float32Array(0), sums: new Float64Array(0) };
function buffer(name, Type, n) {
  if (scratch[name].length < n) scratch[name] = new Type(n);
  return scratch[name];
}

// Resize an interleaved uint8 image (w x h, `channels` per pixel) to dstW x dstH: INTER_AREA when
// shrinking, INTER_LINEAR otherwise (what the Python code asks OpenCV for), each in OpenCV's own arithmetic,
// so the bytes are the same. `view` reads a w x h window of a larger image in place: {stride: values per
// source pixel (4 for RGBA), rowLength: the image's width, x0, y0: the window's corner}.
export function resize(src, w, h, channels, dstW, dstH, view = {}) {
  const { stride = channels, rowLength = w, x0 = 0, y0 = 0 } = view;
  const at = { stride, rowLength, x0, y0 };
  if (w <= dstW && h <= dstH) return resizeLinear(src, w, h, channels, dstW, dstH, at);
  if (w % dstW === 0 && h % dstH === 0) return shrinkByBlocks(src, w / dstW, h / dstH, channels, dstW, dstH, stride, rowLength, x0, y0);
  return resizeArea(src, w, h, channels, dstW, dstH, at);
}

// INTER_AREA by a fraction (OpenCV's ResizeArea_Invoker): each source row mixed across in float32, the
// products and sums in the taps' order, then the rows mixed down alike, rounded half to even.
function resizeArea(src, w, h, channels, dstW, dstH, { stride, rowLength, x0, y0 }) {
  const xs = cachedTaps("area", w, dstW);
  const ys = cachedTaps("area", h, dstH);
  const width = dstW * channels;
  const rows = buffer("rows", Float32Array, h * width);
  const { start, weight } = xs;
  const index = stride === 1 ? xs.index : xs.index.map((i) => i * stride); // source offsets (a few hundred)
  const f = Math.fround;
  for (let y = 0; y < h; y++) {
    const srcRow = ((y + y0) * rowLength + x0) * stride;
    let out = y * width;
    for (let d = 0; d < dstW; d++) {
      const k1 = start[d + 1];
      if (channels === 3) { // written out: V8 runs it ~2x faster than the loop over channels, every tile
        let r = 0;
        let g = 0;
        let b = 0;
        for (let k = start[d]; k < k1; k++) {
          const p = srcRow + index[k];
          const wk = weight[k];
          r = f(r + f(wk * src[p]));
          g = f(g + f(wk * src[p + 1]));
          b = f(b + f(wk * src[p + 2]));
        }
        rows[out++] = r;
        rows[out++] = g;
        rows[out++] = b;
      } else {
        for (let c = 0; c < channels; c++) {
          let acc = 0;
          for (let k = start[d]; k < k1; k++) acc = f(acc + f(weight[k] * src[srcRow + index[k] + c]));
          rows[out++] = acc;
        }
      }
    }
  }
  const dst = new Uint8Array(dstH * width);
  const acc = buffer("acc", Float32Array, width);
  for (let d = 0; d < dstH; d++) {
    for (let k = ys.start[d]; k < ys.start[d + 1]; k++) {
      const wk = ys.weight[k];
      const from = ys.index[k] * width;
      if (k === ys.start[d]) for (let i = 0; i < width; i++) acc[i] = wk * rows[from + i]; // stored as float32
      else for (let i = 0; i < width; i++) acc[i] += f(wk * rows[from + i]);
    }
    const out = d * width;
    for (let i = 0; i < width; i++) dst[out + i] = Math.min(255, Math.max(0, roundEven(acc[i])));
  }
  return dst;
}

// INTER_LINEAR as OpenCV computes it on uint8 (resizeGeneric_ with HResizeLinear and VResizeLinear): each
// source row mixed across in integers (weights in 1/2048), then two rows mixed down with OpenCV's shifts.
// Across, the taps stop at the edges; down, the weights stay and the rows past an edge repeat it.
function resizeLinear(src, w, h, channels, dstW, dstH, { stride, rowLength, x0, y0 }) {
  const xs = cachedTaps("linear-x", w, dstW);
  const ys = cachedTaps("linear-y", h, dstH);
  const width = dstW * channels;
  const mixed = buffer("mixed", Int32Array, h * width);
  for (let y = 0; y < h; y++) {
    const srcRow = ((y + y0) * rowLength + x0) * stride;
    let out = y * width;
    for (let d = 0; d < dstW; d++) {
      const p = srcRow + xs.index[d] * stride;
      const [a, b] = [xs.w0[d], xs.w1[d]];
      if (xs.index[d] >= w - 1) for (let c = 0; c < channels; c++) mixed[out++] = src[p + c] * 2048;
      else for (let c = 0; c < channels; c++) mixed[out++] = src[p + c] * a + src[p + stride + c] * b;
    }
  }
  const dst = new Uint8Array(dstH * width);
  for (let d = 0; d < dstH; d++) {
    const r0 = Math.min(Math.max(ys.index[d], 0), h - 1) * width;
    const r1 = Math.min(Math.max(ys.index[d] + 1, 0), h - 1) * width;
    const [b0, b1] = [ys.w0[d], ys.w1[d]];
    const out = d * width;
    for (let i = 0; i < width; i++) dst[out + i] = ((((mixed[r0 + i] >> 4) * b0) >> 16) + (((mixed[r1 + i] >> 4) * b1) >> 16) + 2) >> 2;
  }
  return dst;
}

// INTER_AREA by a whole factor (a 640x480 or 1280x720 camera frame to BlazeFace's 128 px): each output
// pixel is the rounded mean of its fx x fy block, summed in integers, as OpenCV's resizeAreaFast does
// (fewer operations a pixel than the taps above): halves to even, except by 2 x 2 (a levelled crop's last
// step), where OpenCV's vector code rounds them up ((sum + 2) >> 2).
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
    if (fx === 2 && fy === 2) for (let i = 0; i < width; i++) dst[out + i] = (sums[i] + 2) >> 2;
    else for (let i = 0; i < width; i++) dst[out + i] = roundEven(sums[i] / area);
  }
  return dst;
}

// A region [x, y, w, h] of an RGBA frame as packed RGB (channels 3) or OpenCV grayscale (channels 1:
// cv2.COLOR_BGR2GRAY's weights in 1/32768, as OpenCV 4 has them); pixels outside the frame repeat its border
// (cv2.BORDER_REPLICATE), so a face crop may overhang it.
export function region(rgba, width, height, [x0, y0, w, h], channels) {
  const out = new Uint8Array(w * h * channels);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(height - 1, Math.max(0, y + y0));
    for (let x = 0; x < w; x++) {
      const j = (sy * width + Math.min(width - 1, Math.max(0, x + x0))) * 4;
      const i = (y * w + x) * channels;
      if (channels === 1) out[i] = (rgba[j] * 9798 + rgba[j + 1] * 19235 + rgba[j + 2] * 3735 + 16384) >> 15;
      else {
        out[i] = rgba[j];
        out[i + 1] = rgba[j + 1];
        out[i + 2] = rgba[j + 2];
      }
    }
  }
  return out;
}
