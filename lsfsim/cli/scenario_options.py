"""The scenario options of ``lsfsim run``, ``trace`` and ``lifecycle``, given once,
and the Scenario they build (``scenario_from_options``).

Every command that simulates takes the same options, with the same names and
meaning.  They are declared here, once, as the fields of ``ScenarioOptions``;
a command asks for them with the ``@scenario_options`` decorator and one
parameter, ``scenario: ScenarioOptions``, instead of listing twenty-odd
options in its own signature::

    @app.command("run")
    @one_line_errors
    @scenario_options
    def run_command(scenario: ScenarioOptions, quiet: Quiet = False) -> None:
        built = scenario.build()

The decorator shows typer a signature with every option (``options.py`` holds
each one's flag and help) followed by the command's own parameters, and hands
the command the options gathered in one value.  A new scenario option is one
field here and one annotation in ``options.py``.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from lsfsim.cli import options
from lsfsim.cli.common import InputError, check_input_file
from lsfsim.config.units import parse_duration

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ScenarioOptions:
    """The run options as the command line gave them (None: not given)."""

    model: str | None = None
    traffic: str | None = None
    rate: float | None = None
    size: int | None = None
    count: int | None = None
    nbytes: int | None = None
    duration: str | None = None
    pcap: str | None = None
    speed: float | None = None
    filter_expr: str | None = None
    filter_file: str | None = None
    allow_refused_filter: bool = False
    snaplen: int | None = None
    rcvbuf: int | None = None
    rx_ring: int | None = None
    sockets: int = 1
    readers: int = 1
    reader_work: str | None = None
    reader_cpu: int | None = None
    no_napi: bool = False
    promisc: bool = True
    seed: int = 1
    no_drain: bool = False
    senders: int = 0
    send_rate: float = 1000.0
    send_count: int = 1000

    def build(self, default_nc_bytes: int | None = None) -> Any:
        """The Scenario these options describe (``scenario_from_options``).

        ``default_nc_bytes``: the nc transfer's length when no amount of traffic is
        given (``trace`` and ``lifecycle`` keep their output short this way).
        """
        given = asdict(self)
        count = given.pop("count")
        kind = self.traffic or ("pcap" if self.pcap else "nc")
        if (default_nc_bytes is not None and kind == "nc" and self.nbytes is None
                and count is None and self.duration is None):
            given["nbytes"] = default_nc_bytes
        return scenario_from_options(packets=count, **given)


TRAFFIC_KINDS = ("nc", "cbr", "poisson", "onoff", "pcap")


def scenario_from_options(*, model: str | None, traffic: str | None, rate: float | None,
                          size: int | None, packets: int | None, nbytes: int | None,
                          duration: str | None, pcap: str | None, speed: float | None,
                          filter_expr: str | None, filter_file: str | None,
                          snaplen: int | None, rcvbuf: int | None, rx_ring: int | None,
                          sockets: int, readers: int, reader_work: str | None,
                          no_napi: bool, seed: int, no_drain: bool, promisc: bool = True,
                          reader_cpu: int | None = None, senders: int = 0,
                          send_rate: float = 1000.0, send_count: int = 1000,
                          allow_refused_filter: bool = False) -> Any:
    """Build a Scenario from command-line options (defaults: the lecture's run).

    The lecture's filter belongs to the lecture's scenario: with ``--traffic``,
    ``--pcap`` or ``--model`` given, the socket has no filter unless one is
    given, as tcpdump with no expression.  ``packets`` is the number of frames
    to offer (``--count``).
    """
    from pydantic import ValidationError

    from lsfsim.scenario import (
        LECTURE_FILTER,
        MAX_SOCKETS,
        Scenario,
        SenderSpec,
        SocketSpec,
        TrafficSpec,
    )

    if traffic is not None and traffic not in TRAFFIC_KINDS:
        raise InputError(f"--traffic: {traffic!r} is not one of {', '.join(TRAFFIC_KINDS)}")
    lecture = traffic is None and pcap is None and model is None
    if pcap and traffic is None:
        traffic = "pcap"
    kind = traffic or "nc"
    if filter_expr is not None and filter_file is not None:
        raise InputError("--filter and --filter-file exclude each other")
    if filter_file is not None:
        check_input_file(filter_file, "--filter-file", regular=False)
    if pcap is not None:
        check_input_file(pcap, "--pcap")
    if model is not None and os.path.exists(model):
        check_input_file(model, "--model", regular=False)
    if sockets > MAX_SOCKETS:
        raise InputError(f"--sockets: {sockets} is more than {MAX_SOCKETS}: every socket is "
                         f"a tap each frame visits, and such a run would take hours")
    try:
        seconds = parse_duration(duration) if duration else None
        work = parse_duration(reader_work) if reader_work else 0.0
    except ValueError as exc:
        raise InputError(f"--duration/--reader-work: {exc}") from None
    traffic_fields: dict[str, Any] = {"kind": kind}
    for key, value in (("rate", rate), ("size", size), ("packets", packets),
                       ("bytes", nbytes), ("duration", seconds), ("pcap", pcap),
                       ("speed", speed)):
        if value is not None:
            traffic_fields[key] = value
    if kind != "nc" and size is None:
        traffic_fields.setdefault("size", 1514)
    sock_fields: dict[str, Any] = {"readers": readers, "reader_work": work, "promisc": promisc,
                                   "cpu": reader_cpu}
    if filter_file is not None:
        sock_fields["filter_file"] = filter_file
    elif filter_expr is not None:
        sock_fields["filter"] = filter_expr
    elif lecture:
        sock_fields["filter"] = LECTURE_FILTER
    if snaplen is not None:
        sock_fields["snaplen"] = snaplen
    if rcvbuf is not None:
        sock_fields["rcvbuf"] = rcvbuf
    try:
        return Scenario(model=model or "testbed", traffic=TrafficSpec(**traffic_fields),
                        sockets=[SocketSpec(**sock_fields) for _ in range(sockets)],
                        senders=[SenderSpec(rate=send_rate, count=send_count)
                                 for _ in range(senders)],
                        napi=not no_napi, seed=seed, drain=not no_drain, rx_ring=rx_ring,
                        max_sim_seconds=seconds if no_drain else None,
                        allow_refused_filter=allow_refused_filter)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"scenario: {where}: {err['msg']}") from None


# each field's command-line option (flag, type, help) in options.py
_OPTION_OF: dict[str, Any] = {
    "model": options.Model, "traffic": options.Traffic, "rate": options.Rate,
    "size": options.Size, "count": options.Count, "nbytes": options.Bytes,
    "duration": options.Duration, "pcap": options.Pcap, "speed": options.Speed,
    "filter_expr": options.Filter, "filter_file": options.FilterFile,
    "allow_refused_filter": options.AllowRefusedFilter, "snaplen": options.Snaplen,
    "rcvbuf": options.Rcvbuf, "rx_ring": options.RxRing, "sockets": options.Sockets,
    "readers": options.Readers, "reader_work": options.ReaderWork,
    "reader_cpu": options.ReaderCpu, "no_napi": options.NoNapi, "promisc": options.Promisc,
    "seed": options.Seed, "no_drain": options.NoDrain, "senders": options.Senders,
    "send_rate": options.SendRate, "send_count": options.SendCount,
}


def _shared_parameters() -> list[inspect.Parameter]:
    return [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                              annotation=_OPTION_OF[f.name])
            for f in fields(ScenarioOptions)]


def scenario_options(func: F) -> F:
    """Give ``func`` every scenario option; it receives them as ``scenario=ScenarioOptions``."""
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
           for p in inspect.signature(func, eval_str=True).parameters.values()
           if p.name != "scenario"]
    shared = _shared_parameters()
    clash = {p.name for p in own} & {p.name for p in shared}
    if clash:
        raise TypeError(f"{func.__name__}: parameters {sorted(clash)} are scenario options")
    names = [p.name for p in shared]

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        given = ScenarioOptions(**{name: kwargs.pop(name) for name in names})
        return func(scenario=given, **kwargs)

    parameters = [*shared, *own]
    wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper  # type: ignore[return-value]
