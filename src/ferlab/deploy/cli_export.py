"""The `ferlab export` command."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add `ferlab export` to the CLI (not written yet)."""
