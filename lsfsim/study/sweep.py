"""Sweeps: the full grid of some run parameters, each point run like ``lsfsim run``.

Two ways in:

* from the command line (``lsfsim sweep``), a point's scenario is built by
  ``ScenarioOptions.build``, as ``lsfsim run`` builds its own, from the
  sweep's run options with the point's values put in: a row equals the
  flattened ``lsfsim run --json`` of the same options and seed;
* from Python, ``sweep(base, {"rcvbuf": [4096, 65536], "rate": [...]})`` with a
  base ``Scenario`` (the point's values are set on its fields: a socket option
  on every socket, a traffic option on the traffic) or a dict of run options.

A row: one column per varied parameter (named as in ``--vary``), ``seed``,
``status`` ("ok" or "error"), ``error`` (the one-line message), then every
scalar of the run's JSON (``lsfsim.study.point.flatten``).  A varied column
takes the place of a JSON column of the same name; only ``model`` can
collide, and its column then holds the value given to ``--model`` (the JSON's
``model`` is the model's name: the same for a model given by name).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lsfsim.cli.common import InputError
from lsfsim.scenario import Scenario
from lsfsim.study.engine import Outcome, run_points
from lsfsim.study.params import Vary, convert_values, run_defaults, run_options
from lsfsim.study.point import RunPoint
from lsfsim.study.table import FORMAT, SweepFile, frame, row_key

SAVE_EVERY = 30.0        # seconds between rewrites of --out while a sweep runs


@dataclass
class Plan:
    """Every run of a sweep, in grid order, and the sweep's definition."""

    definition: dict[str, Any]
    names: list[str]
    points: list[RunPoint] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)   # params + seed per point


def plan_from_options(options: dict[str, Any], sets: dict[str, Any], varies: Sequence[Vary],
                      repeat: int = 1, inclusive: Sequence[str] = ()) -> Plan:
    """The plan of ``lsfsim sweep``: ``options`` are ScenarioOptions' fields (the run
    options), ``sets`` the ``--set`` model fields."""
    from lsfsim.cli.scenario_options import ScenarioOptions

    _check_names(varies, repeat)
    seed = int(options.get("seed", 1))
    kwargs = {k: v for k, v in options.items() if k != "seed"}
    varied = {_target(v.name) for v in varies}
    base = {k: v for k, v in sorted(kwargs.items()) if k not in varied}
    base_set = {k: v for k, v in sets.items() if k not in varied}
    plan = _new_plan(base, base_set, varies, repeat, seed, inclusive)
    for combo in itertools.product(*(v.values for v in varies)):
        opts, overrides = dict(kwargs), dict(sets)
        for vary, value in zip(varies, combo, strict=True):
            if vary.field:
                overrides[vary.name] = value
            else:
                option = run_options()[vary.name]
                opts[option.kwarg] = (not value) if option.negated else value
        for r in range(repeat):
            try:
                scenario = ScenarioOptions(**opts, seed=seed + r, overrides=overrides).build()
            except InputError as exc:
                raise InputError(f"{_where(varies, combo)}{exc}") from None
            _add(plan, scenario, varies, combo, seed + r, inclusive)
    check_plan(plan)
    return plan


def plan_from_scenario(base: Scenario, params: dict[str, Sequence[Any]], repeat: int = 1,
                       inclusive: Sequence[str] = ()) -> Plan:
    """The plan of ``sweep(base_scenario, params)``."""
    varies = [Vary(name, convert_values(name, tuple(values))) for name, values in params.items()]
    _check_names(varies, repeat)
    dump = base.model_dump(mode="json")
    seed = dump.pop("seed")
    plan = _new_plan(dump, {}, varies, repeat, seed, inclusive)
    for combo in itertools.product(*(v.values for v in varies)):
        data = base.model_dump(mode="json")
        for vary, value in zip(varies, combo, strict=True):
            set_param(data, vary.name, value)
        for r in range(repeat):
            data["seed"] = seed + r
            try:
                scenario = Scenario.model_validate(data)
            except ValueError as exc:
                raise InputError(f"{_where(varies, combo)}scenario: {exc}") from None
            _add(plan, scenario, varies, combo, seed + r, inclusive)
    check_plan(plan)
    return plan


def _check_names(varies: Sequence[Vary], repeat: int) -> None:
    if repeat < 1:
        raise InputError(f"--repeat {repeat}: must be 1 or more")
    seen = set()
    for v in varies:
        if _target(v.name) in seen:
            raise InputError(f"--vary {v.name}: varied twice")
        seen.add(_target(v.name))


def _target(name: str) -> str:
    """What a NAME sets: a ScenarioOptions field or a model field."""
    option = None if "." in name else run_options().get(name)
    return option.kwarg if option else name


def _new_plan(base: dict[str, Any], sets: dict[str, Any], varies: Sequence[Vary], repeat: int,
              seed: int, inclusive: Sequence[str]) -> Plan:
    definition = {"format": FORMAT, "base": base, "set": sets,
                  "vary": {v.name: list(v.values) for v in varies},
                  "repeat": repeat, "seed": seed, "inclusive": list(inclusive)}
    return Plan(definition, [v.name for v in varies])


def _where(varies: Sequence[Vary], combo: Sequence[Any]) -> str:
    if not varies:
        return ""
    return "point " + ", ".join(f"{v.name}={c}" for v, c in zip(varies, combo, strict=True)) \
        + ": "


def _add(plan: Plan, scenario: Scenario, varies: Sequence[Vary], combo: Sequence[Any],
         seed: int, inclusive: Sequence[str]) -> None:
    label = {v.name: c for v, c in zip(varies, combo, strict=True)}
    label["seed"] = seed
    plan.points.append(RunPoint(scenario, tuple(inclusive)))
    plan.labels.append(label)


def check_plan(plan: Plan) -> None:
    """Refuse, before anything runs, what would fail every point alike: an unknown
    model, a bad --set field or value, a filter libpcap refuses."""
    from lsfsim.config.model import load_model
    from lsfsim.machine import build_program
    from lsfsim.scenario import apply_overrides

    models: dict[str, Any] = {}
    checked: set[str] = set()
    for point in plan.points:
        sc = point.scenario
        key = repr((sc.model, sorted(sc.overrides.items())))
        if key not in checked:
            checked.add(key)
            model = models.get(sc.model) or models.setdefault(sc.model, load_model(sc.model))
            if sc.overrides:
                apply_overrides(model, sc.overrides)
        for spec in sc.sockets[:1]:
            fkey = repr((spec.filter, spec.filter_file, spec.snaplen))
            if fkey not in checked:
                checked.add(fkey)
                build_program(spec)


# how a parameter sets a scenario (the Python API with a base Scenario)
_TRAFFIC = {"traffic": "kind", "rate": "rate", "size": "size", "count": "packets",
            "bytes": "bytes", "pcap": "pcap", "speed": "speed"}
_SOCKET = {"snaplen": "snaplen", "rcvbuf": "rcvbuf", "readers": "readers",
           "reader-cpu": "cpu", "promisc": "promisc"}
_SENDER = {"send-rate": "rate", "send-count": "count"}
_TOP = {"model": "model", "rx-ring": "rx_ring", "napi": "napi", "drain": "drain"}


def set_param(data: dict[str, Any], name: str, value: Any) -> None:
    """Put parameter ``name`` = ``value`` into a scenario's dumped data."""
    from lsfsim.config.units import parse_duration

    if "." in name:
        data.setdefault("overrides", {})[name] = value
    elif name in _TOP:
        data[_TOP[name]] = value
    elif name in _TRAFFIC:
        data["traffic"][_TRAFFIC[name]] = value
    elif name == "duration":
        data["traffic"]["duration"] = parse_duration(value) if isinstance(value, str) else value
    elif name in _SOCKET or name in ("filter", "filter-file", "reader-work"):
        for sock in data["sockets"]:
            if name == "filter":
                sock["filter"], sock["filter_file"] = value, None
            elif name == "filter-file":
                sock["filter"], sock["filter_file"] = None, value
            elif name == "reader-work":
                sock["reader_work"] = parse_duration(value) if isinstance(value, str) else value
            else:
                sock[_SOCKET[name]] = value
    elif name == "sockets":
        first = data["sockets"][0] if data["sockets"] else Scenario().sockets[0].model_dump()
        data["sockets"] = [dict(first) for _ in range(value)]
    elif name == "senders":
        from lsfsim.scenario import SenderSpec

        first = data["senders"][0] if data["senders"] else SenderSpec().model_dump()
        data["senders"] = [dict(first) for _ in range(value)]
    elif name in _SENDER:
        for sender in data["senders"]:
            sender[_SENDER[name]] = value
    else:
        raise InputError(f"--vary {name}: cannot be set on a Scenario")


# --- running ---------------------------------------------------------------------------


def run_plan(plan: Plan, *, jobs: int | None = None, scheduler: str | None = None,
             out: str | None = None, resume: bool = False,
             on_row: Callable[[dict[str, Any], int, int], None] | None = None) -> Any:
    """Run the points not already in ``out`` (with ``resume``); return the DataFrame.

    ``on_row(row, done, total)`` is called after each row is safe in the journal.
    """
    file = SweepFile(out, plan.definition) if out else None
    names = plan.names
    keys = [row_key(label, names) for label in plan.labels]
    order = {k: i for i, k in enumerate(keys)}
    rows: dict[str, dict[str, Any]] = {}
    if file is not None and resume:
        for row in file.previous_rows():
            key = row_key(row, names)
            if row.get("status") == "ok" or key not in order:
                rows[key] = row                       # kept: finished, or outside this grid
    todo = [i for i, k in enumerate(keys) if k not in rows]
    points = [plan.points[i] for i in todo]
    done = 0
    last_save = time.monotonic()

    def sorted_rows() -> list[dict[str, Any]]:
        return sorted(rows.values(), key=lambda r: order.get(row_key(r, names), len(order)))

    def on_result(outcome: Outcome) -> None:
        nonlocal done, last_save
        index = todo[outcome.index]
        row = make_row(plan.labels[index], outcome)
        rows[keys[index]] = row
        done += 1
        if file is not None:
            file.append(row)
            if time.monotonic() - last_save > SAVE_EVERY:
                file.save(sorted_rows(), final=False)
                last_save = time.monotonic()
        if on_row is not None:
            on_row(row, done, len(todo))

    try:
        run_points(points, jobs=jobs, scheduler=scheduler, on_result=on_result)
    finally:
        if file is not None and done:
            file.save(sorted_rows(), final=True)
        elif file is not None:
            file.close()
    return frame(sorted_rows())


def make_row(label: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    """A table row: the point's parameters and seed, its status, then its result."""
    row = dict(label)
    row["status"] = "ok" if outcome.ok else "error"
    row["error"] = outcome.error
    for key, value in (outcome.value or {}).items():
        row.setdefault(key, value)
    return row


def sweep(base: Scenario | dict[str, Any] | None = None,
          params: dict[str, Sequence[Any]] | None = None, repeat: int = 1, *,
          jobs: int | None = None, scheduler: str | None = None, out: str | None = None,
          resume: bool = False, inclusive: Sequence[str] = ()) -> Any:
    """Run the grid of ``params`` over ``base``; a pandas DataFrame with one row per run.

    ``base``: a Scenario, or a dict of ``lsfsim run`` options by --vary name
    (``{"traffic": "cbr", "rate": 80000}``), or None (the lecture's run).
    ``params``: {NAME: values} as ``--vary`` takes them, values as Python
    objects or strings in the option's syntax ("10us", "128KiB").
    ``repeat``: seeds seed .. seed+repeat-1 per point.
    """
    params = dict(params or {})
    if isinstance(base, Scenario):
        plan = plan_from_scenario(base, params, repeat, inclusive)
    else:
        options = run_defaults()
        sets: dict[str, Any] = {}
        for name, value in (base or {}).items():
            if "." in name:
                sets[name] = value
                continue
            option = run_options().get(name)
            if option is None:
                raise InputError(f"sweep base: {name!r} is not a run option")
            options[option.kwarg] = convert_values(name, (value,))[0]
            if option.negated:
                options[option.kwarg] = not options[option.kwarg]
        varies = [Vary(n, convert_values(n, tuple(v))) for n, v in params.items()]
        plan = plan_from_options(options, sets, varies, repeat, inclusive)
    return run_plan(plan, jobs=jobs, scheduler=scheduler, out=out, resume=resume)
