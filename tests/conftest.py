"""Shared fixtures. Real-data fixtures read ../shared (beside the repository) and skip with a printed
reason when it is absent; CI has it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FERLAB_SHARED", REPO.parent / "shared"))
FER2013 = SHARED / "data" / "fer2013"
FERPLUS = SHARED / "data" / "ferplus"
WEIGHTS = SHARED / "weights"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def require(path: Path, what: str) -> Path:
    """Skip (with the reason printed in the summary, pytest -ra) when a shared resource is missing."""
    if not path.exists():
        pytest.skip(f"{what} not found at {path}: put ../shared beside the repository or set FERLAB_SHARED")
    return path


@pytest.fixture(scope="session")
def fer2013_faces():
    """The real FER2013 image folder, loaded once per test session."""
    from ferlab.data.sources import load_image_folder

    return load_image_folder(require(FER2013, "FER2013 image folder"))
