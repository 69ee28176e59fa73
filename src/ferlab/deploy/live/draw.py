"""Drawing tracked faces on a frame: box, ``#id label confidence`` and one bar per class.

Each class has one colour, the same as in the timeline plot (:func:`ferlab.deploy.timeline.class_colours`:
mid-dark colours, none a pale grey); the label's text is black or white, whichever reads better on its
box, and the bars' name column is as wide as the longest class name, so no name is cut ("surprise").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ferlab.deploy.detection import Face
from ferlab.deploy.pipeline import decide_label
from ferlab.deploy.timeline import class_colours, text_colour

FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_SCALE, NAME_SCALE = 0.55, 0.38
BAR_W, ROW = 70, 14
TRACK_BGR = (35, 35, 35)  # the empty part of a bar: dark, so every class colour stands out on it


@dataclass
class TrackedFace:
    track_id: int
    face: Face
    probabilities: np.ndarray  # smoothed
    raw: np.ndarray  # this frame's

    def label(self, classes: list[str], min_confidence: float = 0.0) -> str:
        return decide_label(self.probabilities, classes, min_confidence)

    def to_dict(self, classes: list[str], min_confidence: float = 0.0) -> dict:
        k = int(np.argmax(self.probabilities))
        return {"id": self.track_id, "box": [int(v) for v in self.face.box],
                "label": self.label(classes, min_confidence),
                "confidence": round(float(self.probabilities[k]), 4),
                "probabilities": {c: round(float(p), 4) for c, p in zip(classes, self.probabilities)}}


@lru_cache(maxsize=16)
def class_styles(classes: tuple[str, ...]) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]], int]:
    """Per class: its colour and the label text colour on it (both BGR), and the bar name column's width."""
    rgb = class_colours(classes)
    fills = [(b, g, r) for r, g, b in rgb]
    texts = [tuple(reversed(text_colour(c))) for c in rgb]
    name_w = max(cv2.getTextSize(c, FONT, NAME_SCALE, 1)[0][0] for c in classes) + 6 if classes else 0
    return fills, texts, name_w


def draw_tracks(frame: np.ndarray, faces: list[TrackedFace], classes: list[str], hud: str | None = None,
                min_confidence: float = 0.0) -> np.ndarray:
    """Boxes, ``#id label confidence`` and a bar per class beside each face, drawn on ``frame`` (BGR, in place)."""
    height, width = frame.shape[:2]
    fills, texts, name_w = class_styles(tuple(classes))
    for tf in faces:
        x, y, w, h = tf.face.box
        k = int(np.argmax(tf.probabilities))
        colour = fills[k]
        cv2.rectangle(frame, (x, y), (x + w, y + h), colour, 2)
        text = f"#{tf.track_id} {tf.label(classes, min_confidence)} {tf.probabilities[k]:.0%}"
        (tw, th), _ = cv2.getTextSize(text, FONT, LABEL_SCALE, 1)
        ty = y - 6 if y - th - 8 >= 0 else y + h + th + 6
        cv2.rectangle(frame, (x, ty - th - 4), (x + tw + 4, ty + 4), colour, -1)
        cv2.putText(frame, text, (x + 2, ty), FONT, LABEL_SCALE, texts[k], 1, cv2.LINE_AA)
        bx = x + w + 6 if x + w + 6 + name_w + BAR_W < width else max(0, x - 6 - name_w - BAR_W)
        for i, (c, p) in enumerate(zip(classes, tf.probabilities)):
            by = y + i * ROW
            if by + ROW > height:
                break
            # white on a dark outline: readable on any background
            cv2.putText(frame, c, (bx, by + 10), FONT, NAME_SCALE, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(frame, c, (bx, by + 10), FONT, NAME_SCALE, (255, 255, 255), 1, cv2.LINE_AA)
            cv2.rectangle(frame, (bx + name_w, by + 2), (bx + name_w + BAR_W, by + ROW - 3), TRACK_BGR, -1)
            cv2.rectangle(frame, (bx + name_w, by + 2), (bx + name_w + round(BAR_W * float(p)), by + ROW - 3),
                          fills[i], -1)
    if hud:
        cv2.putText(frame, hud, (8, 20), FONT, LABEL_SCALE, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(frame, hud, (8, 20), FONT, LABEL_SCALE, (255, 255, 255), 1, cv2.LINE_AA)
    return frame
