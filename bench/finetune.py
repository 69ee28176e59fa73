"""Fine-tune the ImageNet MobileNetV2 on the real FER2013 paper5 split, one run per pooling.

The model is selected on the validation split; the test split is touched once, at the end. Recipe:
the ``better`` preset (BatchNorm momentum 0.9, flip/shift/rotation/zoom augmentation, label smoothing
0.1, AdamW with warm-up and cosine decay, dropout 0.3), 96 px, weights from ../shared/weights.

    python -m bench finetune --poolings avg,max,min,none --epochs 15
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.common import REPO, SHARED, write_table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench finetune", description=__doc__.splitlines()[0])
    parser.add_argument("--poolings", default="avg,max,min,none,avgmax")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--input-size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="default bench/runs/finetune-<size>px-<epochs>ep")
    args = parser.parse_args(argv)
    args.out = args.out or REPO / "bench" / "runs" / f"finetune-{args.input_size}px-{args.epochs}ep"

    import ferlab.train  # noqa: F401  (quiet TensorFlow import)
    from ferlab.data.prepare import PrepareConfig, PreparedData, prepare
    from ferlab.data.splits import SplitConfig
    from ferlab.study.runner import run_study
    from ferlab.study.spec import StudySpec

    weights = SHARED / "weights" / "mobilenet_v2_1.0_224_tvport_notop.weights.h5"
    data_dir = args.out / "data"
    data = PreparedData(data_dir) if (data_dir / "data.json").exists() else prepare(
        PrepareConfig(source=str(SHARED / "data" / "fer2013"), protocol="paper5",
                      split=SplitConfig(kind="paper", seed=0)), data_dir)
    spec = StudySpec(
        name="finetune-mobilenetv2", preset="better", data=str(data.path),
        grid={"backbones": ["mobilenetv2"], "poolings": args.poolings.split(","), "seeds": [args.seed],
              "input_sizes": [args.input_size], "modes": ["finetune"]},
        model={"weights": str(weights)}, train={"epochs": args.epochs, "tensorboard": False},
    )
    started = time.perf_counter()
    table = run_study(spec, args.out / "study", on_trial=lambda t, i, n: print(f"[{i + 1}/{n}] {t.trial_id}", flush=True),
                      on_epoch=lambda r: print(f"  epoch {r['epoch']}: loss {r['loss']:.3f} acc {r['accuracy']:.3f} "
                                               f"val acc {r['val_accuracy']:.3f} ({r['seconds']:.0f} s)", flush=True))
    from ferlab.train.cross import evaluate_run

    # Test-time augmentation (each face averaged with its mirror image), reported beside the plain number.
    tta = {r.run_dir: evaluate_run(args.out / "study" / r.run_dir, data.path, "test", tta="flip") for r in table.itertuples()
           if r.status == "ok"}
    rows = [{"model": "mobilenetv2", "pooling": r.pooling, "input_size": r.input_size, "epochs": args.epochs,
             "recipe": "better", "weights": "imagenet (offline MobileNetV2)", "split": "paper5 paper seed 0, leak-free",
             "status": r.status, "val_accuracy": r.val_accuracy, "test_accuracy": r.test_accuracy,
             "test_accuracy_ci_low": r.test_accuracy_ci_low, "test_accuracy_ci_high": r.test_accuracy_ci_high,
             "test_accuracy_tta_flip": tta[r.run_dir]["accuracy"] if r.run_dir in tta else None,
             "test_accuracy_tta_flip_ci_low": tta[r.run_dir]["accuracy_ci95"][0] if r.run_dir in tta else None,
             "test_accuracy_tta_flip_ci_high": tta[r.run_dir]["accuracy_ci95"][1] if r.run_dir in tta else None,
             "macro_f1": r.macro_f1, "train_accuracy": r.train_accuracy, "best_epoch": r.best_epoch,
             "train_minutes": round((r.train_seconds or 0) / 60, 1)} for r in table.itertuples()]
    path = write_table("finetune_mobilenetv2", rows, key=("model", "pooling", "input_size", "epochs", "recipe"))
    print(f"wrote {path} ({(time.perf_counter() - started) / 60:.1f} min)")
    print(path.read_text())
