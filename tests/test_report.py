"""The study report on a fake STUDY_DIR written in the study runner's schema (no training needed)."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ferlab.errors import FerlabError
from ferlab.evaluate.metrics import classification_metrics
from ferlab.report import write_report

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["angry", "anxious", "happy", "neutral", "sad"]
N_TEST = 250
BACKBONES = {"mobilenetv2": (0.62, 13.5, 4.0), "resnet50": (0.55, 97.8, 35.0), "densenet169": (0.58, 54.0, 28.0)}
POOLING_SHIFT = {"none": -0.04, "max": 0.0, "avg": 0.06, "min": -0.12}
FAILED = "densenet169-min-frozen-96px-s1"
# Highest validation accuracy by construction, but not the highest test accuracy: the report must pick it.
BEST_BY_VAL = "resnet50-max-frozen-96px-s0"


def _probs(rng: np.random.Generator, y: np.ndarray, accuracy: float) -> np.ndarray:
    """Softmax outputs whose argmax is right for about ``accuracy`` of the images."""
    logits = rng.normal(0, 1, (y.size, len(CLASSES)))
    right = rng.random(y.size) < accuracy
    target = np.where(right, y, (y + rng.integers(1, len(CLASSES), y.size)) % len(CLASSES))
    logits[np.arange(y.size), target] += 3.0
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def make_study(root: Path, backbones: dict = BACKBONES, poolings: dict = POOLING_SHIFT, seeds=(0, 1),
               sizes=(96,), history: bool = True, latency: bool = True, source: str = "folder:fer2013",
               protocol: str = "paper5") -> Path:
    """A STUDY_DIR like the study runner writes, with random-but-plausible numbers."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(len(CLASSES)), N_TEST // len(CLASSES))
    rows = []
    for backbone, (base, size_mb, latency_ms) in backbones.items():
        for pooling, shift in poolings.items():
            for size, seed in itertools.product(sizes, seeds):
                trial_id = f"{backbone}-{pooling}-frozen-{size}px-s{seed}"
                run_dir = root / "trials" / trial_id
                run_dir.mkdir(parents=True)
                config = {"backbone": backbone, "pooling": pooling, "mode": "frozen", "input_size": size, "seed": seed}
                (run_dir / "config.json").write_text(json.dumps(config))
                row = {"trial_id": trial_id, **config, "pooling_scope": "head", "preprocessing": "backbone",
                       "weights": "imagenet", "run_dir": f"trials/{trial_id}"}
                if trial_id == FAILED:
                    rows.append({**row, "status": "failed", "reason": "ResourceExhaustedError: out of memory"})
                    continue
                probs = _probs(rng, y, base + shift + rng.normal(0, 0.02))
                test = classification_metrics(y, probs, CLASSES, n_bootstrap=200, seed=seed)
                val_acc = 0.95 if trial_id == BEST_BY_VAL else test["accuracy"] + rng.normal(0, 0.01)
                train = {"accuracy": min(0.99, test["accuracy"] + 0.3), "loss": 0.1 + rng.random() * 0.1}
                metrics = {"status": "ok", "trial_id": trial_id, "backbone": backbone, "pooling": pooling,
                           "classes": CLASSES, "train": train, "val": {"accuracy": val_acc, "loss": 0.9},
                           "test": test, "model": {"size_mb": size_mb}}
                (run_dir / "metrics.json").write_text(json.dumps(metrics))
                pred = probs.argmax(axis=1)
                preds = pd.DataFrame({"index": np.arange(N_TEST) + 1000, "label_id": y, "pred_id": pred})
                for k, cls in enumerate(CLASSES):
                    preds[f"p_{cls}"] = probs[:, k]
                preds.to_csv(run_dir / "predictions.csv", index=False)
                conf = pd.DataFrame(test["confusion"], columns=CLASSES)
                conf.insert(0, "true", CLASSES)
                conf.to_csv(run_dir / "confusion.csv", index=False)
                if history:
                    epochs = np.arange(1, 7)
                    pd.DataFrame({"epoch": epochs, "loss": train["loss"] + 1.5 / epochs,
                                  "accuracy": train["accuracy"] * (1 - 0.5 / epochs),
                                  "val_loss": 1.4 / np.sqrt(epochs), "val_accuracy": test["accuracy"] * (1 - 0.3 / epochs),
                                  "lr": 1e-3, "seconds": 2.0}).to_csv(run_dir / "history.csv", index=False)
                rows.append({**row, "status": "ok", "reason": "", "train_accuracy": train["accuracy"],
                             "train_loss": train["loss"], "val_accuracy": val_acc, "val_loss": 0.9,
                             "test_accuracy": test["accuracy"], "test_loss": test["loss"],
                             "test_accuracy_ci_low": test["accuracy_ci95"][0], "test_accuracy_ci_high": test["accuracy_ci95"][1],
                             "macro_precision": test["macro_precision"], "macro_recall": test["macro_recall"],
                             "macro_f1": test["macro_f1"], "weighted_f1": test["weighted_f1"], "model_size_mb": size_mb,
                             "params": int(size_mb * 250_000), "flops": 1e8,
                             "latency_ms": latency_ms * (1 + 0.1 * rng.random()) if latency else np.nan,
                             "zero_feature_fraction": 0.9 if pooling == "min" else 0.05 * rng.random(),
                             "best_epoch": 5, "epochs_run": 6, "train_seconds": 12.0})
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    study = {"name": "fake-study", "ferlab_version": "0.1.0", "spec": {"grid": {"backbones": list(backbones)}, "train": {"epochs": 6}},
             "data": {"path": f"prepared/{source.split(':')[-1]}-{protocol}-paper-seed0", "fingerprint": "abc123def4567890",
                      "source": source, "protocol": protocol, "classes": CLASSES, "split": "paper",
                      "split_seed": 0, "leak_free": True, "counts": {"train": 1000, "val": 100, "test": N_TEST}}}
    (root / "study.json").write_text(json.dumps(study))
    return root


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    return make_study(tmp_path_factory.mktemp("study") / "study")


@pytest.fixture(scope="module")
def report(study_dir) -> dict[str, Path]:
    return write_report(study_dir)


HEADINGS = ["Table 1: no pooling (none)", "Table 2: max pooling (max)", "Table 3: average pooling (avg)",
            "Table 4: min pooling (min)", "Table 5: per-class metrics of the best trial",
            "Figure 9: test accuracy by backbone and pooling", "Figure 10: confusion matrix of the best trial",
            "Test accuracy heatmap (backbone x pooling)", "Significance: McNemar tests between poolings",
            "Accuracy vs latency", "Training curves", "Zero pooled features",
            "Comparison with the published results", "Failed trials"]
FIGURES = ["fig09_test_accuracy.png", "fig10_confusion_best.png", "heatmap_test_accuracy.png",
           "accuracy_vs_latency.png", "training_curves.png"]


def test_report_files(report, study_dir):
    out = study_dir / "report"
    assert report["markdown"] == out / "report.md" and report["html"] == out / "report.html"
    for name in FIGURES:
        assert report[f"figures/{name}"].read_bytes().startswith(b"\x89PNG")
    for name in ("summary", "table1_none", "table2_max", "table3_avg", "table4_min", "per_class_best",
                 "significance", "published_comparison", "zero_features", "failed_trials"):
        assert report[f"tables/{name}.csv"].is_file()
    assert all(p.is_file() for p in report.values())
    assert not [p for p in study_dir.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_markdown_has_every_table_and_figure(report):
    md = report["markdown"].read_text()
    for heading in HEADINGS:
        assert re.search(rf"^#+ {re.escape(heading)}$", md, re.M), heading
    for name in FIGURES:
        assert f"](figures/{name})" in md
    # The data and trials are said once, at the top; a caption names its trials only where they differ (Table 5
    # and Figure 10: the best trial's one seed).
    assert md.count("split 'paper' with split seed 0") == 1 and "leak-free" in md and "seed(s) 0, 1" in md
    assert md.count("*Trials: seed(s) 0; ") == 2 and "*Trials: seed(s) 0, 1;" not in md
    assert f"Best trial: {BEST_BY_VAL}" in md and "never by test accuracy" in md
    assert FAILED in md and "ResourceExhaustedError: out of memory" in md
    assert "| grid.backbones | mobilenetv2, resnet50, densenet169 |" in md  # the spec, flattened


def test_html_is_self_contained(report):
    page = report["html"].read_text()
    for heading in HEADINGS:
        assert f">{heading}</h" in page, heading
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(FIGURES)
    assert not re.search(r"https?://|<script|src=\"(?!data:)", page)


def test_tables_aggregate_seeds(report, study_dir):
    results = pd.read_csv(study_dir / "results.csv")
    table = pd.read_csv(report["tables/table3_avg.csv"])
    assert list(table["model"]) == list(BACKBONES)
    mobilenet = results[(results.backbone == "mobilenetv2") & (results.pooling == "avg")]["test_accuracy"]
    row = table.set_index("model").loc["mobilenetv2"]
    assert row["test_accuracy_mean"] == pytest.approx(mobilenet.mean())
    assert row["test_accuracy_std"] == pytest.approx(mobilenet.std())
    assert row["test_accuracy_ci_low"] <= row["test_accuracy_mean"] <= row["test_accuracy_ci_high"]
    # The failed seed leaves one seed for densenet169 + min.
    assert pd.read_csv(report["tables/table4_min.csv"]).set_index("model").loc["densenet169", "n_seeds"] == 1


def test_published_comparison_has_differences(report):
    table = pd.read_csv(report["tables/published_comparison.csv"]).set_index(["model", "pooling"])
    row = table.loc[("mobilenetv2", "avg")]
    assert row["published_test_accuracy_pct"] == 83.64
    assert row["test_accuracy_diff_pp"] == pytest.approx(row["test_accuracy_pct"] - 83.64)
    assert row["published_train_loss_pct"] == 2.88 and row["published_test_loss"] == 7.19
    assert "Test acc diff (pp)" in report["markdown"].read_text()
    per_class = pd.read_csv(report["tables/per_class_best.csv"]).set_index("class")
    assert per_class.loc["angry", "published_precision"] == pytest.approx(0.720501)


def _section(md: str, heading: str) -> str:
    return md.split(f"## {heading}\n")[1].split("\n## ")[0].strip()


def test_the_paper_is_left_out_where_it_is_not_comparable(tmp_path):
    """Synthetic faces (the quick start's): Table 5 without the paper's columns and the published comparison
    as one sentence saying why; on FER2013 with configurations the paper never ran (fercnn): one sentence too."""
    synthetic = write_report(make_study(tmp_path / "synth", source="synthetic(per_class=400, seed=0)"))
    md = synthetic["markdown"].read_text()
    assert _section(md, "Comparison with the published results") == (
        "Not shown: the paper's numbers are on the real FER2013 under its five classes (paper5), and this study's "
        "data is ferlab's synthetic faces (synthetic(per_class=400, seed=0)) under paper5, so the two are not comparable.")
    assert "tables/published_comparison.csv" not in synthetic
    table5 = _section(md, "Table 5: per-class metrics of the best trial")
    assert "The paper's Table 5 is left out: the paper's numbers are on the real FER2013" in table5
    assert "(paper)" not in table5
    assert not [c for c in pd.read_csv(synthetic["tables/per_class_best.csv"]).columns if c.startswith("published")]

    fercnn = write_report(make_study(tmp_path / "fercnn", backbones={"fercnn": (0.6, 2.6, 1.0)}))
    md = fercnn["markdown"].read_text()
    published = _section(md, "Comparison with the published results")
    assert published.startswith("Not shown: the paper tested none of this study's configurations")
    assert "|" not in published and "tables/published_comparison.csv" not in fercnn  # no table of dashes
    assert "F1 (paper)" in _section(md, "Table 5: per-class metrics of the best trial")  # FER2013 paper5: comparable


def test_significance_matrix(report):
    sig = pd.read_csv(report["tables/significance.csv"])
    assert len(sig) == 3 * 6  # 3 backbones x C(4, 2) pooling pairs
    assert sig["p_value"].between(0, 1).all()
    # densenet169 min failed in seed 1, so densenet169 is compared on seed 0 only.
    assert set(sig.loc[sig.model == "densenet169", "seed_values"].astype(str)) == {"0"}
    assert set(sig.loc[sig.model == "resnet50", "seed_values"]) == {"0 1"}
    assert set(sig.loc[sig.model == "resnet50", "n_seeds"]) == {2}
    assert "p vs avg" in report["markdown"].read_text()


def test_single_seed_two_sizes_without_history_or_latency(tmp_path):
    study = make_study(tmp_path / "s", backbones={"mobilenetv2": BACKBONES["mobilenetv2"]},
                       poolings={"avg": 0.0, "avgmax": 0.02}, seeds=(0,), sizes=(96, 128), history=False, latency=False)
    out = write_report(study, tmp_path / "out")
    md = out["markdown"].read_text()
    # Input size varies, so it is part of the model label; each size is compared across poolings on its own.
    assert list(pd.read_csv(out["tables/table3_avg.csv"])["model"]) == ["mobilenetv2 (96px)", "mobilenetv2 (128px)"]
    assert len(pd.read_csv(out["tables/significance.csv"])) == 2
    assert "Additional table: average + max pooling (avgmax)" in md and "Table 3: average pooling (avg)" in md
    assert "Not available: " in md and "training_curves.png" not in md and "accuracy_vs_latency.png" not in md
    assert "None: every trial finished." in md
    assert "±" not in pd.read_csv(out["tables/table3_avg.csv"]).to_string()  # one seed: no spread shown


def _md_table(md: str, heading: str) -> pd.DataFrame:
    """The first Markdown table after ``heading``, as strings."""
    lines = md[re.search(rf"^#+ {re.escape(heading)}$", md, re.MULTILINE).end():].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in itertools.takewhile(
        lambda line: line.startswith("|"), lines[start:])]
    return pd.DataFrame(rows[2:], columns=rows[0])


def test_seeds_column_counts_seeds(report):
    """"Seeds" is how many seeds (and which), never a bare seed value that reads as "0 seeds"."""
    md, page = report["markdown"].read_text(), report["html"].read_text()
    table4 = _md_table(md, "Table 4: min pooling (min)").set_index("Model")["Seeds"]
    assert table4["densenet169"] == "1 (seed 0)" and table4["resnet50"] == "2 (0, 1)"
    assert ">1 (seed 0)</td>" in page
    csv = pd.read_csv(report["tables/table4_min.csv"], dtype={"seed_values": str}).set_index("model")
    assert "seeds" not in csv.columns  # a bare "0" under "seeds" reads as a count
    assert csv.loc["densenet169", ["n_seeds", "seed_values"]].tolist() == [1, "0"]
    assert csv.loc["resnet50", ["n_seeds", "seed_values"]].tolist() == [2, "0 1"]
    sig = _md_table(md, "Significance: McNemar tests between poolings").set_index(["Model", "Pooling"])["Seeds"]
    assert sig[("densenet169", "max")] == "1 (seed 0)" and sig[("resnet50", "avg")] == "2 (0, 1)"


def test_significance_accuracy_is_over_the_compared_seeds(report, study_dir):
    """The accuracy beside the p-values is over the seeds those p-values compare (densenet169: seed 0 only,
    as densenet169 + min failed in seed 1), not over every seed of the configuration."""
    results = pd.read_csv(study_dir / "results.csv").set_index("trial_id")
    sig = _md_table(report["markdown"].read_text(), "Significance: McNemar tests between poolings")
    row = sig.set_index(["Model", "Pooling"]).loc[("densenet169", "max")]
    assert row["Test acc (%)"] == f"{results.loc['densenet169-max-frozen-96px-s0', 'test_accuracy'] * 100:.2f}"
    both = results.loc[["resnet50-max-frozen-96px-s0", "resnet50-max-frozen-96px-s1"], "test_accuracy"] * 100
    resnet = sig.set_index(["Model", "Pooling"]).loc[("resnet50", "max"), "Test acc (%)"]
    assert resnet == f"{both.mean():.2f} ± {both.std():.2f}"


def test_latency_is_labelled_median(report):
    """ferlab records the median of single-face calls (ferlab.evaluate.latency), on whatever device the trial
    ran on: no caption, column or axis may call it a mean or a CPU time."""
    md = report["markdown"].read_text()
    caption = re.search(r"^\*Latency: (.*)\*$", md, re.MULTILINE).group(1)
    assert "median" in caption and not re.search(r"\bmean\b[^.;]*\b(time|latency)", caption)
    assert "CPU" not in md.split("## Accuracy vs")[1].split("\n## ")[0]
    summary = pd.read_csv(report["tables/summary.csv"])
    assert {"median_latency_ms_mean", "median_latency_ms_std"} <= set(summary.columns)
    assert not [c for c in summary.columns if c.startswith("latency")]


def test_latency_figure_axis_says_median(study_dir, monkeypatch):
    from ferlab.report import figures, tables
    from ferlab.report.study import load_study
    drawn = []
    monkeypatch.setattr(figures, "_png", lambda fig: drawn.append(fig) or b"\x89PNG")
    figures.accuracy_vs_latency(tables.summary_table(load_study(study_dir), n_bootstrap=10))
    ax = drawn[0].axes[0]
    assert "median" in ax.get_xlabel() and "CPU" not in ax.get_xlabel() + ax.get_title()


@pytest.mark.parametrize("damage, match", [
    (lambda s: (s / "results.csv").unlink(), r"results\.csv: not found; rerun the study"),
    (lambda s: (s / "results.csv").write_text("trial_id,backbone\nx,y\n"), r"results\.csv: corrupt CSV \(missing column"),
    (lambda s: (s / "results.csv").write_bytes(b"\xff\xfe\x00garbage"), r"results\.csv: corrupt CSV"),
    (lambda s: (s / "trials/resnet50-avg-frozen-96px-s1/metrics.json").write_text('{"status": "ok", "tes'),
     r"resnet50-avg-frozen-96px-s1/metrics\.json: corrupt trial metrics .*rerun trial"),
    (lambda s: (s / "trials/resnet50-avg-frozen-96px-s1/metrics.json").unlink(),
     r"metrics\.json: trial metrics not found; rerun trial resnet50-avg-frozen-96px-s1"),
    (lambda s: (s / "study.json").write_text("[1, 2"), r"study\.json: corrupt study metadata"),
])
def test_corrupt_inputs_raise_and_keep_the_old_report(report, study_dir, tmp_path, damage, match):
    study = shutil.copytree(study_dir, tmp_path / "study")
    before = (study / "report" / "report.html").read_bytes()
    damage(study)
    with pytest.raises(FerlabError, match=match) as err:
        write_report(study)
    assert "\n" not in str(err.value) and str(study) in str(err.value)  # one line, naming the file
    assert (study / "report" / "report.html").read_bytes() == before
    assert sorted(p.name for p in (study / "report").iterdir()) == ["figures", "report.html", "report.md", "tables"]
    assert not [p for p in study.iterdir() if p.name.startswith(".")]


def test_a_directory_that_is_not_a_study_is_named_for_what_it_is(study_dir, tmp_path):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "data.json").write_text("{}")
    with pytest.raises(FerlabError, match=rf"^{re.escape(str(prepared))}: a prepared data set \(data.json\), not a "
                                          rf"study; .*ferlab study --data {re.escape(str(prepared))} --out STUDY_DIR$"):
        write_report(prepared)
    with pytest.raises(FerlabError, match="a training run \\(config.json\\), not a study"):
        write_report(study_dir / "trials" / BEST_BY_VAL)
    with pytest.raises(FerlabError, match="not a study directory \\(no study.json or results.csv\\)"):
        write_report(tmp_path)
    study = shutil.copytree(study_dir, tmp_path / "study", ignore=shutil.ignore_patterns("report"))
    (study / "study.json").unlink()  # a study that lost its metadata: rerunning it rewrites the file
    with pytest.raises(FerlabError, match="study.json: study metadata not found; rerun the study"):
        write_report(study)
    assert not (prepared / "report").exists() and not (study / "report").exists()


def test_rewrite_replaces_report_and_refuses_foreign_dirs(report, study_dir, tmp_path):
    study = shutil.copytree(study_dir, tmp_path / "study")
    (study / "report" / "stale.txt").write_text("old")
    write_report(study)
    assert not (study / "report" / "stale.txt").exists()
    with pytest.raises(FerlabError, match="not a ferlab report"):
        write_report(study, study / "trials")
    assert (study / "trials" / FAILED / "config.json").is_file()


CHROMIUM = Path(os.environ.get("FERLAB_CHROMIUM", "/usr/bin/chromium"))  # as tests/test_web.py
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_report_opens_in_chromium_without_console_errors(report):
    """Open report.html from disk in headless Chromium, fail on any console error, keep a screenshot."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} not found: install it with `apt-get install -y chromium` to run the browser check")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed: `pip install playwright` (no `playwright install`)")
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
            page.goto(report["html"].resolve().as_uri(), wait_until="load")
            assert page.title() == "ferlab study report: fake-study"
            # Every embedded figure decoded (a broken data URL leaves naturalWidth at 0).
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert len(widths) == len(FIGURES) and min(widths) > 0
            artifacts = REPO / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            page.screenshot(path=str(artifacts / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []


def test_seed_statistics_and_a_second_study(tmp_path):
    """Three seeds: per-pooling t intervals and seed-paired differences with per-seed McNemar p-values, checked
    against scipy on the trials' own numbers; --compare sets another study's shared configurations beside them."""
    from scipy.stats import ttest_ind, ttest_rel

    from ferlab.evaluate.significance import mcnemar_exact

    poolings = {"avg": 0.06, "none": -0.04}
    study = make_study(tmp_path / "a", backbones={"mobilenetv2": BACKBONES["mobilenetv2"]}, poolings=poolings,
                       seeds=(0, 1, 2))
    other = make_study(tmp_path / "b", backbones={"mobilenetv2": (0.70, 13.5, 4.0)}, poolings={"avg": 0.06},
                       seeds=(0, 1, 2))
    written = write_report(study, compare=other)
    results = pd.read_csv(study / "results.csv").set_index("trial_id")
    acc = {p: np.array([results.loc[f"mobilenetv2-{p}-frozen-96px-s{s}", "test_accuracy"] for s in range(3)])
           for p in poolings}
    means = pd.read_csv(written["tables/seed_means.csv"]).set_index("pooling")
    assert means.loc["avg", "mean"] == pytest.approx(acc["avg"].mean())
    assert means.loc["avg", "std"] == pytest.approx(acc["avg"].std(ddof=1))
    pair = pd.read_csv(written["tables/seed_differences.csv"]).iloc[0]
    assert (pair["pooling_a"], pair["pooling_b"]) == ("none", "avg")  # the paper's table order
    assert pair["mean_difference"] == pytest.approx((acc["none"] - acc["avg"]).mean())
    assert pair["paired_t_p"] == pytest.approx(ttest_rel(acc["none"], acc["avg"]).pvalue)
    assert pair["ci_low"] < pair["mean_difference"] < pair["ci_high"] and pair["mdd_80"] > 0
    assert pair["paired_t_p_holm"] == pytest.approx(pair["paired_t_p"])  # a family of one pair: nothing to adjust
    y = pd.read_csv(study / "trials/mobilenetv2-avg-frozen-96px-s1/predictions.csv")
    none = pd.read_csv(study / "trials/mobilenetv2-none-frozen-96px-s1/predictions.csv")
    seed1 = mcnemar_exact(y["label_id"], none["pred_id"], y["pred_id"])["p_value"]
    assert float(str(pair["mcnemar_p_per_seed"]).split()[1]) == pytest.approx(seed1, rel=1e-3)
    compared = pd.read_csv(written["tables/compare.csv"])
    assert list(compared["pooling"]) == ["avg"]  # "none" did not run in the other study
    other_acc = pd.read_csv(other / "results.csv")["test_accuracy"].to_numpy()
    assert compared["difference"].iloc[0] == pytest.approx(acc["avg"].mean() - other_acc.mean())
    assert compared["welch_p"].iloc[0] == pytest.approx(ttest_ind(acc["avg"], other_acc, equal_var=False).pvalue)
    md = written["markdown"].read_text()
    assert "Across seeds: does pooling change accuracy?" in md and "Against fake-study" in md
    assert "Design sensitivity" in md
