"""A suite's filters: their programs, their references, and their verdicts on every frame.

A verdict is what packet_rcv makes of the filter's return value: dropped, or
accepted with ``min(return value, skb->len)`` bytes kept.  It is stored per
frame as that captured length, 0 meaning dropped (no frame is shorter than 60
bytes, so an accepted one never keeps 0).

* The program: an expression compiled by libpcap's ``pcap_compile`` with the
  filter's snaplen (what tcpdump hands the kernel), or a program file; it must
  pass the kernel checker of the suite's kernel and fit the socket's
  ``optmem_max``, as SO_ATTACH_FILTER demands.  Its offline verdicts come from
  lsfsim's machine with that kernel's semantics and the sk_buff fields
  eth_type_trans sets on the simulated NIC.
* The reference: an expression runs in libpcap's own ``bpf_filter`` (compiled
  with the filter's snaplen), a program file in lsfsim's machine with the
  suite's kernel semantics.  With no reference given, an expression is checked
  against libpcap's ``bpf_filter`` running the same compiled program, and a
  program file has no reference.

Simplification: SKF_AD_RANDOM (3.16+) draws from the machine's random stream
in a run; offline it draws from a fixed seed, so a program that uses it can
disagree with itself.  The per-frame comparison in a run uses the verdicts the
machine actually computed (see fates.py).
"""

from __future__ import annotations

import functools
from array import array
from dataclasses import dataclass, field
from typing import Any

from lsfsim.bpf import CompileError, FilterError, ParseError, Program, SkbMeta, pcapc
from lsfsim.bpf.isa import SKF_AD_OFF, SKF_AD_RANDOM
from lsfsim.checks import attach_verdict
from lsfsim.config.model import Model
from lsfsim.regress.suite import FilterSpec, Suite
from lsfsim.regress.traffic import Traffic

__all__ = ["FilterPlan", "Reference", "compile_filters", "skb_meta"]

# eth_type_trans's values (include/linux/if_packet.h, if_ether.h)
PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST = 0, 1, 2, 3
ETH_P_802_2 = 0x0004
PCNET32_IFINDEX = 2        # the simulated eth0's ifindex (drivers/pcnet32.py)
MAX_SHOWN = 3              # mismatching frames described per check
BROADCAST = b"\xff" * 6


@functools.lru_cache(maxsize=4096)
def _meta(protocol: int, pkt_type: int, cpu: int) -> SkbMeta:
    return SkbMeta(protocol=protocol, pkt_type=pkt_type, ifindex=PCNET32_IFINDEX, hatype=1,
                   cpu=cpu, network_offset=14)


def skb_meta(frame: bytes, nic_mac: bytes, cpu: int) -> SkbMeta:
    """The sk_buff fields a filter sees for ``frame`` on the simulated NIC.

    The same rules as pcnet32's eth_type_trans: pkt_type from the destination
    address against the NIC's, protocol from the Ethernet type (an 802.3
    length field gives ETH_P_802_2), and the CPU of the softirq, the one taking
    the NIC's interrupt.
    """
    if frame[0] & 1:
        pkt_type = PACKET_BROADCAST if frame.startswith(BROADCAST) else PACKET_MULTICAST
    elif frame.startswith(nic_mac):
        pkt_type = PACKET_HOST
    else:
        pkt_type = PACKET_OTHERHOST
    ethertype = (frame[12] << 8) | frame[13]
    return _meta(ethertype if ethertype >= 1536 else ETH_P_802_2, pkt_type, cpu)


@dataclass
class Reference:
    """What a program's verdicts are compared with."""

    kind: str            # "libpcap" (an expression in bpf_filter) or "program" (a file)
    text: str            # the expression, or the file as the suite gives it
    program: Program

    def describe(self) -> str:
        return f"libpcap {self.text!r}" if self.kind == "libpcap" else f"program {self.text}"


@dataclass
class FilterPlan:
    """One filter, compiled and checked, with its offline verdicts on the whole traffic."""

    index: int
    spec: FilterSpec
    program: Program
    file: str | None                 # absolute path of a program file
    reference: Reference | None
    kernel: str
    caplen: array = field(default_factory=lambda: array("I"))       # program, per frame
    ref_caplen: array | None = None                                  # reference, per frame
    accepts: int = 0
    mismatches: list[int] = field(default_factory=list)             # offline, frame indices
    mismatch_count: int = 0
    uses_random: bool = False

    @property
    def name(self) -> str:
        return self.spec.name


def _program_key(spec: FilterSpec) -> str:
    return "expr" if spec.expr is not None else "file"


def _compile_program(suite: Suite, index: int, spec: FilterSpec, kernel: str,
                     model: Model) -> Program:
    key = _program_key(spec)
    try:
        if spec.expr is not None:
            program = Program.from_expression(spec.expr, snaplen=spec.snaplen)
        else:
            assert spec.file is not None
            program = Program.load(suite.resolve(spec.file))
    except CompileError as exc:
        raise suite.error(f"does not compile: {exc}", index=index, key=key) from None
    except (ParseError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise suite.error(f"{spec.file}: {exc}", index=index, key=key) from None
    # setsockopt(SO_ATTACH_FILTER) on the suite's machine: sock_kmalloc, then sk_chk_filter
    error = attach_verdict(program, model)
    if error is not None:
        raise suite.error(f"Linux {kernel} refuses the program: {error}", index=index,
                          key=key)
    return program


def _reference(suite: Suite, index: int, spec: FilterSpec, kernel: str) -> Reference | None:
    text = spec.reference
    if text is None:
        if spec.expr is None:
            return None
        text = spec.expr
        kind = "libpcap"
    elif text.startswith("expr:"):
        text, kind = text[5:], "libpcap"
    elif text.startswith("file:"):
        text, kind = text[5:], "program"
    else:
        kind = "program" if suite.resolve(text).is_file() else "libpcap"
    try:
        if kind == "libpcap":
            program = Program.from_expression(text, snaplen=spec.snaplen)
            if not pcapc.bpf_validate(program.insns):
                raise suite.error("libpcap's bpf_validate refuses the compiled reference",
                                  index=index, key="reference")
        else:
            path = suite.resolve(text)
            if not path.is_file():
                raise suite.error(f"{text}: no such program file", index=index, key="reference")
            program = Program.load(path)
            program.check(kernel)
    except CompileError as exc:
        raise suite.error(f"does not compile: {exc}", index=index, key="reference") from None
    except FilterError as exc:
        raise suite.error(f"Linux {kernel} refuses the reference program: {exc}", index=index,
                          key="reference") from None
    except (ParseError, UnicodeDecodeError, OSError) as exc:
        raise suite.error(f"{text}: {exc}", index=index, key="reference") from None
    return Reference(kind, text, program)


def _uses_random(program: Program) -> bool:
    return any(code & 0x07 == 0x00 and code & 0xE0 == 0x20 and k == (SKF_AD_OFF + SKF_AD_RANDOM)
               & 0xFFFFFFFF for code, _jt, _jf, k in program.insns)


def compile_filters(suite: Suite, model: Model, kernel: str,
                    indices: list[int] | None = None) -> list[FilterPlan]:
    """Compile and check every filter (or those at ``indices``) and its reference.

    Raises SuiteError at the first one that does not compile or that the
    kernel refuses, before anything runs.
    """
    plans = []
    for i, spec in enumerate(suite.filters):
        if indices is not None and i not in indices:
            continue
        program = _compile_program(suite, i, spec, kernel, model)
        reference = _reference(suite, i, spec, kernel)
        plans.append(FilterPlan(i, spec, program,
                                str(suite.resolve(spec.file)) if spec.file else None,
                                reference, kernel, uses_random=_uses_random(program)))
    return plans


def _libpcap_runner(program: Program) -> Any:
    """libpcap's bpf_filter for one program, with its C buffer prepared once."""
    insns = program.insns
    return lambda frame, meta: pcapc.bpf_filter(insns, frame)


def compute_verdicts(plans: list[FilterPlan], traffic: Traffic, model: Model) -> None:
    """Fill every plan's per-frame verdicts, accepts and offline mismatches (one pass)."""
    nic_mac = bytes(int(b, 16) for b in model.hardware.nic.mac.split(":"))
    cpu = model.hardware.cpu.irq_affinity
    runs = []
    for plan in plans:
        fn = plan.program.compile(plan.kernel)
        ref = None
        if plan.reference is not None:
            if plan.reference.kind == "libpcap":
                ref = _libpcap_runner(plan.reference.program)
            else:
                ref = plan.reference.program.compile(plan.kernel)
            plan.ref_caplen = array("I")
        plan.caplen = array("I")
        runs.append((plan, fn, ref))
    for index, frame in enumerate(traffic.frames()):
        meta = skb_meta(frame, nic_mac, cpu)
        n = len(frame)
        for plan, fn, ref in runs:
            ret = fn(frame, meta)
            kept = ret if ret < n else n
            plan.caplen.append(kept)
            if kept:
                plan.accepts += 1
            if ref is not None:
                r = ref(frame, meta)
                ref_kept = r if r < n else n
                plan.ref_caplen.append(ref_kept)   # type: ignore[union-attr]
                if ref_kept != kept:
                    plan.mismatch_count += 1
                    if len(plan.mismatches) < MAX_SHOWN:
                        plan.mismatches.append(index)


def _path(program: Program, frame: bytes, meta: SkbMeta | None, kernel: str) -> str:
    trace = program.trace(frame, meta, kernel)
    last = " ".join(trace.steps[-1].text.split())
    return " ".join(str(step.pc) for step in trace.steps) + f" ({last})"


def _verdict_text(kept: int | None) -> str:
    if kept is None:
        return "accepts"
    return f"keeps {kept} bytes" if kept else "drops"


def describe_mismatch(plan: FilterPlan, traffic: Traffic, model: Model, index: int,
                      observed: int | None) -> str:
    """One line: where the frame is, both verdicts, and both instruction paths.

    ``observed`` is the captured length the program gave (None: accepted, length
    unknown, as for a frame the receive buffer then dropped).
    """
    assert plan.reference is not None and plan.ref_caplen is not None
    frame = next(f for i, f in enumerate(traffic.frames()) if i == index)
    nic_mac = bytes(int(b, 16) for b in model.hardware.nic.mac.split(":"))
    meta = skb_meta(frame, nic_mac, model.hardware.cpu.irq_affinity)
    name, number = traffic.where(index)
    ref = plan.reference
    ref_kernel = "libpcap" if ref.kind == "libpcap" else plan.kernel
    return (f"{name} record {number} ({len(frame)} bytes): program {_verdict_text(observed)}, "
            f"reference ({ref.describe()}) {_verdict_text(plan.ref_caplen[index])}; "
            f"program path {_path(plan.program, frame, meta, plan.kernel)}; "
            f"reference path {_path(ref.program, frame, meta, ref_kernel)}")
