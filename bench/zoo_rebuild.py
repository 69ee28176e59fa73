"""Does a zoo model's card command reproduce it? Rebuild it and compare with the shipped files and card.

    python -m bench zoo-rebuild fast-fer7 --work zoo-work    # ~50 min from an empty --work on 2 cores

Runs the card's command, ``ferlab models build NAME --source ../shared/data/fer2013 --work WORK --out
WORK/rebuilt --overwrite`` (resumable: a --work that already holds the trained run only exports and tests
again), then compares the rebuilt folder with the installed one:

- each shipped file byte for byte (SHA-256); an ONNX file that differs is also compared graph by graph
  (the same nodes and the same weights, exactly), since the converter writes a TensorFlow function name
  into the graph's doc string;
- every value of the card except what a rebuild cannot repeat (the build's date, minutes and machine,
  the files' measured times per face) and the files' sizes (the rows above compare the files).

Writes bench/results/zoo_rebuild.csv, one row per file and one for the card, with the training's own
minutes (its history) so a row says whether the network was trained in this --work or found there.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import REPO, SHARED, write_table

UNREPEATABLE = ("built.", "latency_ms_1_face")  # card keys (flattened) that a rebuild measures anew


def log(text: str) -> None:
    print(f"[zoo-rebuild {time.strftime('%H:%M:%S')}] {text}", flush=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def same_onnx_graph(a: Path, b: Path) -> bool:
    """The same nodes (op, inputs, outputs) and bit-identical weights; metadata strings aside."""
    import onnx
    from onnx import numpy_helper

    ga, gb = onnx.load(str(a)).graph, onnx.load(str(b)).graph
    nodes = [[(n.op_type, list(n.input), list(n.output)) for n in g.node] for g in (ga, gb)]
    weights = [{w.name: numpy_helper.to_array(w) for w in g.initializer} for g in (ga, gb)]
    return nodes[0] == nodes[1] and weights[0].keys() == weights[1].keys() and all(
        np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])


def training_minutes(run: Path) -> float | None:
    history = run / "history.csv"
    if not history.is_file():
        return None
    with history.open() as f:
        return round(sum(float(row["seconds"]) for row in csv.DictReader(f)) / 60, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench zoo-rebuild", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a zoo model's name")
    parser.add_argument("--work", required=True, help="the build's work folder (data, runs, the rebuilt folder)")
    parser.add_argument("--weights", default=None, help="ImageNet weights file, for specs that start from ImageNet")
    args = parser.parse_args(argv)
    from ferlab.study.tracking import _flatten as flat  # card.json -> {'a.b.c': value}, as MLflow's params
    from ferlab.zoo import get_model
    from ferlab.zoo.build import run_dir, spec_for, trained_members

    shipped = get_model(args.model)
    shipped_card = shipped.card()
    work = Path(args.work).resolve()
    out = work / "rebuilt"
    command = [str(Path(sys.executable).parent / "ferlab"), "models", "build", args.model,
               "--source", str(SHARED / "data" / "fer2013"), "--work", str(work), "--out", str(out), "--overwrite"]
    if args.weights:
        command += ["--weights", args.weights]
    log(" ".join(command))
    subprocess.run(command, check=True, cwd=REPO)
    rebuilt = out / args.model
    rebuilt_card = flat(json.loads((rebuilt / "card.json").read_text()))
    spec, spec_file = shipped.spec, shipped.spec_file
    if spec.derive is not None:  # a derived model trains nothing: its parent's networks are the ones trained
        spec, spec_file = spec_for(spec.derive.parent, beside=spec_file.parent)
    trained = {m.name: training_minutes(run_dir(work, m.name)) for m in trained_members(spec, spec_file)}
    common = {"model": args.model, "training_minutes": " ".join(f"{k}={v}" for k, v in trained.items())}

    rows = []
    for kind in shipped.spec.files:
        a, b = shipped.file(kind), rebuilt / shipped.file(kind).name
        identical = sha256(a) == sha256(b)
        detail = "byte-identical" if identical else "bytes differ"
        if not identical and a.suffix == ".onnx":
            detail += "; same graph and weights" if same_onnx_graph(a, b) else "; graph or weights differ"
        rows.append({**common, "item": a.name, "identical": identical, "detail": detail})
    card = flat(shipped_card)
    # the files' sizes are left to the rows above, which compare the files themselves
    compared = [k for k in sorted(set(card) | set(rebuilt_card))
                if not any(u in k for u in UNREPEATABLE) and not (k.startswith("files.") and k.endswith(".bytes"))]
    differ = [k for k in compared if card.get(k) != rebuilt_card.get(k)]
    rows.append({**common, "item": "card.json", "identical": not differ,
                 "detail": f"{len(compared) - len(differ)} of {len(compared)} values equal (dates, timings and "
                           f"file sizes left out)" + (f"; differ: {', '.join(differ)}" if differ else "")})
    for row in rows:
        log(f"{row['item']}: {row['detail']}")
    log(f"wrote {write_table('zoo_rebuild', rows, key=('model', 'item'))}")


if __name__ == "__main__":
    main()
