"""Differential tests against the running Linux kernel's classic BPF.

* Runs: random programs on random frames sent on ``lo``; the bytes a PF_PACKET
  socket captures through the program must equal ``min(ours, len)`` for our
  interpreter and our compiled filter with the running kernel's semantics.
* Checker: ``setsockopt(SO_ATTACH_FILTER)``'s accept/refuse and errno must equal
  ``sk_chk_filter``'s for invalid, borderline and long programs.

The harness (and what the receive side of lo looks like to a filter) is in
kernel_oracle.py.  Everything here needs root; it skips otherwise.
"""

from __future__ import annotations

import dataclasses
import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsfsim.bpf import FilterError, Program
from lsfsim.bpf.check import sk_chk_filter
from lsfsim.bpf.isa import (
    BPF_ABS,
    BPF_LD,
    BPF_MAXINSNS,
    CODES_2_6_33,
    CODES_MOD_XOR,
    SKF_AD_OFF,
    SKF_AD_RANDOM,
    SKF_LL_OFF,
    SKF_NET_OFF,
    Insn,
)
from lsfsim.bpf.versions import semantics
from tests.bpf import strategies
from tests.bpf.kernel_oracle import (
    MAX_FRAME,
    MIN_FRAME,
    LoopbackOracle,
    attach_errno,
    loopback_safe,
    optmem_max,
    running_kernel,
    unavailable_reason,
)

pytestmark = pytest.mark.kernel

KERNEL = running_kernel()
AD = SKF_AD_OFF & 0xFFFFFFFF
NET = SKF_NET_OFF & 0xFFFFFFFF
LL = SKF_LL_OFF & 0xFFFFFFFF

# Ancillary loads whose value the test cannot know: RANDOM is prandom_u32().
# (CPU is known: the oracle pins the process to one CPU and lo's frames are
# filtered on the sending CPU.)
UNKNOWABLE_ANCILLARY = frozenset({SKF_AD_RANDOM})


@pytest.fixture(scope="module")
def oracle():
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with LoopbackOracle() as lo:
        yield lo


@pytest.fixture(scope="module")
def checker_ready():
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@functools.lru_cache(maxsize=1)
def _sem():
    """Our semantics for the running kernel, with this machine's net.core.optmem_max
    (the ENOMEM limit of SO_ATTACH_FILTER is a sysctl, the semantics hold its default)."""
    sem = semantics(KERNEL)
    limit = optmem_max()
    if limit is not None and sem.optmem_max != limit:
        sem = dataclasses.replace(sem, optmem_max=limit)
    return sem


def ours_errno(insns: list[Insn]) -> str | None:
    """What our checker says of ``insns`` for the running kernel: ``Program.check`` when
    this machine's optmem_max is the version's default, else sk_chk_filter with it."""
    sem = _sem()
    try:
        if sem == semantics(KERNEL):
            Program(insns).check(KERNEL)
        else:
            sk_chk_filter(tuple(insns), sem)
    except FilterError as exc:
        return exc.errno
    return None


def _dd(insns) -> str:
    return "\n".join(f"{{ 0x{i.code:x}, {i.jt}, {i.jf}, 0x{i.k:08x} }}," for i in insns)


# --------------------------------------------------------------------------------------
# frames


DSTS = [
    bytes(6),                              # lo's own address: PACKET_HOST
    b"\xff" * 6,                           # lo has no broadcast address: MULTICAST
    bytes.fromhex("01005e0000fb"),         # IPv4 multicast
    bytes.fromhex("333300000001"),         # IPv6 multicast
    bytes.fromhex("020000000001"),         # another host
]
ETHERTYPES = [0x0800, 0x86DD, 0x0806, 0x8100, 0x88A8, 0x0020, 0x05DC, 0x05FF, 0x0600,
              0x88CC, 0x1234, 0x8847, 0xFFFF]
SIZES = [14, 15, 16, 17, 18, 20, 34, 38, 42, 54, 60, 64, 128, 255, 256, 257, 1024, 1499, 1500]


@st.composite
def lo_frames(draw, packets=None) -> bytes:
    """A frame of 14..1500 bytes: from the shared packet strategy, or random bytes,
    with the destination, ethertype and length often steered to interesting values."""
    if packets is not None and draw(st.booleans()):
        frame = bytearray(draw(packets))
    else:
        frame = bytearray(draw(st.binary(min_size=MIN_FRAME, max_size=80)))
    if draw(st.booleans()):
        size = draw(st.sampled_from(SIZES))
        if size > len(frame):
            frame += draw(st.binary(min_size=size - len(frame), max_size=size - len(frame)))
        del frame[size:]
    if len(frame) < MIN_FRAME:
        frame += bytes(MIN_FRAME - len(frame))
    del frame[MAX_FRAME:]
    if draw(st.booleans()):
        frame[0:6] = draw(st.sampled_from(DSTS))
    if draw(st.booleans()):
        frame[12:14] = draw(st.sampled_from(ETHERTYPES)).to_bytes(2, "big")
    if int.from_bytes(frame[12:14], "big") < 0x600 and len(frame) >= 16 and draw(st.booleans()):
        frame[14:16] = b"\xff\xff"  # raw 802.3 (Novell): eth_type_trans says ETH_P_802_3
    return bytes(frame)


def _tame(insns) -> list[Insn]:
    """Replace ancillary loads whose value cannot be known by ``ld proto``."""
    out = []
    for insn in insns:
        insn = Insn(*insn)
        if (insn.code & 0x07 == BPF_LD and insn.code & 0xE0 == BPF_ABS
                and insn.k >= AD and insn.k - AD in UNKNOWABLE_ANCILLARY):
            insn = insn._replace(k=AD)
        out.append(insn)
    return out


def compare_run(oracle: LoopbackOracle, insns: list[Insn], frames: list[bytes]) -> None:
    """Attach, capture each frame, and compare with our interpreter and compiled filter."""
    frames = [loopback_safe(f, oracle) for f in frames]
    prog = Program(insns)
    try:
        oracle.attach(prog.insns)
    except OSError as exc:
        # The program (behind the oracle's prefix) is refused: so must ours be.
        want = attach_errno(prog.insns)
        assert want is not None, f"kernel refuses prefix+program ({exc}) but not the program"
        assert ours_errno(list(prog.insns)) == want, f"program:\n{_dd(prog.insns)}"
        return
    got_check = ours_errno(list(prog.insns))
    assert got_check is None, f"kernel accepts, our checker says {got_check}:\n{_dd(prog.insns)}"
    compiled = prog.compile(KERNEL)
    for frame in frames:
        want = oracle.capture(frame)
        meta = oracle.meta_for(frame)
        got_run = min(prog.run(frame, meta, kernel=KERNEL), len(frame))
        got_jit = min(compiled(frame, meta), len(frame))
        assert (got_run, got_jit) == (want, want), (
            f"kernel {KERNEL} captures {want} bytes; run gives {got_run}, compile {got_jit}\n"
            f"program:\n{_dd(prog.insns)}\nframe ({len(frame)} bytes): {frame.hex()}\n{meta}"
        )


# --------------------------------------------------------------------------------------
# runs


def _run_property(max_examples: int, max_len: int):
    programs = strategies.programs(kernel=KERNEL, ancillary=True, max_len=max_len).map(_tame)
    frames = st.lists(lo_frames(strategies.packets()), min_size=1, max_size=4)

    @settings(max_examples=max_examples, deadline=None, database=None, report_multiple_bugs=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
    @given(insns=programs, frames=frames)
    def prop(oracle, insns, frames) -> None:
        compare_run(oracle, insns, frames)

    return prop


def test_random_programs_match_kernel(oracle) -> None:
    """A few hundred random programs, ancillary loads included, on random frames."""
    _run_property(800, 48)(oracle)


@pytest.mark.slow
def test_random_programs_match_kernel_sweep(oracle) -> None:
    _run_property(6000, 160)(oracle)


def _probe(setup: list[Insn]) -> list[list[Insn]]:
    """Four programs returning 1 + byte i of A after ``setup``: the capture length of a
    frame of >= 257 bytes then shows A byte by byte."""
    return [setup + [Insn(0x74, 0, 0, 8 * i), Insn(0x54, 0, 0, 0xFF), Insn(0x04, 0, 0, 1),
                     Insn(0x16, 0, 0, 0)] for i in range(4)]


ANCILLARY = {name: off for off, name in [
    (0, "proto"), (4, "type"), (8, "ifidx"), (12, "nla"), (16, "nlan"), (20, "mark"),
    (24, "queue"), (28, "hatype"), (32, "rxhash"), (36, "cpu"), (44, "vlan_tci"),
    (48, "vlan_avail"), (52, "poff"), (60, "vlan_tpid")]}


@pytest.mark.parametrize("name", sorted(ANCILLARY))
@pytest.mark.parametrize("width", [0x00, 0x08, 0x10])
def test_ancillary_values_match_kernel(oracle, name: str, width: int) -> None:
    """Each ancillary value, byte by byte, for W/H/B loads, on frames of each pkt_type
    and of 802.2/802.3/Ethernet II types; ALU_XOR_X rides along."""
    other = bytes.fromhex("020000000009")
    frames = [
        bytes(6) + other + b"\x12\x34" + bytes(range(256)) * 2,
        b"\xff" * 6 + other + b"\x88\xb6" + bytes(300),
        bytes.fromhex("333300000001") + other + b"\x90\x00" + bytes(300),
        other * 2 + b"\x00\x40" + b"\xff\xff" + bytes(300),
        other * 2 + b"\x00\x40" + b"\xaa\xaa\x03" + bytes(300),
        bytes.fromhex("020000000001") * 2 + b"\x08\x00" + bytes.fromhex(
            "450000540000400040060000c0a80001c0a80002") + bytes.fromhex(
            "00500050000000010000000050020000" "00000000") + bytes(300),
    ]
    setup = [Insn(BPF_LD | width | BPF_ABS, 0, 0, AD + ANCILLARY[name])]
    for insns in _probe(setup) + _probe([Insn(0x01, 0, 0, 0x5A5A5A5A), *setup,
                                         Insn(0x20, 0, 0, AD + 40)]):
        compare_run(oracle, insns, frames)


def _edge_programs() -> dict[str, list[Insn]]:
    ret_a = Insn(0x16, 0, 0, 0)
    progs: dict[str, list[Insn]] = {
        "div x 0": [Insn(0x00, 0, 0, 7), Insn(0x3C, 0, 0, 0), Insn(0x06, 0, 0, 99)],
        "mod x 0": [Insn(0x00, 0, 0, 7), Insn(0x9C, 0, 0, 0), Insn(0x06, 0, 0, 99)],
        "div k 1": [Insn(0x20, 0, 0, 14), Insn(0x34, 0, 0, 1), Insn(0x54, 0, 0, 0x3FF), ret_a],
        "div k 3 big": [Insn(0x00, 0, 0, 0xFFFFFFFF), Insn(0x34, 0, 0, 3),
                        Insn(0x74, 0, 0, 22), ret_a],
        "mod k 7": [Insn(0x28, 0, 0, 14), Insn(0x94, 0, 0, 7), Insn(0x04, 0, 0, 1), ret_a],
        "xor x": [Insn(0x28, 0, 0, 14), Insn(0x01, 0, 0, 0x5A5), Insn(0xAC, 0, 0, 0),
                  Insn(0x54, 0, 0, 0x3FF), ret_a],
        "neg": [Insn(0x28, 0, 0, 14), Insn(0x84, 0, 0, 0), Insn(0x54, 0, 0, 0x3FF), ret_a],
        "ld len": [Insn(0x80, 0, 0, 0), Insn(0x14, 0, 0, 1), ret_a],
        "ldx len, txa": [Insn(0x81, 0, 0, 0), Insn(0x87, 0, 0, 0), Insn(0x14, 0, 0, 2), ret_a],
        "ldx msh": [Insn(0xB1, 0, 0, 14), Insn(0x87, 0, 0, 0), Insn(0x04, 0, 0, 1), ret_a],
        "ldx msh last byte": [Insn(0x81, 0, 0, 0), Insn(0x87, 0, 0, 0), Insn(0x14, 0, 0, 1),
                              Insn(0x07, 0, 0, 0), Insn(0x50, 0, 0, 0), Insn(0x04, 0, 0, 1),
                              ret_a],
        "mem roundtrip": [Insn(0x28, 0, 0, 12), Insn(0x02, 0, 0, 15), Insn(0x00, 0, 0, 1),
                          Insn(0x61, 0, 0, 15), Insn(0x87, 0, 0, 0), Insn(0x54, 0, 0, 0x3FF),
                          ret_a],
        "ja over": [Insn(0x05, 0, 0, 1), Insn(0x06, 0, 0, 0), Insn(0x06, 0, 0, 33)],
        "ret 0x80000000": [Insn(0x06, 0, 0, 0x80000000)],
        "ret 0xffffffff": [Insn(0x06, 0, 0, 0xFFFFFFFF)],
        "ind into ancillary": [Insn(0x01, 0, 0, AD), Insn(0x40, 0, 0, 0), Insn(0x06, 0, 0, 5)],
        "ind into ancillary b": [Insn(0x01, 0, 0, 4), Insn(0x50, 0, 0, AD),
                                 Insn(0x06, 0, 0, 5)],
        "ind offset wraps": [Insn(0x01, 0, 0, 0xFFFFFFFF), Insn(0x48, 0, 0, 15),
                             Insn(0x04, 0, 0, 1), ret_a],
        "abs below ll": [Insn(0x30, 0, 0, LL - 1), Insn(0x06, 0, 0, 9)],
        "abs huge": [Insn(0x20, 0, 0, 0x7FFFFFFF), Insn(0x06, 0, 0, 9)],
    }
    for bits in (0, 1, 15, 31, 32, 33, 63, 255, 0x7FFFFFFF):
        for op, name in ((0x6C, "lsh"), (0x7C, "rsh")):
            progs[f"{name} x {bits}"] = [Insn(0x00, 0, 0, 0x80000401), Insn(0x01, 0, 0, bits),
                                         Insn(op, 0, 0, 0), Insn(0x54, 0, 0, 0x3FF),
                                         Insn(0x04, 0, 0, 1), ret_a]
    for k in (0, 1, 31):
        progs[f"lsh k {k}"] = [Insn(0x00, 0, 0, 0x80000401), Insn(0x64, 0, 0, k),
                               Insn(0x74, 0, 0, 20), ret_a]
    # SKF_NET_OFF / SKF_LL_OFF loads, at and across the end of the frame (lengths 60, 257).
    for base, label in ((NET, "net"), (LL, "ll")):
        for off in (0, 1, 42, 43, 44, 45, 46, 239, 240, 241, 242, 243, 256):
            for size, code in ((4, 0x20), (2, 0x28), (1, 0x30)):
                progs[f"{label}+{off} w{size}"] = [Insn(code, 0, 0, base + off),
                                                   Insn(0x54, 0, 0, 0xFF), Insn(0x04, 0, 0, 1),
                                                   ret_a]
            progs[f"ind {label}+{off}"] = [Insn(0x01, 0, 0, off), Insn(0x28, 0, 0, base),
                                           Insn(0x54, 0, 0, 0xFF), Insn(0x04, 0, 0, 1), ret_a]
    for off in (56, 57, 58, 59, 60, 253, 254, 255, 256):
        progs[f"abs {off} w"] = [Insn(0x20, 0, 0, off), Insn(0x06, 0, 0, 7)]
        progs[f"ind {off} h"] = [Insn(0x01, 0, 0, off - 1), Insn(0x48, 0, 0, 1),
                                 Insn(0x06, 0, 0, 7)]
    return progs


EDGE = _edge_programs()


@pytest.mark.parametrize("name", sorted(EDGE))
def test_edge_programs_match_kernel(oracle, name: str) -> None:
    frames = [bytes.fromhex("020000000001") * 2 + b"\x12\x34" + bytes(range(46)),
              bytes.fromhex("020000000001") * 2 + b"\x88\xb7" + bytes(range(243)),
              bytes.fromhex("020000000001") * 2 + b"\x00\x30" + bytes(range(256)) * 5]
    compare_run(oracle, EDGE[name], frames)


# --------------------------------------------------------------------------------------
# checker


def _ret(k: int = 0) -> Insn:
    return Insn(0x06, 0, 0, k)


CHECKER_CASES: dict[str, list[Insn]] = {
    "len 0": [],
    "len 1 ret": [_ret()],
    "len 4096": [_ret()] * BPF_MAXINSNS,
    "len 4097": [_ret()] * (BPF_MAXINSNS + 1),
    "len 5000 loads": [Insn(0x28, 0, 0, 12)] * 4999 + [_ret()],
    "len 4096 loads": [Insn(0x28, 0, 0, 12)] * 4095 + [_ret()],
    "no ret at end": [Insn(0x28, 0, 0, 12)],
    "ret x": [Insn(0x0E, 0, 0, 0)],
    "ret with jt/jf set": [Insn(0x06, 5, 7, 1)],
    "code 0xffff": [Insn(0xFFFF, 0, 0, 0), _ret()],
    "code 0x100 (ret k + 256)": [Insn(0x106, 0, 0, 0), _ret()],
    "ld h imm": [Insn(0x08, 0, 0, 0), _ret()],
    "ldx w abs": [Insn(0x21, 0, 0, 0), _ret()],
    "ldx h msh": [Insn(0xA9, 0, 0, 0), _ret()],
    "alu neg x": [Insn(0x8C, 0, 0, 0), _ret()],
    "misc 0x0f": [Insn(0x0F, 0, 0, 0), _ret()],
    "mod k": [Insn(0x94, 0, 0, 3), _ret()],
    "xor x": [Insn(0xAC, 0, 0, 0), _ret()],
    "div k 0": [Insn(0x34, 0, 0, 0), _ret()],
    "mod k 0": [Insn(0x94, 0, 0, 0), _ret()],
    "div x": [Insn(0x3C, 0, 0, 0), _ret()],
    "lsh k 31": [Insn(0x64, 0, 0, 31), _ret()],
    "lsh k 32": [Insn(0x64, 0, 0, 32), _ret()],
    "rsh k 0xffffffff": [Insn(0x74, 0, 0, 0xFFFFFFFF), _ret()],
    "lsh x": [Insn(0x6C, 0, 0, 99), _ret()],
    "st 15": [Insn(0x02, 0, 0, 15), _ret()],
    "st 16": [Insn(0x02, 0, 0, 16), _ret()],
    "stx 16": [Insn(0x03, 0, 0, 16), _ret()],
    "ld mem 16": [Insn(0x02, 0, 0, 0), Insn(0x60, 0, 0, 16), _ret()],
    "ldx mem 16": [Insn(0x03, 0, 0, 0), Insn(0x61, 0, 0, 16), _ret()],
    "ld mem unwritten": [Insn(0x60, 0, 0, 0), _ret()],
    "ldx mem unwritten": [Insn(0x61, 0, 0, 3), _ret()],
    "ld mem written": [Insn(0x02, 0, 0, 3), Insn(0x60, 0, 0, 3), _ret()],
    "mem written on one path": [Insn(0x28, 0, 0, 12), Insn(0x15, 0, 1, 1), Insn(0x02, 0, 0, 3),
                                Insn(0x60, 0, 0, 3), Insn(0x16, 0, 0, 0)],
    "mem written on both paths": [Insn(0x28, 0, 0, 12), Insn(0x15, 0, 2, 1),
                                  Insn(0x02, 0, 0, 3), Insn(0x05, 0, 0, 1),
                                  Insn(0x02, 0, 0, 3), Insn(0x60, 0, 0, 3), _ret()],
    "mem written after dead ret": [Insn(0x02, 0, 0, 3), _ret(), Insn(0x60, 0, 0, 3), _ret()],
    "mem via unreachable jump": [Insn(0x06, 0, 0, 0), Insn(0x05, 0, 0, 1), Insn(0x02, 0, 0, 1),
                                 Insn(0x60, 0, 0, 1), _ret()],
    "ja 0": [Insn(0x05, 0, 0, 0), _ret()],
    "ja past end": [Insn(0x05, 0, 0, 1), _ret()],
    "ja backward": [_ret(), Insn(0x05, 0, 0, 0xFFFFFFFE), _ret()],
    "ja huge": [Insn(0x05, 0, 0, 0x80000000), _ret()],
    "jeq jt past end": [Insn(0x15, 1, 0, 0), _ret()],
    "jeq jf past end": [Insn(0x15, 0, 1, 0), _ret()],
    "jeq to last": [Insn(0x15, 1, 0, 0), _ret(1), _ret(2)],
    "jset x 255": [Insn(0x4D, 255, 255, 0)] + [_ret()] * 256,
    "jgt last insn": [Insn(0x25, 0, 0, 0)],
    "ld ancillary proto": [Insn(0x20, 0, 0, AD), _ret()],
    "ldb ancillary hatype": [Insn(0x30, 0, 0, AD + 28), _ret()],
    "ld ancillary 64": [Insn(0x20, 0, 0, AD + 64), _ret()],
    "ld ancillary 2": [Insn(0x20, 0, 0, AD + 2), _ret()],
    "ld ancillary 0xffc": [Insn(0x20, 0, 0, AD + 0xFFC), _ret()],
    "ld -1": [Insn(0x20, 0, 0, 0xFFFFFFFF), _ret()],
    "ld net": [Insn(0x20, 0, 0, NET), _ret()],
    "ld net end": [Insn(0x20, 0, 0, AD - 1), _ret()],
    "ld ll": [Insn(0x28, 0, 0, LL), _ret()],
    "ld below ll": [Insn(0x30, 0, 0, LL - 1), _ret()],
    "ld ind ancillary": [Insn(0x40, 0, 0, AD + 64), _ret()],
    "ld ind -1": [Insn(0x50, 0, 0, 0xFFFFFFFF), _ret()],
    "ldx msh negative": [Insn(0xB1, 0, 0, AD), _ret()],
    "ld imm": [Insn(0x00, 0, 0, 0xFFFFFFFF), Insn(0x16, 0, 0, 0)],
}


def test_checker_cases_match_kernel(checker_ready) -> None:
    bad = []
    for name, insns in CHECKER_CASES.items():
        want = attach_errno(insns)
        got = ours_errno(insns)
        if got != want:
            bad.append(f"{name}: kernel {want}, ours {got}")
    assert not bad, f"checker differs from Linux {KERNEL}:\n" + "\n".join(bad)


def test_checker_has_both_verdicts(checker_ready) -> None:
    """Guard against a vacuous comparison: the kernel accepts some cases, refuses others
    with EINVAL, and refuses some with ENOMEM."""
    verdicts = {attach_errno(insns) for insns in CHECKER_CASES.values()}
    assert {None, "EINVAL", "ENOMEM"} <= verdicts


VALID_CODES = sorted(CODES_2_6_33 | CODES_MOD_XOR)
K_VALUES = [0, 1, 2, 3, 12, 14, 15, 16, 17, 31, 32, 33, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
            NET, NET + 14, AD - 1, LL, LL - 1, *range(AD, AD + 68, 4), AD + 2, AD + 41]


@st.composite
def raw_programs(draw, min_len: int = 0, max_len: int = 12) -> list[Insn]:
    """Mostly-valid instruction soup: valid and invalid codes, jumps near the end."""
    n = draw(st.integers(min_len, max_len))
    insns = []
    for _ in range(n):
        code = draw(st.one_of(st.sampled_from(VALID_CODES), st.integers(0, 0x1FF),
                              st.integers(0, 0xFFFF)))
        jt, jf = (draw(st.one_of(st.integers(0, 4), st.integers(0, 255))) for _ in range(2))
        k = draw(st.one_of(st.sampled_from(K_VALUES), st.integers(0, 0xFFFFFFFF)))
        insns.append(Insn(code, jt, jf, k))
    if insns and draw(st.integers(0, 3)):
        insns[-1] = Insn(draw(st.sampled_from([0x06, 0x16])), 0, 0, draw(st.integers(0, 99)))
    return insns


def _checker_property(max_examples: int, max_len: int):
    @settings(max_examples=max_examples, deadline=None, database=None, report_multiple_bugs=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(insns=raw_programs(max_len=max_len))
    def prop(insns) -> None:
        want = attach_errno(insns)
        got = ours_errno(insns)
        assert got == want, f"kernel {want}, ours {got}; program:\n{_dd(insns)}"

    return prop


def test_random_checker_matches_kernel(checker_ready) -> None:
    _checker_property(800, 12)()


@pytest.mark.slow
def test_random_checker_matches_kernel_sweep(checker_ready) -> None:
    _checker_property(10000, 40)()


def test_valid_random_programs_are_accepted_alike(checker_ready) -> None:
    """Programs of the shared strategy (valid for this kernel by construction)."""

    @settings(max_examples=200, deadline=None, database=None, report_multiple_bugs=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(insns=strategies.programs(kernel=KERNEL, ancillary=True, max_len=150))
    def prop(insns) -> None:
        insns = [Insn(*i) for i in insns]
        want = attach_errno(insns)
        got = ours_errno(insns)
        assert got == want, f"kernel {want}, ours {got}; program:\n{_dd(insns)}"

    prop()


# Filters are charged to the socket's option memory after conversion to eBPF, so the
# longest accepted filter depends on what each classic instruction expands to.
LONG_BODIES: dict[str, list[Insn]] = {
    "ldh [12]": [Insn(0x28, 0, 0, 12)],
    "ld [0]": [Insn(0x20, 0, 0, 0)],
    "ldb [x+5]": [Insn(0x50, 0, 0, 5)],
    "ldx msh [14]": [Insn(0xB1, 0, 0, 14)],
    "ld [net+0]": [Insn(0x20, 0, 0, NET)],
    "ld proto": [Insn(0x20, 0, 0, AD)],
    "ld ifidx": [Insn(0x20, 0, 0, AD + 8)],
    "div x": [Insn(0x3C, 0, 0, 0)],
    "jeq #1, 0, 0": [Insn(0x15, 0, 0, 1)],
    "jeq #0x80000000, 0, 0": [Insn(0x15, 0, 0, 0x80000000)],
    "add #1": [Insn(0x04, 0, 0, 1)],
    "ret #1": [Insn(0x06, 0, 0, 1)],
    "ldh [12]; jeq #0x800, 0, 0": [Insn(0x28, 0, 0, 12), Insn(0x15, 0, 0, 0x800)],
}


def _longest_accepted(body: list[Insn]) -> int:
    """The largest n with body * n + [ret] accepted by the kernel (0 if none), n <= 4095."""
    def ok(n: int) -> bool:
        return attach_errno((body * n)[: BPF_MAXINSNS - 1] + [_ret()]) is None

    limit = (BPF_MAXINSNS - 1) // len(body)
    if ok(limit):
        return limit
    lo, hi = 0, limit  # ok(lo) (or lo == 0), not ok(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


@pytest.mark.parametrize("name", sorted(LONG_BODIES))
def test_long_program_limits_match_kernel(checker_ready, name: str) -> None:
    """ENOMEM vs accept at the kernel's exact limit, and EINVAL past 4096 instructions."""
    body = LONG_BODIES[name]
    n = _longest_accepted(body)
    cases = {n: None}
    if (n + 1) * len(body) < BPF_MAXINSNS:
        cases[n + 1] = attach_errno(body * (n + 1) + [_ret()])
    bad = []
    for count, want in cases.items():
        insns = body * count + [_ret()]
        got = ours_errno(insns)
        if got != want:
            bad.append(f"{count} x {name} + ret ({len(insns)} insns): kernel {want}, ours {got}")
    over = body * (BPF_MAXINSNS // len(body) + 1)
    assert attach_errno(over + [_ret()]) == "EINVAL"
    assert ours_errno(over + [_ret()]) == "EINVAL"
    assert not bad, (f"optmem_max={optmem_max()}, longest accepted n={n}:\n" + "\n".join(bad))
