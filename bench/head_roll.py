"""Head roll: the default model's accuracy on FER2013 test faces turned in the frame, with and without
crops levelled by BlazeFace's eye key points.

Each face (FER2013's test folder less FER+'s non-faces, natural class mix; ``--faces`` drawn with seed 0) is
pasted upright at ``--side`` px in the middle of a 320x240 window of a face-free photograph
(bench/detectors.py's backgrounds), and the frame is turned about the face's centre by each of 0, +-10, +-20,
+-30 degrees (counter-clockwise positive; the photograph's border is mirrored in). Each frame goes through
:class:`ferlab.deploy.pipeline.FacePipeline` with the zoo's default model (what ``FaceAnalyzer`` runs) and the
default detector twice: levelled (the crop turned so that the eyes are level; the default) and not
(``level=False``: the axis-aligned crop, as before). The face is the box whose centre is nearest the pasted
face's, within half its side; a face not found counts as wrong. Also: the model on the 48x48 test images
themselves (no detection, no turn), the share found per angle, and the median roll the eyes gave (the turn
shows as its negative).

    python -m bench head-roll                  # -> bench/results/head_roll.csv
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from bench.common import write_table
from bench.detectors import background_photos, fer_test_files, photo_background

ANGLES = (0, 10, -10, 20, -20, 30, -30)
FRAME = (240, 320)  # rows, columns: small, so that the still search is quick (its finest tiles are skipped)


def turned_scene(face: np.ndarray, background: np.ndarray, side: int, angle: float) -> tuple[np.ndarray, tuple]:
    """``face`` pasted at ``side`` px into ``background`` (a copy) and the frame turned by ``angle`` degrees
    about the face's centre; returns the frame and the face's centre."""
    import cv2

    frame = background.copy()
    x, y = (FRAME[1] - side) // 2, (FRAME[0] - side) // 2
    frame[y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)[..., None]
    centre = (x + side / 2, y + side / 2)
    turn = cv2.getRotationMatrix2D(centre, angle, 1.0)
    return cv2.warpAffine(frame, turn, (FRAME[1], FRAME[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT), centre


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench head-roll", description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=600)
    parser.add_argument("--side", type=int, default=100, help="the pasted face's side, px")
    parser.add_argument("--detector", default="blazeface")
    args = parser.parse_args(argv)
    import cv2

    from ferlab.deploy.detection import make_detector
    from ferlab.deploy.formats import load_classifier
    from ferlab.deploy.pipeline import FacePipeline
    from ferlab.zoo import default_model

    cv2.setNumThreads(1)
    files = fer_test_files()
    pick = np.random.default_rng(0).choice(len(files), args.faces, replace=False)
    labels = [files[i].parent.name for i in pick]
    faces = [cv2.imread(str(files[i]), cv2.IMREAD_GRAYSCALE) for i in pick]
    photos = list(background_photos().values())
    model = default_model()
    classifier = load_classifier(model.model_file())
    classes = classifier.classes
    if set(labels) - set(classes):
        sys.exit(f"bench head-roll: the default model's classes {classes} do not cover FER2013's {sorted(set(labels))}")
    pipelines = {"levelled": FacePipeline(make_detector(args.detector), classifier),
                 "not levelled": FacePipeline(make_detector(args.detector, level=False), classifier)}
    upright = classifier.predict(np.stack(faces)).argmax(1)
    reference = float(np.mean([classes[k] == label for k, label in zip(upright, labels)]))
    print(f"{model.name} on the {args.faces} 48x48 test images themselves: {reference:.1%}")
    correct = {(a, p): 0 for a in ANGLES for p in pipelines}
    found = {(a, p): 0 for a in ANGLES for p in pipelines}
    rolls = {a: [] for a in ANGLES}
    seconds = {p: 0.0 for p in pipelines}
    for k, (face, label) in enumerate(zip(faces, labels)):
        background = photo_background(photos[k % len(photos)], np.random.default_rng(k), FRAME)
        for angle in ANGLES:
            frame, (cx, cy) = turned_scene(face, background, args.side, angle)
            for name, pipeline in pipelines.items():
                start = time.perf_counter()
                result = pipeline.analyze(frame)
                seconds[name] += time.perf_counter() - start
                near = [r for r in result.faces if abs(r.face.x + r.face.w / 2 - cx) < args.side / 2
                        and abs(r.face.y + r.face.h / 2 - cy) < args.side / 2]
                if not near:
                    continue
                best = min(near, key=lambda r: (r.face.x + r.face.w / 2 - cx) ** 2 + (r.face.y + r.face.h / 2 - cy) ** 2)
                found[(angle, name)] += 1
                correct[(angle, name)] += best.label == label
                if name == "levelled":
                    rolls[angle].append(best.face.angle)
        if (k + 1) % 100 == 0:
            print(f"{k + 1} faces", flush=True)
    rows = []
    for angle in ANGLES:
        row = {"angle": angle, "faces": args.faces, "side_px": args.side, "detector": args.detector,
               "model": model.name, "accuracy_on_the_test_images": round(reference, 4)}
        for name in pipelines:
            key = name.replace(" ", "_")
            row[f"accuracy_{key}"] = round(correct[(angle, name)] / args.faces, 4)
            row[f"found_{key}"] = round(found[(angle, name)] / args.faces, 4)
        row["median_roll_from_the_eyes"] = round(float(np.median(rolls[angle])), 1) if rolls[angle] else None
        rows.append(row)
        print(", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    frames = args.faces * len(ANGLES)
    print("ms per frame (detect, crop, classify): " + ", ".join(f"{n} {s / frames * 1e3:.1f}" for n, s in seconds.items()))
    path = write_table("head_roll", rows, key=("angle", "detector", "model", "side_px"))
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
