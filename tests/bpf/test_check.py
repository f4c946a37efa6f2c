"""sk_chk_filter: every rule accepted and refused, per era, with errno and pc.

Expected verdicts follow the kernel source rules (linux-rx-path-facts §7.2,
cbpf-versions §3-4) and are computed by hand; the kernel-marked tests put the
same programs to the running kernel's SO_ATTACH_FILTER.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsfsim.bpf.check import check_load_and_stores, converted_length, sk_chk_filter
from lsfsim.bpf.errors import FilterError
from lsfsim.bpf.isa import CODES_2_6_33, CODES_MOD_XOR, SKF_AD_OFF, SKF_NET_OFF, Insn, encode
from lsfsim.bpf.versions import semantics

U32 = 0xFFFFFFFF
AD = SKF_AD_OFF & U32
RET1 = Insn(0x06, 0, 0, 1)
RETA = Insn(0x16, 0, 0, 0)
ADD1 = Insn(0x04, 0, 0, 1)
LDH12 = Insn(0x28, 0, 0, 12)
ALL = ["2.6.33", "2.6.37", "2.6.38", "3.0", "3.7", "3.10", "3.15", "3.17", "4.5", "4.18",
       "6.18"]


def verdict(insns, kernel: str) -> tuple[str, int | None] | None:
    try:
        sk_chk_filter(insns, semantics(kernel))
    except FilterError as exc:
        return exc.errno, exc.pc
    return None


# --- length and optmem --------------------------------------------------------------
@pytest.mark.parametrize("kernel", ALL + ["libpcap"])
def test_empty_program_is_einval(kernel: str) -> None:
    assert verdict([], kernel) == ("EINVAL", None)


@pytest.mark.parametrize("kernel", ["3.17", "4.5", "6.18"])
def test_length_limit_is_checked_first_from_3_17(kernel: str) -> None:
    # 4096 instructions fit the checker; optmem decides (6.8+: 131072 is enough)
    want = None if kernel == "6.18" else ("ENOMEM", None)
    assert verdict([ADD1] * 4095 + [RET1], kernel) == want
    assert verdict([ADD1] * 4096 + [RET1], kernel) == ("EINVAL", None)
    assert verdict([ADD1] * 6000 + [RET1], kernel) == ("EINVAL", None)


@pytest.mark.parametrize("kernel, header", [("2.6.33", 24), ("2.6.39", 24), ("3.0", 32),
                                            ("3.14", 32)])
def test_optmem_charge_before_the_checker_up_to_3_14(kernel: str, header: int) -> None:
    # sock_kmalloc(8n + header) succeeds iff size < optmem_max (20480) on a fresh socket.
    longest = (20480 - 1 - header) // 8
    assert longest == (2556 if header == 24 else 2555)
    assert verdict([ADD1] * (longest - 1) + [RET1], kernel) is None
    assert verdict([ADD1] * longest + [RET1], kernel) == ("ENOMEM", None)
    # ENOMEM wins over EINVAL for too long programs, and over a bad instruction
    assert verdict([ADD1] * 5000 + [RET1], kernel) == ("ENOMEM", None)
    assert verdict([Insn(0xFF, 0, 0, 0)] * 3000, kernel) == ("ENOMEM", None)


def test_3_15_converter_refuses_4096_instructions() -> None:
    roomy = dataclasses.replace(semantics("3.15"), optmem_max=10**7)
    with pytest.raises(FilterError) as err:
        sk_chk_filter([ADD1] * 4095 + [RET1], roomy)
    assert err.value.errno == "EINVAL" and err.value.pc is None
    sk_chk_filter([ADD1] * 4094 + [RET1], roomy)
    sk_chk_filter([ADD1] * 4095 + [RET1], dataclasses.replace(semantics("3.16"),
                                                              optmem_max=10**7))
    # with the default optmem the classic copy is refused first
    assert verdict([ADD1] * 4095 + [RET1], "3.15") == ("ENOMEM", None)


def test_6_18_converted_size_rule() -> None:
    # 4.18+ converter, by hand: prologue 3 + 4 (packet loads seen), ldh [12] = 14,
    # add = 1, ret #k = 2; charge 96 + 8m must stay below optmem_max 131072.
    def m(n_ld: int, n_add: int) -> int:
        return 3 + (4 if n_ld else 0) + 14 * n_ld + n_add + 2

    assert converted_length([LDH12] * 5 + [ADD1] * 3 + [RET1], semantics("6.18")) == m(5, 3)
    assert 96 + 8 * m(1168, 10) < 131072 <= 96 + 8 * m(1168, 11)
    assert verdict([LDH12] * 1168 + [ADD1] * 10 + [RET1], "6.18") is None
    assert verdict([LDH12] * 1168 + [ADD1] * 11 + [RET1], "6.18") == ("ENOMEM", None)
    # 6.7: optmem 20480 and header 72: 72 + 8m < 20480, so m <= 2550 = 3 + n + 2
    assert verdict([ADD1] * 2545 + [RET1], "6.7") is None
    assert verdict([ADD1] * 2546 + [RET1], "6.7") == ("ENOMEM", None)


def test_converter_jump_offsets_must_fit_s16() -> None:
    # eBPF address of the jeq after k ldh: 7 + 14k; the first pass sees the target as 0,
    # so the offset -addr - 1 must be >= -32768.
    assert verdict([LDH12] * 2340 + [Insn(0x15, 0, 0, 1), RET1], "6.18") == ("ENOMEM", None)
    assert verdict([LDH12] * 2341 + [Insn(0x15, 0, 0, 1), RET1], "6.18") == ("EINVAL", 2341)
    # a JA over 2341 loads: offset 14 * 2341 = 32774 > 32767
    assert verdict([Insn(0x05, 0, 0, 2340)] + [LDH12] * 2340 + [RET1], "6.18") == \
        ("ENOMEM", None)
    assert verdict([Insn(0x05, 0, 0, 2341)] + [LDH12] * 2341 + [RET1], "6.18") == \
        ("EINVAL", 0)
    # not before 4.18 (loads convert to one instruction there)
    assert verdict([LDH12] * 2400 + [Insn(0x15, 0, 0, 1), RET1], "4.17") is None


# --- opcodes ------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", ALL)
def test_every_valid_code_is_accepted_and_no_other(kernel: str) -> None:
    sem = semantics(kernel)
    valid = CODES_2_6_33 | (CODES_MOD_XOR if sem.mod_xor else frozenset())
    for code in range(0x100):
        k = 1 if code & 0xE0 != 0x60 else 0  # DIV/MOD K need k != 0; MEM k < 16
        prog = [Insn(0x02, 0, 0, 0), Insn(code, 0, 0, k if code != 0x05 else 0), RET1]
        got = verdict(prog, kernel)
        if code in valid:
            assert got is None, hex(code)
        else:
            assert got == ("EINVAL", 1), hex(code)
    assert verdict([RET1, Insn(0x106, 0, 0, 0)], kernel) == ("EINVAL", 1)  # u16 code


@pytest.mark.parametrize("code", sorted(CODES_MOD_XOR))
def test_mod_xor_from_3_7(code: int) -> None:
    prog = [Insn(0x00, 0, 0, 7), Insn(code, 0, 0, 3), RETA]
    assert verdict(prog, "3.6") == ("EINVAL", 1)
    assert verdict(prog, "3.7") is None
    assert verdict(prog, "libpcap") is None


@pytest.mark.parametrize("code, since", [(0x34, "2.6.33"), (0x94, "3.7")])
def test_division_by_constant_zero(code: int, since: str) -> None:
    assert verdict([ADD1, Insn(code, 0, 0, 0), RETA], since) == ("EINVAL", 1)
    assert verdict([ADD1, Insn(code, 0, 0, 1), RETA], since) is None
    assert verdict([ADD1, Insn(code, 0, 0, 0), RETA], "libpcap") == ("EINVAL", 1)
    assert verdict([ADD1, Insn(code | 0x08, 0, 0, 0), RETA], since) is None  # X form


@pytest.mark.parametrize("code", [0x60, 0x61, 0x02, 0x03])
@pytest.mark.parametrize("kernel", ["2.6.33", "6.18", "libpcap"])
def test_scratch_slot_range(code: int, kernel: str) -> None:
    store = [Insn(0x02, 0, 0, 15)] if code in (0x60, 0x61) else []
    good = store + [Insn(code, 0, 0, 15), RET1]
    assert verdict(good, kernel) is None
    bad = [Insn(code, 0, 0, 16), RET1]
    assert verdict(bad, kernel) == ("EINVAL", 0)
    assert verdict([Insn(code, 0, 0, U32), RET1], kernel) == ("EINVAL", 0)


@pytest.mark.parametrize("kernel", ["2.6.33", "3.10", "6.18"])
def test_ja_range_unsigned(kernel: str) -> None:
    # flen 4, JA at pc 1: k must be < flen - pc - 1 = 2
    base = [ADD1, None, RET1, RET1]
    for k, want in ((0, None), (1, None), (2, ("EINVAL", 1)), (U32, ("EINVAL", 1)),
                    (0x80000000, ("EINVAL", 1))):
        prog = list(base)
        prog[1] = Insn(0x05, 0, 0, k)
        assert verdict(prog, kernel) == want, k


@pytest.mark.parametrize("kernel", ["2.6.33", "6.18", "libpcap"])
@pytest.mark.parametrize("code", [0x15, 0x1D, 0x25, 0x2D, 0x35, 0x3D, 0x45, 0x4D])
def test_conditional_targets(kernel: str, code: int) -> None:
    # flen 4, jump at pc 1: pc + j + 1 < 4, so j <= 1
    for jt, jf, want in ((1, 1, None), (0, 0, None), (2, 0, ("EINVAL", 1)),
                         (0, 2, ("EINVAL", 1)), (255, 255, ("EINVAL", 1))):
        prog = [ADD1, Insn(code, jt, jf, 5), RET1, RET1]
        assert verdict(prog, kernel) == want, (jt, jf)


@pytest.mark.parametrize("kernel", ["2.6.33", "3.10", "6.18", "libpcap"])
def test_last_instruction_must_be_ret(kernel: str) -> None:
    assert verdict([RET1, ADD1], kernel) == ("EINVAL", 1)
    assert verdict([ADD1, ADD1, Insn(0x15, 0, 0, 0), ADD1], kernel) == ("EINVAL", 3)
    assert verdict([ADD1, RETA], kernel) is None
    # an instruction error earlier wins over the missing RET
    assert verdict([ADD1, Insn(0x34, 0, 0, 0), ADD1], kernel) == ("EINVAL", 1)


# --- check_load_and_stores (2.6.38+) ------------------------------------------------
READ_UNWRITTEN = [Insn(0x60, 0, 0, 3), RETA]


def test_unwritten_scratch_read_by_era() -> None:
    assert verdict(READ_UNWRITTEN, "2.6.36") is None
    assert verdict(READ_UNWRITTEN, "2.6.37") is None
    assert verdict(READ_UNWRITTEN, "2.6.38") == ("EINVAL", 0)
    assert verdict(READ_UNWRITTEN, "6.18") == ("EINVAL", 0)
    assert verdict(READ_UNWRITTEN, "libpcap") is None  # bpf_validate does not look


@pytest.mark.parametrize("prog, want", [
    # written first: fine
    ([Insn(0x02, 0, 0, 3), Insn(0x61, 0, 0, 3), RETA], None),
    # stored on the fall-through path only: the jump skips the store
    ([Insn(0x15, 1, 0, 0), Insn(0x02, 0, 0, 3), Insn(0x60, 0, 0, 3), RETA], ("EINVAL", 2)),
    # stored on both paths before the join
    ([Insn(0x15, 2, 0, 0), Insn(0x02, 0, 0, 3), Insn(0x05, 0, 0, 1), Insn(0x03, 0, 0, 3),
      Insn(0x60, 0, 0, 3), RETA], None),
    # another slot does not count
    ([Insn(0x02, 0, 0, 4), Insn(0x60, 0, 0, 3), RETA], ("EINVAL", 1)),
    # a RET does not reset the running mask: the unreachable read after it passes
    ([Insn(0x02, 0, 0, 3), RETA, Insn(0x60, 0, 0, 3), RETA], None),
    # path-insensitive: both branches of the jump lead to the read, one without a store
    ([Insn(0x15, 0, 1, 7), Insn(0x02, 0, 0, 0), Insn(0x60, 0, 0, 0), RETA], ("EINVAL", 2)),
])
def test_check_load_and_stores(prog, want) -> None:
    assert verdict(prog, "2.6.38") == want
    assert verdict(prog, "2.6.37") is None
    if want:
        with pytest.raises(FilterError):
            check_load_and_stores(prog)


# --- ancillary offsets (3.10+) and shifts (4.5+) ---------------------------------------
@pytest.mark.parametrize("code", [0x20, 0x28, 0x30])
def test_unknown_ancillary_refused_from_3_10(code: int) -> None:
    unknown = [Insn(code, 0, 0, AD + 64), RETA]
    assert verdict(unknown, "3.9") is None
    assert verdict(unknown, "3.10") == ("EINVAL", 0)
    assert verdict([Insn(code, 0, 0, AD + 52), RETA], "3.10") is None  # PAY_OFFSET
    rand = [Insn(code, 0, 0, AD + 56), RETA]  # RANDOM: unknown to 3.10, known to 3.16
    assert verdict(rand, "3.10") == ("EINVAL", 0)
    assert verdict(rand, "3.16") is None
    assert verdict([Insn(code, 0, 0, U32), RETA], "6.18") == ("EINVAL", 0)
    # NET/LL offsets, IND and MSH into the range are not ancillary loads
    assert verdict([Insn(code, 0, 0, SKF_NET_OFF & U32), RETA], "6.18") is None
    assert verdict([Insn((code & 0x18) | 0x40, 0, 0, AD + 64), RETA], "6.18") is None
    assert verdict([Insn(0xB1, 0, 0, AD + 64), RETA], "6.18") is None


@pytest.mark.parametrize("code", [0x64, 0x74])
def test_shift_by_constant_32_refused_from_4_5(code: int) -> None:
    for k in (32, 33, U32):
        prog = [ADD1, Insn(code, 0, 0, k), RETA]
        assert verdict(prog, "4.4") is None
        assert verdict(prog, "4.5") == ("EINVAL", 1)
        assert verdict(prog, "libpcap") is None
    assert verdict([ADD1, Insn(code, 0, 0, 31), RETA], "4.5") is None
    assert verdict([ADD1, Insn(code | 0x08, 0, 0, 99), RETA], "6.18") is None  # X form


# --- libpcap's bpf_validate -----------------------------------------------------------
def test_libpcap_rules() -> None:
    assert verdict([ADD1] * 10000 + [RET1], "libpcap") is None  # no length limit
    back = [ADD1, Insn(0x05, 0, 0, U32 - 1), RET1]  # ja -2: back to pc 0
    assert verdict(back, "libpcap") is None
    assert verdict(back, "6.18") == ("EINVAL", 1)
    assert verdict([ADD1, Insn(0x05, 0, 0, U32 - 2), RET1], "libpcap") == ("EINVAL", 1)
    assert verdict([Insn(0x0E, 0, 0, 0), RET1], "libpcap") == ("EINVAL", 0)


def _libpcap():
    try:
        from lsfsim.bpf import pcapc

        lib = ctypes.CDLL(pcapc.libpcap_path())
    except Exception as exc:  # noqa: BLE001 - any failure means: no oracle here
        pytest.skip(f"libpcap not loadable: {exc}")
    lib.bpf_validate.restype = ctypes.c_int
    lib.bpf_validate.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return lib


@st.composite
def raw_programs(draw) -> list[Insn]:
    codes = st.sampled_from(sorted(CODES_2_6_33 | CODES_MOD_XOR)) | st.integers(0, 0xFF)
    n = draw(st.integers(1, 6))
    return [Insn(draw(codes), draw(st.integers(0, 6)), draw(st.integers(0, 6)),
                 draw(st.sampled_from((0, 1, 2, 15, 16, 32, U32, U32 - 1, U32 - 3))))
            for _ in range(n)]


def test_libpcap_checker_matches_bpf_validate() -> None:
    """Our libpcap checker = bpf_validate, minus the codes bpf_filter aborts on."""
    lib = _libpcap()
    runnable = CODES_2_6_33 | CODES_MOD_XOR

    @settings(max_examples=400, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(raw_programs())
    def prop(insns: list[Insn]) -> None:
        blob = encode(insns)
        theirs = bool(lib.bpf_validate(blob, len(insns)))
        ours = verdict(insns, "libpcap") is None
        if any(i.code not in runnable for i in insns):
            assert not ours
        else:
            assert ours == theirs, insns

    prop()


# --- the running kernel ------------------------------------------------------------------
@pytest.mark.kernel
def test_boundaries_match_running_kernel() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for PF_PACKET sockets")
    import platform

    from tests.bpf.kernel_oracle import attach_errno, optmem_max, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    sem = semantics(platform.release())
    if optmem_max() != sem.optmem_max:
        pytest.skip(f"net.core.optmem_max is {optmem_max()}, not the default {sem.optmem_max}")
    cases = [
        [LDH12] * 2340 + [Insn(0x15, 0, 0, 1), RET1],
        [LDH12] * 2341 + [Insn(0x15, 0, 0, 1), RET1],
        [Insn(0x05, 0, 0, 2341)] + [LDH12] * 2341 + [RET1],
        [LDH12] * 1168 + [ADD1] * 10 + [RET1],
        [LDH12] * 1168 + [ADD1] * 11 + [RET1],
        READ_UNWRITTEN,
        [ADD1, Insn(0x64, 0, 0, 32), RETA],
        [Insn(0x20, 0, 0, AD + 64), RETA],
        [ADD1] * 4095 + [RET1],
        [ADD1] * 4096 + [RET1],
    ]
    for insns in cases:
        ours = verdict(insns, platform.release())
        assert attach_errno(insns) == (ours[0] if ours else None), len(insns)
