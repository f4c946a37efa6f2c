"""``lsfsim study NAME``: the lecture's evaluation and other what-if studies, ready to run."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
