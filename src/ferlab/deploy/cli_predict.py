"""The `ferlab predict` command."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add `ferlab predict` to the CLI (not written yet)."""
