"""Model errors as one line: ``file:line: dotted.field: what is wrong``.

``ModelError`` is what the loader and ``Model.with_overrides`` raise;
``validation_error`` turns pydantic's list of errors into the first one (by line
in the file), with "did you mean" hints and the line found by
``lsfsim.config.positions``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from lsfsim.config.positions import locate

__all__ = ["FieldError", "ModelError", "did_you_mean", "display_path", "validation_error"]


class ModelError(ValueError):
    """A bad model file or override, as one line: ``file:line: field: what is wrong``."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.detail = message
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        what = f"{field}: " if field else ""
        super().__init__(" ".join(f"{where}{what}{message}".split()))


class FieldError(ValueError):
    """A validator error that belongs to a sub-field (for the line lookup and the path)."""

    def __init__(self, message: str, subpath: tuple[str, ...]) -> None:
        super().__init__(message)
        self.subpath = subpath


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """" (did you mean 'x'?)" for the choice closest to ``word``, or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it is below it, else as it is."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def _fields_at(root: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    """The field names allowed at ``loc`` below ``root`` (for "did you mean")."""
    cls: Any = root
    for key in loc:
        is_model = isinstance(cls, type) and issubclass(cls, BaseModel)
        field = cls.model_fields.get(key) if is_model else None
        if field is None:
            return []
        cls = field.annotation
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return list(cls.model_fields)
    return []


def _describe(root: type[BaseModel], err: Mapping[str, Any]) -> tuple[tuple[str, ...], str]:
    """(dotted location, message) for one pydantic error."""
    loc = tuple(str(x) for x in err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    exc = ctx.get("error")
    if isinstance(exc, FieldError):
        return loc + exc.subpath, str(exc)
    if kind == "value_error":
        return loc, str(exc) if exc is not None else err["msg"]
    if kind == "extra_forbidden":
        allowed = [f for f in _fields_at(root, loc[:-1]) if f != "source"]
        return loc, f"unknown key{did_you_mean(loc[-1], allowed)}"
    if kind == "missing":
        return loc, "missing (required)"
    value = err.get("input")
    got = "" if isinstance(value, dict) else f", got {value!r}"
    return loc, f"{err['msg']}{got}"


def validation_error(exc: ValidationError, root: type[BaseModel], *, file: str,
                     text: str | None, note: str = "") -> ModelError:
    """The first error of the file (by line), as one line.

    A missing key comes after the others: "cpus: unknown key" explains
    "cpu: missing" and is what the user has to fix.
    """
    described = []
    for err in exc.errors():
        loc, msg = _describe(root, err)
        line = locate(text, loc) if text is not None else None
        rank = (err["type"] == "missing", line if line is not None else 1 << 30)
        described.append((rank, loc, msg, line))
    described.sort(key=lambda d: d[0])
    _, loc, msg, line = described[0]
    extra = len(described) - 1
    tail = f" [+{extra} more error{'s' if extra > 1 else ''}]" if extra else ""
    return ModelError(f"{msg}{note}{tail}", file=file, line=line, field=".".join(loc) or None)
