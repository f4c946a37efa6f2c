"""dbg.trace: the steps of a run, checked by hand against the program's listing."""

from __future__ import annotations

from lsfsim.bpf.dbg import trace
from lsfsim.bpf.isa import Insn
from lsfsim.bpf.meta import SkbMeta
from lsfsim.bpf.versions import semantics

# "host 208.68.139.89" as tcpdump -d prints it (the lecture's listing)
HOST = [Insn(0x28, 0, 0, 12), Insn(0x15, 0, 4, 0x800), Insn(0x20, 0, 0, 26),
        Insn(0x15, 8, 0, 0xD0448B59), Insn(0x20, 0, 0, 30), Insn(0x15, 6, 7, 0xD0448B59),
        Insn(0x15, 1, 0, 0x806), Insn(0x15, 0, 5, 0x8035), Insn(0x20, 0, 0, 28),
        Insn(0x15, 2, 0, 0xD0448B59), Insn(0x20, 0, 0, 38), Insn(0x15, 0, 1, 0xD0448B59),
        Insn(0x06, 0, 0, 96), Insn(0x06, 0, 0, 0)]


def _ipv4(src: bytes, dst: bytes) -> bytes:
    return bytes(12) + b"\x08\x00" + b"\x45" + bytes(11) + src + dst + bytes(20)


def test_host_program_steps() -> None:
    pkt = _ipv4(bytes([10, 0, 0, 1]), bytes([208, 68, 139, 89]))
    t = trace(HOST, pkt, None, semantics("2.6.33"))
    assert [s.pc for s in t] == [0, 1, 2, 3, 4, 5, 12]
    assert t.verdict == 96 and len(t) == 7
    assert t.steps[0].a == 0x800 and t.steps[2].a == 0x0A000001
    assert t.steps[4].a == 0xD0448B59
    assert t.steps[3].next_pc == 4 and t.steps[5].next_pc == 12
    assert t.steps[-1].verdict == 96 and t.steps[-1].next_pc is None
    assert all(s.verdict is None for s in t.steps[:-1])
    text = t.format()
    assert "(000) ldh      [12]" in text
    assert "(005) jeq      #0xd0448b59      jt 12 jf 13" in text
    assert "-> 12" in text and "-> return 96" in text
    assert "verdict 96 (accept, keep 54 bytes)" in text
    assert len(text.splitlines()) == 7 + 2


def test_arp_path_and_drop() -> None:
    arp = bytes(12) + b"\x08\x06" + bytes(28)
    t = trace(HOST, arp, None, semantics("6.18"))
    assert [s.pc for s in t] == [0, 1, 6, 8, 9, 10, 11, 13]
    assert t.verdict == 0
    assert "verdict 0 (drop)" in t.format()


def test_registers_and_scratch_slots() -> None:
    prog = [Insn(0x00, 0, 0, 5), Insn(0x02, 0, 0, 3), Insn(0x01, 0, 0, 7),
            Insn(0x03, 0, 0, 4), Insn(0x60, 0, 0, 4), Insn(0x0C, 0, 0, 0), Insn(0x16, 0, 0, 0)]
    t = trace(prog, b"", None, semantics("3.10"))
    assert [(s.a, s.x) for s in t] == [(5, 0), (5, 0), (5, 7), (5, 7), (7, 7), (14, 7),
                                       (14, 7)]
    assert [s.mem for s in t] == [{}, {3: 5}, {}, {4: 7}, {4: 7}, {}, {}]
    assert "M[3]=0x00000005" in t.format()


def test_aborted_runs_say_why() -> None:
    t = trace([Insn(0x20, 0, 0, 40), Insn(0x06, 0, 0, 1)], bytes(10), None,
              semantics("2.6.33"))
    assert len(t) == 1 and t.verdict == 0
    assert "load outside the packet" in t.format()
    t = trace([Insn(0x3C, 0, 0, 0), Insn(0x06, 0, 0, 1)], b"", None, semantics("2.6.33"))
    assert "division by zero" in t.format()


def test_ancillary_values_are_shown() -> None:
    prog = [Insn(0x20, 0, 0, 0xFFFFF000 + 20), Insn(0x16, 0, 0, 0)]
    t = trace(prog, b"", SkbMeta(mark=0xABC), semantics("2.6.33"))
    assert t.steps[0].a == 0xABC and t.verdict == 0xABC
