"""Tracking faces across frames and smoothing their probabilities.

- :class:`FaceTracker` gives each face a track id that persists across frames: boxes are matched to the
  previous frame's tracks greedily by IoU, falling back to centre distance (relative to the box size) for
  a face that moved fast; a track unseen for ``max_missed`` frames is dropped;
- :class:`EMASmoother` keeps an exponential moving average of each track's probabilities
  (``p <- alpha * p_frame + (1 - alpha) * p``), so the label does not flicker from frame to frame.

It sits below the apps so that ``ferlab live`` and ``ferlab predict`` (a video's faces, for its timeline)
follow faces with the same tracker.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ferlab.errors import FerlabError

DEFAULT_SMOOTHING = 0.35


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def centre_distance(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Distance between box centres, in units of the boxes' mean side."""
    dx = (a[0] + a[2] / 2) - (b[0] + b[2] / 2)
    dy = (a[1] + a[3] / 2) - (b[1] + b[3] / 2)
    side = (max(a[2], a[3]) + max(b[2], b[3])) / 2
    return float(np.hypot(dx, dy) / side) if side > 0 else float("inf")


@dataclass
class Track:
    id: int
    box: tuple[int, int, int, int]
    hits: int = 1  # frames in which it was seen
    missed: int = 0  # frames since it was last seen


class FaceTracker:
    """Keeps an id per face across frames (greedy IoU matching, centre-distance fallback)."""

    def __init__(self, iou_threshold: float = 0.3, max_distance: float = 0.6, max_missed: int = 5):
        self.iou_threshold, self.max_distance, self.max_missed = iou_threshold, max_distance, max_missed
        self.tracks: dict[int, Track] = {}
        self.next_id = 1

    def update(self, boxes: list[tuple[int, int, int, int]]) -> list[int]:
        """Match this frame's boxes to the tracks; returns the track id of each box, in order."""
        pairs = []  # (priority, track id, box index): IoU matches first (best first), then the nearest centres
        for tid, track in self.tracks.items():
            for j, box in enumerate(boxes):
                overlap = iou(track.box, box)
                if overlap >= self.iou_threshold:
                    pairs.append((-1.0 - overlap, tid, j))
                else:
                    distance = centre_distance(track.box, box)
                    if distance <= self.max_distance:
                        pairs.append((distance, tid, j))
        pairs.sort()
        ids: list[int | None] = [None] * len(boxes)
        used: set[int] = set()
        for _, tid, j in pairs:
            if tid in used or ids[j] is not None:
                continue
            ids[j] = tid
            used.add(tid)
            track = self.tracks[tid]
            track.box, track.hits, track.missed = tuple(boxes[j]), track.hits + 1, 0
        for tid in list(self.tracks):
            if tid not in used:
                self.tracks[tid].missed += 1
                if self.tracks[tid].missed > self.max_missed:
                    del self.tracks[tid]
        for j, box in enumerate(boxes):
            if ids[j] is None:
                ids[j] = self.next_id
                self.tracks[self.next_id] = Track(self.next_id, tuple(box))
                self.next_id += 1
        return ids  # type: ignore[return-value]


class EMASmoother:
    """Exponential moving average of class probabilities per track: ``p <- alpha * p_new + (1 - alpha) * p``.

    ``alpha`` = 1 turns smoothing off; smaller values react more slowly and flicker less (at 30 fps, 0.35
    forgets a frame's weight to 5% within about 7 frames, a quarter of a second).
    """

    def __init__(self, alpha: float = DEFAULT_SMOOTHING):
        if not 0 < alpha <= 1:
            raise FerlabError(f"--smoothing: alpha must be in (0, 1] (1 = no smoothing), got {alpha}")
        self.alpha = alpha
        self.state: dict[int, np.ndarray] = {}

    def update(self, key: int, probabilities: np.ndarray) -> np.ndarray:
        p = np.asarray(probabilities, np.float64)
        previous = self.state.get(key)
        smoothed = p if previous is None else self.alpha * p + (1.0 - self.alpha) * previous
        self.state[key] = smoothed
        return smoothed.astype(np.float32)

    def keep_only(self, keys) -> None:
        """Forget the tracks that are gone."""
        for key in set(self.state) - set(keys):
            del self.state[key]


def label_flips(labels: list) -> int:
    """How often consecutive labels differ."""
    return sum(a != b for a, b in itertools.pairwise(labels))
