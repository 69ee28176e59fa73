// The classifier's input: a face's square grayscale crop, turned upright when the face was found rolled
// (face.angle, from BlazeFace's eye key points), step by step as ferlab.deploy.detection.base.crop_face
// cuts it, so the crops match the Python runtime's.
import { region, resize, roundEven } from "./imaging.js";
import { rotationMatrix, warpAffine } from "./warp.js";

// The square (x, y, side) around a face box grown by margin per side (ferlab.deploy.detection.base.square_box).
export function squareBox(face, margin) {
  const side = Math.max(face.w, face.h) * (1 + 2 * margin);
  const cx = face.x + face.w / 2;
  const cy = face.y + face.h / 2;
  return [roundEven(cx - side / 2), roundEven(cy - side / 2), Math.max(1, roundEven(side))];
}

// A size x size grayscale crop of face from an RGBA frame: gray, the border replicated past the frame's
// edge, resized; levelled by face.angle where it is not 0. size is the manifest's face_size
// (ferlab.face.FACE_SIZE), never a number written here.
export function cropFace(rgba, width, height, face, size, margin = 0) {
  const [x, y, side] = squareBox(face, margin);
  if (face.angle) return levelledCrop(rgba, width, height, face, [x, y, side], size);
  return resize(region(rgba, width, height, [x, y, side, side], 1), side, side, 1, size, size);
}

// crop_face's turned branch: only the window of the frame that the turned square covers is made gray, a big
// face is shrunk to twice the crop's side first (area averaging), then one affine warp about the box's
// centre cuts the square out upright, and a last resize gives the crop.
function levelledCrop(rgba, width, height, face, [x, y, side], size) {
  const cx = face.x + face.w / 2;
  const cy = face.y + face.h / 2;
  const turn = face.angle * (Math.PI / 180);
  const reach = (side * (Math.abs(Math.cos(turn)) + Math.abs(Math.sin(turn)))) / 2 + 2; // the turned square, and a pixel
  let x0 = Math.max(0, Math.floor(cx - reach));
  let y0 = Math.max(0, Math.floor(cy - reach));
  let x1 = Math.min(width, Math.ceil(cx + reach));
  let y1 = Math.min(height, Math.ceil(cy + reach));
  if (x1 <= x0 || y1 <= y0) { // the square lies wholly outside the frame: its nearest edge, repeated
    x0 = Math.min(Math.max(0, x0), width - 1);
    y0 = Math.min(Math.max(0, y0), height - 1);
    x1 = x0 + 1;
    y1 = y0 + 1;
  }
  let gw = x1 - x0;
  let gh = y1 - y0;
  let gray = region(rgba, width, height, [x0, y0, gw, gh], 1);
  const out = Math.min(side, 2 * size);
  const scale = out / side;
  if (scale < 1) {
    const w = Math.max(1, roundEven(gw * scale));
    const h = Math.max(1, roundEven(gh * scale));
    gray = resize(gray, gw, gh, 1, w, h);
    gw = w;
    gh = h;
  }
  const sx = gw / (x1 - x0); // the window's exact shrink per axis
  const sy = gh / (y1 - y0);
  const inside = (px, py) => [(px - x0 + 0.5) * sx - 0.5, (py - y0 + 0.5) * sy - 0.5]; // frame -> window pixels
  const rotation = rotationMatrix(...inside(cx, cy), face.angle);
  const [kx, ky] = inside(x - 0.5 + 0.5 / scale, y - 0.5 + 0.5 / scale); // the output's first pixel centre
  rotation[2] -= kx;
  rotation[5] -= ky;
  return resize(warpAffine(gray, gw, gh, 1, rotation, out, out), out, out, 1, size, size);
}
