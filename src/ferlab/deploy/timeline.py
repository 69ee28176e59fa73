"""Emotion over time in a video: per tracked face, each class's probability against time (a PNG) and a
summary (each track's share of time per emotion, its dominant emotion).

The one owner of both for every app: ``ferlab predict VIDEO`` (its rows, with their ``track`` column:
:meth:`Timeline.from_rows`), ``ferlab live`` (its tracks frame by frame: :class:`TimelineRecorder`) and
:meth:`ferlab.FaceAnalyzer.analyze_video` build a :class:`Timeline`, then call :meth:`Timeline.summary`,
:meth:`Timeline.plot` and :func:`write_timelines` (a PNG and a CSV beside the results, written atomically).

A track's time is counted in analysed frames, each worth the sampling period (the frame interval times
``--every``), so "share of time" is the share of the frames in which the track was seen that carry each
label. The label is the row's own: raw per frame in predict, smoothed in live, ``uncertain`` where the
top probability is below ``--min-confidence``.

The class colours live here too, so the plot and the live overlay draw each emotion in one colour.
"""

from __future__ import annotations

import io
import os
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ferlab.errors import FerlabError

# RGB, by emotion name. Every colour is mid-dark (relative luminance 0.16-0.30): at least 3:1 against the
# plot's white and the overlay's dark bar track, and black or white text on it reaches 4.5:1
# (tests/test_timeline.py checks all three). Unknown class names take OTHER_COLOURS in turn.
CLASS_COLOURS = {
    "angry": (220, 40, 40), "disgust": (40, 150, 40), "fear": (150, 80, 210), "happy": (215, 118, 0),
    "sad": (40, 110, 230), "surprise": (0, 150, 170), "neutral": (125, 125, 125), "contempt": (160, 100, 40),
}
OTHER_COLOURS = [(215, 60, 150), (125, 125, 20), (90, 120, 160), (0, 140, 110), (190, 90, 90), (110, 110, 200)]
MAX_PANELS = 8  # tracks drawn; the others (the shortest-seen) are in the summary
MAX_STEPS = 2000  # drawn steps per panel: a long video's frames are averaged in runs (a panel is ~900 px wide)


def class_colours(classes: Sequence[str]) -> list[tuple[int, int, int]]:
    """One RGB colour per class, in ``classes`` order: the emotion's own, else the next other one."""
    others = 0
    colours = []
    for name in classes:
        colour = CLASS_COLOURS.get(name.lower())
        if colour is None:
            colour, others = OTHER_COLOURS[others % len(OTHER_COLOURS)], others + 1
        colours.append(colour)
    return colours


def luminance(rgb: Sequence[int]) -> float:
    """WCAG relative luminance of an sRGB colour (0-255 channels)."""
    c = np.asarray(rgb, np.float64) / 255.0
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(c @ [0.2126, 0.7152, 0.0722])


def contrast(a: Sequence[int], b: Sequence[int]) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def text_colour(fill: Sequence[int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``fill``."""
    return (0, 0, 0) if contrast(fill, (0, 0, 0)) >= contrast(fill, (255, 255, 255)) else (255, 255, 255)


def dominant(counts: dict[str, int]) -> str:
    """The most frequent label; a tie names every tied label ("happy = sad"); none seen: ""."""
    best = max(counts.values(), default=0)
    return " = ".join(k for k, v in counts.items() if v == best) if best > 0 else ""


def probability_columns(classes: Sequence[str]) -> list[str]:
    return [f"p_{c}" for c in classes]


@dataclass
class Timeline:
    """One video's tracked faces over time.

    ``table``: one row per track per analysed frame in which it was seen -- ``track, frame, time_s,
    p_<class>..., label``; ``period_s``: the time one analysed frame stands for; ``duration_s``: the span
    analysed (0 to the last analysed frame's end).
    """

    classes: list[str]
    table: pd.DataFrame
    period_s: float
    duration_s: float
    source: str = ""

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def from_rows(cls, rows: pd.DataFrame, classes: Sequence[str], source: str = "") -> Timeline:
        """From ``ferlab predict``'s rows of one video (faceless rows give the sampling period only)."""
        times = np.sort(rows["time_s"].dropna().astype(float).unique())
        period = _period(times)
        seen = rows[rows["track"].notna() & (rows["label"] != "")]
        table = pd.DataFrame({"track": seen["track"].astype("int64").to_numpy(),
                              "frame": seen["frame"].astype("int64").to_numpy(),
                              "time_s": seen["time_s"].astype(float).to_numpy(),
                              **{c: seen[c].astype(float).to_numpy() for c in probability_columns(classes)},
                              "label": seen["label"].astype(str).to_numpy()})
        duration = float(times[-1] + period) if len(times) else 0.0
        return cls(list(classes), table, period, duration, source)

    # ---------------------------------------------------------------------------------------- summaries
    def labels(self) -> list[str]:
        """The classes, then any other label seen ("uncertain")."""
        extra = sorted(set(self.table["label"]) - set(self.classes))
        return [*self.classes, *extra]

    def summary(self) -> pd.DataFrame:
        """Per track: first and last time seen, seconds seen, frames, each label's share of its time, and
        the dominant label (ties name every tied label)."""
        labels = self.labels()
        out = []
        for track, rows in self.table.groupby("track", sort=True):
            counts = rows["label"].value_counts()
            counts = {k: int(counts.get(k, 0)) for k in labels}
            n = len(rows)
            out.append({"track": int(track), "first_s": round(float(rows["time_s"].min()), 3),
                        "last_s": round(float(rows["time_s"].max()), 3), "seen_s": round(n * self.period_s, 3),
                        "frames": n, **{f"share_{k}": counts[k] / n for k in labels}, "dominant": dominant(counts)})
        return pd.DataFrame(out, columns=["track", "first_s", "last_s", "seen_s", "frames",
                                          *[f"share_{k}" for k in labels], "dominant"])

    # --------------------------------------------------------------------------------------------- plot
    def figure(self, max_panels: int = MAX_PANELS):
        """A matplotlib Figure: one panel per track (the ``max_panels`` seen longest, in track order), the
        class probabilities stacked as coloured bands against time in seconds, blank where the track was
        not seen. Built without pyplot, so it works headless and in threads."""
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch

        summary = self.summary()
        shown = summary.sort_values("seen_s", ascending=False, kind="stable").head(max_panels).sort_values("track")
        panels = max(1, len(shown))
        fig = Figure(figsize=(10, 0.9 + 1.6 * panels), dpi=100, layout="constrained")
        axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
        colours = [tuple(v / 255 for v in c) for c in class_colours(self.classes)]
        p_cols = probability_columns(self.classes)
        name = Path(self.source).name if self.source else "video"
        hidden = len(summary) - len(shown)
        fig.suptitle(f"{name}: emotion probabilities over time, one panel per tracked face"
                     + (f" (the {len(shown)} seen longest of {len(summary)}; all in the summary)" if hidden else ""),
                     fontsize=11)
        for ax, row in zip(axes, shown.to_dict("records")):
            rows = self.table[self.table["track"] == row["track"]].sort_values("time_s")
            self._bands(ax, rows["time_s"].to_numpy(float), rows[p_cols].to_numpy(float), colours)
            top = row["dominant"] or "-"
            share = max((row[f"share_{k}"] for k in top.split(" = ") if f"share_{k}" in row), default=0.0)
            ax.set_title(f"track {row['track']}: seen {row['seen_s']:.1f} s, mostly {top} ({share:.0%} of its time)",
                         loc="left", fontsize=9)
            ax.set_ylim(0, 1)
            ax.set_yticks([0, 0.5, 1])
            ax.set_ylabel("probability", fontsize=8)
            ax.grid(axis="x", alpha=0.3)
            ax.set_axisbelow(True)
        if summary.empty:
            axes[0].text(0.5, 0.5, "no face was found", ha="center", va="center", transform=axes[0].transAxes)
        axes[-1].set_xlim(0, max(self.duration_s, self.period_s, 1e-3))
        axes[-1].set_xlabel("time (s)")
        fig.legend([Patch(color=c) for c in colours], self.classes, loc="outside lower center",
                   ncol=len(self.classes), fontsize=9, frameon=False)
        return fig

    def _bands(self, ax, times: np.ndarray, probs: np.ndarray, colours) -> None:
        """Each analysed frame fills [t, t + period); runs of consecutive frames are drawn as one stack (in
        a long video, averaged ``k`` frames at a time)."""
        if not len(times):
            return
        k = -(-len(times) // MAX_STEPS)
        breaks = np.flatnonzero(np.diff(times) > 1.5 * self.period_s) + 1
        for t, p in zip(np.split(times, breaks), np.split(probs, breaks)):
            end = t[-1] + self.period_s
            if k > 1:
                starts = np.arange(0, len(t), k)
                p = np.add.reduceat(p, starts, axis=0) / np.diff(np.append(starts, len(t)))[:, None]
                t = t[starts]
            edges = np.append(t, end)  # step="post" needs the end of the last frame
            top = np.cumsum(np.vstack([p, p[-1:]]), axis=1)
            bottom = np.hstack([np.zeros((len(top), 1)), top[:, :-1]])
            for k, colour in enumerate(colours):
                ax.fill_between(edges, bottom[:, k], top[:, k], step="post", color=colour, linewidth=0)

    def plot(self, path: str | os.PathLike, max_panels: int = MAX_PANELS) -> Path:
        """Write :meth:`figure` as a PNG (atomically); returns the path."""
        from ferlab.io import atomic_write_bytes

        buffer = io.BytesIO()
        self.figure(max_panels).savefig(buffer, format="png")
        atomic_write_bytes(path, buffer.getvalue())
        return Path(path)


def _period(times: np.ndarray) -> float:
    """The sampling period: the median gap between analysed frames (1 s when only one was analysed)."""
    gaps = np.diff(np.unique(times))
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if len(gaps) else 1.0


class TimelineRecorder:
    """Collects ``ferlab live``'s tracks frame by frame in compact arrays (a camera may run for hours):
    about 50 bytes per face per frame."""

    def __init__(self, classes: Sequence[str]):
        self.classes = list(classes)
        self.labels = list(classes)  # grows with labels outside the classes ("uncertain")
        self._frame, self._track, self._label = array("q"), array("q"), array("h")
        self._time, self._p = array("d"), array("f")
        self._frame_times = array("d")  # every frame's time, faces or not: the period and the span

    def frame(self, index: int, time_s: float, tracks: Iterable[tuple[int, Sequence[float], str]]) -> None:
        """One frame: its time, and (track id, probabilities, label) for each face on it."""
        self._frame_times.append(time_s)
        for track, probabilities, label in tracks:
            if label not in self.labels:
                self.labels.append(label)
            self._frame.append(index)
            self._track.append(int(track))
            self._time.append(time_s)
            self._label.append(self.labels.index(label))
            self._p.extend(float(v) for v in probabilities)

    def timeline(self, source: str = "", period_s: float | None = None) -> Timeline:
        """The :class:`Timeline` so far; ``period_s``: the frame interval when known (a video's)."""
        times = np.asarray(self._frame_times, np.float64)
        period = period_s if period_s and period_s > 0 else _period(times)
        probs = np.asarray(self._p, np.float32).reshape(-1, len(self.classes))
        labels = np.array(self.labels, dtype=object)[np.asarray(self._label, np.int64)]
        p_cols = probability_columns(self.classes)
        table = pd.DataFrame({"track": np.asarray(self._track, np.int64), "frame": np.asarray(self._frame, np.int64),
                              "time_s": np.asarray(self._time, np.float64),
                              **{c: probs[:, k].astype(np.float64) for k, c in enumerate(p_cols)}, "label": labels})
        duration = float(times.max() + period) if len(times) else 0.0
        return Timeline(self.classes, table, period, duration, source)


# ------------------------------------------------------------------------------------------------- files
def timeline_paths(results: Path, videos: Sequence[Path] = ()) -> tuple[dict[Path, Path], Path]:
    """Where the timeline files of ``results`` go, beside it: ``STEM.timeline.png`` for one video (or a
    live run's source), ``STEM.VIDEO.timeline.png`` for each of several; one ``STEM.timeline.csv`` summary."""
    results = Path(results)
    csv = results.with_name(f"{results.stem}.timeline.csv")
    if len(videos) <= 1:
        return {Path(v): results.with_name(f"{results.stem}.timeline.png") for v in videos}, csv
    pngs: dict[Path, Path] = {}
    taken: set[str] = set()
    for video in videos:
        name, n = Path(video).stem, 2
        while name in taken:  # clip.mp4 in two folders: clip, clip-2
            name, n = f"{Path(video).stem}-{n}", n + 1
        taken.add(name)
        pngs[Path(video)] = results.with_name(f"{results.stem}.{name}.timeline.png")
    return pngs, csv


def check_timeline_paths(paths: Iterable[Path], overwrite: bool, option: str = "--out") -> None:
    """Fail before any work where a timeline file would replace an existing one without --overwrite."""
    for path in paths:
        if path.exists() and not overwrite:
            raise FerlabError(f"{path}: already exists (the timeline beside {option}); move it, choose another "
                              f"{option}, or pass --overwrite")


def summary_table(timelines: Sequence[Timeline]) -> pd.DataFrame:
    """The summaries of several videos in one table, with a ``source`` column first."""
    parts = [t.summary().assign(source=t.source) for t in timelines]
    if not parts:
        return pd.DataFrame(columns=["source", "track", "first_s", "last_s", "seen_s", "frames", "dominant"])
    table = pd.concat(parts, ignore_index=True)
    share = [c for c in table.columns if c.startswith("share_")]
    for c in share:  # a label seen in one video only: 0 in the others, not empty
        table[c] = table[c].fillna(0.0)
    return table[["source", "track", "first_s", "last_s", "seen_s", "frames", *share, "dominant"]]


def write_timelines(timelines: Sequence[Timeline], pngs: dict[Path, Path], csv: Path) -> list[Path]:
    """Each timeline's plot to its PNG (by source), and all summaries to ``csv``; returns the paths written."""
    from ferlab.io import atomic_write_text

    written = [t.plot(pngs[Path(t.source)]) for t in timelines if Path(t.source) in pngs]
    atomic_write_text(csv, summary_table(timelines).to_csv(index=False, float_format="%.4g"))
    return [*written, csv]
