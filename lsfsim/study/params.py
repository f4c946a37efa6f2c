"""What a sweep varies: ``--vary NAME=V1,V2,...`` and ranges, parsed the run options' way.

A NAME is either a ``lsfsim run`` option without its dashes (``rate``,
``rx-ring``, ``reader-work``; the flags ``--no-napi``, ``--no-drain`` and
``--promisc`` become ``napi``, ``drain`` and ``promisc`` with values
true/false) or a model field as ``--set`` takes it (``kernel.rmem_max``).

Values keep the option's own syntax: each one is converted by the very click
parameter that ``lsfsim run`` uses, so ``--vary rcvbuf=abc`` fails as
``--rcvbuf abc`` would.  Model-field values stay strings with their units;
the model checks them when the sweep is planned.

Ranges, for numbers and quantities with one unit throughout:

* ``A..B+S``: arithmetic, A, A+S, ... up to B (``rate=10000..150000+10000``,
  ``reader-work=0us..40us+10us``);
* ``A..B*F``: geometric, A, A*F, ... up to B (``rcvbuf=4096..1048576*2``).

Arithmetic is done in decimal, so ``0.1..0.3+0.1`` gives exactly three values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, cast

from lsfsim.cli.common import InputError

# run options that are not part of the simulated scenario, or that the sweep sets itself
NOT_VARIED = frozenset({"overrides", "seed"})
# ``seed`` is a run option a sweep sets itself (--repeat); it is listed, never varied
# flags whose option says "no": the parameter is the positive name with values true/false
NEGATED = {"no_napi": "napi", "no_drain": "drain"}
MAX_RANGE = 10_000
_TRUE = {"true": True, "yes": True, "on": True, "1": True,
         "false": False, "no": False, "off": False, "0": False}
_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([^\d\s.+\-*]*)\s*$")


@dataclass(frozen=True)
class RunOption:
    """One ``lsfsim run`` option as a sweep sees it."""

    name: str            # the --vary NAME: "rx-ring", "napi"
    kwarg: str           # the ScenarioOptions field: "rx_ring", "no_napi"
    type: type           # int, float, str or bool
    default: Any
    min: float | None = None
    max: float | None = None
    negated: bool = False

    @property
    def is_flag(self) -> bool:
        return self.type is bool

    @property
    def numeric(self) -> bool:
        return self.type in (int, float)


@cache
def run_options() -> dict[str, RunOption]:
    """The run options by --vary NAME, read from their one definition.

    ``lsfsim.cli.scenario_options`` declares every scenario option of ``lsfsim
    run`` (and of ``trace``, ``lifecycle``, ``sweep``) with its typer option in
    ``options.py``: names, types, bounds and defaults all come from there.
    """
    import typing

    from lsfsim.cli.scenario_options import scenario_parameters

    out: dict[str, RunOption] = {}
    for param in scenario_parameters():
        kwarg = param.name
        if kwarg in NOT_VARIED - {"seed"}:
            continue
        base, *meta = typing.get_args(param.annotation) or (param.annotation,)
        option = meta[0] if meta else None
        # in the Annotated style typer keeps the first name as the option's default:
        # "--promisc/--no-promisc" (and " /-p") names the option "promisc"
        decls = (getattr(option, "default", None), *getattr(option, "param_decls", ()))
        longs = [d.split("/")[0].strip() for d in decls if isinstance(d, str)] or [kwarg]
        flag = max(longs, key=len).lstrip("-")
        kind = next((t for t in (bool, int, float, str) if t in typing.get_args(base) or
                     t is base), str)
        name = NEGATED.get(kwarg, flag)
        out[name] = RunOption(name, kwarg, kind, param.default,
                              getattr(option, "min", None), getattr(option, "max", None),
                              kwarg in NEGATED)
    return out


def run_defaults() -> dict[str, Any]:
    """ScenarioOptions fields at ``lsfsim run``'s defaults (seed included)."""
    return {o.kwarg: o.default for o in run_options().values()}


def is_field(name: str) -> bool:
    """A model field path (``kernel.rmem_max``) rather than a run option."""
    return "." in name


@dataclass(frozen=True)
class Vary:
    """One varied parameter: its NAME and its values, already converted."""

    name: str
    values: tuple[Any, ...]

    @property
    def field(self) -> bool:
        return is_field(self.name)


def parse_vary(spec: str) -> Vary:
    """``"rcvbuf=4096..65536*2"`` -> Vary("rcvbuf", (4096, 8192, 16384, 32768, 65536))."""
    name, sep, text = spec.partition("=")
    name = name.strip()
    if not sep or not name:
        raise InputError(f"--vary {spec!r}: expected NAME=V1,V2,... or NAME=A..B+STEP")
    return Vary(name, convert_values(name, [v.strip() for v in text.split(",")]))


def convert_values(name: str, texts: list[str] | tuple[Any, ...]) -> tuple[Any, ...]:
    """Values of parameter ``name`` (strings in the option's syntax, or Python values)."""
    where = f"--vary {name}"
    option = None
    if not is_field(name):
        options = run_options()
        if name == "seed":
            raise InputError(f"{where}: the seed is not varied; use --repeat K "
                             f"(seeds --seed .. --seed+K-1)")
        option = options.get(name)
        if option is None:
            import difflib

            near = difflib.get_close_matches(name, list(options), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise InputError(f"{where}: no such run option or model field{hint}; "
                             f"names: {', '.join(sorted(set(options) - {'seed'}))}, "
                             f"or a model field "
                             f"such as kernel.rmem_max")
    values: list[Any] = []
    for text in texts:
        if isinstance(text, str) and text == "":
            raise InputError(f"{where}: an empty value")
        expanded = _expand(where, text) if _rangeable(option, text) else [text]
        values.extend(_convert(where, option, v) for v in expanded)
    if not values:
        raise InputError(f"{where}: no values")
    if len(set(map(repr, values))) != len(values):
        raise InputError(f"{where}: a value is given twice")
    return tuple(values)


def _rangeable(option: RunOption | None, text: Any) -> bool:
    if not isinstance(text, str) or ".." not in text:
        return False
    return option is None or option.numeric or option.kwarg in ("reader_work", "duration")


def _convert(where: str, option: RunOption | None, value: Any) -> Any:
    if option is None:                              # model field: the model parses it
        return value if isinstance(value, bool | int | float) else str(value)
    if option.is_flag:
        if isinstance(value, bool):
            return value
        flag = _TRUE.get(str(value).strip().lower())
        if flag is None:
            raise InputError(f"{where}: {value!r} is not true or false")
        return flag
    converted: Any
    if isinstance(value, option.type) or (option.type is float and isinstance(value, int)) \
            or (option.type is str and isinstance(value, int | float)):
        # from Python: a number for a duration option is in seconds
        converted = float(cast(float, value)) if option.type is float else value
    else:
        try:
            converted = option.type(str(value).strip())
        except ValueError:
            kind = {int: "an integer", float: "a number"}.get(option.type, option.type.__name__)
            raise InputError(f"{where}: {value!r} is not {kind}") from None
    if option.min is not None and converted < option.min:
        raise InputError(f"{where}: {value!r} is less than {option.min:g}")
    if option.max is not None and converted > option.max:
        raise InputError(f"{where}: {value!r} is more than {option.max:g}")
    return converted


def _expand(where: str, text: str) -> list[str]:
    """The values of one range, as strings in the range's own unit."""
    first, _, rest = text.strip().partition("..")
    op = "*" if "*" in rest else "+"
    last, sep, by = rest.rpartition(op)
    if not sep:
        raise InputError(f"{where}: {text!r}: a range is A..B+STEP or A..B*FACTOR")
    a, unit_a = _quantity(where, first)
    b, unit_b = _quantity(where, last)
    step, unit_s = _quantity(where, by)
    if unit_a != unit_b or (op == "+" and unit_s not in ("", unit_a)) or (op == "*" and unit_s):
        raise InputError(f"{where}: {text!r}: use one unit throughout a range")
    out: list[Decimal] = []
    if op == "+":
        if step > 0:
            x = a
            while x <= b and len(out) <= MAX_RANGE:
                out.append(x)
                x += step
    elif step > 1 and a > 0:
        x = a
        while x <= b and len(out) <= MAX_RANGE:
            out.append(x)
            x *= step
    if not out:
        raise InputError(f"{where}: {text!r}: an empty range")
    if len(out) > MAX_RANGE:
        raise InputError(f"{where}: {text!r}: more than {MAX_RANGE} values")
    return [_format(x) + unit_a for x in out]


def _quantity(where: str, text: str) -> tuple[Decimal, str]:
    m = _QUANTITY.match(text)
    if not m:
        raise InputError(f"{where}: {text!r} is not a number (with an optional unit)")
    try:
        return Decimal(m[1]), m[2]
    except InvalidOperation:
        raise InputError(f"{where}: {text!r} is not a number") from None


def _format(x: Decimal) -> str:
    if x == x.to_integral_value():
        return str(int(x))
    return format(x.normalize(), "f")
