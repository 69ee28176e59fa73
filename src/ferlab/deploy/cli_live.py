"""The `ferlab live` command."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add `ferlab live` to the CLI (not written yet)."""
