"""Shared pieces of the regress tests: captures, suite files, the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lsfsim.cli.main import app

REPO = Path(__file__).resolve().parents[2]
TRACES = REPO / "traces"
SHARED = REPO / ".." / "shared" / "traces" / "tcpdump-tests"

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["regress", *args])


def copy_traces(dest: Path, *names: str) -> None:
    for name in names:
        shutil.copy(TRACES / name, dest / name)


def write_suite(dest: Path, body: str, name: str = "s.lsfsim.toml",
                captures: tuple[str, ...] = ("mixed.pcap",)) -> Path:
    """A suite file in ``dest`` next to copies of the shipped captures it names."""
    copy_traces(dest, *captures)
    path = dest / name
    path.write_text(body)
    return path


def shared_captures(limit: int | None = None) -> list[Path]:
    """The real captures of the tcpdump project's tests (skip when absent)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared captures not available (expected at {SHARED})")
    return sorted(SHARED.glob("*.pcap"))[:limit]
