"""The README's main job: the quickstart study and its report, end to end through the CLI."""

from __future__ import annotations

import subprocess
import sys
import time

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def test_quickstart_study_and_report(tmp_path):
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "ferlab.cli", "study", "--spec", "quickstart", "--out", str(tmp_path / "qs")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=600)
    elapsed = time.perf_counter() - start
    assert r.returncode == 0, r.stderr[-3000:]
    table = pd.read_csv(tmp_path / "qs" / "results.csv")
    assert (table["status"] == "ok").all() and len(table) == 5
    best = table.loc[table["val_accuracy"].idxmax()]
    print(f"quickstart: {elapsed:.0f} s; best trial by validation {best['trial_id']}: test accuracy {best['test_accuracy']:.4f}")
    print(table[["trial_id", "val_accuracy", "test_accuracy", "macro_f1"]].to_string(index=False))
    assert best["test_accuracy"] >= 0.90
    html = (tmp_path / "qs" / "report" / "report.html").read_text()
    assert "data:image/png;base64," in html
