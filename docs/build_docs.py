#!/usr/bin/env python3
"""Regenerate the command outputs shown in the documentation.

A block to regenerate is an HTML comment ``<!-- output -->`` on the line just
before a fenced code block.  In the block, a line starting with ``$ `` is a
command, lines starting with ``> `` continue it (as a shell's PS2 prompt
shows), and every other line is output, which this script replaces with
what the commands print now (stdout and stderr, as a terminal shows them)::

    <!-- output -->
    ```console
    $ lsfsim bpf compile -s 65535 'host 208.68.139.89'
    (000) ldh      [12]
    ...
    ```

Commands run with bash in a fresh temporary directory (``traces`` there is
the project's ``traces/``), with this checkout's ``lsfsim`` first on PATH and
a fixed terminal width.  A command must exit 0, unless the marker says which
status to expect: ``<!-- output status=1 -->``.  Lines that change from run
to run are removed: the wall-clock line of the run summary
("N events, X s wall clock, Y packets/s") and the temporary directory's name.

    python docs/build_docs.py            # rewrite the blocks that changed
    python docs/build_docs.py --check    # exit 1 if any block is stale (CI)
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
DEFAULT_FILES = ("tutorial.md", "json-schema.md", "regress.md", "capture.md")
MARKER = re.compile(r"^<!--\s*output(?:\s+status=(\d+))?\s*-->\s*$")
FENCE = re.compile(r"^(```+|~~~+)")
WALL_CLOCK = re.compile(r"^[\d,]+ events, [\d.]+ s wall clock, [\d,.]+ packets/s$")
TIMEOUT = 30.0          # seconds per command; a doc command should take a few
SLOW = 5.0              # seconds: warn above this
COLUMNS = "100"


class DocError(Exception):
    """A malformed block: the message names the file and line."""


@dataclass
class Block:
    path: Path
    line: int                      # 1-based line of the opening fence
    start: int                     # index of the first line inside the fence
    end: int                       # index of the closing fence
    status: int
    commands: list[list[str]]      # each: the command's lines, without "$ " / "> "
    old: list[str]                 # the lines inside the fence now
    new: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


def find_blocks(path: Path, lines: list[str]) -> list[Block]:
    """Every marked block of a file."""
    blocks = []
    i = 0
    while i < len(lines):
        m = MARKER.match(lines[i])
        if not m:
            i += 1
            continue
        fence_at = i + 1
        if fence_at >= len(lines) or not FENCE.match(lines[fence_at]):
            raise DocError(f"{path}:{i + 1}: an output marker must be followed by a fenced block")
        fence = FENCE.match(lines[fence_at]).group(1)
        end = fence_at + 1
        while end < len(lines) and lines[end].rstrip() != fence:
            end += 1
        if end >= len(lines):
            raise DocError(f"{path}:{fence_at + 1}: the fenced block is not closed")
        body = lines[fence_at + 1:end]
        commands: list[list[str]] = []
        for k, text in enumerate(body):
            if text.startswith("$ "):
                commands.append([text[2:]])
            elif text.startswith("> ") or text == ">":
                if not commands:
                    raise DocError(f"{path}:{fence_at + 2 + k}: a '> ' continuation line "
                                   "with no command before it")
                commands[-1].append(text[2:])
        if not commands:
            raise DocError(f"{path}:{fence_at + 1}: a marked block has no '$ ' command")
        blocks.append(Block(path, fence_at + 1, fence_at + 1, end, int(m.group(1) or 0),
                            commands, body))
        i = end + 1
    return blocks


def _environment(bindir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update({"COLUMNS": COLUMNS, "LINES": "50", "TERM": "dumb", "NO_COLOR": "1",
                "PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8"})
    for var in ("FORCE_COLOR", "CLICOLOR_FORCE", "LSFSIM_MODELS"):
        env.pop(var, None)
    return env


def _clean(text: str, workdir: Path) -> list[str]:
    out = []
    for line in text.replace(str(workdir), ".").splitlines():
        line = line.rstrip()
        if WALL_CLOCK.match(line):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return out


def run_block(block: Block, bindir: Path, abandon: threading.Event) -> None:
    """Run a block's commands one after the other; fill ``block.new``.

    Once a block has failed the others are not started (``abandon``): a hung
    command must not cost a timeout per block."""
    if abandon.is_set():
        block.error = "not run: an earlier block failed"
        return
    started = time.perf_counter()
    new: list[str] = []
    env = _environment(bindir)
    with tempfile.TemporaryDirectory(prefix="lsfsim-docs-") as tmp:
        workdir = Path(tmp).resolve()
        traces = ROOT / "traces"
        if traces.is_dir():
            (workdir / "traces").symlink_to(traces)
        for k, cmd in enumerate(block.commands):
            new.append("$ " + cmd[0])
            new += ["> " + c if c else ">" for c in cmd[1:]]
            script = "set -o pipefail\n" + "\n".join(cmd)
            try:
                proc = subprocess.run(["bash", "-c", script], cwd=workdir, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      timeout=TIMEOUT, check=False)
            except subprocess.TimeoutExpired:
                block.error = f"timed out after {TIMEOUT:g} s: {cmd[0]}"
                break
            text = proc.stdout.decode("utf-8", errors="replace")
            output = _clean(text, workdir)
            looks_like_input = [ln for ln in output if ln.startswith(("$ ", "> ")) or ln == ">"]
            if looks_like_input:
                block.error = (f"an output line would read as a command next time: "
                               f"{looks_like_input[0]!r} (from {cmd[0]})")
                break
            new += output
            last = k == len(block.commands) - 1
            expected = block.status if last else 0
            if proc.returncode != expected:
                tail = "\n    ".join(text.splitlines()[-5:])
                block.error = (f"exit status {proc.returncode} (expected {expected}): "
                               f"{cmd[0]}\n    {tail}")
                break
    block.new = new
    block.seconds = time.perf_counter() - started
    if block.error:
        abandon.set()


def _lsfsim_bin(tmp: Path) -> Path:
    """A bin directory whose ``lsfsim`` runs this checkout with this interpreter."""
    bindir = tmp / "bin"
    bindir.mkdir()
    script = bindir / "lsfsim"
    script.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m lsfsim \"$@\"\n")
    script.chmod(0o755)
    return bindir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path,
                        help=f"Markdown files (default: {', '.join(DEFAULT_FILES)} in docs/)")
    parser.add_argument("--check", action="store_true",
                        help="Change nothing; exit 1 if any block is stale.")
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1,
                        help="Blocks run in parallel (default: the number of CPUs).")
    parser.add_argument("--verbose", "-v", action="store_true", help="Time every block.")
    args = parser.parse_args(argv)
    files = args.files or [DOCS / name for name in DEFAULT_FILES]
    texts: dict[Path, list[str]] = {}
    blocks: list[Block] = []
    try:
        for path in files:
            if not path.is_file():
                raise DocError(f"{path}: no such file")
            texts[path] = path.read_text(encoding="utf-8").split("\n")
            blocks += find_blocks(path, texts[path])
    except DocError as exc:
        print(f"build_docs: error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lsfsim-docs-bin-") as tmp:
        bindir = _lsfsim_bin(Path(tmp))
        abandon = threading.Event()
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(lambda b: run_block(b, bindir, abandon), blocks))
    failed = [b for b in blocks if b.error]
    for b in blocks:
        where = f"{b.path.relative_to(ROOT) if b.path.is_relative_to(ROOT) else b.path}:{b.line}"
        if args.verbose or b.seconds > SLOW:
            note = "" if b.seconds <= SLOW else f" (slow: keep doc commands under {SLOW:g} s)"
            print(f"{where}: {b.seconds:.1f} s{note}", file=sys.stderr)
        if b.error and not b.error.startswith("not run"):
            print(f"{where}: {b.error}", file=sys.stderr)
    if failed:
        return 2
    stale = [b for b in blocks if b.new != b.old]
    if args.check:
        for b in stale:
            diff = difflib.unified_diff(b.old, b.new, f"{b.path.name}:{b.line} (in the file)",
                                        f"{b.path.name}:{b.line} (now)", lineterm="", n=1)
            print("\n".join(list(diff)[:60]), file=sys.stderr)
        if stale:
            print(f"build_docs: {len(stale)} stale block(s); run python docs/build_docs.py",
                  file=sys.stderr)
            return 1
    else:
        for path, lines in texts.items():
            mine = sorted((b for b in stale if b.path == path), key=lambda b: -b.start)
            if not mine:
                continue
            for b in mine:
                lines[b.start:b.end] = b.new
            tmp_path = path.with_name(f".{path.name}.tmp")
            tmp_path.write_text("\n".join(lines), encoding="utf-8")
            tmp_path.replace(path)
            print(f"{path.name}: {len(mine)} block(s) updated", file=sys.stderr)
    if args.verbose:
        print(f"{len(blocks)} blocks in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
