"""lsfsim as a user gets it: a wheel installed in a fresh virtual environment.

The models live in the project's top-level models/ folder and reach a wheel as the
data-only package ``lsfsim.models`` (see pyproject.toml).  A copy installed that way
must find them without the source tree, and run the default scenario to the same
result as the source tree does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from lsfsim.config.model import list_models, shipped_models_dir

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
RUN = ["run", "--bytes", "2000000", "-q", "--json", "-"]


def test_every_package_is_listed() -> None:
    """pyproject lists packages by hand (find cannot map models/): none may be missing."""
    setuptools = PYPROJECT["tool"]["setuptools"]
    on_disk = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "lsfsim").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert set(setuptools["packages"]) == on_disk | {"lsfsim.models"}
    assert setuptools["package-dir"] == {"lsfsim.models": "models"}


def test_source_checkout_reads_models_beside_the_package() -> None:
    assert shipped_models_dir() == REPO / "models"
    assert list_models() == sorted(p.stem for p in (REPO / "models").glob("*.toml"))


def _build_wheel(tmp_path: Path) -> Path:
    """Build from a copy of what the build reads, so a stale build/ folder cannot leak in."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for folder in ("lsfsim", "models"):
        shutil.copytree(REPO / folder, src / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(dist), str(src)], check=True, capture_output=True)
    (wheel,) = dist.glob("lsfsim-*.whl")
    return wheel


@pytest.mark.slow
def test_installed_wheel_finds_its_models_and_runs(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {p.relative_to(REPO).as_posix() for p in (REPO / "lsfsim").rglob("*.py")}
    assert sources <= names, sorted(sources - names)
    shipped = {f"lsfsim/models/{p.name}" for p in (REPO / "models").glob("*.toml")}
    assert shipped and shipped <= names

    # The dependencies come from this interpreter's site-packages (no download);
    # lsfsim itself only from the wheel, checked below.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, capture_output=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True)

    env = {k: v for k, v in os.environ.items() if k not in ("LSFSIM_MODELS", "PYTHONPATH")}
    elsewhere = tmp_path / "cwd"  # not the project: nothing found beside the working directory
    elsewhere.mkdir()

    def installed(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(venv / "bin" / "lsfsim"), *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=120)

    where = subprocess.run([str(python), "-c", "import lsfsim; print(lsfsim.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(venv)

    models = installed("models")
    assert models.returncode == 0, models.stderr
    assert [line.split()[0] for line in models.stdout.splitlines()] == list_models()

    run = installed(*RUN)
    assert run.returncode == 0, run.stderr
    here = subprocess.run([sys.executable, "-m", "lsfsim", *RUN], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    ours, theirs = json.loads(run.stdout), json.loads(here.stdout)
    for doc in (ours, theirs):
        for key in ("wall_seconds", "packets_per_wall_second"):  # the host's speed
            doc.pop(key)
    assert ours == theirs
