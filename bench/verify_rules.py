"""How the still pyramid's second checks were chosen (`VERIFY_GROWS`, `VERIFY_RETRY_SCORE` in
ferlab/deploy/detection/blazeface.py): recall on the group scenes under several verification rules.

``python -m bench verify-rules --seed 1 --groups 110`` (the scenes the rule was chosen on); ``--seed 0``
gives the reported scenes. Each proposal is checked once at every region size and the results cached, so
each rule costs only its proposal passes; ``verify passes`` counts the checks a rule would run (two model
passes each: the region and its mirror image). Prints one line per rule; writes nothing.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

SIDES = (1.6, 2.0, 2.5, 3.0)


def rules() -> dict:
    def first(sides, score, gate=None):  # the first side whose check passes; stop after the first if under gate
        def rule(checks, count):
            for k, side in enumerate(sides):
                count[0] += 2
                found = checks[side]
                if found is not None and found[1] > score:
                    return found
                if k == 0 and gate is not None and (found is None or found[1] < gate):
                    return None
            return None
        return rule

    def best(sides, score):  # the best-scoring side among those that pass
        def rule(checks, count):
            count[0] += 2 * len(sides)
            passed = [checks[s] for s in sides if checks[s] is not None and checks[s][1] > score]
            return max(passed, key=lambda found: found[1]) if passed else None
        return rule

    return {"2.0 at 0.7 (before)": first((2.0,), 0.7), "2.0 at 0.65": first((2.0,), 0.65),
            "2.0, 1.6, 2.5: every proposal": first((2.0, 1.6, 2.5), 0.7),
            "2.0, 1.6, 2.5: retry from 0.5 (shipped)": first((2.0, 1.6, 2.5), 0.7, gate=0.5),
            "best of 2.0, 1.6, 2.5": best((2.0, 1.6, 2.5), 0.7), "best of 1.6, 2.0, 2.5, 3.0": best(SIDES, 0.7)}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench verify-rules", description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=120)
    parser.add_argument("--empty", type=int, default=33)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    import cv2

    from bench.detectors import SIZE_BINS, group_scenes, match_faces, size_bin
    from ferlab.deploy.detection import blazeface as bf

    cv2.setNumThreads(1)
    cache: dict = {}
    count = [0]

    class Checked(bf.BlazeFaceDetector):
        """The shipped detector with its second checks replaced by ``self.rule`` over cached checks."""

        rule = None
        frame_id = None

        def _verified(self, frame, row):
            key = (self.frame_id, tuple(np.round(row[:4], 2)))
            if key not in cache:
                cache[key] = {side: self._verify(frame, row, side) for side in SIDES}
            return self.rule(cache[key], count)

    detector = Checked()
    frames = group_scenes(args.groups, args.empty, args.seed)
    print(f"seed {args.seed}: {args.groups} group frames, {args.empty} empty")
    for name, rule in rules().items():
        detector.rule, count[0] = rule, 0
        hits = {b: [] for b in SIZE_BINS}
        false = empty_boxes = 0
        for i, scene in enumerate(frames):
            detector.frame_id = i
            hit, extra = match_faces(detector.detect(scene["frame"]), scene["truth"])
            for (_, _, side, _), ok in zip(scene["truth"], hit):
                hits[size_bin(side)].append(ok)
            if scene["kind"] == "empty":
                empty_boxes += extra
            else:
                false += extra
        big = hits[SIZE_BINS[1]] + hits[SIZE_BINS[2]]
        print(f"{name:42s} 24-47 px {np.mean(hits[SIZE_BINS[0]]):.1%}  48+ px {np.mean(big):.1%}  "
              f"false boxes/frame {false / args.groups:.3f}  boxes in empty frames {empty_boxes}  "
              f"verify passes/frame {count[0] / len(frames):.1f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
