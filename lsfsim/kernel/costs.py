"""The cost table as fast attribute look-ups for the hot path.

The model file's ``kernel.costs`` maps kernel function names to ``Cost``
(fixed, per byte, per filter instruction).  Here each becomes plain floats:
``costs.packet_rcv`` (fixed seconds), ``costs.memcpy_per_byte`` and
``costs.sk_run_filter_per_insn``.  Leading underscores of kernel names are
dropped (``__napi_schedule`` -> ``costs.napi_schedule``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Costs:
    """Attribute view of a cost table, in seconds."""

    def __init__(self, table: Mapping[str, Any]) -> None:
        for name, cost in table.items():
            attr = name.lstrip("_")
            setattr(self, attr, float(cost.fixed))
            setattr(self, attr + "_per_byte", float(cost.per_byte))
            setattr(self, attr + "_per_insn", float(cost.per_insn))

    def __getattr__(self, name: str) -> float:
        raise AttributeError(f"the cost table has no entry {name!r}")
