"""Parsing of ``lsfsim trace`` / ``lsfsim lifecycle`` options: frame indexes, time windows.

Bad values raise InputError, naming the option.
"""

from __future__ import annotations

from lsfsim.cli.common import InputError
from lsfsim.config.units import parse_duration


def parse_packets(spec: str, option: str = "--packets") -> frozenset[int]:
    """``"3:5"`` (inclusive), ``"7"``, ``"1,4:6"`` -> frame indexes."""
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if ":" in part:
                lo_s, hi_s = part.split(":", 1)
                lo, hi = int(lo_s), int(hi_s)
                if lo < 0 or hi < lo:
                    raise ValueError
                out.update(range(lo, hi + 1))
            else:
                n = int(part)
                if n < 0:
                    raise ValueError
                out.add(n)
        except ValueError:
            raise InputError(f"{option}: {part!r} is not N or N:M (frame indexes, "
                             f"0-based, inclusive)") from None
    if not out:
        raise InputError(f"{option}: {spec!r} selects no frame")
    return frozenset(out)


def parse_window(spec: str) -> tuple[float, float]:
    """``"0:2ms"``, ``"1ms:"`` -> (t0, t1) in seconds of simulated time."""
    if ":" not in spec:
        raise InputError(f"--window: {spec!r} is not T0:T1 (e.g. 0:2ms)")
    lo_s, hi_s = spec.split(":", 1)
    try:
        lo = parse_duration(lo_s) if lo_s.strip() else 0.0
        hi = parse_duration(hi_s) if hi_s.strip() else float("inf")
    except ValueError as exc:
        raise InputError(f"--window: {exc}") from None
    if hi < lo:
        raise InputError(f"--window: {spec!r} ends before it starts")
    return lo, hi
