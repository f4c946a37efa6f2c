"""Unit strings in model files -> SI numbers, and the report formatters.

Expected values are hand arithmetic (1.2 us = 1.2e-6 s, 64 KiB = 65536 B, ...).
"""

from __future__ import annotations

import math

import pytest

from lsfsim.config.units import (
    format_bytes,
    format_duration,
    format_rate,
    parse_bitrate,
    parse_byterate,
    parse_duration,
    parse_frequency,
    parse_per_byte,
    parse_per_insn,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("350ns", 350e-9),
        ("1.2us", 1.2e-6),
        ("1.2\u00b5s", 1.2e-6),  # micro sign
        ("1.2\u03bcs", 1.2e-6),  # Greek mu
        ("5ms", 5e-3),
        ("2s", 2.0),
        ("0", 0.0),
        ("0ns", 0.0),
        ("350 ns", 350e-9),
        (".5us", 0.5e-6),
        ("1e3ns", 1e-6),
        (2.5e-7, 2.5e-7),  # a Python number is SI already
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-15, abs=0)


def test_parse_duration_is_correctly_rounded() -> None:
    # Decimal scaling: "1.2us" is the double nearest 1.2e-6, not 1.2 * 1e-6.
    assert parse_duration("1.2us") == 1.2e-6
    assert parse_duration("0.3ns") == 0.3e-9


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("5MB", ""),
        ("5 parsecs", ""),
        ("-3us", " (negative)"),
        ("350", " (no unit)"),
        ("", ""),
        ("3 us s", ""),
        ("nan", ""),
        ("1.2 microseconds", ""),
    ],
)
def test_parse_duration_rejects(text: str, why: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_duration(text)
    assert str(exc.value) == f"expected a duration like '350ns' or '1.2us', got {text!r}{why}"


@pytest.mark.parametrize("value", [True, None, [1], -1.0, math.inf, math.nan])
def test_parse_duration_rejects_non_strings(value: object) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(value)  # type: ignore[arg-type]


def test_per_byte_and_per_insn() -> None:
    assert parse_per_byte("0.3ns/B") == pytest.approx(0.3e-9)
    assert parse_per_byte("0.3ns/byte") == pytest.approx(0.3e-9)
    assert parse_per_byte("0.05 ns / B") == pytest.approx(0.05e-9)
    assert parse_per_byte("0") == 0.0
    assert parse_per_insn("4ns/insn") == pytest.approx(4e-9)
    assert parse_per_insn("100ns/insn") == pytest.approx(100e-9)
    with pytest.raises(ValueError, match=r"expected a per-byte cost like '0.3ns/B', got '0.3ns'"):
        parse_per_byte("0.3ns")
    with pytest.raises(ValueError, match="per-byte"):
        parse_per_byte("0.3ns/insn")
    with pytest.raises(ValueError, match="per-byte"):
        parse_per_byte("0.3MB/B")
    with pytest.raises(ValueError, match=r"per-instruction cost like '4ns/insn', got '4ns'"):
        parse_per_insn("4ns")
    with pytest.raises(ValueError, match="per-instruction"):
        parse_per_insn("-4ns/insn")


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [
        ("1544", 1544),
        (1544, 1544),
        ("64KiB", 64 * 1024),
        ("1MB", 1_000_000),
        ("2MiB", 2 * 1024 * 1024),
        ("1.5KiB", 1536),
        ("124928B", 124928),
        ("1GiB", 2**30),
        ("0", 0),
    ],
)
def test_parse_size(text: str | int, nbytes: int) -> None:
    got = parse_size(text)
    assert got == nbytes
    assert isinstance(got, int)


@pytest.mark.parametrize("text", ["5ms", "1.5", "0.5B", "-1", "12 parsecs", "1KiBB"])
def test_parse_size_rejects(text: str) -> None:
    hint = r"expected a size in bytes like '1544', '64KiB' or '2MiB'"
    with pytest.raises(ValueError, match=hint):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "bits", "nbytes"),
    [
        ("100Mbit/s", 100e6, 12.5e6),
        ("100Mb/s", 100e6, 12.5e6),
        ("100Mbps", 100e6, 12.5e6),
        ("1Gbit/s", 1e9, 125e6),
        ("10Gb/s", 10e9, 1.25e9),
        ("133MB/s", 133e6 * 8, 133e6),  # bytes: x8 for a link rate
        ("12.5MB/s", 100e6, 12.5e6),
        ("1kbit/s", 1e3, 125.0),
    ],
)
def test_rates(text: str, bits: float, nbytes: float) -> None:
    assert parse_bitrate(text) == pytest.approx(bits)
    assert parse_byterate(text) == pytest.approx(nbytes)


@pytest.mark.parametrize("text", ["100M", "100MHz", "5ms", "0Mbit/s", "-1Gbit/s", "100 Mbit"])
def test_rates_reject(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected a link rate like '100Mbit/s' or '1Gbit/s'"):
        parse_bitrate(text)
    with pytest.raises(ValueError, match=r"expected a transfer rate like '133MB/s'"):
        parse_byterate(text)


def test_frequency() -> None:
    assert parse_frequency("2.6GHz") == pytest.approx(2.6e9)
    assert parse_frequency("33MHz") == pytest.approx(33e6)
    for bad in ("2.6", "2.6GB", "0GHz", "-1Hz"):
        with pytest.raises(ValueError, match=r"expected a frequency like '2.6GHz'"):
            parse_frequency(bad)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1.2e-6, "1.20 \u00b5s"),
        (350e-9, "350 ns"),
        (6.72e-6, "6.72 \u00b5s"),  # a 60-byte frame at 100 Mb/s
        (123.04e-6, "123 \u00b5s"),
        (0.9997e-6, "1.00 \u00b5s"),  # rounds up into the next unit
        (99.96e-9, "100 ns"),
        (0.3e-9, "0.30 ns"),
        (12.5e-3, "12.5 ms"),
        (2.0, "2.00 s"),
        (0.0, "0 s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_rate_and_bytes() -> None:
    assert format_rate(100e6) == "100 Mbit/s"
    assert format_rate(1e9) == "1.00 Gbit/s"
    assert format_rate(148809.5, "pkt/s") == "149 kpkt/s"  # 1e8 / (84 * 8)
    assert format_rate(0) == "0 bit/s"
    assert format_bytes(1544) == "1544 B"
    assert format_bytes(124928) == "122 KiB"  # 124928 / 1024 = 122.0
    assert format_bytes(2**20) == "1.00 MiB"
    assert format_bytes(10239) == "10239 B"
    assert format_bytes(10240) == "10.0 KiB"


def test_format_then_parse_round_trip() -> None:
    for seconds in (350e-9, 1.2e-6, 5e-3):
        text = format_duration(seconds).replace(" ", "")
        assert parse_duration(text) == pytest.approx(seconds, rel=5e-3)
