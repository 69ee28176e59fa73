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

// RGBA (ImageData.data) -> uint8 grayscale: Y = (4899 R + 9617 G + 1868 B + 8192) >> 14, as OpenCV.
export function toGray(rgba, width, height) {
  const gray = new Uint8Array(width * height);
  for (let i = 0, j = 0; i < gray.length; i++, j += 4) {
    gray[i] = (rgba[j] * 4899 + rgba[j + 1] * 9617 + rgba[j + 2] * 1868 + 8192) >> 14;
  }
  return gray;
}

// Area weights of one axis: for each output index, [source index, weight] pairs covering
// [i * scale, (i + 1) * scale), weights summing to 1 (OpenCV's computeResizeAreaTab).
function areaTable(srcSize, dstSize) {
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
  return table;
}

// Linear taps of one axis: source = (d + 0.5) * scale - 0.5, clamped to the edges (cv2 INTER_LINEAR).
function linearTable(srcSize, dstSize) {
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
  return table;
}

// Resize an interleaved uint8 image (channels 1 or 3) of srcW x srcH from (x0, y0) to dstW x dstH:
// INTER_AREA when shrinking, INTER_LINEAR otherwise (what the Python code asks OpenCV for). Rows and
// columns outside the source repeat its border (cv2.BORDER_REPLICATE), so a crop may overhang the frame.
export function resize(src, srcW, srcH, channels, region, dstW, dstH, out = null) {
  const [x0, y0, w, h] = region;
  const shrink = w > dstW || h > dstH;
  const xs = (shrink ? areaTable : linearTable)(w, dstW);
  const ys = (shrink ? areaTable : linearTable)(h, dstH);
  const clampX = (x) => Math.min(srcW - 1, Math.max(0, x + x0));
  const clampY = (y) => Math.min(srcH - 1, Math.max(0, y + y0));
  const dst = out || new Uint8Array(dstW * dstH * channels);
  const acc = new Float64Array(channels);
  for (let dy = 0; dy < dstH; dy++) {
    for (let dx = 0; dx < dstW; dx++) {
      acc.fill(0);
      for (const [sy, wy] of ys[dy]) {
        const row = clampY(sy) * srcW;
        for (const [sx, wx] of xs[dx]) {
          const p = (row + clampX(sx)) * channels;
          const wgt = wy * wx;
          for (let c = 0; c < channels; c++) acc[c] += wgt * src[p + c];
        }
      }
      const q = (dy * dstW + dx) * channels;
      for (let c = 0; c < channels; c++) dst[q + c] = Math.min(255, Math.max(0, Math.round(acc[c])));
    }
  }
  return dst;
}

// RGBA -> packed RGB (the detector's input colours).
export function toRgb(rgba, width, height) {
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; j < rgba.length; i += 3, j += 4) {
    rgb[i] = rgba[j];
    rgb[i + 1] = rgba[j + 1];
    rgb[i + 2] = rgba[j + 2];
  }
  return rgb;
}

// The square (x, y, side) around a face box grown by margin per side (ferlab.deploy.detection.base.square_box).
export function squareBox(face, margin) {
  const side = Math.max(face.w, face.h) * (1 + 2 * margin);
  const cx = face.x + face.w / 2;
  const cy = face.y + face.h / 2;
  return [roundEven(cx - side / 2), roundEven(cy - side / 2), Math.max(1, roundEven(side))];
}

// The classifier's input: a size x size grayscale crop of face (ferlab.deploy.detection.base.crop_face).
export function cropFace(gray, width, height, face, margin = 0, size = 48) {
  const [x, y, side] = squareBox(face, margin);
  return resize(gray, width, height, 1, [x, y, side, side], size, size);
}
