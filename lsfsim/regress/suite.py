"""The suite file: schema (pydantic, unknown keys refused) and loader.

Errors are one line naming the file, the line and the field, the way model
files report theirs (the TOML error and line helpers are lsfsim.config.model's):
``web.lsfsim.toml:14: filter[web].snaplen: Input should be greater than or equal
to 1, got 0``.  Paths in a suite (captures, program files, a model file) are
relative to the suite file.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from lsfsim.config import units
from lsfsim.config.errors import ModelError
from lsfsim.config.errors import did_you_mean as _did_you_mean
from lsfsim.config.errors import display_path as _display_path
from lsfsim.config.loader import _looks_like_path, _toml_error
from lsfsim.config.positions import _HEADER_RE, _KEY_RE, _split_key
from lsfsim.config.positions import locate as _locate

__all__ = ["FilterSpec", "GenerateSpec", "Suite", "SuiteError", "SuiteSection", "load_suite"]

MAXIMUM_SNAPLEN = 262144   # tcpdump -s 0


class SuiteError(ModelError):
    """A bad suite, as one line: ``file:line: field: what is wrong``."""


def _duration(value: Any) -> float:
    """A duration with its unit ("2ms", "350us"); a bare 0 is allowed."""
    if isinstance(value, bool) or (isinstance(value, int | float) and value != 0):
        raise ValueError(f"expected a duration with a unit like '2ms', got {value!r}")
    return units.parse_duration(value)


Duration = Annotated[float, BeforeValidator(_duration)]
Ratio = Annotated[float, Field(ge=0.0, le=1.0)]


def _load_key(text: Any) -> float:
    """A key of ``max_drop_ratio``: a load written as TOML key ("1", "10", "0", "2.5")."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{text!r} is not a load (a replay speed such as 1, 10 or 0)") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{text!r} is not a load (a replay speed >= 0)")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerateSpec(_Strict):
    """``[suite.generate]``: traffic made by an lsfsim generator instead of captures.

    The keys are those of ``lsfsim run``'s traffic options.  Only open-loop
    generators qualify: an nc transfer is clocked by the host's ACKs, so its
    frames are not known before the run.
    """

    traffic: Literal["cbr", "poisson", "onoff"]
    rate: float | None = Field(None, gt=0)
    size: int = Field(1514, ge=60, le=1514)
    packets: StrictInt | None = Field(None, gt=0)
    bytes: StrictInt | None = Field(None, gt=0)
    duration: Duration | None = None
    proto: Literal["udp", "tcp", "icmp"] = "udp"
    src: str | None = None
    on: Duration | None = None
    off: Duration | None = None

    @field_validator("traffic", mode="before")
    @classmethod
    def _closed_loop(cls, value: Any) -> Any:
        if value == "nc":
            raise ValueError("nc is clocked by the host's ACKs, so its frames are not known "
                             "before a run; use cbr, poisson or onoff, or a capture")
        return value


class SuiteSection(_Strict):
    """``[suite]``: the machine, the traffic and the loads every filter is run at."""

    model: str = "testbed"
    traffic: list[str] | None = None
    generate: GenerateSpec | None = None
    loads: list[Annotated[float, Field(ge=0)]] = Field(default_factory=lambda: [1.0],
                                                         min_length=1)
    kernel: str | None = None
    seed: StrictInt = 1
    rcvbuf: StrictInt | None = Field(None, ge=1)
    reader_work: Duration = 0.0
    rx_ring: StrictInt | None = None

    @field_validator("traffic", mode="before")
    @classmethod
    def _one_file(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("loads")
    @classmethod
    def _distinct(cls, value: list[float]) -> list[float]:
        if len(set(value)) != len(value):
            raise ValueError(f"loads repeat: {value}")
        return value

    @field_validator("kernel", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        from lsfsim.bpf.versions import semantics

        if value is not None:
            if not isinstance(value, str) or value == "libpcap":
                raise ValueError(f"expected a kernel version like '2.6.33', got {value!r}")
            semantics(value)      # ValueError names the versions known
        return value

    @model_validator(mode="after")
    def _one_traffic(self) -> SuiteSection:
        if (self.traffic is None) == (self.generate is None):
            raise ValueError("give either traffic = [capture files] or a [suite.generate] table")
        if self.traffic is not None and not self.traffic:
            raise ValueError("traffic: the list of captures is empty")
        return self


class FilterSpec(_Strict):
    """``[[filter]]``: one program to check (an expression or a program file)."""

    name: str = Field(min_length=1)
    expr: str | None = None
    file: str | None = None
    snaplen: StrictInt = Field(MAXIMUM_SNAPLEN, ge=1, le=MAXIMUM_SNAPLEN)
    accepts: StrictInt | None = Field(None, ge=0)
    reference: str | None = None
    max_drop_ratio: Ratio | dict[str, Ratio] | None = None
    max_p99_latency: Duration | None = None

    @model_validator(mode="after")
    def _one_program(self) -> FilterSpec:
        if (self.expr is None) == (self.file is None):
            raise ValueError("give exactly one of expr (a pcap expression) or file (a program)")
        return self

    @field_validator("max_drop_ratio")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key in value:
                _load_key(key)
        return value

    def drop_bound(self, load: float) -> float | None:
        """The allowed ratio of accepted frames lost at ``load`` (None: not checked)."""
        bound = self.max_drop_ratio
        if bound is None or isinstance(bound, float | int):
            return bound
        for key, ratio in bound.items():
            if _load_key(key) == load:
                return ratio
        return None


class _SuiteFile(_Strict):
    suite: SuiteSection
    filter: list[FilterSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> _SuiteFile:
        seen: set[str] = set()
        for f in self.filter:
            if f.name in seen:
                raise ValueError(f"two filters are named {f.name!r}")
            seen.add(f.name)
            bound = f.max_drop_ratio
            if isinstance(bound, dict):
                for key in bound:
                    if _load_key(key) not in self.suite.loads:
                        raise ValueError(
                            f"filter {f.name!r}: max_drop_ratio: load {key} is not one of "
                            f"suite.loads {self.suite.loads}")
        return self


@dataclass(frozen=True)
class Suite:
    """A validated suite with every path resolved (absolute)."""

    path: Path
    shown: str                   # the path as messages show it
    text: str                    # the file's text (for line numbers)
    section: SuiteSection
    filters: tuple[FilterSpec, ...]
    captures: tuple[Path, ...]   # empty when the traffic is generated
    model: str                   # a model name, or an absolute path to a model file

    @property
    def name(self) -> str:
        name = self.path.name
        for suffix in (".lsfsim.toml", ".toml"):
            if name.endswith(suffix):
                return name[: -len(suffix)]
        return name

    def resolve(self, path: str) -> Path:
        return _absolute(self.path.parent / path)

    def filter_line(self, index: int, key: str | None = None) -> int | None:
        """The line of ``[[filter]]`` number ``index`` (or of its ``key``)."""
        return _locate_array_item(self.text, ("filter",), index, key)

    def error(self, message: str, *, index: int | None = None, key: str | None = None,
              loc: tuple[str, ...] | None = None) -> SuiteError:
        """A SuiteError at filter ``index`` (its ``key``) or at the dotted ``loc``."""
        if index is not None:
            name = self.filters[index].name
            field = f"filter[{name}]" + (f".{key}" if key else "")
            return SuiteError(message, file=self.shown, line=self.filter_line(index, key),
                              field=field)
        line = _locate(self.text, loc) if loc else None
        return SuiteError(message, file=self.shown, line=line,
                          field=".".join(loc) if loc else None)


def _locate_array_item(text: str, table: tuple[str, ...], index: int,
                       key: str | None) -> int | None:
    """The line of the ``index``-th ``[[table]]`` header, or of ``key`` inside it.

    lsfsim.config.model's ``_locate`` does not count array-of-tables entries; this
    scanner does, with the same regular expressions (and the same limits).
    """
    count = -1
    header_line = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _HEADER_RE.match(line)
        if m:
            if header_line is not None:
                return header_line            # key not in this entry: its header
            if line.startswith("[[") and _split_key(m["key"]) == table:
                count += 1
                if count == index:
                    header_line = lineno
                    if key is None:
                        return lineno
            continue
        if header_line is not None and key is not None:
            m = _KEY_RE.match(line)
            if m and _split_key(m["key"])[:1] == (key,):
                return lineno
    return header_line


def _allowed(loc: tuple[str | int, ...]) -> list[str]:
    """The keys allowed at ``loc`` (for "did you mean")."""
    where = tuple(p for p in loc if not isinstance(p, int))
    models: dict[tuple[Any, ...], type[BaseModel]] = {
        (): _SuiteFile, ("suite",): SuiteSection, ("suite", "generate"): GenerateSpec,
        ("filter",): FilterSpec}
    cls = models.get(where)
    return list(cls.model_fields) if cls is not None else []


def _suite_error(exc: ValidationError, data: Mapping[str, Any], shown: str,
                 text: str) -> SuiteError:
    """The first error of the file (by line) as one line; a missing key comes last."""
    described = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        # pydantic adds the union member tried ("float", "dict[str,...]"): not a key
        loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in
                                                                    ("float", "int", "str"))))
        kind = err["type"]
        ctx = err.get("ctx") or {}
        if kind == "extra_forbidden":
            msg = f"unknown key{_did_you_mean(str(loc[-1]), _allowed(loc[:-1]))}"
        elif kind == "missing":
            msg = "missing (required)"
        elif kind == "value_error" and ctx.get("error") is not None:
            msg = str(ctx["error"])
        else:
            value = err.get("input")
            got = "" if isinstance(value, dict | list) else f", got {value!r}"
            msg = f"{err['msg']}{got}"
        if len(loc) >= 2 and loc[0] == "filter" and isinstance(loc[1], int):
            index = loc[1]
            entries = data.get("filter")
            entry = entries[index] if isinstance(entries, list) and index < len(entries) else {}
            name = entry.get("name") if isinstance(entry, dict) else None
            key = str(loc[2]) if len(loc) > 2 else None
            field = f"filter[{name or index}]" + "".join(f".{p}" for p in loc[2:])
            line = _locate_array_item(text, ("filter",), index, key)
        else:
            field = ".".join(str(p) for p in loc)
            line = _locate(text, tuple(str(p) for p in loc)) if loc else None
        rank = (kind == "missing", line if line is not None else 1 << 30)
        described.append((rank, msg, line, field))
    described.sort(key=lambda d: d[0])
    _, msg, line, field = described[0]
    extra = len(described) - 1
    tail = f" [+{extra} more error{'s' if extra > 1 else ''}]" if extra else ""
    return SuiteError(f"{msg}{tail}", file=shown, line=line, field=field or None)


def _absolute(path: Path) -> Path:
    """An absolute, normalised path that keeps symbolic links (reports show the names given)."""
    return Path(os.path.normpath(os.path.abspath(path)))


def load_suite(path: str | os.PathLike[str]) -> Suite:
    """Read and validate a suite; every path in it must exist.  Raises SuiteError."""
    p = Path(path)
    shown = _display_path(p) if p.is_absolute() else os.fspath(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise SuiteError(f"cannot read suite file: {exc.strerror or exc}", file=shown) from None
    except UnicodeDecodeError as exc:
        raise SuiteError(f"not UTF-8 text (byte {exc.start})", file=shown) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(str(_toml_error(exc, shown))) from None
    try:
        parsed = _SuiteFile.model_validate(data)
    except ValidationError as exc:
        raise _suite_error(exc, data, shown, text) from None
    section = parsed.suite
    base = _absolute(p).parent
    model = section.model
    if _looks_like_path(model):
        model_path = _absolute(base / model)
        if not model_path.is_file():
            raise SuiteError(f"{model}: no such model file", file=shown,
                             line=_locate(text, ("suite", "model")), field="suite.model")
        model = str(model_path)
    captures = []
    for name in section.traffic or ():
        capture = _absolute(base / name)
        if not capture.is_file():
            raise SuiteError(f"{name}: no such capture file", file=shown,
                             line=_locate(text, ("suite", "traffic")), field="suite.traffic")
        captures.append(capture)
    suite = Suite(path=_absolute(p), shown=shown, text=text, section=section,
                  filters=tuple(parsed.filter), captures=tuple(captures), model=model)
    for i, f in enumerate(suite.filters):
        if f.file is not None and not suite.resolve(f.file).is_file():
            raise suite.error(f"{f.file}: no such program file", index=i, key="file")
    return suite
