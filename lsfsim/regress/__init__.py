"""lsfsim.regress: filter regression suites, run under load on the simulated machine.

A suite (TOML, see docs/regress.md) names a machine, some traffic, the replay
speeds ("loads") and the filter programs to check.  For every filter it
compares the program's verdict on every frame with a reference (libpcap's
``bpf_filter`` for an expression, lsfsim's machine for a program file), counts
the frames the program accepts, then replays the traffic at each load and
checks that no accepted frame is lost beyond the allowed ratio and that the
recvfrom-side latency stays within its bound.

Modules, one job each: ``suite`` (schema and loader), ``traffic`` (the frames as
the NIC receives them), ``verdicts`` (programs, references, offline verdicts),
``fates`` (what became of each frame in a run), ``runner`` (items, the parallel
map, the checks), ``junit`` (JUnit XML), ``update`` (``--update`` with tomlkit),
``pytest_plugin`` (suites as pytest items, fixtures).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Suite", "SuiteError", "load_suite"]


def __getattr__(name: str) -> Any:
    # Lazily: the pytest plugin in this package is loaded by every pytest session,
    # which should not pay for pydantic and the loader until a suite is collected.
    if name in __all__:
        from lsfsim.regress import suite

        return getattr(suite, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
