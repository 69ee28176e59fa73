"""Drawing tracked faces on a frame: box, ``#id label confidence`` and one bar per class."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ferlab.deploy.detection import Face
from ferlab.deploy.pipeline import decide_label

PALETTE = [(60, 60, 230), (200, 120, 40), (40, 200, 240), (180, 180, 180), (200, 80, 60), (40, 200, 80),
           (200, 60, 200), (120, 120, 40)]  # BGR, one per class index


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


def draw_tracks(frame: np.ndarray, faces: list[TrackedFace], classes: list[str], hud: str | None = None,
                min_confidence: float = 0.0) -> np.ndarray:
    """Boxes, ``#id label confidence`` and a bar per class beside each face, drawn on ``frame`` (BGR, in place)."""
    height, width = frame.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    for tf in faces:
        x, y, w, h = tf.face.box
        k = int(np.argmax(tf.probabilities))
        colour = PALETTE[k % len(PALETTE)]
        cv2.rectangle(frame, (x, y), (x + w, y + h), colour, 2)
        text = f"#{tf.track_id} {tf.label(classes, min_confidence)} {tf.probabilities[k]:.0%}"
        (tw, th), _ = cv2.getTextSize(text, font, 0.55, 1)
        ty = y - 6 if y - th - 8 >= 0 else y + h + th + 6
        cv2.rectangle(frame, (x, ty - th - 4), (x + tw + 4, ty + 4), colour, -1)
        cv2.putText(frame, text, (x + 2, ty), font, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        bar_w, row = 70, 14
        name_w = 58
        bx = x + w + 6 if x + w + 6 + name_w + bar_w < width else max(0, x - 6 - name_w - bar_w)
        for i, (c, p) in enumerate(zip(classes, tf.probabilities)):
            by = y + i * row
            if by + row > height:
                break
            cv2.putText(frame, c[:7], (bx, by + 10), font, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
            cv2.rectangle(frame, (bx + name_w, by + 2), (bx + name_w + bar_w, by + row - 3), (70, 70, 70), -1)
            cv2.rectangle(frame, (bx + name_w, by + 2), (bx + name_w + round(bar_w * float(p)), by + row - 3),
                          PALETTE[i % len(PALETTE)], -1)
    if hud:
        cv2.putText(frame, hud, (8, 20), font, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(frame, hud, (8, 20), font, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return frame
