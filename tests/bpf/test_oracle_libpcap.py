"""Differential tests against libpcap's C ``bpf_filter`` (through ctypes).

(a) Random valid programs on random packets: our interpreter and our compiled
    filter, with libpcap semantics, return exactly what libpcap returns,
    wire lengths longer than the capture included.
    Random instruction soup: our libpcap-semantics checker accepts exactly what
    libpcap's ``bpf_validate`` accepts.
(b) Real filter expressions compiled by ``pcap_compile`` over every Ethernet
    record of the shared real captures: same verdicts as libpcap; and the
    Linux 2.6.33 and 6.8 semantics give the same verdicts too, except where
    they legitimately differ (``kernel_divergence``, ``mask_shift_counts``).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsfsim.bpf import FilterError, Program, pcapc
from lsfsim.bpf.isa import (
    BPF_ABS,
    BPF_ALU,
    BPF_JA,
    BPF_JMP,
    BPF_LD,
    BPF_LDX,
    BPF_LSH,
    BPF_MEM,
    BPF_MOD,
    BPF_RSH,
    BPF_ST,
    BPF_STX,
    BPF_X,
    BPF_XOR,
    Insn,
)
from tests.bpf import strategies
from tests.captures import FULL_CORPUS, REAL_TRACES, real_captures

TRACES = REAL_TRACES
LINKTYPE_ETHERNET = 1

# --------------------------------------------------------------------------------------
# helpers


def _dd(insns: tuple[Insn, ...] | list[Insn]) -> str:
    """The program as ``tcpdump -dd`` lines, to paste into a reproduction."""
    return "\n".join(f"{{ 0x{i.code:x}, {i.jt}, {i.jf}, 0x{i.k:08x} }}," for i in insns)


def may_read_unwritten_mem(insns: tuple[Insn, ...] | list[Insn]) -> bool:
    """True if some LD/LDX MEM may read a slot no store reached first.

    libpcap 1.10's bpf_filter keeps M[] in an uninitialised local array, so
    such a read returns stack garbage and the program has no defined result.
    Conservative (path-insensitive) forward walk, like the kernel's
    ``check_load_and_stores``; a backward ``ja`` counts as "may".
    """
    n = len(insns)
    full = 0xFFFF
    incoming = [full] * (n + 1)
    written = full
    for pc, insn in enumerate(insns):
        written &= incoming[pc]
        code = insn.code
        if code in (BPF_ST, BPF_STX) and insn.k < 16:
            written |= 1 << insn.k
        elif code in (BPF_LD | BPF_MEM, BPF_LDX | BPF_MEM) and insn.k < 16:
            if not written >> insn.k & 1:
                return True
        elif code & 0x07 == BPF_JMP:
            if code == BPF_JMP | BPF_JA:
                if insn.k >= 1 << 31:
                    return True
                targets = [pc + 1 + insn.k]
            else:
                targets = [pc + 1 + insn.jt, pc + 1 + insn.jf]
            for target in targets:
                if target < n:
                    incoming[target] &= written
            written = full
    return False


def _has_ancillary_load(insns: tuple[Insn, ...] | list[Insn]) -> bool:
    """Any ABS load at a negative offset (ancillary data, SKF_NET_OFF, SKF_LL_OFF)."""
    return any(i.code & 0x07 == BPF_LD and i.code & 0xE0 == BPF_ABS and i.k >= 1 << 31
               for i in insns)


# --------------------------------------------------------------------------------------
# (a) random programs


def _wirelens(length: int) -> st.SearchStrategy[int | None]:
    return st.one_of(
        st.none(),
        st.just(length),
        st.integers(length, length + 1600),
        st.integers(length, 0xFFFFFFFF),
    )


def test_random_programs_match_libpcap() -> None:
    """Program.run and Program.compile (libpcap semantics) == libpcap's C bpf_filter."""
    programs = strategies.programs(kernel="libpcap", ancillary=False, max_len=64)

    @settings(max_examples=600, deadline=None, report_multiple_bugs=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.data_too_large])
    @given(program=programs.filter(lambda p: not may_read_unwritten_mem(tuple(p))),
           data=st.data())
    def check(program, data) -> None:
        prog = Program(program)
        if not pcapc.bpf_validate(prog.insns):
            # Not a libpcap program: our libpcap-semantics checker must refuse it too.
            with pytest.raises(FilterError):
                prog.check("libpcap")
            return
        compiled = prog.compile("libpcap")
        packets = data.draw(st.lists(strategies.packets(), min_size=1, max_size=4),
                            label="packets")
        for packet in packets:
            wirelen = data.draw(_wirelens(len(packet)), label="wirelen")
            want = pcapc.bpf_filter(prog.insns, packet, wirelen, allow_backward=True)
            got_run = prog.run(packet, kernel="libpcap", wirelen=wirelen)
            got_jit = compiled(packet, wirelen=wirelen)
            assert (got_run, got_jit) == (want, want), (
                f"libpcap returns {want}, run {got_run}, compile {got_jit} "
                f"(wirelen={wirelen})\nprogram:\n{_dd(prog.insns)}\npacket: {packet.hex()}"
            )

    check()


_K_EDGES = [0, 1, 2, 15, 16, 17, 31, 32, 33, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
_CODES = sorted({0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0C, 0x14, 0x15, 0x16, 0x1C,
                 0x1D, 0x20, 0x24, 0x25, 0x28, 0x2C, 0x2D, 0x30, 0x34, 0x35, 0x3C, 0x3D, 0x40,
                 0x44, 0x45, 0x48, 0x4C, 0x4D, 0x50, 0x54, 0x5C, 0x60, 0x61, 0x64, 0x6C, 0x74,
                 0x7C, 0x80, 0x81, 0x84, 0x87, 0x94, 0x9C, 0xA4, 0xAC, 0xB1})


@st.composite
def _soup(draw) -> list[Insn]:
    """Instruction soup: mostly real opcodes with edge k and jump offsets, some junk."""
    n = draw(st.integers(0, 10))
    return [Insn(draw(st.one_of(st.sampled_from(_CODES), st.integers(0, 0xFFFF))),
                 draw(st.one_of(st.integers(0, 3), st.integers(0, 255))),
                 draw(st.one_of(st.integers(0, 3), st.integers(0, 255))),
                 draw(st.one_of(st.sampled_from(_K_EDGES), st.integers(0, 0xFFFFFFFF))))
            for _ in range(n)]


@settings(max_examples=800, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(insns=_soup())
def test_random_checker_matches_bpf_validate(insns: list[Insn]) -> None:
    """Program.check("libpcap") refuses exactly what libpcap's bpf_validate refuses."""
    want = pcapc.bpf_validate(insns)
    try:
        Program(insns).check("libpcap")
        got = True
    except FilterError:
        got = False
    assert got == want, f"bpf_validate says {want}, ours {got}; program:\n{_dd(insns)}"


# Hand-made programs for the corners where libpcap's C interpreter has its own rules:
# shifts by X >= 32 give 0, DIV/MOD by X == 0 return 0, loads past the captured bytes
# return 0 while ``ld len`` is the wire length.
EDGE_PROGRAMS: dict[str, list[Insn]] = {
    "lsh x 33": [Insn(0x00, 0, 0, 0x80000001), Insn(0x01, 0, 0, 33),
                 Insn(BPF_ALU | BPF_LSH | BPF_X, 0, 0, 0), Insn(0x16, 0, 0, 0)],
    "rsh x 32": [Insn(0x00, 0, 0, 0x80000001), Insn(0x01, 0, 0, 32),
                 Insn(BPF_ALU | BPF_RSH | BPF_X, 0, 0, 0), Insn(0x16, 0, 0, 0)],
    "lsh x 31": [Insn(0x00, 0, 0, 3), Insn(0x01, 0, 0, 31),
                 Insn(BPF_ALU | BPF_LSH | BPF_X, 0, 0, 0), Insn(0x16, 0, 0, 0)],
    "div x 0": [Insn(0x00, 0, 0, 7), Insn(0x3C, 0, 0, 0), Insn(0x06, 0, 0, 99)],
    "mod x 0": [Insn(0x00, 0, 0, 7), Insn(0x9C, 0, 0, 0), Insn(0x06, 0, 0, 99)],
    "mod x": [Insn(0x00, 0, 0, 1000), Insn(0x01, 0, 0, 7), Insn(0x9C, 0, 0, 0),
              Insn(0x16, 0, 0, 0)],
    "xor k": [Insn(0x28, 0, 0, 12), Insn(0xA4, 0, 0, 0xFFFF0F0F), Insn(0x16, 0, 0, 0)],
    "ld len": [Insn(0x80, 0, 0, 0), Insn(0x16, 0, 0, 0)],
    "ldx len": [Insn(0x81, 0, 0, 0), Insn(0x87, 0, 0, 0), Insn(0x16, 0, 0, 0)],
    "ld [len-4]": [Insn(0x80, 0, 0, 0), Insn(0x14, 0, 0, 4), Insn(0x07, 0, 0, 0),
                   Insn(0x40, 0, 0, 0), Insn(0x16, 0, 0, 0)],
    "ldh [x+k] wrap": [Insn(0x01, 0, 0, 0xFFFFFFFF), Insn(0x48, 0, 0, 2),
                       Insn(0x06, 0, 0, 1)],
    "ldb [0xffffffff]": [Insn(0x30, 0, 0, 0xFFFFFFFF), Insn(0x06, 0, 0, 1)],
    "neg": [Insn(0x20, 0, 0, 0), Insn(0x84, 0, 0, 0), Insn(0x16, 0, 0, 0)],
    "msh last byte": [Insn(0x80, 0, 0, 0), Insn(0x14, 0, 0, 1), Insn(0x07, 0, 0, 0),
                      Insn(0x87, 0, 0, 0), Insn(0x02, 0, 0, 0), Insn(0x61, 0, 0, 0),
                      Insn(0x16, 0, 0, 0)],
    "ja 0 and jset": [Insn(0x05, 0, 0, 0), Insn(0x30, 0, 0, 0), Insn(0x45, 1, 0, 0x80),
                      Insn(0x06, 0, 0, 0), Insn(0x06, 0, 0, 0x40000)],
}


@pytest.mark.parametrize("name", sorted(EDGE_PROGRAMS))
@pytest.mark.parametrize("length,wirelen", [(1, None), (14, 14), (14, 1514), (60, 0xFFFFFFFF)])
def test_edge_programs_match_libpcap(name: str, length: int, wirelen: int | None) -> None:
    prog = Program(EDGE_PROGRAMS[name])
    packet = bytes((0xA5 + 3 * i) & 0xFF for i in range(length))
    want = pcapc.bpf_filter(prog.insns, packet, wirelen)
    assert prog.run(packet, kernel="libpcap", wirelen=wirelen) == want
    assert prog.compile("libpcap")(packet, wirelen=wirelen) == want


# --------------------------------------------------------------------------------------
# (b) real expressions over real captures

# (expression, netmask) -- "ip broadcast" needs a netmask.
EXPRESSIONS: list[tuple[str, str | None]] = [
    (e, None) for e in [
        "ip", "ip6", "arp", "rarp", "tcp", "udp", "icmp", "icmp6", "sctp",
        "tcp port 80", "port 53", "udp port 53 or udp port 67", "host 192.168.1.1",
        "net 10.0.0.0/8", "net 192.168.0.0/16", "src net 172.16.0.0/12",
        "dst host 224.0.0.5", "ether broadcast", "ether multicast", "ip multicast",
        "vlan", "vlan and ip", "vlan 100", "vlan and vlan", "mpls", "mpls and ip",
        "pppoes", "pppoes and ip", "pppoed",
        "tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
        "tcp[tcpflags] == tcp-ack", "ip[2:2] > 576",
        "tcp port 80 and (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0)",
        "ip proto 47", "ip protochain 6", "ip6 protochain 17", "protochain 58",
        "udp portrange 1-1023", "tcp portrange 6000-6063",
        "greater 200", "less 100", "len >= 100 and len <= 500",
        "ip and ip[6:2] & 0x1fff != 0",
        "icmp[icmptype] == icmp-echo or icmp[icmptype] == icmp-echoreply",
        "ip6 and ip6[6] == 58", "stp", "llc", "isis", "ether proto 0x88cc", "decnet",
        "atalk", "ipx", "netbeui", "not ip and not ip6 and not arp", "ip[0] & 0xf != 5",
        "tcp[13] = 0x12", "ip host 10.0.0.1 and not tcp", "ip6 net 2001:db8::/32",
        "ip and udp[0:2] > udp[2:2]", "ip[(ip[0] & 0xf) * 4 : 2] = 80",
        "tcp[0:2] % 7 = 3", "ip[8] ^ 0xff = 0xc0", "ip[2:2] / 4 > 100", "ip[8] * 2 > 100",
        "ip[12:4] & 0xffffff00 = 0xc0a80100", "(ip[0] << (ip[1] & 63)) != 0",
        "(ip[2:2] >> (ip[9] & 63)) > 1", "geneve", "ip6 and tcp",
        "ether src 00:00:0c:07:ac:01 or ether dst 00:00:0c:07:ac:01",
        "udp and udp[8] & 0x80 = 0x80",
        "tcp and tcp[((tcp[12] & 0xf0) >> 2):4] = 0x47455420",
        "-(ip[9]) = -6", "ip[9] - ip[8] > 0",
    ]
] + [("ip broadcast", "255.255.255.0")]

KERNELS = ("2.6.33", "6.8")
"""The lecture's kernel, and one after every semantic change that matters here (MOD/XOR,
check_load_and_stores, exact DIV again)."""


def _release(kernel: str) -> tuple[int, ...]:
    return tuple(int(part) for part in kernel.split("."))


def kernel_divergence(insns: tuple[Insn, ...], kernel: str) -> str | None:
    """Why Linux ``kernel`` legitimately refuses a libpcap program, or None.

    * ``protochain`` loops with a backward ``ja`` (k as a negative s32), which
      libpcap's interpreter follows but ``sk_chk_filter`` refuses: a JA needs
      k < flen - pc - 1 (unsigned).
    * BPF_MOD and BPF_XOR (``%`` and ``^`` in expressions) arrived in Linux 3.7;
      older kernels refuse them as unknown opcodes.
    """
    if any(i.code == BPF_JMP | BPF_JA and i.k >= 1 << 31 for i in insns):
        return "backward ja (protochain)"
    if _release(kernel) < (3, 7) and any(
            i.code & 0x07 == BPF_ALU and i.code & 0xF0 in (BPF_MOD, BPF_XOR) for i in insns):
        return "BPF_MOD/BPF_XOR (Linux 3.7+)"
    return None


SHIFT_X = (BPF_ALU | BPF_LSH | BPF_X, BPF_ALU | BPF_RSH | BPF_X)


def mask_shift_counts(insns: tuple[Insn, ...]) -> list[Insn] | None:
    """The program with every shift-by-X count reduced to X & 31, or None if it has none.

    libpcap's interpreter makes a shift by X >= 32 give 0; Linux on x86 shifts by
    X & 31 (``shl %cl``).  Running this rewrite through libpcap's interpreter is
    therefore an exact oracle for the kernel's verdict.  Each shift becomes
    ``st M[15]; stx M[14]; txa; and #31; tax; ld M[15]; <shift>; ldx M[14]`` and the
    jumps are relocated.
    """
    if not any(i.code in SHIFT_X for i in insns):
        return None
    used = {i.k for i in insns if i.code in (BPF_ST, BPF_STX, BPF_LD | BPF_MEM, BPF_LDX | BPF_MEM)}
    assert not used & {14, 15}, "program uses the scratch slots the rewrite needs"
    start: list[int] = []
    pos = 0
    for insn in insns:
        start.append(pos)
        pos += 8 if insn.code in SHIFT_X else 1
    start.append(pos)
    out: list[Insn] = []
    for pc, insn in enumerate(insns):
        if insn.code in SHIFT_X:
            out += [Insn(BPF_ST, 0, 0, 15), Insn(BPF_STX, 0, 0, 14), Insn(0x87, 0, 0, 0),
                    Insn(0x54, 0, 0, 31), Insn(0x07, 0, 0, 0), Insn(BPF_LD | BPF_MEM, 0, 0, 15),
                    insn, Insn(BPF_LDX | BPF_MEM, 0, 0, 14)]
        elif insn.code == BPF_JMP | BPF_JA:
            out.append(insn._replace(k=start[pc + 1 + insn.k] - start[pc] - 1))
        elif insn.code & 0x07 == BPF_JMP:
            jt = start[pc + 1 + insn.jt] - start[pc] - 1
            jf = start[pc + 1 + insn.jf] - start[pc] - 1
            assert jt < 256 and jf < 256, "relocated jump does not fit in u8"
            out.append(insn._replace(jt=jt, jf=jf))
        else:
            out.append(insn)
    return out


@pytest.fixture(scope="module")
def ethernet_records() -> list[tuple[str, bytes, int]]:
    """(file#index, captured bytes, wire length) of every Ethernet record of the captures."""
    from lsfsim.pcapio import iter_pcap

    records = []
    for path in real_captures():
        where = path.relative_to(TRACES).as_posix()
        for index, rec in enumerate(iter_pcap(path)):
            if rec.linktype == LINKTYPE_ETHERNET:
                records.append((f"{where}#{index}", rec.data, rec.wirelen))
    assert len(records) > (7000 if FULL_CORPUS else 1000), f"few Ethernet records in {TRACES}"
    return records


@pytest.mark.parametrize("expr,netmask", EXPRESSIONS, ids=[e for e, _ in EXPRESSIONS])
def test_expression_verdicts_match_libpcap(expr: str, netmask: str | None,
                                           ethernet_records, record_property) -> None:
    """libpcap semantics == libpcap's bpf_filter on every real packet; Linux 2.6.33 and
    6.8 semantics == libpcap on the same bytes wherever the kernel takes the program."""
    prog = Program.from_expression(expr, netmask=netmask)
    insns = prog.insns
    assert not _has_ancillary_load(insns), "pcap_compile on a dead handle used ancillary data"
    ours_pcap = prog.compile("libpcap")

    kernels = {}
    divergences = []
    for kernel in KERNELS:
        divergence = kernel_divergence(insns, kernel)
        if divergence is None:
            kernels[kernel] = prog.compile(kernel)
            continue
        divergences.append(f"{kernel}: {divergence}")
        with pytest.raises(FilterError) as info:
            prog.check(kernel)
        assert info.value.errno == "EINVAL", f"{expr!r} on {kernel}: {divergence}"
    masked = mask_shift_counts(insns) if kernels else None

    mismatches: list[str] = []
    accepted = compared_kernel = shift_divergent = 0
    for where, data, wirelen in ethernet_records:
        want = pcapc.bpf_filter(insns, data, wirelen, allow_backward=True)
        accepted += want != 0
        got = ours_pcap(data, wirelen=wirelen)
        if got != want:
            mismatches.append(f"libpcap semantics, {where}: libpcap {want}, ours {got}, "
                              f"wirelen {wirelen}, packet {data.hex()}")
        if not kernels:
            continue
        # The kernel sees the captured bytes as the whole skb: compare on that view.
        want_k = want if wirelen == len(data) else pcapc.bpf_filter(insns, data)
        if masked is not None:
            plain = want_k
            want_k = pcapc.bpf_filter(masked, data)
            shift_divergent += want_k != plain
        for kernel, ours_kernel in kernels.items():
            got_k = ours_kernel(data)
            compared_kernel += 1
            if got_k != want_k:
                mismatches.append(f"Linux {kernel} semantics, {where}: libpcap {want_k}, "
                                  f"ours {got_k}, packet {data.hex()}")
    record_property("packets", len(ethernet_records))
    record_property("accepted", accepted)
    record_property("kernel_compared", compared_kernel)
    record_property("kernel_divergence", "; ".join(divergences))
    record_property("shift_divergent", shift_divergent)
    assert not mismatches, (
        f"{expr!r}: {len(mismatches)} mismatches, first ones:\n" + "\n".join(mismatches[:5])
        + f"\nprogram:\n{_dd(insns)}"
    )


def test_expression_list_is_broad() -> None:
    """The brief asks for 40+ real expressions, including the lecture-era classics."""
    assert len(EXPRESSIONS) >= 40
    assert len({e for e, _ in EXPRESSIONS}) == len(EXPRESSIONS)
