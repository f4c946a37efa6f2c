"""Finding and reading model files: names, folders, TOML, and one-line errors.

``load_model("testbed")`` looks the name up in ``models_dirs()`` (each folder of
$LSFSIM_MODELS, then the models shipped with lsfsim); anything containing "/" or
ending in ".toml" is a path.  Errors are one line naming the file, the line when
it can be found in the text, and the dotted field: ``models/x.toml:12:
kernel.costs.packet_rcv: expected a duration like '350ns' or '1.2us', got '5MB'``.
"""

from __future__ import annotations

import os
import re
import tomllib
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from lsfsim.config.errors import ModelError, did_you_mean, display_path, validation_error
from lsfsim.config.fields import FROM_FILE
from lsfsim.config.positions import locate
from lsfsim.config.schema import Model

__all__ = ["list_models", "load_model", "models_dirs", "shipped_models_dir"]


def models_dirs() -> list[Path]:
    """Where model names are looked up: each entry of $LSFSIM_MODELS, then the shipped models."""
    dirs: list[Path] = []
    env = os.environ.get("LSFSIM_MODELS")
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs.append(shipped_models_dir())
    return dirs


def shipped_models_dir() -> Path:
    """The folder of the models that come with lsfsim.

    An installed copy (a wheel, ``pip install .``) carries them as package data in
    ``lsfsim/models/`` (pyproject.toml maps the project's models/ folder there); a
    source checkout, and an editable install that runs it, has them in models/
    beside the package.
    """
    packaged = resources.files("lsfsim") / "models"
    if packaged.is_dir():
        return Path(str(packaged))
    import lsfsim

    return Path(lsfsim.__file__).resolve().parents[1] / "models"


def list_models() -> list[str]:
    """Names usable with ``load_model`` (the stems of *.toml in ``models_dirs()``)."""
    names: set[str] = set()
    for d in models_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.toml"))
    return sorted(names)


def _looks_like_path(name_or_path: str | os.PathLike[str]) -> bool:
    text = os.fspath(name_or_path)
    return (
        isinstance(name_or_path, os.PathLike)
        or "/" in text
        or os.sep in text
        or text.endswith(".toml")
    )


def _resolve(name_or_path: str | os.PathLike[str]) -> Path:
    text = os.fspath(name_or_path)
    if _looks_like_path(name_or_path):
        return Path(text)
    for d in models_dirs():
        candidate = d / f"{text}.toml"
        if candidate.is_file():
            return candidate
    available = list_models()
    raise ModelError(
        f"unknown model '{text}'{did_you_mean(text, available)}; available: "
        + (", ".join(available) if available else "none")
        + " (or give a path to a .toml file)"
    )


def load_model(name_or_path: str | os.PathLike[str]) -> Model:
    """Read, validate and return a model: a path to a .toml file, or a name from
    ``list_models()``.  Raises ``ModelError`` (one line) on any problem."""
    path = _resolve(name_or_path)
    # A path is shown as the user gave it; a model found by name relative to the
    # working directory when possible ("models/testbed.toml").
    by_name = not _looks_like_path(name_or_path)
    shown = display_path(path) if by_name else os.fspath(name_or_path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file: {exc.strerror or exc}", file=shown) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(f"not UTF-8 text (byte {exc.start})", file=shown) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, shown) from None
    if "source" in data:
        raise ModelError("is set by the loader; remove it from the model file", file=shown,
                         line=locate(text, ("source",)), field="source")
    data.setdefault("name", path.stem)
    data["source"] = str(path.resolve())
    try:
        return Model.model_validate(data, context={FROM_FILE: True})
    except ValidationError as exc:
        raise validation_error(exc, Model, file=shown, text=text) from None


def _toml_error(exc: tomllib.TOMLDecodeError, file: str) -> ModelError:
    """Keep tomllib's line and column, in the usual file:line:column form."""
    msg = str(exc)
    line = getattr(exc, "lineno", None)
    col = getattr(exc, "colno", None)
    m = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", msg)
    if m:
        line, col = int(m[1]), int(m[2])
        msg = msg[: m.start()]
    msg = getattr(exc, "msg", None) or msg
    where = f"{file}:{line}:{col}" if line else file
    return ModelError(f"{where}: invalid TOML: {msg}")
