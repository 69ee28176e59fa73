"""The embedded synthetic FER data set: procedurally drawn 48x48 grayscale faces in FER2013's seven classes.

This is the default source (``ferlab prepare`` with no data, and the tests), so the whole pipeline -- prepare,
train, study, report, export -- runs anywhere, with no download and no licence question. It is a stand-in
for FER2013, not a substitute: it exists to exercise the code paths and to rank models sensibly.

Each face is drawn at 4x (192 px) with anti-aliased cv2 primitives at sub-pixel precision, then reduced to
48x48 with INTER_AREA, so edges are soft and intensities mid-grey rather than binary. The expression lives
where it does on a real face (FACS-style action units, exaggerated enough to survive 48 px):

- happy     lip corners pulled up (a smile, open with upper teeth half the time), lower lids pushed up by the
            cheeks (squint), smile lines; brows relaxed.
- sad       lip corners down, inner brow ends raised (brows slant up toward the centre), upper lids
            drooping at the outer corners.
- angry     brows lowered and pulled together into a V, upper lids lowered at the inner corners (glare),
            lips pressed thin or clenched teeth bared, frown lines between the brows.
- surprise  brows raised high and arched, eyes wide (white above the iris), jaw dropped: a round O mouth.
- fear      brows raised but flat and drawn together, eyes wide, mouth open and stretched sideways.
- disgust   nose wrinkled, upper lip raised on one side (a sneer, showing teeth), lids narrowed, brows low.
- neutral   straight mouth, straight brows, relaxed eyes.

What makes it hard: every face is a different person (face shape, skin and hair tone, hair style, feature
layout, brow thickness, lip thickness) in a different pose (in-plane rotation up to 15 degrees, yaw up to
18 degrees, which slides and foreshortens the features, translation, and a face filling 75-110% of the
frame), on a different background and light (texture, gradient, gamma), through a different camera (blur,
noise), sometimes behind glasses or an occluder; and each expression comes at a random intensity, from
subtle to exaggerated, on top of person-to-person jitter of the neutral face. No expression cue sits at a
fixed pixel, so a linear model on raw pixels does far worse than a small CNN, which reads local shapes
wherever they are: on the study's 5-class protocol, logistic regression scores about 0.47 and a four-block
CNN about 0.97 after six epochs (tests/test_synthetic.py).

Generation is deterministic: image ``i`` is drawn from ``np.random.default_rng([seed, i])`` alone, so a
given (per_class, seed) always yields byte-identical images and no image depends on the others.
GENERATOR_VERSION is recorded in the notes; bump it whenever the drawing changes, so that caches and
fingerprints of prepared data change with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np
import pandas as pd

from ferlab.data.faceset import FER2013_CLASSES, FaceSet
from ferlab.face import FACE_SIZE

GENERATOR_VERSION = "synthetic-v1"
DEFAULT_PER_CLASS = 2800

_UP = 4  # supersampling factor
_CANVAS = FACE_SIZE * _UP
_SHIFT = 4  # fractional bits of cv2 vertex coordinates (sub-pixel drawing)
_FIX = float(1 << _SHIFT)
_AA = cv2.LINE_AA

# Sampling grids shared by every face. Paired features (brows, eyes, ...) are computed for both sides at
# once as (2, n) arrays: _SIDE is -1 for the face's left half of the image, +1 for the right.
_SIDE = np.array([[-1.0], [1.0]])
_U = np.linspace(-1.0, 1.0, 17)  # across a feature: -1 at its inner (or left) end, +1 at the outer
_T = np.linspace(0.0, 1.0, 9)  # along a brow or a curve
_ANG = np.linspace(0.0, 2.0 * math.pi, 28, endpoint=False)
_COS, _SIN = np.cos(_ANG), np.sin(_ANG)
_CHIN = np.maximum(_SIN, 0.0) ** 2  # lower half of an ellipse, for the jaw
_HALF = np.linspace(0.0, math.pi, 11)  # half circle, for discs clipped to the eye opening
_DISC_DX, _DISC_DY = -np.cos(_HALF), np.sin(_HALF)
_DISC_R = np.array([0.07, 0.032])[:, None, None]  # iris and pupil radii
_OPEN = 1.0 - _U * _U
_OPEN_06, _OPEN_07 = _OPEN ** 0.6, _OPEN ** 0.7  # eyelid profiles
_INNER, _OUTER = (1.0 - _U) / 2, (1.0 + _U) / 2  # weights of the inner and outer corner
_LASH = 0.01 + 0.03 * _OPEN ** 0.3  # thickness of the upper lid line
_CREASE = 0.035 * _OPEN[2:-1]  # lid crease above the eye, following its curve
_RAMP = np.arange(256, dtype=np.float32) / 255.0  # for the gamma lookup table
_PIX = np.arange(FACE_SIZE, dtype=np.float32) + 0.5  # pixel centres of the output
_LIN = np.linspace(-1.0, 1.0, FACE_SIZE, dtype=np.float32)  # the same, from -1 to 1

# Continuous per-face parameters, drawn in one call: name -> (low, high). Units: face units (face half-width
# = 1, y down) for geometry, grey levels for tones, fractions of the frame for position, degrees for angles.
_RANGES = {
    "face_h": (1.22, 1.4),  # half-height of the face
    "fill": (0.75, 1.1),  # face height / frame height
    "shift_x": (-0.05, 0.05), "shift_y": (-0.05, 0.05),
    "roll": (-15.0, 15.0), "yaw": (-18.0, 18.0),
    "jaw": (0.08, 0.25),  # narrowing toward the chin
    "eye_y": (-0.17, -0.07), "eye_dx": (0.36, 0.42), "eye_w": (0.17, 0.2),
    "brow_gap": (0.17, 0.22), "brow_thick": (0.09, 0.13),
    "nose_y": (0.24, 0.32), "mouth_gap": (0.27, 0.35), "mouth_w": (0.3, 0.37),
    "skin": (80.0, 215.0), "hair": (10.0, 190.0), "clothes": (10.0, 240.0), "background": (15.0, 240.0),
    "texture": (0.0, 40.0),  # background blotchiness (std of grey levels)
    "fringe": (-0.95, -0.6), "fringe_wave": (3.0, 9.0),
    "brow_tone": (0.2, 0.5), "fold_tone": (0.72, 0.85), "white_tone": (0.3, 0.7), "iris_tone": (0.15, 0.45),
    "lip_tone": (0.6, 0.8), "cavity_tone": (0.12, 0.3), "teeth_tone": (0.35, 0.8),
    "light": (0.0, 0.3), "light_dir": (0.0, 2.0 * math.pi), "shading": (0.08, 0.22), "gamma": (0.8, 1.25),
    "blur": (0.3, 0.6), "noise": (1.0, 6.0),
}
_NAMES = tuple(_RANGES)
_LOW, _HIGH = np.array(list(_RANGES.values())).T


@dataclass(frozen=True)
class Expression:
    """Feature geometry in face units. The defaults are the neutral face."""

    brow_raise: float = 0.0  # whole brow up (+) or down (-)
    brow_inner: float = 0.0  # inner end up (+: sad, fear) or down (-: the angry V)
    brow_arch: float = 0.03  # bulge of the brow's middle
    brow_inner_x: float = 0.12  # distance of the inner ends from the midline (smaller: drawn together)
    eye_open: float = 1.0  # eye height multiplier
    lid_inner: float = 0.0  # upper lid lowered at the inner corner (angry glare), fraction of eye height
    lid_outer: float = 0.0  # upper lid lowered at the outer corner (sad droop)
    squint: float = 0.0  # lower lid raised (happy cheeks, disgust)
    mouth_w: float = 1.0  # mouth width multiplier
    mouth_curve: float = 0.0  # corner drop: + frown, - smile
    mouth_tilt: float = 0.0  # one corner higher than the other (sneer)
    open_up: float = 0.0  # opening above the lip line
    open_lo: float = 0.0  # opening below it (jaw drop)
    roundness: float = 1.0  # opening profile exponent: 1 lens (stretched), 0.5 round (O), <0.5 boxy
    lip_raise: float = 0.0  # -1..1: which side the upper lip is raised on (scales open_up across the mouth)
    lip_press: float = 1.0  # lip thickness multiplier (pressed lips < 1)
    teeth_up: bool = False
    teeth_lo: bool = False
    nose_wrinkle: bool = False
    smile_lines: bool = False
    frown_lines: bool = False


def _expression(label: str, rng: np.random.Generator) -> Expression:
    """The expression of one face: the neutral face with personal jitter, plus the class's action units
    scaled by a random intensity ``s`` (0.6 = subtle, 1 = exaggerated); the module docstring lists them."""
    n = rng.normal(size=7)
    b = Expression(
        brow_raise=0.02 * n[0], brow_inner=0.015 * n[1], brow_arch=0.03 + 0.015 * n[2],
        brow_inner_x=0.12 + 0.015 * n[3], eye_open=1.0 + 0.08 * n[4], mouth_w=1.0 + 0.08 * n[5],
        mouth_curve=0.012 * n[6], lip_press=rng.uniform(0.7, 1.3),
    )
    s = rng.uniform(0.6, 1.0)
    if label == "happy":
        opened = rng.random() < 0.5
        return replace(
            b, mouth_curve=b.mouth_curve - 0.2 * s, mouth_w=b.mouth_w * (1 + 0.25 * s), squint=0.55 * s,
            eye_open=b.eye_open * (1 - 0.15 * s), brow_raise=b.brow_raise + 0.01,
            open_up=0.03 * s * opened, open_lo=0.13 * s * opened, roundness=0.8, teeth_up=opened,
            smile_lines=rng.random() < 0.7,
        )
    if label == "sad":
        return replace(
            b, mouth_curve=b.mouth_curve + 0.15 * s, mouth_w=b.mouth_w * (1 - 0.1 * s),
            brow_inner=b.brow_inner + 0.18 * s, brow_raise=b.brow_raise + 0.02 * s, brow_arch=b.brow_arch - 0.02 * s,
            lid_outer=0.35 * s, eye_open=b.eye_open * (1 - 0.15 * s),
        )
    if label == "angry":
        bared = rng.random() < 0.35
        return replace(
            b, brow_raise=b.brow_raise - 0.09 * s, brow_inner=b.brow_inner - 0.18 * s,
            brow_inner_x=b.brow_inner_x - 0.03 * s, lid_inner=0.45 * s, eye_open=b.eye_open * (1 - 0.2 * s),
            squint=0.2 * s, frown_lines=rng.random() < 0.6, mouth_curve=b.mouth_curve + 0.06 * s,
            mouth_w=b.mouth_w * (1.0 if bared else 1 - 0.2 * s),
            lip_press=b.lip_press * (1.0 if bared else 1 - 0.5 * s),  # pressed thin unless bared
            open_up=0.035 * s * bared, open_lo=0.035 * s * bared, roundness=0.3, teeth_up=bared, teeth_lo=bared,
        )
    if label == "surprise":
        return replace(
            b, brow_raise=b.brow_raise + 0.18 * s, brow_arch=b.brow_arch + 0.06 * s,
            eye_open=b.eye_open * (1 + 0.5 * s), mouth_w=b.mouth_w * (0.55 - 0.1 * s),
            open_up=0.06 + 0.06 * s, open_lo=0.1 + 0.1 * s, roundness=0.5,
        )
    if label == "fear":
        return replace(
            b, brow_raise=b.brow_raise + 0.12 * s, brow_inner=b.brow_inner + 0.09 * s, brow_arch=b.brow_arch - 0.03,
            brow_inner_x=b.brow_inner_x - 0.035 * s, frown_lines=rng.random() < 0.3,
            eye_open=b.eye_open * (1 + 0.45 * s), mouth_w=b.mouth_w * (1 + 0.2 * s),
            mouth_curve=b.mouth_curve + 0.05 * s, open_up=0.01 + 0.025 * s, open_lo=0.02 + 0.06 * s,
            teeth_lo=rng.random() < 0.5,
        )
    if label == "disgust":
        side = rng.choice((-1.0, 1.0))
        return replace(
            b, brow_raise=b.brow_raise - 0.05 * s, brow_inner=b.brow_inner - 0.07 * s,
            brow_inner_x=b.brow_inner_x - 0.02, squint=0.4 * s, eye_open=b.eye_open * (1 - 0.25 * s),
            nose_wrinkle=True, smile_lines=True, mouth_tilt=-0.05 * s * side, lip_raise=side * rng.uniform(0.6, 1.0),
            open_up=0.05 * s, open_lo=0.01, teeth_up=True, mouth_curve=b.mouth_curve + 0.04 * s,
        )
    if label == "neutral":
        return b
    raise ValueError(f"unknown class {label!r}; expected one of {FER2013_CLASSES}")


class _Canvas:
    """A display list of polygons and polylines in face units, drawn in one go.

    Shapes are (n,) point arrays, or (k, n) for k shapes of one tone drawn by a single cv2 call (both eyes);
    x and y broadcast against each other.
    ``draw`` maps every recorded point to the 192x192 canvas with one vectorised transform and then issues
    the cv2 calls in recording order. Yaw puts the features on a sphere: a point at x, depth
    z = sqrt(1 - x^2), moves to x cos(yaw) + z sin(yaw), so features slide toward one side and the far side
    is foreshortened; shapes recorded with ``yaw=False`` (outline, hair, body) stay put."""

    def __init__(self, center: np.ndarray, radius: float, roll: float, yaw: float) -> None:
        c, s = math.cos(roll), math.sin(roll)
        self.radius = radius
        self.m = radius * np.array([[c, -s], [s, c]])
        self.t = center
        self.cos_yaw, self.sin_yaw = math.cos(yaw), math.sin(yaw)
        self.xs: list[np.ndarray] = []
        self.ys: list[np.ndarray] = []
        self.yawed: list[float] = []  # per record: 1 follows the head's yaw, 0 does not
        self.depth: list[float] = []  # per record: extra depth (the nose sticks out)
        self.ops: list[tuple[tuple[int, ...], int, int, bool]] = []  # shape, thickness px (0 = fill), tone, closed

    def fill(self, x: np.ndarray, y: np.ndarray, tone: float, yaw: bool = True, depth: float = 0.0) -> None:
        self._add(x, y, yaw, depth, 0, tone, False)

    def line(self, x: np.ndarray, y: np.ndarray, tone: float, width: float, yaw: bool = True,
             closed: bool = False) -> None:
        self._add(x, y, yaw, 0.0, max(1, round(width * self.radius)), tone, closed)

    def _add(self, x: np.ndarray, y: np.ndarray, yaw: bool, depth: float, thickness: int, tone: float,
             closed: bool) -> None:
        if y.shape != x.shape:  # e.g. per-side x with a shared y
            y = y + 0.0 * x
            x = x + 0.0 * y if x.shape != y.shape else x
        self.xs.append(x.ravel())
        self.ys.append(y.ravel())
        self.yawed.append(float(yaw))
        self.depth.append(depth)
        self.ops.append((x.shape, thickness, int(tone), closed))

    def draw(self, img: np.ndarray) -> None:
        counts = [len(x) for x in self.xs]
        x, y = np.concatenate(self.xs), np.concatenate(self.ys)
        z = 0.9 * np.sqrt(np.maximum(1.0 - x * x, 0.0)) + np.repeat(self.depth, counts)
        x = x + np.repeat(self.yawed, counts) * (x * (self.cos_yaw - 1.0) + z * self.sin_yaw)
        (a, b), (c, d) = self.m
        pts = np.rint(np.stack([a * x + b * y + self.t[0], c * x + d * y + self.t[1]], axis=1) * _FIX).astype(np.int32)
        start = 0
        for n, (shape, thickness, tone, closed) in zip(counts, self.ops):
            polys = pts[start:start + n].reshape(-1, shape[-1], 2)
            start += n
            if thickness:
                cv2.polylines(img, polys, closed, tone, thickness, _AA, _SHIFT)
            else:
                cv2.fillPoly(img, polys, tone, _AA, _SHIFT)


def _band(x: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polygon(s) between two curves sampled at the same x: along the top, back along the bottom."""
    return np.concatenate([x, x[..., ::-1]], axis=-1), np.concatenate([top, bottom[..., ::-1]], axis=-1)


def _draw_brows(cv: _Canvas, e: Expression, by: np.ndarray, thick: float, tone: float) -> None:
    """Tapered brows from the inner end (t=0) to the tail (t=1): raise, inner-end slant and arch."""
    x = _SIDE * (e.brow_inner_x + 0.42 * _T)
    y = by - e.brow_raise - e.brow_inner * (1.0 - _T) - e.brow_arch * 4.0 * _T * (1.0 - _T) + 0.03 * _T * _T
    half = thick * (1.0 - 0.45 * _T) / 2
    cv.fill(*_band(x, y - half, y + half), tone)


def _draw_eyes(cv: _Canvas, e: Expression, ex: np.ndarray, ey: float, ew: float, tones: dict[str, float],
               gaze: tuple[float, float]) -> None:
    """Almond eyes whose lids are curves over u (-1 at the inner corner); lid lines lowered at the inner or
    outer corner make the glare or droop; iris and pupil are clipped to the opening."""
    hu = 0.09 * e.eye_open
    y = ey + 0.03 * e.lid_outer * _OUTER  # drooping outer corners
    top = np.maximum(y - hu * _OPEN_06, y - hu * (1.0 - e.lid_inner * _INNER - e.lid_outer * _OUTER))
    bottom = y + 0.06 * e.eye_open * (1.0 - e.squint) * _OPEN_07
    x = ex + _SIDE * ew * _U
    cv.fill(*_band(x, top, bottom), tones["white"])
    # Iris and pupil (axis 0) of both eyes (axis 1), as bands between the disc's and the lids' curves.
    dx, h = gaze[0] + _DISC_R * _DISC_DX, _DISC_R * _DISC_DY
    u = _SIDE * dx / ew  # the discs' x in each eye's u (the lids are mirror images)
    t = np.maximum(ey + gaze[1] - h, np.interp(u, _U, top))
    b = np.minimum(ey + gaze[1] + h, np.interp(u, _U, bottom))
    discs = _band(ex + dx, t, np.maximum(b, t))
    cv.fill(discs[0][0], discs[1][0], tones["iris"])
    cv.fill(discs[0][1], discs[1][1], tones["pupil"])
    cv.fill(*_band(x, top - _LASH, top + 0.008), tones["brow"])  # upper lids and lashes, tapering at the corners
    cv.line(x[:, 2:-1], ey - hu - 0.01 - _CREASE, tones["fold"], 0.012)  # lid creases
    if e.squint > 0.2:  # cheeks pushed up under the eyes
        cv.line(x[:, 4:-4], bottom[4:-4] + 0.05, tones["fold"], 0.014)


def _draw_mouth(cv: _Canvas, e: Expression, my: float, mw: float, tones: dict[str, float]) -> None:
    """Lips around a lip line y0(u) = my + curve u^2 + tilt u; an opening bulges above and below it with the
    expression's profile, showing a dark cavity and teeth."""
    u = _U
    x = mw * e.mouth_w * u
    y0 = my + e.mouth_curve * u * u + e.mouth_tilt * u
    prof = (1.0 - u * u) ** e.roundness
    top = y0 - e.open_up * prof * (1.0 + e.lip_raise * u)
    bottom = y0 + e.open_lo * prof
    lips = np.sqrt(1.0 - u * u) * e.lip_press
    cv.fill(*_band(x, top - 0.045 * lips, bottom + 0.065 * lips), tones["lips"])
    if e.open_up + e.open_lo < 0.015:
        cv.line(x, y0, tones["cavity"], 0.04)
        return
    cv.fill(*_band(x, top, bottom), tones["cavity"])
    mid = slice(2, -2)
    if e.teeth_up:
        cv.fill(*_band(x[mid], top[mid], np.minimum(top[mid] + 0.055, bottom[mid])), tones["teeth"])
    if e.teeth_lo:
        cv.fill(*_band(x[mid], np.maximum(bottom[mid] - 0.045, top[mid]), bottom[mid]), tones["teeth"])


def _render(label: str, rng: np.random.Generator) -> np.ndarray:
    """Draw one 48x48 face of the given class."""
    e = _expression(label, rng)
    p = dict(zip(_NAMES, _LOW + (_HIGH - _LOW) * rng.random(len(_NAMES))))

    # Background: a base grey with smooth low-frequency blotches.
    blotches = np.clip(rng.normal(p["background"], p["texture"], (5, 5)), 0, 255).astype(np.uint8)
    img = cv2.resize(blotches, (_CANVAS, _CANVAS), interpolation=cv2.INTER_CUBIC)

    # Pose.
    face_h = p["face_h"]
    radius = p["fill"] * _CANVAS / (2.0 * face_h)
    center = np.array([(0.5 + p["shift_x"]) * _CANVAS, (0.5 + p["shift_y"]) * _CANVAS + 0.1 * radius])
    cv = _Canvas(center, radius, math.radians(p["roll"]), math.radians(p["yaw"]))

    # Tones: features are darker or lighter than this person's skin.
    skin, hair = p["skin"], p["hair"]
    tones = {
        "brow": min(skin * p["brow_tone"], hair + 30.0), "fold": skin * p["fold_tone"],
        "white": skin + (255.0 - skin) * p["white_tone"], "iris": skin * p["iris_tone"],
        "pupil": skin * p["iris_tone"] * 0.4, "lips": skin * p["lip_tone"], "cavity": skin * p["cavity_tone"],
        "teeth": skin + (255.0 - skin) * p["teeth_tone"],
    }

    # Body, hair and head, back to front; not yawed (a head's outline hardly changes as it turns).
    eye_y = p["eye_y"]
    cv.fill(2.3 * _COS, face_h + 1.4 + 0.9 * _SIN, p["clothes"], yaw=False)
    cv.fill(np.array([-0.45, 0.45, 0.5, -0.5]), np.array([0.5, 0.5, face_h + 1.0, face_h + 1.0]), skin * 0.8, yaw=False)
    hair_drop = 0.8 if rng.random() < 0.35 else -0.2  # long or short hair
    cv.fill(1.12 * _COS, -0.3 + (face_h + hair_drop) * _SIN, hair, yaw=False)
    cv.fill(_SIDE * 0.97 + 0.13 * _COS, eye_y + 0.12 + 0.23 * _SIN, skin * 0.88, yaw=False)  # ears
    fx = _COS * (1.0 - p["jaw"] * _CHIN)  # narrower towards the chin
    fy = face_h * _SIN
    cv.fill(fx, fy, skin, yaw=False)
    if rng.random() < 0.5:  # a fringe: the part of the head above a wavy line
        fringe = p["fringe"] + 0.05 * np.sin(p["fringe_wave"] * fx)
        cv.fill(fx * 1.02, np.minimum(fy * 1.02, fringe), hair, yaw=False)

    # Brows, eyes, lines, nose, mouth.
    eye_dx, nose_y = p["eye_dx"], p["nose_y"]
    mouth_y = nose_y + p["mouth_gap"]
    _draw_brows(cv, e, eye_y - p["brow_gap"] + rng.normal(0.0, 0.01, (2, 1)), p["brow_thick"], tones["brow"])
    _draw_eyes(cv, e, _SIDE * eye_dx, eye_y, p["eye_w"], tones, (rng.normal(0.0, 0.02), rng.normal(0.0, 0.006)))
    if e.frown_lines:
        cv.line(_SIDE * np.array([0.035, 0.045]), eye_y + np.array([-0.2, -0.06]), tones["fold"], 0.016)
    if e.nose_wrinkle:
        cv.line(np.array([-0.09, 0.0, 0.09]), eye_y + np.array([[0.055], [0.1], [0.16]]) + [0.0, -0.015, 0.0],
                tones["fold"], 0.016)
    shadow = -1.0 if cv.sin_yaw > 0 else 1.0  # the bridge's shadow falls on the side turned away
    cv.line(np.array([shadow * 0.06, shadow * 0.1]), np.array([eye_y + 0.08, nose_y - 0.05]), tones["fold"], 0.016)
    cv.line(np.array([-0.13, -0.06, 0.0, 0.06, 0.13]), nose_y + np.array([-0.02, 0.02, 0.03, 0.02, -0.02]),
            tones["fold"], 0.016)
    wing = 0.075 * (1.25 if e.nose_wrinkle else 1.0)  # flared when wrinkled
    cv.fill(_SIDE * wing + 0.035 * _COS, nose_y + 0.02 * _SIN, skin * 0.5, depth=0.2)  # nostrils
    mouth_w = p["mouth_w"]
    if e.smile_lines:  # quadratic curves from the nose wings round the mouth corners
        corner, t = mouth_w * e.mouth_w + 0.07, _T
        xs = _SIDE * ((1 - t) ** 2 * 0.17 + 2 * t * (1 - t) * (corner + 0.05) + t * t * corner)
        ys = (1 - t) ** 2 * nose_y + 2 * t * (1 - t) * (mouth_y - 0.05) + t * t * (mouth_y + e.mouth_curve + 0.08)
        cv.line(xs, ys, tones["fold"], 0.014)
    _draw_mouth(cv, e, mouth_y, mouth_w, tones)

    # Glasses and occluders.
    if rng.random() < 0.1:
        frame = rng.uniform(10.0, 120.0)
        cv.line(_SIDE * eye_dx + 0.23 * _COS, eye_y + 0.02 + 0.15 * _SIN, frame, 0.03, closed=True)
        cv.line(np.array([-eye_dx + 0.23, 0.0, eye_dx - 0.23]), eye_y + np.array([0.0, -0.03, 0.0]), frame, 0.03)
    if rng.random() < 0.12:
        ox, oy = rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 1.0)
        if rng.random() < 0.5:  # a bar (hair strand, object) across part of the face
            a, half_len, half_w = rng.uniform(0.0, math.pi), rng.uniform(0.5, 1.2), rng.uniform(0.1, 0.22)
            bx = np.array([-half_len, half_len, half_len, -half_len])
            by = np.array([-half_w, -half_w, half_w, half_w])
            cv.fill(ox + bx * math.cos(a) - by * math.sin(a), oy + bx * math.sin(a) + by * math.cos(a),
                    rng.uniform(0.0, 255.0), yaw=False)
        else:  # a blob (hand, shadow)
            cv.fill(ox + rng.uniform(0.25, 0.45) * _COS, oy + rng.uniform(0.2, 0.4) * _SIN,
                    skin * rng.uniform(0.6, 1.1), yaw=False)
    cv.draw(img)

    # Camera at 48 px: gamma, lighting, sometimes blur, sensor noise.
    small = cv2.resize(img, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
    out = (255.0 * _RAMP ** p["gamma"])[small]
    # Light: a linear gradient across the frame, falling off from the middle of the face towards its rim
    # (roundness). Both are sums of a row and a column term.
    phi, (cx, cy), r = p["light_dir"], center / _UP, radius / _UP
    gradient = (p["light"] * math.cos(phi) * _LIN) + (p["light"] * math.sin(phi) * _LIN)[:, None]
    falloff = np.minimum(((_PIX - cx) / r) ** 2 + ((_PIX[:, None] - cy) / (face_h * r)) ** 2, 1.5)
    out *= 1.0 + gradient - p["shading"] * falloff
    if rng.random() < 0.4:
        out = cv2.GaussianBlur(out, (0, 0), p["blur"])
    out += p["noise"] * rng.standard_normal(out.shape, dtype=np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _origin_split(k: int) -> str:
    """FER2013-like usage of the k-th image of a class: 80% Training, 10% each test split, in blocks of ten
    (so every complete block of ten is exactly 8/1/1, and a tiny set is all Training)."""
    return "PublicTest" if k % 10 == 8 else "PrivateTest" if k % 10 == 9 else "Training"


def load_synthetic(per_class: int = DEFAULT_PER_CLASS, seed: int = 0) -> FaceSet:
    """Generate ``per_class`` faces for each of FER2013's seven classes.

    Images are class-interleaved (image i has class ``FER2013_CLASSES[i % 7]``), and image i is drawn from
    its own generator ``default_rng([seed, i])``. Provenance: ``source`` = ``synthetic:i``, ``origin_label``
    = the class, ``origin_split`` = Training / PublicTest / PrivateTest (80/10/10 within each class).
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    n_classes = len(FER2013_CLASSES)
    total = per_class * n_classes
    labels = [FER2013_CLASSES[i % n_classes] for i in range(total)]
    images = np.empty((total, FACE_SIZE, FACE_SIZE), np.uint8)
    for i, label in enumerate(labels):
        images[i] = _render(label, np.random.default_rng([seed, i]))
    provenance = pd.DataFrame({
        "source": [f"synthetic:{i}" for i in range(total)],
        "origin_split": [_origin_split(i // n_classes) for i in range(total)],
        "origin_label": labels,
    })
    return FaceSet(images, provenance, name=f"synthetic(per_class={per_class}, seed={seed})",
                   notes={"generator": GENERATOR_VERSION, "per_class": per_class, "seed": seed})
