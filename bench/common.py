"""What every benchmark table records: the machine, the library versions and the commit."""

from __future__ import annotations

import os
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FERLAB_SHARED", REPO.parent / "shared"))


def machine() -> dict:
    from ferlab.evaluate.latency import machine_description

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = "", False
    versions = {p: metadata.version(p) for p in ("ferlab", "keras", "tensorflow") if _installed(p)}
    return {"machine": machine_description(), "commit": commit + ("+dirty" if dirty else ""),
            **{f"{k}_version": v for k, v in versions.items()}}


def _installed(package: str) -> bool:
    try:
        metadata.version(package)
        return True
    except metadata.PackageNotFoundError:
        return False


def write_table(name: str, rows: list[dict], key: tuple[str, ...] = ()) -> Path:
    """bench/results/<name>.csv, one row per model/config, with machine, versions and commit on each row.

    With ``key``, rows already in the table with the same key values are replaced and the others kept,
    so runs of different configurations accumulate in one table.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    info = machine()
    path = RESULTS / f"{name}.csv"
    table = pd.DataFrame([{**row, **info} for row in rows])
    if key and path.exists():
        old = pd.read_csv(path, dtype={"commit": str})  # a short hash like 493e416 would parse as a float
        same = old[list(key)].astype(str).agg("|".join, axis=1).isin(table[list(key)].astype(str).agg("|".join, axis=1))
        table = pd.concat([old[~same], table], ignore_index=True)
    from ferlab.io import atomic_write_text

    atomic_write_text(path, table.to_csv(index=False))
    return path
