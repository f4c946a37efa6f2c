"""Quantities with units, as written in model files, and back again for reports.

Model files say ``"350ns"`` or ``"100Mbit/s"`` rather than ``3.5e-07`` so that
a reader can check a figure against its source at a glance.  Everything is
converted to SI base units on the way in: seconds, bytes, bits/s (link rates),
bytes/s (DMA rates), Hz.

Spelling rules:

* a lower-case ``b`` (or ``bit``) is a bit, an upper-case ``B`` (or ``byte``)
  is a byte: ``"100Mb/s"`` = 100e6 bits/s, ``"133MB/s"`` = 133e6 bytes/s;
* ``k``/``K``, ``M``, ``G``, ``T`` are powers of 1000 (network and bus rates
  are decimal), ``Ki``, ``Mi``, ``Gi``, ``Ti`` are powers of 1024;
* ``us``, ``µs`` (micro sign) and ``μs`` (Greek mu) are all microseconds;
* ``"0"`` needs no unit; any other bare number in a string is refused,
  because ``"350"`` could mean ns, µs or bytes.

Python numbers (int/float, not bool) are taken as already being in SI units;
the model loader refuses them in files (see ``lsfsim.config.fields``).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

__all__ = [
    "format_bytes",
    "format_duration",
    "format_rate",
    "parse_bitrate",
    "parse_byterate",
    "parse_duration",
    "parse_frequency",
    "parse_per_byte",
    "parse_per_insn",
    "parse_size",
]

# A number (no inf/nan, no digit separators) followed by an optional unit.
_QUANTITY = re.compile(
    r"^\s*(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<unit>\S*?)\s*$"
)

_DURATION_UNITS: dict[str, Decimal] = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "\u00b5s": Decimal("1e-6"),  # µ MICRO SIGN
    "\u03bcs": Decimal("1e-6"),  # μ GREEK SMALL LETTER MU
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
}

_DEC = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_BIN = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_PREFIX = {**_DEC, **_BIN}

_SIZE_UNITS: dict[str, int] = {"": 1, "B": 1, "byte": 1, "bytes": 1}
_SIZE_UNITS.update({p + "B": m for p, m in _PREFIX.items() if p})

_BIT_SUFFIXES = ("bit/s", "b/s", "bps")
_BYTE_SUFFIXES = ("B/s", "Bps", "byte/s")
_RATE_RE = re.compile(r"^(?P<prefix>Ki|Mi|Gi|Ti|k|K|M|G|T)?(?P<base>bit/s|b/s|bps|B/s|Bps|byte/s)$")
_FREQ_RE = re.compile(r"^(?P<prefix>k|K|M|G)?Hz$")

_PER_BYTE = ("B", "byte", "bytes")
_PER_INSN = ("insn", "insns", "instruction", "instructions")

_DURATION_HINT = "a duration like '350ns' or '1.2us'"
_PER_BYTE_HINT = "a per-byte cost like '0.3ns/B'"
_PER_INSN_HINT = "a per-instruction cost like '4ns/insn'"
_SIZE_HINT = "a size in bytes like '1544', '64KiB' or '2MiB'"
_BITRATE_HINT = "a link rate like '100Mbit/s' or '1Gbit/s'"
_BYTERATE_HINT = "a transfer rate like '133MB/s'"
_FREQ_HINT = "a frequency like '2.6GHz'"


def _bad(hint: str, value: object, why: str = "") -> ValueError:
    tail = f" ({why})" if why else ""
    return ValueError(f"expected {hint}, got {value!r}{tail}")


def _number(value: object, hint: str) -> float | None:
    """A Python number taken as SI already; None if ``value`` is a string."""
    if isinstance(value, bool):
        raise _bad(hint, value)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise _bad(hint, value)
        if value < 0:
            raise _bad(hint, value, "negative")
        return float(value)
    if isinstance(value, str):
        return None
    raise _bad(hint, value)


def _split(text: str, hint: str) -> tuple[Decimal, str]:
    m = _QUANTITY.match(text)
    if m is None:
        raise _bad(hint, text)
    try:
        num = Decimal(m["num"])
    except InvalidOperation:  # pragma: no cover - the regex admits only valid numbers
        raise _bad(hint, text) from None
    if num < 0:
        raise _bad(hint, text, "negative")
    return num, m["unit"]


def parse_duration(value: str | float) -> float:
    """``"350ns"``, ``"1.2us"``, ``"1.2µs"``, ``"5ms"``, ``"2s"``, ``"0"`` -> seconds."""
    num = _number(value, _DURATION_HINT)
    if num is not None:
        return num
    assert isinstance(value, str)
    n, unit = _split(value, _DURATION_HINT)
    if unit == "":
        if n == 0:
            return 0.0
        raise _bad(_DURATION_HINT, value, "no unit")
    scale = _DURATION_UNITS.get(unit)
    if scale is None:
        raise _bad(_DURATION_HINT, value)
    return float(n * scale)


def _parse_per(value: str | float, suffixes: tuple[str, ...], hint: str) -> float:
    num = _number(value, hint)
    if num is not None:
        return num
    assert isinstance(value, str)
    head, slash, tail = value.strip().rpartition("/")
    if not slash:
        n, unit = _split(value, hint)
        if n == 0 and unit == "":
            return 0.0
        raise _bad(hint, value)
    if tail.strip() not in suffixes:
        raise _bad(hint, value)
    try:
        return parse_duration(head)
    except ValueError:
        raise _bad(hint, value) from None


def parse_per_byte(value: str | float) -> float:
    """``"0.3ns/B"`` (also ``/byte``) -> seconds per byte."""
    return _parse_per(value, _PER_BYTE, _PER_BYTE_HINT)


def parse_per_insn(value: str | float) -> float:
    """``"4ns/insn"`` -> seconds per executed BPF instruction."""
    return _parse_per(value, _PER_INSN, _PER_INSN_HINT)


def parse_size(value: str | float) -> int:
    """``1544``, ``"1544"``, ``"64KiB"``, ``"1MB"``, ``"2MiB"`` -> bytes (int).

    ``kB``/``KB``/``MB``/``GB`` are decimal, ``KiB``/``MiB``/``GiB`` binary.
    """
    if isinstance(value, float):
        if not value.is_integer():
            raise _bad(_SIZE_HINT, value, "not a whole number of bytes")
        value = int(value)
    num = _number(value, _SIZE_HINT)
    if num is not None:
        return int(num)
    assert isinstance(value, str)
    n, unit = _split(value, _SIZE_HINT)
    scale = _SIZE_UNITS.get(unit)
    if scale is None:
        raise _bad(_SIZE_HINT, value)
    nbytes = n * scale
    if nbytes != nbytes.to_integral_value():
        raise _bad(_SIZE_HINT, value, "not a whole number of bytes")
    return int(nbytes)


def _parse_rate(value: str | float, hint: str, want_bits: bool) -> float:
    num = _number(value, hint)
    if num is not None:
        rate = num
    else:
        assert isinstance(value, str)
        n, unit = _split(value, hint)
        m = _RATE_RE.match(unit)
        if m is None:
            raise _bad(hint, value)
        scaled = n * _PREFIX[m["prefix"] or ""]
        is_bits = m["base"] in _BIT_SUFFIXES
        if is_bits and not want_bits:
            scaled /= 8
        elif not is_bits and want_bits:
            scaled *= 8
        rate = float(scaled)
    if rate <= 0:
        raise _bad(hint, value, "a rate must be positive")
    return rate


def parse_bitrate(value: str | float) -> float:
    """A link rate -> bits/s.  ``"100Mbit/s"``, ``"100Mb/s"``, ``"1Gbit/s"``, ``"10Gb/s"``;
    a rate in bytes (``"12.5MB/s"``) is multiplied by 8."""
    return _parse_rate(value, _BITRATE_HINT, want_bits=True)


def parse_byterate(value: str | float) -> float:
    """A DMA/bus rate -> bytes/s.  ``"133MB/s"``; a rate in bits (``"1Gbit/s"``) is divided by 8."""
    return _parse_rate(value, _BYTERATE_HINT, want_bits=False)


def parse_frequency(value: str | float) -> float:
    """``"2.6GHz"``, ``"33MHz"`` -> Hz."""
    num = _number(value, _FREQ_HINT)
    if num is not None:
        hz = num
    else:
        assert isinstance(value, str)
        n, unit = _split(value, _FREQ_HINT)
        m = _FREQ_RE.match(unit)
        if m is None:
            raise _bad(_FREQ_HINT, value)
        hz = float(n * _PREFIX[m["prefix"] or ""])
    if hz <= 0:
        raise _bad(_FREQ_HINT, value, "must be positive")
    return hz


# --- formatting ---------------------------------------------------------------------------


def _three_digits(x: float) -> str:
    """Three significant digits without an exponent: 1.20, 12.5, 350."""
    x = float(f"{x:.3g}")  # round first, so that 99.96 becomes 100, not "100.0"
    ax = abs(x)
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _scaled(value: float, units: list[tuple[float, str]]) -> str:
    """Pick the largest unit that leaves at least 1 (after rounding) and format."""
    ax = abs(value)
    chosen = units[0]
    for scale, name in units:
        if ax >= scale:
            chosen = (scale, name)
    scale, name = chosen
    text = _three_digits(value / scale)
    # 999.7 ns rounds to "1000": move to the next unit up.
    if abs(float(text)) >= 1000:
        bigger = [u for u in units if u[0] > scale]
        if bigger:
            scale, name = bigger[0]
            text = _three_digits(value / scale)
    return f"{text} {name}"


def format_duration(seconds: float) -> str:
    """``1.2e-6`` -> ``"1.20 µs"``, ``3.5e-7`` -> ``"350 ns"``, ``0`` -> ``"0 s"``."""
    if seconds == 0:
        return "0 s"
    units = [(1e-9, "ns"), (1e-6, "\u00b5s"), (1e-3, "ms"), (1.0, "s")]
    if abs(seconds) < 1e-9:
        return f"{_three_digits(seconds / 1e-9)} ns"
    return _scaled(seconds, units)


def format_rate(value: float, unit: str = "bit/s") -> str:
    """Decimal prefixes: ``1e8`` -> ``"100 Mbit/s"``; ``format_rate(148810, "pkt/s")`` ->
    ``"149 kpkt/s"``."""
    units = [(1.0, unit), (1e3, "k" + unit), (1e6, "M" + unit), (1e9, "G" + unit),
             (1e12, "T" + unit)]
    if value == 0:
        return f"0 {unit}"
    if abs(value) < 1:
        return f"{_three_digits(value)} {unit}"
    return _scaled(value, units)


def format_bytes(nbytes: float) -> str:
    """Exact below 10 KiB (frame and buffer sizes read better so), binary prefixes above:
    ``1544`` -> ``"1544 B"``, ``124928`` -> ``"122 KiB"``."""
    if abs(nbytes) < 10 * 1024:
        return f"{nbytes:g} B" if isinstance(nbytes, float) else f"{nbytes} B"
    units = [(1.0, "B"), (2.0**10, "KiB"), (2.0**20, "MiB"), (2.0**30, "GiB"), (2.0**40, "TiB")]
    return _scaled(float(nbytes), units)
