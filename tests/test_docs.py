"""The documentation is current: command outputs regenerated, every JSON key described."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_command_outputs_are_current() -> None:
    """docs/build_docs.py --check reruns every documented command (CI fails when stale)."""
    for tool in ("bash", "jq", "tcpdump"):
        if shutil.which(tool) is None:
            pytest.skip(f"the documented commands need {tool}, which is not installed")
    proc = subprocess.run([sys.executable, str(DOCS / "build_docs.py"), "--check"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, (
        "docs are stale or a documented command failed; run python docs/build_docs.py\n"
        + proc.stderr[-4000:])


def test_build_docs_rejects_a_block_without_command(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("text\n<!-- output -->\n```console\nno command here\n```\n")
    proc = subprocess.run([sys.executable, str(DOCS / "build_docs.py"), "--check", str(doc)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert f"{doc}:3: a marked block has no '$ ' command" in proc.stderr


def test_build_docs_rewrites_and_checks(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("<!-- output -->\n```console\n$ echo one; echo two\nstale\n```\n"
                   "<!-- output status=3 -->\n```\n$ echo x\n> exit 3\n```\n")
    build = [sys.executable, str(DOCS / "build_docs.py")]
    check = subprocess.run([*build, "--check", str(doc)], capture_output=True, text=True,
                           timeout=60, check=False)
    assert check.returncode == 1 and "+two" in check.stderr
    subprocess.run([*build, str(doc)], capture_output=True, timeout=60, check=True)
    assert doc.read_text() == ("<!-- output -->\n```console\n$ echo one; echo two\none\ntwo\n```\n"
                               "<!-- output status=3 -->\n```\n$ echo x\n> exit 3\nx\n```\n")
    again = subprocess.run([*build, "--check", str(doc)], capture_output=True, timeout=60,
                           check=False)
    assert again.returncode == 0


def documented_name(path: list[str]) -> str:
    """How docs/json-schema.md names a key: dynamic names become NAME / STAGE / socketN."""
    head = path[0]
    if head == "functions":
        return "functions.NAME." + path[-1]
    if head == "latency":
        return "latency.STAGE." + path[-1]
    if head == "stages":
        return "stages." + re.sub(r"^socket\d+_", "socketN_", path[1])
    if head in ("sockets", "senders"):
        return ".".join(path[1:])        # described in their own tables, without the prefix
    return ".".join(path)


def leaves(value: Any, path: list[str]) -> list[list[str]]:
    if isinstance(value, dict) and value and not (path and path[-1] == "errors"):
        out = []
        for k, v in value.items():
            out += leaves(v, [*path, k])
        return out
    if isinstance(value, list) and value and isinstance(value[0], dict):
        out = []
        for item in value:
            out += leaves(item, [*path[:-1], path[-1] + "[]"])
        return out
    return [path]


def test_json_schema_describes_every_key() -> None:
    from lsfsim.config.model import load_model
    from lsfsim.machine import Machine
    from lsfsim.scenario import Scenario, SenderSpec, SocketSpec, TrafficSpec

    scenario = Scenario(traffic=TrafficSpec(kind="cbr", rate=2000, packets=20),
                        sockets=[SocketSpec(), SocketSpec(filter="udp")],
                        senders=[SenderSpec(count=2)])
    data = Machine(load_model("testbed"), scenario).run().data
    text = (DOCS / "json-schema.md").read_text()
    missing = set()
    for path in leaves(data, []):
        clean = [p.replace("[]", "") if i == 0 and p in ("sockets[]", "senders[]") else p
                 for i, p in enumerate(path)]
        name = documented_name(clean)
        if f"`{name}`" not in text:
            missing.add(name)
    for key in data:
        if f"`{key}`" not in text:
            missing.add(key)
    for stage in data["latency"]:
        assert f"`latency.{stage}`" in text
    assert not missing, f"keys of the --json document not in docs/json-schema.md: {missing}"
