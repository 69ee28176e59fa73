// Where BlazeFace looks in a frame, as ferlab.deploy.detection.blazeface.BlazeFaceDetector does (read its
// notes for why): a still image's pyramid (the whole frame and two sizes of tiles propose faces, each
// proposal checked again around itself and mirrored, levelled where its eyes roll), and a stream's search
// that follows the last frame's faces. The numbers are Python's, from the manifest (`detector.settings`:
// OnDevice.manifest's "blazeface").
import { around, eyeRoll, holds, sameFace, tileGrid, weightedNms } from "./boxes.js";
import { region } from "./imaging.js";
import { apply, invertAffine, mirror, rotationMatrix, warpAffine } from "./warp.js";

const area = (row) => (row[2] - row[0]) * (row[3] - row[1]);

// A still image: proposals from the whole frame and every pyramid level's tiles (a level whose tiles would
// be under min_tile_side px skipped), at proposal_score, merged; largest first, each not inside a face
// already kept is verified; the verified boxes merged. With verify_score null: every pass's faces, merged.
export async function pyramid(detector, frame) {
  const settings = detector.settings;
  const { width, height } = frame;
  const regions = [[0, 0, width, height]];
  for (const share of settings.pyramid) {
    if (Math.min(height, width) * share < settings.min_tile_side) continue;
    for (const [x, y, side] of tileGrid(height, width, share)) regions.push([x, y, side, side]);
  }
  if (settings.verify_score === null || settings.verify_score === undefined) {
    const all = await detector.search(frame, regions);
    return weightedNms(all.rows, all.scores);
  }
  const proposed = await detector.search(frame, regions, settings.proposal_score);
  // Largest first: a tile that cuts a big face may propose part of it, which, kept first, would hide the face.
  const proposals = weightedNms(proposed.rows, proposed.scores).sort((a, b) => area(b.row) - area(a.row));
  const rows = [];
  const scores = [];
  for (const { row } of proposals) {
    if (rows.some((r) => holds(r, (row[0] + row[2]) / 2, (row[1] + row[3]) / 2))) continue; // a duplicate, or part of a face
    const verified = await verifyAtEachSide(detector, frame, row);
    if (verified) {
      rows.push(verified.row);
      scores.push(Math.fround(verified.score)); // Python keeps them as float32
    }
  }
  return rows.length ? weightedNms(rows, scores) : [];
}

// A proposal checked at each of verify_grows in turn: the first check scoring above verify_score, or null
// (after the first side alone when it scores under verify_retry_score: textures mostly score far lower).
async function verifyAtEachSide(detector, frame, row) {
  const settings = detector.settings;
  for (const [k, grow] of settings.verify_grows.entries()) {
    const check = await verify(detector, frame, row, grow);
    if (check && check.score > settings.verify_score) return check;
    if (k === 0 && (!check || check.score < settings.verify_retry_score)) return null;
  }
  return null;
}

// A proposal searched for again in the region `grow` times its side around it, turned level by its
// eyes where they roll by level_verify_min degrees or more and it is level_verify_side px or more, and in
// that region mirrored: the best box there holding the proposal's centre (its key points and centre turned
// back into the frame) and the mean of the two scores; null where no box holds the centre.
async function verify(detector, frame, row, grow) {
  const settings = detector.settings;
  const [x, y, w, h] = around(row, frame.height, frame.width, grow);
  let pixels = region(frame.pixels, frame.width, frame.height, [x, y, w, h], 3);
  let centre = [(row[0] + row[2]) / 2 - x, (row[1] + row[3]) / 2 - y];
  const roll = eyeRoll(row);
  let back = null;
  if (Math.abs(roll) >= settings.level_verify_min && Math.min(row[2] - row[0], row[3] - row[1]) >= settings.level_verify_side) {
    const turn = rotationMatrix(w / 2, h / 2, roll); // looked at levelled: the model's scores fall as a head rolls
    pixels = warpAffine(pixels, w, h, 3, turn, w, h);
    centre = apply(turn, centre[0], centre[1]);
    back = invertAffine(turn);
  }
  const best = [];
  for (const mirrored of [false, true]) {
    const image = { pixels: mirrored ? mirror(pixels, w, h, 3) : pixels, width: w, height: h, stride: 3 };
    const [px, py] = mirrored ? [w - centre[0], centre[1]] : centre;
    const found = await detector.search(image, [[0, 0, w, h]], settings.proposal_score);
    let hit = { score: 0, row: null };
    for (const f of weightedNms(found.rows, found.scores)) {
      if (holds(f.row, px, py) && (hit.row === null || f.score > hit.score)) hit = f;
    }
    best.push(hit);
  }
  const score = (best[0].score + best[1].score) / 2;
  if (best[0].row === null) return null;
  const found = Float64Array.from(best[0].row);
  if (back) { // into the region's own pixels: the key points turned back, the box about its centre
    for (let k = 4; k < found.length; k += 2) [found[k], found[k + 1]] = apply(back, found[k], found[k + 1]);
    const [mx, my] = apply(back, (found[0] + found[2]) / 2, (found[1] + found[3]) / 2);
    const hw = (found[2] - found[0]) / 2;
    const hh = (found[3] - found[1]) / 2;
    [found[0], found[1], found[2], found[3]] = [mx - hw, my - hh, mx + hw, my + hh];
  }
  return { row: found.map((v, k) => v + (k % 2 === 0 ? x : y)), score };
}

// A stream's search after the whole-frame pass (`whole`: its candidates): the regions around the last
// frame's faces that pass missed, then one tile a frame in turn (every tile while nothing is found).
export async function follow(detector, frame, whole, tiles) {
  const { width, height } = frame;
  let { rows, scores } = whole;
  let found = weightedNms(rows, scores);
  const last = detector.previous;
  const previous = last && last.width === width && last.height === height ? last.boxes : [];
  const lost = previous.filter((box) => !found.some((f) => sameFace(box, f.row.slice(0, 4))));
  if (lost.length) {
    const more = await detector.search(frame, lost.map((box) => around(box, height, width)));
    rows = rows.concat(more.rows);
    scores = scores.concat(more.scores);
    found = weightedNms(rows, scores);
  }
  const next = found.length ? [tiles[(detector.frames - 1) % tiles.length]] : tiles;
  const tiled = await detector.search(frame, next);
  if (tiled.rows.length) found = weightedNms(rows.concat(tiled.rows), scores.concat(tiled.scores));
  detector.previous = { width, height, boxes: found.map((f) => f.row.slice(0, 4)) };
  return found;
}
