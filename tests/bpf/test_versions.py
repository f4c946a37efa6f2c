"""semantics(): version strings, and every change at the release the reference table gives.

Expected values come from the version table (cbpf-versions.md, summarised in
docs/bpf-versions.md), not from the code: each boundary is asserted on both sides.
"""

from __future__ import annotations

import platform

import pytest

from lsfsim.bpf.isa import (
    SKF_AD_ALU_XOR_X,
    SKF_AD_CPU,
    SKF_AD_HATYPE,
    SKF_AD_MARK,
    SKF_AD_PAY_OFFSET,
    SKF_AD_PROTOCOL,
    SKF_AD_QUEUE,
    SKF_AD_RANDOM,
    SKF_AD_RXHASH,
    SKF_AD_VLAN_TAG,
    SKF_AD_VLAN_TAG_PRESENT,
    SKF_AD_VLAN_TPID,
)
from lsfsim.bpf.versions import parse_release, semantics


@pytest.mark.parametrize("text, release", [
    ("2.6.33", (2, 6, 33)),
    ("3.10", (3, 10, 0)),
    ("6.18.44-fc-v595", (6, 18, 44)),
    ("4.4.0-21-generic", (4, 4, 0)),
    ("2.6.33.3", (2, 6, 33)),
    (" 5.10 ", (5, 10, 0)),
    ("6.1+", (6, 1, 0)),
])
def test_version_strings(text: str, release: tuple[int, int, int]) -> None:
    assert parse_release(text) == release
    assert semantics(text).libpcap is False


@pytest.mark.parametrize("bad", ["", "linux", "3", "6.x", "v6.1", "2.6.33rc1", "1.2.3.4.5",
                                 "6..1"])
def test_unknown_version_string_is_a_value_error_naming_it(bad: str) -> None:
    with pytest.raises(ValueError) as err:
        semantics(bad)
    assert repr(bad) in str(err.value)


def test_non_string_and_too_old_versions_are_refused() -> None:
    with pytest.raises(ValueError):
        semantics(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="older than 2.6.33"):
        semantics("2.6.32")


def test_libpcap_and_running_kernel() -> None:
    assert semantics("libpcap").libpcap
    assert semantics("LibPcap") == semantics("libpcap")
    assert semantics(platform.release()).libpcap is False


def test_equal_eras_share_key_and_compare_equal() -> None:
    assert semantics("6.9") == semantics("6.18.44-fc")
    assert semantics("6.9").key == semantics("6.18").key == "6.8"
    assert semantics("3.10.4").key == "3.10"
    assert semantics("3.12").key == "3.10"
    assert semantics("2.6.33.3").key == "2.6.33"
    assert semantics("3.12") != semantics("3.13")  # reciprocal divide ends
    assert semantics("6.18").version == "6.18"


def _anc(kernel: str) -> frozenset[int]:
    return semantics(kernel).ancillary


@pytest.mark.parametrize("offset, before, since", [
    (SKF_AD_HATYPE, "2.6.34", "2.6.35"),
    (SKF_AD_RXHASH, "2.6.37", "2.6.38"),
    (SKF_AD_CPU, "2.6.37", "2.6.38"),
    (SKF_AD_ALU_XOR_X, "3.4", "3.5"),
    (SKF_AD_VLAN_TAG, "3.7", "3.8"),
    (SKF_AD_VLAN_TAG_PRESENT, "3.7", "3.8"),
    (SKF_AD_PAY_OFFSET, "3.9", "3.10"),
    (SKF_AD_RANDOM, "3.15", "3.16"),
    (SKF_AD_VLAN_TPID, "4.0", "4.1"),
])
def test_ancillary_offsets_appear_at_their_release(offset: int, before: str, since: str) -> None:
    assert offset not in _anc(before)
    assert offset in _anc(since)


def test_baseline_ancillary_set() -> None:
    assert _anc("2.6.33") == frozenset(range(0, 28, 4))  # PROTOCOL .. QUEUE
    assert {SKF_AD_PROTOCOL, SKF_AD_MARK, SKF_AD_QUEUE} <= _anc("2.6.33")
    assert _anc("6.18") == frozenset(range(0, 64, 4))  # SKF_AD_MAX 64
    assert _anc("libpcap") == frozenset()


@pytest.mark.parametrize("field, before, since, old, new", [
    ("mod_xor", "3.6", "3.7", False, True),
    ("anc_runtime", "2.6.37", "2.6.38", True, False),
    ("anc_reject_unknown", "3.9", "3.10", False, True),
    ("mem_uninit", "2.6.36", "2.6.37", "garbage", "zero"),
    ("mem_uninit", "2.6.37", "2.6.38", "zero", "reject"),
    ("negoff_first_byte", "2.6.37", "2.6.38", True, False),
    ("div_reciprocal", "2.6.37", "2.6.38", False, True),
    ("div_reciprocal", "3.12", "3.13", True, False),
    ("shift_k_reject", "4.4", "4.5", False, True),
    ("len_check_first", "3.16", "3.17", False, True),
    ("optmem_max", "6.7", "6.8", 20480, 131072),
    ("optmem_charge", "3.14", "3.15", "classic", "both"),
    ("optmem_charge", "3.16", "3.17", "both", "converted"),
    ("filter_header", "2.6.39", "3.0", 24, 32),
    ("converter_rejects_max", "3.14", "3.15", False, True),
    ("converter_rejects_max", "3.15", "3.16", True, False),
    ("nla_helper", "3.14", "3.15", False, True),
    ("ld_abs_inline", "4.17", "4.18", False, True),
    ("vlan_mode", "4.20", "5.0", "cfi", "flag"),
    ("vlan_mode", "6.1", "6.2", "flag", "all"),
])
def test_each_change_at_its_release(field: str, before: str, since: str, old, new) -> None:
    assert getattr(semantics(before), field) == old
    assert getattr(semantics(since), field) == new
    # and the point release just before the change still has the old behaviour
    last = before + ".99"
    assert getattr(semantics(last), field) == old


def test_libpcap_semantics() -> None:
    sem = semantics("libpcap")
    assert sem.mod_xor and sem.shift_x_ge32_zero and sem.max_insns is None
    assert not sem.shift_k_reject and not sem.div_reciprocal and not sem.ancillary
    assert sem.key == "libpcap" and sem.name == "libpcap"
