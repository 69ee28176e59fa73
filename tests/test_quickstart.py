"""The README's main job: the quickstart study and its report, end to end through the CLI."""

from __future__ import annotations

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def test_quickstart_study_and_report(quickstart_study):
    out, elapsed, r = quickstart_study
    assert r.returncode == 0, r.stderr[-3000:]
    table = pd.read_csv(out / "results.csv")
    assert (table["status"] == "ok").all() and len(table) == 5
    best = table.loc[table["val_accuracy"].idxmax()]
    print(f"quickstart: {elapsed:.0f} s; best trial by validation {best['trial_id']}: test accuracy {best['test_accuracy']:.4f}")
    print(table[["trial_id", "val_accuracy", "test_accuracy", "macro_f1"]].to_string(index=False))
    assert best["test_accuracy"] >= 0.90
    html = (out / "report" / "report.html").read_text()
    assert "data:image/png;base64," in html
