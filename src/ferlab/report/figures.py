"""The report's figures, each returned as PNG bytes (the Markdown links the files, the HTML embeds them).

Figures are drawn on ``matplotlib.figure.Figure`` with the Agg canvas directly rather than through pyplot,
so no global backend is switched and nothing leaks between calls.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ferlab.report.study import Study
from ferlab.report.tables import pooling_order

PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
DPI = 110


def _figure(width: float, height: float) -> Figure:
    # Constrained layout keeps colorbars, rotated tick labels and outside legends from overlapping.
    return Figure(figsize=(width, height), layout="constrained")


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _colors(poolings: list[str]) -> dict[str, str]:
    return {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(poolings)}


def accuracy_bars(study: Study, summary: pd.DataFrame) -> bytes:
    """Figure 9: grouped bars of the seed-mean test accuracy per model and pooling, with the 95% bootstrap
    CI as error bars and each seed as a dot (so seed spread and test-set uncertainty are both visible)."""
    models = list(summary["model"].cat.categories)
    poolings = pooling_order(summary["pooling"].astype(str))
    colors, width = _colors(poolings), 0.8 / len(poolings)
    fig = _figure(max(7.0, 1.1 * len(models) * max(1, len(poolings) / 4) + 2), 4.6)
    ax = fig.add_subplot()
    x = np.arange(len(models))
    for i, pooling in enumerate(poolings):
        rows = summary[summary["pooling"] == pooling].set_index("model").reindex(models)
        pos = x - 0.4 + width * (i + 0.5)
        mean, low, high = (rows[c].to_numpy(float) * 100 for c in ("test_accuracy_mean", "test_accuracy_ci_low",
                                                                    "test_accuracy_ci_high"))
        err = np.clip(np.vstack([mean - low, high - mean]), 0, None)  # clip float noise; NaN (no trial) stays NaN
        ax.bar(pos, mean, width, yerr=err, capsize=2, color=colors[pooling], label=pooling, edgecolor="white")
        seeds = study.ok[study.ok["pooling"] == pooling]
        ax.scatter(pos[[models.index(m) for m in seeds["model"]]], seeds["test_accuracy"] * 100, s=9, color="black",
                   zorder=3, label="one seed" if i == 0 else None)
    chance = 100 / len(study.classes)
    ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label=f"chance ({chance:.0f}%)")
    ax.set_xticks(x, models, rotation=25, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Test accuracy by backbone and pooling\n(bars: mean over seeds; error bars: 95% bootstrap CI)")
    ax.legend(title="pooling", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def confusion(counts: list[list[int]], normalized: list[list[float]], classes: list[str], title: str) -> bytes:
    """Figure 10: the confusion matrix as counts and row-normalised (recall on the diagonal)."""
    fig = _figure(11, 4.8)
    for k, (values, fmt, label) in enumerate(((np.asarray(counts), "d", "images"),
                                              (np.asarray(normalized), ".2f", "share of the true class"))):
        ax = fig.add_subplot(1, 2, k + 1)
        im = ax.imshow(values, cmap="Blues", vmin=0)
        threshold = values.max() / 2
        for (r, c), v in np.ndenumerate(values):
            ax.text(c, r, format(v, fmt), ha="center", va="center", fontsize=8,
                    color="white" if v > threshold else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title("counts" if k == 0 else "row-normalised")
        fig.colorbar(im, ax=ax, label=label, shrink=0.85)
    fig.suptitle(title)
    return _png(fig)


def accuracy_heatmap(summary: pd.DataFrame) -> bytes:
    """Backbone x pooling grid of the seed-mean test accuracy, to spot pooling effects per backbone."""
    grid = (summary.assign(acc=summary["test_accuracy_mean"] * 100, pooling=summary["pooling"].astype(str))
            .pivot(index="model", columns="pooling", values="acc")
            .reindex(index=list(summary["model"].cat.categories), columns=pooling_order(summary["pooling"].astype(str))))
    fig = _figure(1.3 * grid.shape[1] + 3.5, 0.45 * grid.shape[0] + 1.8)
    ax = fig.add_subplot()
    im = ax.imshow(grid.to_numpy(float), cmap="viridis", aspect="auto")
    for (r, c), v in np.ndenumerate(grid.to_numpy(float)):
        ax.text(c, r, "n/a" if np.isnan(v) else f"{v:.1f}", ha="center", va="center", fontsize=8,
                color="white" if np.isnan(v) or v < np.nanmean(grid.to_numpy(float)) else "black")
    ax.set_xticks(range(grid.shape[1]), grid.columns)
    ax.set_yticks(range(grid.shape[0]), grid.index)
    ax.set_xlabel("pooling")
    ax.set_ylabel("model")
    ax.set_title("Test accuracy (%), mean over seeds")
    fig.colorbar(im, ax=ax, label="test accuracy (%)")
    return _png(fig)


def accuracy_vs_latency(summary: pd.DataFrame) -> bytes | None:
    """Seed-mean test accuracy against the seed-mean of each trial's median single-image latency, per
    configuration; None when latency was not measured."""
    data = summary.dropna(subset=["median_latency_ms_mean"])
    if data.empty:
        return None
    poolings = pooling_order(summary["pooling"].astype(str))
    colors = _colors(poolings)
    fig = _figure(9, 5)
    ax = fig.add_subplot()
    for pooling in poolings:
        rows = data[data["pooling"] == pooling]
        ax.scatter(rows["median_latency_ms_mean"], rows["test_accuracy_mean"] * 100, color=colors[pooling],
                   label=pooling, s=36, edgecolor="white", zorder=3)
        for _, r in rows.iterrows():
            ax.annotate(str(r["model"]), (r["median_latency_ms_mean"], r["test_accuracy_mean"] * 100), fontsize=7,
                        xytext=(4, 3), textcoords="offset points", color="#444444")
    if data["median_latency_ms_mean"].max() > 10 * data["median_latency_ms_mean"].min():
        ax.set_xscale("log")
    # The runner times single-image calls on whatever device the trial ran on (not pinned to the CPU).
    ax.set_xlabel("median latency of a single-image call (ms)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy vs median latency (both: mean over seeds)")
    ax.legend(title="pooling", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(alpha=0.3)
    return _png(fig)


def training_curves(study: Study) -> bytes | None:
    """Loss and accuracy per epoch, train (solid) and validation (dashed), one row of panels per model and
    one colour per pooling; seeds are averaged epoch by epoch. None when no trial has a history."""
    ok = study.ok[study.ok["trial_id"].map(lambda t: study.trials[t].history is not None)]
    if ok.empty:
        return None
    models = list(pd.unique(ok["model"]))
    colors = _colors(pooling_order(study.ok["pooling"]))
    fig = _figure(11, 2.6 * len(models) + 1.0)
    axes = fig.subplots(len(models), 2, squeeze=False)
    for row, model in enumerate(models):
        trials = ok[ok["model"] == model]
        for pooling in pooling_order(trials["pooling"]):
            ids = trials.loc[trials["pooling"] == pooling, "trial_id"]
            mean = pd.concat([study.trials[t].history for t in ids]).groupby("epoch").mean(numeric_only=True)
            for col, metric in enumerate(("loss", "accuracy")):
                ax = axes[row][col]
                ax.plot(mean.index, mean[metric], color=colors[pooling])
                ax.plot(mean.index, mean[f"val_{metric}"], color=colors[pooling], linestyle="--")
        for col, metric in enumerate(("loss", "accuracy")):
            ax = axes[row][col]
            ax.set_title(f"{model}: {metric}", fontsize=10)
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=c, label=p) for p, c in colors.items()]
    handles += [Line2D([], [], color="black", label="train"), Line2D([], [], color="black", linestyle="--", label="validation")]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    fig.suptitle("Training curves (mean over seeds)")
    return _png(fig)
