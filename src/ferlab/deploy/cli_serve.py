"""The `ferlab serve` command."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add `ferlab serve` to the CLI (not written yet)."""
