"""Face detectors on group scenes: several faces of 24-220 px on real photographs, and the photo strip.

Frames (640x480, BGR; :func:`bench.detectors.group_scenes`): 2-8 FER2013 test faces (its test folder less the
28 images FER+ calls non-faces, natural class mix, each face used once) pasted at 24-220 px (size bin drawn
uniformly among 24-48, 48-96 and 96-220 px, side log-uniform within it) onto a window of a face-free
photograph shipped in scikit-image (a cat, a coffee cup, a rocket, a motorcycle, the Hubble deep field, a
tissue stain, brick, grass, gravel, the moon, a clock), and frames of those photographs alone (``--empty``,
three per photograph by default). A face is found when a box's centre is inside its square and the box's side
is 0.5-1.5x the square's, one box per face (:func:`bench.detectors.match_faces`); every other box is a false
box (on the background, or a second box on a face).

The photo strip (:func:`bench.detectors.photo_strip`): astronaut, Grace Hopper and the cameraman (in
profile) side by side, 1141x400; which faces are found and how many boxes lie on the space shuttle.

Every detector and policy runs in one process, frame by frame in turn (so that load on a shared machine
falls on all alike), OpenCV and LiteRT on one thread; ms per frame is the mean over the group frames and
over the empty frames, and its ratio to ``haar`` in the same run; for BlazeFace, also the passes of the
model per frame (a cost that load on the machine does not change).

    python -m bench group-scenes                 # -> bench/results/group_scenes.csv
    python -m bench group-scenes --seed 1        # the scenes the still policy's thresholds were chosen on
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from bench.common import write_table
from bench.detectors import SIZE_BINS, detectors, group_scenes, match_faces, photo_strip, size_bin

DETECTORS = "haar,blazeface,blazeface-fast,blazeface-unchecked,blazeface-pyramid-0.3,blazeface-tiles,blazeface-full"


def bin_name(low: int, high: int) -> str:
    return f"{low}-{high - 1}px" if high < 221 else f"{low}px+"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench group-scenes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--detectors", default=DETECTORS, help="comma-separated (bench/detectors.py's names)")
    parser.add_argument("--groups", type=int, default=120, help="frames with faces")
    parser.add_argument("--empty", type=int, default=33, help="frames of a photograph alone")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)
    frames = group_scenes(args.groups, args.empty, args.seed)
    strip, strip_faces, shuttle = photo_strip()
    made = detectors(args.detectors.split(","))
    names = list(made)
    stats = {n: {"hits": {b: [] for b in SIZE_BINS}, "false": 0, "empty_boxes": 0, "empty_frames": 0,
                 "ms": {"group": [], "empty": []}, "passes": 0} for n in names}
    for i, scene in enumerate(frames):
        for k in range(len(names)):  # each frame, every detector, in an order that rotates
            name = names[(i + k) % len(names)]
            passes = getattr(made[name], "passes", None)
            start = time.perf_counter()
            found = made[name].detect(scene["frame"])
            stats[name]["ms"][scene["kind"]].append((time.perf_counter() - start) * 1e3)
            if passes is not None:
                stats[name]["passes"] += made[name].passes - passes
            hits, false = match_faces(found, scene["truth"])
            for (_, _, side, _), hit in zip(scene["truth"], hits):
                stats[name]["hits"][size_bin(side)].append(hit)
            if scene["kind"] == "empty":
                stats[name]["empty_boxes"] += false
                stats[name]["empty_frames"] += bool(false)
            else:
                stats[name]["false"] += false
    n_faces = {b: len(stats[names[0]]["hits"][b]) for b in SIZE_BINS}
    print(f"{args.groups} group frames ({sum(n_faces.values())} faces: "
          + ", ".join(f"{bin_name(*b)} {n}" for b, n in n_faces.items()) + f"), {args.empty} empty frames, seed {args.seed}")
    rows = []
    haar_ms = np.mean(stats["haar"]["ms"]["group"]) if "haar" in stats else None
    for name in names:
        st = stats[name]
        found = made[name].detect(strip)
        strip_hits = {face: any(match_faces([f], [box])[0][0] for f in found) for face, box in strip_faces.items()}
        sx, sy, sw, sh = shuttle
        on_shuttle = sum(sx <= f.x + f.w / 2 <= sx + sw and sy <= f.y + f.h / 2 <= sy + sh for f in found)
        big = st["hits"][SIZE_BINS[1]] + st["hits"][SIZE_BINS[2]]
        group_ms = float(np.mean(st["ms"]["group"]))
        row = {"detector": name, "seed": args.seed, "group_frames": args.groups, "empty_frames": args.empty,
               **{f"recall_{bin_name(*b)}": round(float(np.mean(st["hits"][b])), 4) for b in SIZE_BINS},
               "recall_48px+": round(float(np.mean(big)), 4),
               "false_boxes_per_group_frame": round(st["false"] / args.groups, 3),
               "boxes_in_empty_frames": st["empty_boxes"], "empty_frames_with_a_box": st["empty_frames"],
               "ms_group_frame": round(group_ms, 1), "ms_empty_frame": round(float(np.mean(st["ms"]["empty"])), 1),
               "time_vs_haar": round(group_ms / haar_ms, 2) if haar_ms else None,
               "model_passes_per_frame": round(st["passes"] / len(frames), 1) if hasattr(made[name], "passes") else None,
               "strip_faces_found": "+".join(k for k, v in strip_hits.items() if v) or "none",
               "strip_boxes_on_shuttle": on_shuttle, "strip_boxes": len(found)}
        rows.append(row)
        print(", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    path = write_table("group_scenes", rows, key=("detector", "seed"))
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
