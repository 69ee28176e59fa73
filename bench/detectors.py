"""Face detectors side by side: time, recall on big and small faces, false boxes, on scenes and on real photos.

Scenes (640x480, BGR): FER2013 test faces (its test folder, natural class mix) pasted at 150-220 px
(``--big``, 100), at 64-140 px (``--small``, 50), and frames with no face (``--empty``, 20), on smooth
noise, gradient or flat backgrounds, as in tests/test_detect.py. A face counts as found when a box's
centre lies inside the pasted square and its side is 0.5-1.5x the square's; every other box is false.

Real photographs that ship inside installed packages (no download): scikit-image's ``astronaut`` and
``camera``, matplotlib's ``grace_hopper.jpg``, each with its face box marked by hand (FACE_BOXES), and the
same photographs shrunk to 40% (a face at a distance).

Every detector runs in the same process on the same frames with OpenCV and LiteRT on one thread; time is
the mean per frame over all scenes (and per kind of scene), reported as a ratio to ``haar`` (ferlab's Haar
settings) in this run.

The same scenes calibrate each BlazeFace variant's mapping to the FER2013 framing (``--calibrate``): the
median pasted side over BlazeFace's own box side, and the median centre shift in box sides; the constants
in ferlab/deploy/detection/blazeface.py come from this output.

    python -m bench detectors                 # table -> bench/results/detectors.csv
    python -m bench detectors --calibrate     # also print the BlazeFace -> FER2013 framing
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from bench.common import SHARED, write_table

FRAME = (480, 640)
# Hand-marked face boxes (x, y, w, h) of the shipped photographs: forehead (hairline) to chin, ear to ear.
FACE_BOXES = {"astronaut": [(178, 66, 98, 102)], "grace_hopper": [(165, 140, 200, 185)],
              "camera": [(180, 115, 85, 90)]}


def photographs() -> dict[str, np.ndarray]:
    """BGR photographs shipped inside scikit-image and matplotlib."""
    import cv2
    import matplotlib.cbook
    from skimage import data

    photos = {"astronaut": cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR),
              "grace_hopper": cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))),
              "camera": cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)}
    return photos


# The photo strip: scikit-image's astronaut, matplotlib's grace_hopper and scikit-image's camera side by side,
# each resized to STRIP_HEIGHT px high (1141x400). Two frontal faces of different sizes and a profile; the
# astronaut's picture also holds a space shuttle (SHUTTLE, marked by hand in the astronaut's own pixels: right
# of her hair, down to the shuttle's base), on which a detector should put no box.
STRIP = ("astronaut", "grace_hopper", "camera")
STRIP_HEIGHT = 400
SHUTTLE = (295, 0, 217, 295)


def photo_strip() -> tuple[np.ndarray, dict[str, tuple[int, int, int, int]], tuple[int, int, int, int]]:
    """The photo strip (BGR), each photograph's hand-marked face box (FACE_BOXES) in strip pixels, and the
    shuttle's box in strip pixels."""
    import cv2

    photos = photographs()
    parts, faces, left = [], {}, 0
    shuttle = SHUTTLE
    for name in STRIP:
        image = photos[name]
        scale = STRIP_HEIGHT / image.shape[0]
        parts.append(cv2.resize(image, (round(image.shape[1] * scale), STRIP_HEIGHT), interpolation=cv2.INTER_AREA))
        x, y, w, h = FACE_BOXES[name][0]
        faces[name] = (round(left + x * scale), round(y * scale), round(w * scale), round(h * scale))
        if name == "astronaut":
            shuttle = tuple(round(v * scale) for v in SHUTTLE)
        left += parts[-1].shape[1]
    return np.hstack(parts), faces, shuttle


def background(kind: str, rng: np.random.Generator, shape: tuple[int, int] = FRAME) -> np.ndarray:
    """A BGR uint8 background: ``noise`` (smooth blotches), ``gradient`` (linear, random direction) or
    ``flat`` (one grey level plus sensor-like noise), slightly tinted (tests/test_detect.py's scenes too)."""
    import cv2

    h, w = shape
    if kind == "noise":
        grid = rng.uniform(0, 255, (6, 8)).astype(np.float32)
        g = cv2.GaussianBlur(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 15)
        g = (g - g.min()) / max(float(np.ptp(g)), 1.0) * rng.uniform(60, 200) + rng.uniform(0, 50)
    elif kind == "gradient":
        a, b = rng.uniform(0, 255, 2)
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w]
        s = np.cos(angle) * xx + np.sin(angle) * yy
        g = a + (b - a) * (s - s.min()) / np.ptp(s)
    elif kind == "flat":
        g = np.full((h, w), rng.uniform(30, 220), np.float32) + rng.normal(0, 3, (h, w))
    else:
        raise ValueError(kind)
    g = np.clip(g, 0, 255)
    return np.clip(g[..., None] * rng.uniform(0.85, 1.15, 3), 0, 255).astype(np.uint8)


def scenes(big: int, small: int, empty: int, seed: int = 0) -> list[dict]:
    """Frames with one pasted FER2013 test face (big, then small) or none; each with its pasted square."""
    import cv2

    root = SHARED / "data" / "fer2013" / "test"
    if not root.is_dir():
        sys.exit(f"bench detectors: {root} not found; put ../shared beside the repository or set FERLAB_SHARED")
    files = sorted(root.glob("*/*.jpg"))
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(files), big + small, replace=False)
    out = []
    for i in range(big + small + empty):
        frame = background(("noise", "gradient", "flat")[i % 3], rng)
        kind, paste = "empty", None
        if i < big + small:
            kind = "big" if i < big else "small"
            side = int(rng.integers(*((150, 221) if kind == "big" else (64, 141))))
            x, y = int(rng.integers(0, FRAME[1] - side + 1)), int(rng.integers(0, FRAME[0] - side + 1))
            face = cv2.imread(str(files[pick[i]]), cv2.IMREAD_GRAYSCALE)
            frame[y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)[..., None]
            paste = (x, y, side, side)
        out.append({"frame": frame, "kind": kind, "truth": [paste] if paste else []})
    return out


# Face-free photographs shipped inside scikit-image (no download): the group scenes' backgrounds.
BACKGROUND_PHOTOS = ("coffee", "chelsea", "rocket", "stereo_motorcycle", "hubble_deep_field", "immunohistochemistry",
                     "brick", "grass", "gravel", "moon", "clock")
SIZE_BINS = ((24, 48), (48, 96), (96, 221))  # face sides (px) reported apart: [low, high)


def size_bin(side: int) -> tuple[int, int]:
    """The :data:`SIZE_BINS` entry a face of ``side`` px is reported in."""
    return next(b for b in SIZE_BINS if b[0] <= side < b[1])


def background_photos() -> dict[str, np.ndarray]:
    """BGR photographs without a face (a cat, a coffee cup, a rocket, textures...), shipped in scikit-image."""
    import cv2
    from skimage import data

    out = {}
    for name in BACKGROUND_PHOTOS:
        image = getattr(data, name)()
        image = image[0] if name == "stereo_motorcycle" else image  # (left, right, disparity): the left view
        out[name] = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_RGB2BGR)
    return out


def photo_background(photo: np.ndarray, rng: np.random.Generator, shape: tuple[int, int] = FRAME) -> np.ndarray:
    """A random window of ``photo`` with the frame's aspect ratio (60-100% of the largest that fits), resized
    to ``shape``."""
    import cv2

    h, w = shape
    ph, pw = photo.shape[:2]
    fit = min(pw / w, ph / h)
    scale = fit * rng.uniform(0.6, 1.0)
    cw, ch = max(1, round(w * scale)), max(1, round(h * scale))
    x, y = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, ph - ch + 1))
    window = photo[y:y + ch, x:x + cw]
    return cv2.resize(window, (w, h), interpolation=cv2.INTER_AREA if scale > 1 else cv2.INTER_LINEAR)


def fer_test_files() -> list:
    """FER2013's test images that are faces, by FER+'s annotators: the 26 with no FER+ row (FER+ left its
    non-face rows unnamed: placeholders such as "This image is not currently available", black frames,
    icons) and the 2 its annotators voted not-a-face are left out, since a detector that boxed a placeholder
    would be wrong, not right. 7,150 of 7,178 images."""
    import pandas as pd

    from ferlab.data.ferplus import VOTE_COLUMNS, majority_vote

    root = SHARED / "data" / "fer2013" / "test"
    mapping = SHARED / "data" / "ferplus" / "fer2013_jpg_to_ferplus.csv"
    for path in (root, mapping):
        if not path.exists():
            sys.exit(f"bench: {path} not found; put ../shared beside the repository or set FERLAB_SHARED")
    votes = pd.read_csv(mapping).dropna(subset=["fer2013_row"])
    _, reasons = majority_vote(votes[list(VOTE_COLUMNS)].to_numpy())
    faces = {root.parent / p for p in votes["path"][reasons != "not_face"]}
    return sorted(f for f in root.glob("*/*.jpg") if f in faces)


def group_scenes(groups: int, empty: int, seed: int = 0, shape: tuple[int, int] = FRAME) -> list[dict]:
    """Frames of 2-8 FER2013 test faces (each drawn without replacement from its test folder) pasted at
    24-220 px on a window of a face-free photograph (:data:`BACKGROUND_PHOTOS`), then ``empty`` frames of
    the photographs alone. Each face's size bin (:data:`SIZE_BINS`) is drawn uniformly, its side
    log-uniformly within the bin; faces are placed largest first, apart by at least a tenth of the larger
    side (a face that does not fit after 100 tries is left out). Each frame: ``frame``, ``kind`` ("group"
    or "empty"), ``truth`` (the pasted squares), ``background`` (the photograph's name)."""
    import cv2

    files = fer_test_files()
    photos = background_photos()
    names = list(photos)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    used = 0
    h, w = shape
    out = []
    for i in range(groups + empty):
        name = names[i % len(names)]
        frame = photo_background(photos[name], rng, shape)
        truth: list[tuple[int, int, int, int]] = []
        if i < groups:
            bins = rng.integers(0, len(SIZE_BINS), int(rng.integers(2, 9)))
            sides = sorted((int(np.exp(rng.uniform(np.log(SIZE_BINS[b][0]), np.log(SIZE_BINS[b][1])))) for b in bins),
                           reverse=True)
            for side in sides:
                for _ in range(100):
                    x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
                    if all(x + side + gap <= tx or tx + ts + gap <= x or y + side + gap <= ty or ty + ts + gap <= y
                           for tx, ty, ts, _ in truth for gap in [0.1 * max(side, ts)]):
                        break
                else:
                    continue
                face = cv2.imread(str(files[order[used % len(order)]]), cv2.IMREAD_GRAYSCALE)
                used += 1
                shrink = cv2.INTER_AREA if side < face.shape[0] else cv2.INTER_CUBIC
                frame[y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=shrink)[..., None]
                truth.append((x, y, side, side))
        out.append({"frame": frame, "kind": "group" if i < groups else "empty", "truth": truth, "background": name})
    return out


def match_faces(found: list, truth: list[tuple[int, int, int, int]]) -> tuple[list[bool], int]:
    """One box per true face at most: each true face (largest first) takes the nearest unclaimed box that
    :func:`matches` it. Returns whether each true face was found, and the boxes left over (false boxes:
    on no face, or a second box on a face)."""
    free = list(found)
    hits = []
    for x, y, w, h in truth:
        candidates = [f for f in free if matches(f, (x, y, w, h))]
        if candidates:
            best = min(candidates, key=lambda f: (f.x + f.w / 2 - x - w / 2) ** 2 + (f.y + f.h / 2 - y - h / 2) ** 2)
            free.remove(best)
        hits.append(bool(candidates))
    return hits, len(free)


def matches(face, truth: tuple[int, int, int, int]) -> bool:
    x, y, w, h = truth
    cx, cy = face.x + face.w / 2, face.y + face.h / 2
    side = max(w, h)
    return x <= cx <= x + w and y <= cy <= y + h and 0.5 <= max(face.w, face.h) / side <= 1.5


def detectors(names: list[str]) -> dict:
    from ferlab.deploy.detection import make_detector
    from ferlab.deploy.detection.haar import HaarDetector

    made = {}
    for name in names:
        if name == "haar-fer":  # the settings the fer package uses: full frame, scale 1.1, 5 neighbours, 50 px
            made[name] = HaarDetector(scale_factor=1.1, min_neighbors=5, min_size=50, angles=(), fallback=None,
                                      search_side=None)
        elif name == "blazeface@0.4":
            made[name] = make_detector("blazeface", min_score=0.4, tiles="off")
        elif name == "blazeface-whole":  # the whole frame only, no tiles
            made[name] = make_detector("blazeface", tiles="off")
        elif name == "blazeface-tiles":  # the tiles on every frame
            made[name] = make_detector("blazeface", tiles="always")
        elif name == "blazeface-unchecked":  # the still pyramid's passes at MediaPipe's threshold, not verified
            made[name] = make_detector("blazeface", verify_score=None)
        elif name == "blazeface-pyramid-0.3":  # the still pyramid with coarser fine tiles (0.3: 30 on 640x480)
            made[name] = make_detector("blazeface", pyramid=(0.6, 0.3))
        else:
            made[name] = make_detector(name)
    return made


def evaluate(detector, frames: list[dict]) -> dict:
    times, hits, by_kind, false = {}, {}, {}, {}
    for s in frames:
        start = time.perf_counter()
        found = detector.detect(s["frame"])
        times.setdefault(s["kind"], []).append(time.perf_counter() - start)
        matched = 0
        for truth in s["truth"]:
            ok = any(matches(f, truth) for f in found)
            hits.setdefault(s["kind"], []).append(ok)
            matched += ok
        by_kind[s["kind"]] = by_kind.get(s["kind"], 0) + 1
        false[s["kind"]] = false.get(s["kind"], 0) + int(len(found) - matched > 0)
    every = [t for v in times.values() for t in v]
    return {"mean_ms": float(np.mean(every)) * 1e3, "mean_ms_by_kind": {k: float(np.mean(v)) * 1e3 for k, v in times.items()},
            "hits": hits, "false_frames": false, "frames": by_kind}


def calibrate(frames: list[dict]) -> None:
    """Print each BlazeFace variant's mapping to the pasted FER2013 square: the median of (pasted side /
    box side) and of the centre shift (in box sides) from :func:`face_centre`, and how far the pasted
    centres scatter around that point and around the box's centre (median of the larger of |dx|, |dy|,
    in pasted sides, each after removing its median shift)."""
    from ferlab.deploy.detection.blazeface import BlazeFaceDetector, face_centre

    # The whole frame's boxes (a stream's, blazeface-fast's), and the still pyramid's: its boxes come from the
    # verification pass, which sees the face at about half its input, and sit differently on it.
    for variant, tiles in (("short", "fallback"), ("full", "fallback"), ("short", "pyramid")):
        detector = BlazeFaceDetector(variant, tiles=tiles, level=False)
        ratio, shift, box_shift = [], [], []
        for s in frames:
            if s["kind"] != "big":
                continue
            x, y, side, _ = s["truth"][0]
            truth = np.array([x + side / 2, y + side / 2])
            for row, _score in detector.raw_boxes(s["frame"]):
                box = max(row[2] - row[0], row[3] - row[1])
                centre = (row[0:2] + row[2:4]) / 2
                if x <= centre[0] <= x + side and y <= centre[1] <= y + side:
                    ratio.append(side / box)
                    shift.append((truth - face_centre(row)) / box)
                    box_shift.append((truth - centre) / box)
                    break
        shift, box_shift, sides = np.array(shift), np.array(box_shift), np.array(ratio)

        def scatter(d, sides=sides):  # in pasted sides, around the median shift
            return float(np.median(np.abs((d - np.median(d, axis=0)) / sides[:, None]).max(axis=1)))

        print(f"blazeface {variant}-range ({tiles}) over {len(ratio)} big faces: pasted side / box side median "
              f"{np.median(ratio):.3f} (10-90%: {np.percentile(ratio, 10):.3f}-{np.percentile(ratio, 90):.3f}); "
              f"centre shift from face_centre x {np.median(shift[:, 0]):+.3f}, y {np.median(shift[:, 1]):+.3f} box "
              f"sides; scatter around face_centre {scatter(shift):.3f}, around the box centre "
              f"{scatter(box_shift):.3f} of the side")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench detectors", description=__doc__.split("\n\n")[0])
    parser.add_argument("--detectors", default="haar,haar-fer,blazeface,blazeface-whole,blazeface@0.4,blazeface-tiles,blazeface-full")
    parser.add_argument("--big", type=int, default=100)
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--empty", type=int, default=20)
    parser.add_argument("--calibrate", action="store_true", help="print the BlazeFace -> FER2013 framing")
    parser.add_argument("--calibrate-only", action="store_true", help="print the framing, measure nothing else")
    args = parser.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)
    frames = scenes(args.big, args.small, args.empty)
    if args.calibrate or args.calibrate_only:
        calibrate(frames)
    if args.calibrate_only:
        return
    photos = photographs()
    photo_frames = []
    for name, image in photos.items():
        photo_frames.append({"frame": image, "kind": "photo", "truth": FACE_BOXES[name], "name": name})
        small = cv2.resize(image, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
        photo_frames.append({"frame": small, "kind": "photo@40%", "name": name,
                             "truth": [tuple(round(v * 0.4) for v in b) for b in FACE_BOXES[name]]})
    rows = []
    baseline = None
    for name, detector in detectors(args.detectors.split(",")).items():
        scene = evaluate(detector, frames)
        photo = evaluate(detector, photo_frames)
        baseline = baseline or scene["mean_ms"]
        hits = scene["hits"]
        by_kind = scene["mean_ms_by_kind"]
        row = {"detector": name, "ms_per_frame": round(scene["mean_ms"], 2),
               "time_vs_haar": round(scene["mean_ms"] / baseline, 3),
               **{f"ms_{kind}": round(by_kind[kind], 2) for kind in ("big", "small", "empty") if kind in by_kind},
               "recall_big": f"{sum(hits.get('big', []))}/{len(hits.get('big', []))}",
               "recall_small": f"{sum(hits.get('small', []))}/{len(hits.get('small', []))}",
               "empty_frames_with_a_box": f"{scene['false_frames'].get('empty', 0)}/{scene['frames'].get('empty', 0)}",
               "face_frames_with_a_false_box": sum(v for k, v in scene["false_frames"].items() if k != "empty"),
               "photos_found": f"{sum(photo['hits'].get('photo', []))}/{len(photo['hits'].get('photo', []))}",
               "photos_40pct_found": f"{sum(photo['hits'].get('photo@40%', []))}/"
                                     f"{len(photo['hits'].get('photo@40%', []))}",
               "photo_frames_with_a_false_box": sum(photo["false_frames"].values())}
        rows.append(row)
        print(", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    path = write_table("detectors", rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
