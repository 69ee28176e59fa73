"""The report's tables. Each builder returns ``(display, numeric)``: formatted strings for the Markdown/HTML
report and plain numbers for the CSV files, so the CSVs can be re-analysed without parsing "a ± b"."""

from __future__ import annotations

import itertools
from importlib import resources

import numpy as np
import pandas as pd

from ferlab.evaluate.metrics import bootstrap_accuracy_ci, mean_std
from ferlab.evaluate.significance import (holm_adjust, mcnemar_exact, minimum_detectable_difference, paired_seed_difference,
                                          pairwise_mcnemar, seed_mean_ci, welch_difference)
from ferlab.models.pooling import POOLINGS
from ferlab.report.study import Study
from ferlab.rundir import CONFIG_COLUMNS

# The paper's model names -> ferlab backbone ids.
PUBLISHED_NAMES = {"MobileNet_V2": "mobilenetv2", "MobileNetV3_Small": "mobilenetv3small", "NasNetMobile": "nasnetmobile",
                   "ResNet50": "resnet50", "ResNet50V2": "resnet50v2", "ResNet152V2": "resnet152v2",
                   "DenseNet169": "densenet169", "DenseNet201": "densenet201"}
SUMMARY_METRICS = ("model_size_mb", "params", "train_accuracy", "train_loss", "val_accuracy", "test_accuracy",
                   "test_loss", "median_latency_ms", "zero_feature_fraction")
# Summary metric -> its results.csv column where the names differ. The runner's latency_ms is the median of
# single-face calls (ferlab.evaluate.latency), so the summary names it so: median_latency_ms_mean is the mean
# over seeds of those medians.
RESULT_COLUMN = {"median_latency_ms": "latency_ms"}
SIGNIFICANCE_LEVEL = 0.05
DASH = "—"

Tables = tuple[pd.DataFrame, pd.DataFrame]


# ------------------------------------------------------------------------------------------- formatting
def fmt(value: float, digits: int = 2, scale: float = 1.0, sign: bool = False) -> str:
    """A number, or a dash when missing (failed trials, metrics the runner did not record)."""
    if value is None or not np.isfinite(value):
        return DASH
    return f"{value * scale:{'+' if sign else ''}.{digits}f}"


def fmt_pm(mean: float, std: float, digits: int = 2, scale: float = 1.0) -> str:
    """``mean ± std``; just the mean when there is a single seed (no spread to show)."""
    if not np.isfinite(std):
        return fmt(mean, digits, scale)
    return f"{fmt(mean, digits, scale)} ± {fmt(std, digits, scale)}"


def _pm(frame: pd.DataFrame, metric: str, digits: int = 2, scale: float = 1.0) -> list[str]:
    """``mean ± std`` strings of a summarised metric (``<metric>_mean`` and ``<metric>_std`` columns)."""
    return [fmt_pm(m, s, digits, scale) for m, s in zip(frame[f"{metric}_mean"], frame[f"{metric}_std"], strict=True)]


def fmt_seeds(seeds: list) -> str:
    """How many seeds, then which: "1 (seed 0)", "3 (0, 1, 2)". A bare "0" would read as "no seeds"."""
    seeds = [str(s) for s in seeds]
    return f"1 (seed {seeds[0]})" if len(seeds) == 1 else f"{len(seeds)} ({', '.join(seeds)})"


def fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return ""
    text = "<0.001" if p < 0.001 else f"{p:.3f}"
    return text + (" *" if p < SIGNIFICANCE_LEVEL else "")


def pooling_order(values: pd.Series | list[str]) -> list[str]:
    """The study's poolings in the paper's table order (Tables 1-4), then the other registered poolings in
    registry order, then unknown ones alphabetically."""
    present = set(values)
    known = sorted((k for k in POOLINGS if k.name in present),
                   key=lambda k: k.paper_table if k.paper_table is not None else float("inf"))
    return [k.name for k in known] + sorted(present - set(POOLINGS.names()))


def pooling_title(name: str) -> str:
    """ "average pooling" for avg; the name itself for a pooling the registry does not know."""
    return POOLINGS.get(name).title if name in POOLINGS else name


def _join(values: pd.Series) -> str:
    unique = [str(v) for v in pd.unique(values.dropna()) if str(v) != ""]
    return ", ".join(sorted(unique, key=lambda v: (len(v), v))) or "n/a"


# ------------------------------------------------------------------------------------------- provenance
def data_provenance(study: Study) -> str:
    """Which data, protocol, split and leakage setting the study used (the same for every one of its trials)."""
    data = study.meta.get("data", {})
    counts = data.get("counts") or {}
    split_counts = "/".join(str(counts.get(k, "?")) for k in ("train", "val", "test"))
    leak = data.get("leak_free")
    leakage = "leak-free" if leak is True else "LEAKY (duplicates may cross splits)" if leak is False else "leakage unknown"
    fingerprint = str(data.get("fingerprint") or "n/a")[:12]
    return (f"Data: {data.get('source', 'n/a')} ({data.get('path', 'n/a')}, fingerprint {fingerprint}), "
            f"protocol {data.get('protocol', 'n/a')}, split '{data.get('split', 'n/a')}' with split seed "
            f"{data.get('split_seed', 'n/a')} (train/val/test {split_counts} images), {leakage}.")


def trial_provenance(rows: pd.DataFrame) -> str:
    """Which seeds, preprocessing, weights, modes, sizes and scopes produced the numbers from ``rows``."""
    return (f"Trials: seed(s) {_join(rows['seed'])}; preprocessing {_join(rows['preprocessing'])}; "
            f"weights {_join(rows['weights'])}; mode {_join(rows['mode'])}; input {_join(rows['input_size'])} px; "
            f"pooling scope {_join(rows['pooling_scope'])}.")


def provenance(study: Study, rows: pd.DataFrame) -> str:
    """Which data, split, seeds, preprocessing and leakage setting produced the numbers from ``rows``."""
    return f"{data_provenance(study)} {trial_provenance(rows)}"


# The data sources the paper's numbers can stand beside: FER2013 as image folders or as its CSV files.
FER2013_NAMES = ("fer2013", "icml_face_data")


def paper_mismatch(study: Study) -> str | None:
    """Why the paper's numbers (real FER2013, its five classes) are not comparable with this study's, or None
    when they are (or when study.json does not say which source it used: nothing to tell then)."""
    data = study.meta.get("data", {})
    source, protocol = str(data.get("source") or ""), str(data.get("protocol") or "")
    if not source:
        return None
    on_fer2013 = any(name in source.lower() for name in FER2013_NAMES)
    if on_fer2013 and protocol in ("paper5", ""):
        return None
    what = f"ferlab's synthetic faces ({source})" if source.startswith("synthetic") else source
    return (f"the paper's numbers are on the real FER2013 under its five classes (paper5), and this study's data is "
            f"{what}{f' under {protocol}' if protocol else ''}, so the two are not comparable")


# ---------------------------------------------------------------------------------------------- summary
def summary_table(study: Study, n_bootstrap: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per configuration (model x pooling) with mean and std of every metric across seeds, and a
    95% bootstrap CI of the seed-mean test accuracy (all seeds resample the same test images; see
    :func:`~ferlab.evaluate.metrics.bootstrap_accuracy_ci`)."""
    ok = study.ok
    rows = []
    for (model, pooling), group in ok.groupby(["model", "pooling"], sort=False):
        group = group.sort_values("seed")
        row = {"model": model, "backbone": group["backbone"].iloc[0], "pooling": pooling,
               "n_seeds": len(group), "seed_values": " ".join(str(s) for s in group["seed"])}
        for metric in SUMMARY_METRICS:
            row[f"{metric}_mean"], row[f"{metric}_std"] = mean_std(group[RESULT_COLUMN.get(metric, metric)])
        row["test_accuracy_ci_low"], row["test_accuracy_ci_high"] = bootstrap_accuracy_ci(
            study.y_true, study.pred_matrix(list(group["trial_id"])), n=n_bootstrap, seed=seed)
        rows.append(row)
    summary = pd.DataFrame(rows)
    summary["pooling"] = pd.Categorical(summary["pooling"], pooling_order(summary["pooling"]), ordered=True)
    summary["model"] = pd.Categorical(summary["model"], list(pd.unique(ok["model"])), ordered=True)
    return summary.sort_values(["pooling", "model"]).reset_index(drop=True)


def pooling_table(summary: pd.DataFrame, pooling: str) -> Tables:
    """The paper's Tables 1-4 for one pooling: size, train and test accuracy/loss, across seeds."""
    numeric = summary[summary["pooling"] == pooling].reset_index(drop=True)
    display = pd.DataFrame({
        "Model": numeric["model"].astype(str),
        "Size (MB)": [fmt(v, 1) for v in numeric["model_size_mb_mean"]],
        "Train acc (%)": _pm(numeric, "train_accuracy", scale=100),
        "Train loss": _pm(numeric, "train_loss", 3),
        "Test acc (%)": _pm(numeric, "test_accuracy", scale=100),
        "Test acc 95% CI (%)": [f"[{fmt(lo, scale=100)}, {fmt(hi, scale=100)}]" for lo, hi
                                in zip(numeric["test_accuracy_ci_low"], numeric["test_accuracy_ci_high"], strict=True)],
        "Test loss": _pm(numeric, "test_loss", 3),
        "Seeds": [fmt_seeds(v.split()) for v in numeric["seed_values"]],
    })
    return display, numeric


# ------------------------------------------------------------------------------------------- published
def published(name: str) -> pd.DataFrame:
    """A CSV shipped in ``ferlab/resources`` (the paper's numbers, in its printed units)."""
    with resources.files("ferlab").joinpath("resources", name).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, keep_default_na=False, na_values=[""])


def published_comparison(summary: pd.DataFrame) -> Tables:
    """Our seed means next to the paper's Tables 1-4, joined on backbone + pooling.

    The paper prints accuracies and the train loss in percent and the test loss as a plain cross-entropy;
    ours are converted to those units (train loss x 100) and the accuracy differences are in percentage points.
    """
    pub = published("published_results.csv")
    pub["backbone"] = pub["model"].map(PUBLISHED_NAMES)
    merged = summary.assign(pooling=summary["pooling"].astype(str)).merge(
        pub.drop(columns="model"), on=["backbone", "pooling"], how="left")
    numeric = pd.DataFrame({
        "model": merged["model"].astype(str), "pooling": merged["pooling"],
        "test_accuracy_pct": merged["test_accuracy_mean"] * 100, "published_test_accuracy_pct": merged["test_accuracy_pct"],
        "train_accuracy_pct": merged["train_accuracy_mean"] * 100, "published_train_accuracy_pct": merged["train_accuracy_pct"],
        "train_loss_x100": merged["train_loss_mean"] * 100, "published_train_loss_pct": merged["train_loss_pct"],
        "test_loss": merged["test_loss_mean"], "published_test_loss": merged["test_loss"],
        "size_mb": merged["model_size_mb_mean"], "published_size_mb": merged["model_size_mb"],
    })
    numeric.insert(4, "test_accuracy_diff_pp", numeric["test_accuracy_pct"] - numeric["published_test_accuracy_pct"])
    numeric.insert(7, "train_accuracy_diff_pp", numeric["train_accuracy_pct"] - numeric["published_train_accuracy_pct"])
    headers = {"test_accuracy_pct": "Test acc % (ours)", "published_test_accuracy_pct": "Test acc % (paper)",
               "test_accuracy_diff_pp": "Test acc diff (pp)", "train_accuracy_pct": "Train acc % (ours)",
               "published_train_accuracy_pct": "Train acc % (paper)", "train_accuracy_diff_pp": "Train acc diff (pp)",
               "train_loss_x100": "Train loss x100 (ours)", "published_train_loss_pct": "Train loss % (paper)",
               "test_loss": "Test loss (ours)", "published_test_loss": "Test loss (paper)",
               "size_mb": "Size MB (ours)", "published_size_mb": "Size MB (paper)"}
    display = pd.DataFrame({"Model": numeric["model"], "Pooling": numeric["pooling"]})
    for col, header in headers.items():
        display[header] = [fmt(v, 3 if col == "test_loss" else 2, sign=col.endswith("_pp")) for v in numeric[col]]
    return display, numeric


# ------------------------------------------------------------------------------------------- best trial
def per_class_table(study: Study, with_paper: bool = True) -> Tables:
    """Table 5 for the best trial (by validation accuracy), beside the paper's Table 5 where classes match
    (``with_paper=False``: without the paper's columns, for data they are not comparable with)."""
    test = study.trials[study.best_trial_id].metrics["test"]
    pub = published("published_per_class.csv").assign(key=lambda f: f["class"].str.lower()).set_index("key")
    rows = []
    for cls, m in test["per_class"].items():
        p = pub.loc[cls.lower()] if cls.lower() in pub.index else None
        rows.append({"class": cls, **{k: m[k] for k in ("precision", "recall", "f1", "support")},
                     **{f"published_{k}": (p[k] if p is not None else np.nan) for k in ("precision", "recall", "f1")}})
    for avg in ("macro", "weighted"):
        rows.append({"class": f"{avg} avg", **{k: test.get(f"{avg}_{k}", np.nan) for k in ("precision", "recall", "f1")},
                     "support": sum(m["support"] for m in test["per_class"].values())})
    # The paper's last row repeats the accuracy in every column.
    acc_pub = published("published_results.csv").query("model == 'MobileNet_V2' and pooling == 'avg'")["test_accuracy_pct"]
    rows.append({"class": "accuracy", "f1": test["accuracy"], "published_f1": float(acc_pub.iloc[0]) / 100})
    numeric = pd.DataFrame(rows)
    columns = (("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"), ("support", "Support"),
               ("published_precision", "Precision (paper)"), ("published_recall", "Recall (paper)"),
               ("published_f1", "F1 (paper)"))
    if not with_paper:
        numeric = numeric.drop(columns=[c for c in numeric.columns if c.startswith("published_")])
        columns = tuple((col, header) for col, header in columns if not col.startswith("published_"))
    display = pd.DataFrame({"Class": numeric["class"]})
    for col, header in columns:
        display[header] = [fmt(v, 0 if col == "support" else 4) for v in numeric[col]]
    return display, numeric


# ------------------------------------------------------------------------------------------ significance
def significance_table(study: Study) -> Tables:
    """McNemar p-values between the poolings of each model, next to their test accuracies.

    Seeds are paired (pooling A seed s vs pooling B seed s) over the seeds every pooling of that model
    finished, and combined by taking the largest per-seed p-value (an intersection-union test, see
    :func:`~ferlab.evaluate.significance.pairwise_mcnemar`): "*" means the difference holds in every seed.
    The test accuracies are over those same seeds, so they match the "Seeds" column and the p-values.
    """
    ok = study.ok
    all_poolings = pooling_order(ok["pooling"])
    display_rows, numeric_rows = [], []
    for model, group in ok.groupby("model", sort=False):
        poolings = pooling_order(group["pooling"])
        seeds = sorted(set.intersection(*(set(group.loc[group["pooling"] == p, "seed"]) for p in poolings)))
        if len(poolings) < 2 or not seeds:
            continue
        by_key = group.set_index(["pooling", "seed"])["trial_id"]
        preds = {p: study.pred_matrix([by_key[(p, s)] for s in seeds]) for p in poolings}
        matrix = pairwise_mcnemar(preds, study.y_true)
        paired = group[group["seed"].isin(seeds)]
        for a in poolings:
            acc = mean_std(paired.loc[paired["pooling"] == a, "test_accuracy"])
            row = {"Model": model, "Pooling": a, "Test acc (%)": fmt_pm(*acc, scale=100), "Seeds": fmt_seeds(seeds)}
            row.update({f"p vs {b}": (DASH if a == b else fmt_p(matrix.loc[a, b]) if b in poolings else "")
                        for b in all_poolings})
            display_rows.append(row)
        numeric_rows += [{"model": model, "pooling_a": a, "pooling_b": b, "p_value": matrix.loc[a, b],
                          "n_seeds": len(seeds), "seed_values": " ".join(map(str, seeds))}
                         for a, b in itertools.combinations(poolings, 2)]
    columns = ["model", "pooling_a", "pooling_b", "p_value", "n_seeds", "seed_values"]
    return pd.DataFrame(display_rows), pd.DataFrame(numeric_rows, columns=columns)


# ------------------------------------------------------------------------------------ across seeds
def _seeded_models(study: Study):
    """(model, its poolings, the seeds all of them finished, trial id by (pooling, seed)) for every model
    with two or more poolings that share two or more seeds."""
    for model, group in study.ok.groupby("model", sort=False):
        poolings = pooling_order(group["pooling"])
        seeds = sorted(set.intersection(*(set(group.loc[group["pooling"] == p, "seed"]) for p in poolings)))
        if len(poolings) >= 2 and len(seeds) >= 2:
            yield model, poolings, seeds, group.set_index(["pooling", "seed"])["trial_id"]


def seed_tables(study: Study) -> tuple[Tables, Tables] | None:
    """Per pooling: test accuracy over seeds (mean, sd, t CI); per pair of poolings: the seed-paired
    difference with its t CI and p-value, each seed's exact McNemar p-value, and the minimum difference
    detectable with 80% power at the 5% level from the pair's seed-to-seed spread. None when no model has
    two poolings with two common seeds (see ``ferlab.evaluate.significance`` for what each test assumes)."""
    acc = study.ok.set_index("trial_id")["test_accuracy"]
    per_display, per_numeric, pair_display, pair_numeric = [], [], [], []
    for model, poolings, seeds, by_key in _seeded_models(study):
        values = {p: np.array([acc[by_key[(p, s)]] for s in seeds]) for p in poolings}
        for p in poolings:
            stats = seed_mean_ci(values[p])
            per_numeric.append({"model": model, "pooling": p, "n_seeds": stats["n"], "seeds": " ".join(map(str, seeds)),
                                "mean": stats["mean"], "std": stats["std"], "ci_low": stats["ci_low"],
                                "ci_high": stats["ci_high"], "per_seed": " ".join(f"{v:.4f}" for v in values[p])})
            per_display.append({"Model": model, "Pooling": p, "Seeds": fmt_seeds(seeds),
                                "Test acc (%) mean ± sd": fmt_pm(stats["mean"], stats["std"], scale=100),
                                "95% CI (t, seeds)": f"{fmt(stats['ci_low'], scale=100)}–{fmt(stats['ci_high'], scale=100)}",
                                "Per seed (%)": ", ".join(fmt(v, scale=100) for v in values[p])})
        pairs = list(itertools.combinations(poolings, 2))
        diffs = [paired_seed_difference(values[a], values[b]) for a, b in pairs]
        # The family is this model's pairs of poolings: Holm keeps the chance of any false "*" among them at 5%.
        holm = holm_adjust([d["p_value"] for d in diffs])
        for (a, b), d, p_holm in zip(pairs, diffs, holm, strict=True):
            mcnemar = [mcnemar_exact(study.y_true, *study.pred_matrix([by_key[(a, s)], by_key[(b, s)]]))["p_value"]
                       for s in seeds]
            pair_numeric.append({"model": model, "pooling_a": a, "pooling_b": b, "n_seeds": d["n"],
                                 "mean_difference": d["mean"], "ci_low": d["ci_low"], "ci_high": d["ci_high"],
                                 "paired_t_p": d["p_value"], "std_difference": d["std"], "mdd_80": d["mdd"],
                                 "mcnemar_p_per_seed": " ".join(f"{p:.4g}" for p in mcnemar),
                                 "paired_t_p_holm": float(p_holm)})
            pair_display.append({"Model": model, "A − B": f"{a} − {b}",
                                 "Difference (points)": fmt(d["mean"], scale=100, sign=True),
                                 "95% CI (paired t)": f"{fmt(d['ci_low'], scale=100, sign=True)} to "
                                                      f"{fmt(d['ci_high'], scale=100, sign=True)}"
                                                      if np.isfinite(d["ci_low"]) else DASH,
                                 "p (paired t)": fmt_p(d["p_value"]) or DASH,
                                 "p (Holm)": fmt_p(p_holm) or DASH,
                                 "McNemar p per seed": ", ".join(fmt_p(p) for p in mcnemar),
                                 "Detectable (points)": fmt(d["mdd"], scale=100)})
    if not per_numeric:
        return None
    return ((pd.DataFrame(per_display), pd.DataFrame(per_numeric)),
            (pd.DataFrame(pair_display), pd.DataFrame(pair_numeric)))


def design_sensitivity(study: Study) -> dict | None:
    """The smallest pooling difference the design detects (80% power, 5% level, paired over n seeds), from
    the seed-to-seed standard deviation pooled over every pooling of every model: for a paired difference of
    two poolings with independent seed noise, sd_diff = sqrt(2) * sd_seed."""
    acc = study.ok.set_index("trial_id")["test_accuracy"]
    variances, dof, n = [], 0, None
    for _, poolings, seeds, by_key in _seeded_models(study):
        for p in poolings:
            values = np.array([acc[by_key[(p, s)]] for s in seeds])
            variances.append(values.var(ddof=1) * (len(values) - 1))
            dof += len(values) - 1
        n = len(seeds) if n is None else min(n, len(seeds))
    if not dof:
        return None
    sd_seed = float(np.sqrt(sum(variances) / dof))
    return {"sd_seed": sd_seed, "n_seeds": n, "mdd": minimum_detectable_difference(np.sqrt(2) * sd_seed, n)}


def compare_studies(study: Study, other: Study, other_name: str) -> Tables | None:
    """Configurations present in both studies: this study's seed-mean test accuracy minus the other's, with
    Welch's t interval over their seeds (the two studies' test faces differ, so nothing pairs)."""
    keys = list(CONFIG_COLUMNS)
    mine = study.ok.assign(**{k: study.ok[k].astype(str) for k in keys})
    theirs = other.ok.assign(**{k: other.ok[k].astype(str) for k in keys})
    display, numeric = [], []
    for key, group in mine.groupby(keys, sort=False):
        match = theirs[(theirs[keys] == pd.Series(key, index=keys)).all(axis=1)]
        if match.empty:
            continue
        a, b = group["test_accuracy"].to_numpy(float), match["test_accuracy"].to_numpy(float)
        d = welch_difference(a, b)
        row = dict(zip(keys, key, strict=True))
        numeric.append({**row, "n_this": d["n_a"], "n_other": d["n_b"], "mean_this": a.mean(), "mean_other": b.mean(),
                        "difference": d["mean"], "ci_low": d["ci_low"], "ci_high": d["ci_high"], "welch_p": d["p_value"]})
        display.append({"Model": str(group["model"].iloc[0]), "Pooling": row["pooling"],
                        "This study (%)": fmt_pm(*mean_std(a), scale=100), f"{other_name} (%)": fmt_pm(*mean_std(b), scale=100),
                        "Difference (points)": fmt(d["mean"], scale=100, sign=True),
                        "95% CI (Welch)": f"{fmt(d['ci_low'], scale=100, sign=True)} to {fmt(d['ci_high'], scale=100, sign=True)}",
                        "p (Welch)": fmt_p(d["p_value"]), "Seeds": f"{d['n_a']} / {d['n_b']}"})
    if not numeric:
        return None
    return pd.DataFrame(display), pd.DataFrame(numeric)


# ---------------------------------------------------------------------------------------------- others
def zero_feature_table(study: Study) -> Tables | None:
    """Share of exactly-zero pooled features per model x pooling (mean over seeds, and the per-seed range);
    None when the runner did not record it."""
    ok = study.ok
    if ok["zero_feature_fraction"].isna().all():
        return None
    cells = ok.groupby(["model", "pooling"], sort=False)["zero_feature_fraction"].agg(["mean", "min", "max"])
    text = cells.apply(lambda r: DASH if not np.isfinite(r["mean"]) else
                       f"{r['mean']:.1%}" + ("" if r["min"] == r["max"] else f" ({r['min']:.1%}–{r['max']:.1%})"), axis=1)
    display = text.unstack("pooling").reindex(columns=pooling_order(ok["pooling"])).fillna("")
    display = display.reindex(list(pd.unique(ok["model"]))).reset_index()
    display.columns = ["Model", *display.columns[1:]]
    numeric = ok[["trial_id", "model", "pooling", "seed", "zero_feature_fraction"]].reset_index(drop=True)
    return display, numeric


def failed_table(study: Study) -> Tables:
    numeric = study.failed[["trial_id", "backbone", "pooling", "mode", "input_size", "seed", "reason"]].reset_index(drop=True)
    display = numeric.astype(str).replace({"<NA>": DASH, "": DASH})
    display.columns = ["Trial", "Backbone", "Pooling", "Mode", "Input (px)", "Seed", "Reason"]
    return display, numeric


def spec_table(study: Study) -> pd.DataFrame:
    """The study specification as key/value rows, nested sections flattened to dotted keys (``train.epochs``)."""
    def flatten(tree: dict, prefix: str = "") -> list[tuple[str, str]]:
        rows = []
        for key, value in tree.items():
            if isinstance(value, dict):
                rows += flatten(value, f"{prefix}{key}.")
            else:
                rows.append((f"{prefix}{key}", ", ".join(map(str, value)) if isinstance(value, list) else str(value)))
        return rows

    return pd.DataFrame(flatten(study.meta.get("spec") or {}), columns=["Setting", "Value"])
