"""docs/bpf-diff.md shows what `lsfsim bpf diff` prints today (its blocks are rerun)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bpf_diff_page_is_current() -> None:
    for tool in ("bash", "tcpdump"):
        if shutil.which(tool) is None:
            pytest.skip(f"the documented commands need {tool}, which is not installed")
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "build_docs.py"), "--check",
                           str(ROOT / "docs" / "bpf-diff.md")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, (
        "docs/bpf-diff.md is stale; run python docs/build_docs.py docs/bpf-diff.md\n"
        + proc.stderr[-4000:])
