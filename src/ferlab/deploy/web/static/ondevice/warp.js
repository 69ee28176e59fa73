// Turning pixels as OpenCV 4 does (cv2.getRotationMatrix2D, cv2.invertAffineTransform, cv2.warpAffine with
// INTER_LINEAR and BORDER_REPLICATE): the levelled face crop and the pyramid's levelled verification turn a
// head upright, and the crops must match the Python runtime's to the grey level.
//
// cv2.warpAffine on uint8 pixels is fixed-point arithmetic: each output pixel's source position is computed
// in 1/1024 px, cut to 1/32 px, and its four neighbours are weighed by integer weights summing to 2^15
// (OpenCV's WarpAffineInvoker and remapBilinear); rewritten here step by step, it gives the same bytes.
import { roundEven } from "./imaging.js";

// The 2x3 matrix [a, b, c, d, e, f] turning an image by angle degrees (counter-clockwise) about (cx, cy),
// which OpenCV reads as float32 (a Point2f).
export function rotationMatrix(cx, cy, angle, scale = 1) {
  const turn = angle * (Math.PI / 180);
  const alpha = Math.cos(turn) * scale;
  const beta = Math.sin(turn) * scale;
  const x = Math.fround(cx);
  const y = Math.fround(cy);
  return [alpha, beta, (1 - alpha) * x - beta * y, -beta, alpha, beta * x + (1 - alpha) * y];
}

// The inverse of a 2x3 affine matrix (cv2.invertAffineTransform's arithmetic).
export function invertAffine([m0, m1, m2, m3, m4, m5]) {
  let d = m0 * m4 - m1 * m3;
  d = d !== 0 ? 1 / d : 0;
  const a11 = m4 * d;
  const a22 = m0 * d;
  const a12 = -m1 * d;
  const a21 = -m3 * d;
  return [a11, a12, -a11 * m2 - a12 * m5, a21, a22, -a21 * m2 - a22 * m5];
}

// A 2x3 matrix applied to a point.
export function apply(m, x, y) {
  return [m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]];
}

const AB_SCALE = 1024; // OpenCV's AB_BITS = 10: source positions in 1/1024 px
const ROUND_DELTA = 16; // AB_SCALE / INTER_TAB_SIZE / 2: to the nearest 1/32 px

// cv2.warpAffine(src, m, (outW, outH), flags=INTER_LINEAR, borderMode=BORDER_REPLICATE) of an interleaved
// uint8 image (w x h, `channels` per pixel): out(x, y) = src(m^-1 (x, y)), bilinear, the border repeated.
export function warpAffine(src, w, h, channels, m, outW, outH) {
  const inv = invertAffine(m);
  const dst = new Uint8Array(outW * outH * channels);
  const adelta = new Int32Array(outW);
  const bdelta = new Int32Array(outW);
  for (let x = 0; x < outW; x++) {
    adelta[x] = roundEven(inv[0] * x * AB_SCALE);
    bdelta[x] = roundEven(inv[3] * x * AB_SCALE);
  }
  const row = w * channels;
  let o = 0;
  for (let y = 0; y < outH; y++) {
    const x0 = roundEven((inv[1] * y + inv[2]) * AB_SCALE) + ROUND_DELTA;
    const y0 = roundEven((inv[4] * y + inv[5]) * AB_SCALE) + ROUND_DELTA;
    for (let x = 0; x < outW; x++) {
      const X = (x0 + adelta[x]) >> 5; // in 1/32 px
      const Y = (y0 + bdelta[x]) >> 5;
      const ix = X >> 5;
      const iy = Y >> 5;
      const fx = X & 31;
      const fy = Y & 31;
      const w00 = (32 - fx) * (32 - fy) * 32; // the four weights sum to 2^15
      const w01 = fx * (32 - fy) * 32;
      const w10 = (32 - fx) * fy * 32;
      const w11 = fx * fy * 32;
      const c0 = Math.min(Math.max(ix, 0), w - 1) * channels;
      const c1 = Math.min(Math.max(ix + 1, 0), w - 1) * channels;
      const r0 = Math.min(Math.max(iy, 0), h - 1) * row;
      const r1 = Math.min(Math.max(iy + 1, 0), h - 1) * row;
      for (let c = 0; c < channels; c++) {
        const sum = src[r0 + c0 + c] * w00 + src[r0 + c1 + c] * w01 + src[r1 + c0 + c] * w10 + src[r1 + c1 + c] * w11;
        dst[o++] = Math.min(255, (sum + 16384) >> 15);
      }
    }
  }
  return dst;
}

// An interleaved image mirrored left to right (numpy's image[:, ::-1]).
export function mirror(src, w, h, channels) {
  const dst = new Uint8Array(src.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const from = (y * w + x) * channels;
      const to = (y * w + w - 1 - x) * channels;
      for (let c = 0; c < channels; c++) dst[to + c] = src[from + c];
    }
  }
  return dst;
}
