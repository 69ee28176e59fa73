"""Test-time views beyond the mirror image: do shifted or rescaled copies of each face help a zoo model?

    python -m bench zoo-views                    # accurate-fer7 and fast-fer7, ~4 min

Ten-crop and similar test-time augmentation is one of the tricks with evidence on FER2013; the zoo's
accurate models already average each face with its mirror image in the graph. This bench asks whether
more views would earn their cost, on the **validation** faces only (carved from FER2013's training faces,
the same ones the card's temperature and ensemble were chosen on): FER2013's test faces are not read.

Each face is also shifted by 2 px left, right, up and down and rescaled by 0.92 and 1.08 around its centre
(edges replicated: the training augmentation's own range is 10% shift and zoom). Every view goes through
the model's shipped default file as it is; the table gives each view's accuracy and that of averaging the
probabilities of the shipped view with the shifts, the rescalings or all of them, with McNemar's exact
test against the shipped view alone. Writes bench/results/zoo_views.csv.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from bench.common import SHARED, write_table
from bench.peer_fer import WORK

FER2013 = SHARED / "data" / "fer2013"
DATA = WORK.parent / "zoo-data"
SHIFT_PX = 2
SCALES = (0.92, 1.08)


def log(text: str) -> None:
    print(f"[zoo-views {time.strftime('%H:%M:%S')}] {text}", flush=True)


def warped(faces: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(N, 48, 48, 1) faces through one affine map, borders replicated (no black frame the model never saw)."""
    h, w = faces.shape[1:3]
    return np.stack([cv2.warpAffine(f[..., 0], matrix, (w, h), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)[..., None] for f in faces])


def views(faces: np.ndarray) -> dict[str, np.ndarray]:
    h, w = faces.shape[1:3]
    out = {"shipped": faces}
    for name, (dx, dy) in {"left": (-SHIFT_PX, 0), "right": (SHIFT_PX, 0), "up": (0, -SHIFT_PX),
                           "down": (0, SHIFT_PX)}.items():
        out[f"shift {name} {SHIFT_PX} px"] = warped(faces, np.float32([[1, 0, dx], [0, 1, dy]]))
    for scale in SCALES:
        out[f"scale {scale}"] = warped(faces, cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0, scale))
    return out


def validation_faces(model) -> tuple[np.ndarray, np.ndarray]:
    """The card's validation faces: the spec's [data] prepared from FER2013 as the build does, checked by
    fingerprint."""
    from ferlab.zoo.build import _prepared, trained_members

    spec = model.spec
    if spec.derive is not None:
        raise SystemExit(f"--model {spec.name}: a derived model (its classes merged from a parent's); give the parent")
    trained = trained_members(spec, model.spec_file)[0]  # an ensemble's members share their [data]
    data = _prepared(trained, str(FER2013), DATA, log)
    card = model.card()
    if data.fingerprint != card["data"]["fingerprint"]:
        raise SystemExit(f"{data.path}: fingerprint {data.fingerprint}, the card of {spec.name} says "
                         f"{card['data']['fingerprint']}: not the faces it was built on")
    x, y = data.arrays("val")
    return np.asarray(x, np.float32), np.asarray(y)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench zoo-views", description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["accurate-fer7", "fast-fer7"])
    args = parser.parse_args(argv)
    from ferlab.deploy.export import predict_chunked
    from ferlab.deploy.formats import load_classifier
    from ferlab.evaluate.significance import mcnemar_exact
    from ferlab.zoo import get_model

    rows = []
    for name in args.model:
        model = get_model(name)
        x, y = validation_faces(model)
        clf = load_classifier(model.model_file())
        started = time.perf_counter()
        probs = {view: predict_chunked(clf.predict, faces, 256) for view, faces in views(x).items()}
        log(f"{name}: {len(probs)} views of {len(y)} validation faces in {time.perf_counter() - started:.0f} s")
        shifts = [v for v in probs if v.startswith("shift")]
        scales = [v for v in probs if v.startswith("scale")]
        averaged = {"shipped + 4 shifts": ["shipped", *shifts], "shipped + 2 scales": ["shipped", *scales],
                    "shipped + all 6": list(probs)}
        shipped = probs["shipped"].argmax(1)
        for label, p in [*((v, probs[v]) for v in probs),
                         *((k, np.mean([probs[v] for v in vs], 0)) for k, vs in averaged.items())]:
            pred = p.argmax(1)
            test = mcnemar_exact(y, shipped, pred)
            rows.append({"model": name, "views": label, "faces": len(y), "correct": int((pred == y).sum()),
                         "accuracy": round(float((pred == y).mean()), 4),
                         "gain_faces": int((pred == y).sum() - (shipped == y).sum()),
                         "mcnemar_p": round(float(test["p_value"]), 4)})
            log(f"{name:14s} {label:22s} {rows[-1]['correct']}/{len(y)} ({rows[-1]['accuracy']:.2%}), "
                f"{rows[-1]['gain_faces']:+d} faces, McNemar p = {rows[-1]['mcnemar_p']}")
    path = write_table("zoo_views", rows)
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
