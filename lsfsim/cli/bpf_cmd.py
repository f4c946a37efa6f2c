"""``lsfsim bpf``: compile, convert, check, run and step through classic BPF programs.

Packets are numbered from 0, as everywhere in lsfsim (``lsfsim lifecycle``,
``lsfsim trace --frames``): the N-th record of a capture is packet N-1.
``run`` prints those numbers, ``debug --packet N`` takes one and ``diff``
names differing packets by them.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from lsfsim.cli.common import InputError, fail, one_line_errors
from lsfsim.outputs import open_output

app = typer.Typer(
    help="Classic BPF socket filters: compile, convert, check, run, debug.",
    no_args_is_help=True,
    add_completion=False,
)

DEFAULT_KERNEL = "2.6.33"
ETH_P_802_3, ETH_P_802_2 = 0x0001, 0x0004
PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST = 0, 1, 2


def _formats() -> tuple[str, ...]:
    from lsfsim.bpf.formats import FORMATS

    return FORMATS


def _check_format(fmt: str | None, option: str) -> None:
    if fmt is not None and fmt not in _formats():
        raise InputError(f"{option}: unknown format {fmt!r} (choose from {', '.join(_formats())})")


def _load_program(path: str, fmt: str | None = None):
    """Read a program file; every failure becomes one line naming the file."""
    from lsfsim.bpf import ParseError, Program

    _check_format(fmt, "--from")
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    if p.is_dir():
        raise InputError(f"{path}: is a directory")
    try:
        return Program.load(p, fmt)
    except ParseError as exc:
        raise InputError(f"{path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: {exc}") from None


def _emit(payload: str | bytes, output: str | None) -> None:
    """Write text to stdout or to ``output``; binary only to a file."""
    if output is not None:
        mode = "wb" if isinstance(payload, bytes) else "w"
        try:
            with open_output(output, mode) as fh:
                fh.write(payload)
        except OSError as exc:
            raise InputError(f"{output}: {exc.strerror or exc}") from None
        return
    if isinstance(payload, bytes):
        raise InputError("binary output goes to a file: add -o FILE")
    typer.echo(payload, nl=False)


def _check_pcap(path: str) -> None:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    if p.is_dir():
        raise InputError(f"{path}: is a directory")


def skb_meta(data: bytes, linktype: int):
    """What eth_type_trans would set for an Ethernet frame (protocol, pkt_type).

    Simplified: a unicast frame counts as PACKET_HOST (the capture does not
    tell us the receiving interface's address).  Other link types get the
    default metadata.
    """
    if linktype != 1 or len(data) < 14:
        return None
    ethertype = (data[12] << 8) | data[13]
    if ethertype >= 1536:
        protocol = ethertype
    elif data[14:16] == b"\xff\xff":
        protocol = ETH_P_802_3  # raw 802.3 (Novell)
    else:
        protocol = ETH_P_802_2
    if data[0] & 1:
        pkt_type = PACKET_BROADCAST if data[:6] == b"\xff" * 6 else PACKET_MULTICAST
    else:
        pkt_type = PACKET_HOST
    return _meta(protocol, pkt_type)


@functools.lru_cache(maxsize=1024)
def _meta(protocol: int, pkt_type: int):
    """SkbMeta is frozen: share one per (protocol, pkt_type)."""
    from lsfsim.bpf import SkbMeta

    return SkbMeta(protocol=protocol, pkt_type=pkt_type)


def _kernel_version(kernel: str) -> None:
    """A bad --kernel string is an input error (exit 2), not a verdict."""
    from lsfsim.bpf.versions import semantics

    try:
        semantics(kernel)
    except ValueError as exc:
        raise InputError(f"--kernel: {exc}") from None


def _refused(path: str, kernel: str, exc: Exception) -> InputError:
    return InputError(f"{path}: Linux {kernel} refuses the program: {exc}")


# --- commands ----------------------------------------------------------------------
@app.command("compile")
@one_line_errors
def compile_cmd(
    expression: Annotated[list[str], typer.Argument(
        help="pcap filter expression (as for tcpdump; words are joined).")],
    snaplen: int = typer.Option(262144, "-s", "--snaplen", help="Snapshot length (0 = 262144)."),
    linktype: str = typer.Option("EN10MB", "-y", "--linktype",
                                 help="Link type: DLT name (EN10MB, RAW, LINUX_SLL) or number."),
    optimize: bool = typer.Option(True, "--optimize/--no-optimize", " /-O",
                                  help="Run libpcap's optimizer; -O turns it off, as in tcpdump."),
    netmask: str | None = typer.Option(None, "--netmask",
                                       help="Netmask for 'ip broadcast' (dotted quad)."),
    fmt: str = typer.Option("tcpdump-d", "--format", "-f",
                            help="tcpdump-d, tcpdump-dd, tcpdump-ddd, bpf_asm or binary."),
    output: str | None = typer.Option(None, "-o", "--output", help="Write to this file."),
) -> None:
    """Compile a filter expression with libpcap (default output: like tcpdump -d)."""
    from lsfsim.bpf import Program

    _check_format(fmt, "--format")
    if not 0 <= snaplen < (1 << 31):
        raise InputError(f"--snaplen: {snaplen} out of range")
    from lsfsim.bpf.errors import CompileError, ParseError

    try:
        prog = Program.from_expression(" ".join(expression), snaplen, linktype, netmask,
                                       optimize)
    except (CompileError, ParseError):
        raise
    except ValueError as exc:      # a link type or a netmask libpcap cannot take
        raise InputError(str(exc)) from None
    _emit(prog.format(fmt), output)


@app.command("convert")
@one_line_errors
def convert_cmd(
    file: str = typer.Argument(..., help="Program file (format detected unless --from)."),
    to: str = typer.Option(..., "--to", "-t", help="Output format."),
    source_fmt: str | None = typer.Option(None, "--from", help="Input format."),
    output: str | None = typer.Option(None, "-o", "--output", help="Write to this file."),
) -> None:
    """Convert a program between formats."""
    _check_format(to, "--to")
    prog = _load_program(file, source_fmt)
    try:
        payload = prog.format(to)
    except ValueError as exc:
        raise InputError(f"{file}: cannot write as {to}: {exc}") from None
    _emit(payload, output)


@app.command("check")
@one_line_errors
def check_cmd(
    file: str = typer.Argument(..., help="Program file."),
    kernel: str = typer.Option(DEFAULT_KERNEL, "--kernel", "-k", help="Linux version."),
    source_fmt: str | None = typer.Option(None, "--from", help="Input format."),
) -> None:
    """Validate like that kernel's sk_chk_filter: prints "ok" (exit 0) or why not (exit 1)."""
    from lsfsim.bpf import FilterError

    _kernel_version(kernel)
    prog = _load_program(file, source_fmt)
    try:
        prog.check(kernel)
    except FilterError as exc:
        typer.echo(str(exc))
        raise typer.Exit(1) from None
    typer.echo("ok")


@app.command("run")
@one_line_errors
def run_cmd(
    file: str = typer.Argument(..., help="Program file."),
    pcap: str = typer.Argument(..., help="Capture file (pcap or pcapng)."),
    kernel: str = typer.Option(DEFAULT_KERNEL, "--kernel", "-k", help="Linux version."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document instead of a table."),
    source_fmt: str | None = typer.Option(None, "--from", help="Input format."),
) -> None:
    """Run the filter over every packet: its verdict and the length it would capture."""
    from lsfsim.bpf import FilterError
    from lsfsim.pcapio import PcapError, PcapReader

    _kernel_version(kernel)
    prog = _load_program(file, source_fmt)
    try:
        compiled = prog.compile(kernel)
    except FilterError as exc:
        raise _refused(file, kernel, exc) from None
    _check_pcap(pcap)
    out = sys.stdout
    npackets = accepted = 0
    error: str | None = None
    reader = PcapReader(pcap)
    if as_json:
        out.write(json.dumps({"program": file, "pcap": pcap, "kernel": kernel})[:-1])
        out.write(', "packets": [')
    else:
        out.write(f"{'packet':>7} {'wirelen':>8} {'ret':>10} {'caplen':>7}\n")
    rows: list[str] = []  # written in batches: one write per row costs more than the filter
    try:
        for rec in reader:
            npackets += 1
            ret = compiled(rec.data, skb_meta(rec.data, rec.linktype), rec.wirelen)
            caplen = min(ret, len(rec.data))
            accepted += ret > 0
            if as_json:
                sep = "" if npackets == 1 else ", "
                rows.append(f'{sep}{{"index": {npackets - 1}, "wirelen": {rec.wirelen}, '
                            f'"ret": {ret}, "caplen": {caplen}}}')
            else:
                rows.append(f"{npackets - 1:>7} {rec.wirelen:>8} {ret:>10} {caplen:>7}\n")
            if len(rows) >= 4096:
                out.write("".join(rows))
                rows.clear()
    except PcapError as exc:
        error = str(exc)
    finally:
        reader.close()
        out.write("".join(rows))
    summary = {"packets": npackets, "accepted": accepted, "dropped": npackets - accepted}
    if as_json:
        tail = {"summary": summary}
        if error is not None:
            tail["error"] = error  # type: ignore[assignment]
        out.write("], " + json.dumps(tail)[1:] + "\n")
    else:
        out.write(f"packets {npackets}, accepted {accepted}, dropped {npackets - accepted}\n")
    out.flush()
    if error is not None:
        fail(error)


@app.command("debug")
@one_line_errors
def debug_cmd(
    file: str = typer.Argument(..., help="Program file."),
    pcap: str = typer.Argument(..., help="Capture file (pcap or pcapng)."),
    packet: int = typer.Option(..., "--packet", "-p", help="Packet number, from 0."),
    kernel: str = typer.Option(DEFAULT_KERNEL, "--kernel", "-k", help="Linux version."),
    source_fmt: str | None = typer.Option(None, "--from", help="Input format."),
) -> None:
    """Step through the filter on one packet, like the kernel's bpf_dbg."""
    from lsfsim.bpf import FilterError
    from lsfsim.pcapio import PcapReader

    _kernel_version(kernel)
    prog = _load_program(file, source_fmt)
    _check_pcap(pcap)
    if packet < 0:
        raise InputError(f"--packet: {packet} out of range (packets are numbered from 0)")
    found = None
    count = 0
    with PcapReader(pcap) as reader:
        for index, rec in enumerate(reader):
            count = index + 1
            if index == packet:
                found = rec
                break
    if found is None:
        raise InputError(f"{pcap}: --packet {packet} out of range (the file has {count} packets, "
                         f"numbered from 0)")
    try:
        trace = prog.trace(found.data, skb_meta(found.data, found.linktype), kernel,
                           found.wirelen)
    except FilterError as exc:
        raise _refused(file, kernel, exc) from None
    text = trace.format()
    typer.echo(text if text.endswith("\n") else text + "\n", nl=False)


# --- diff --------------------------------------------------------------------------
EXPR_PREFIX = "expr:"
EXIT_UNDECIDED = 3
"""``bpf diff --prove``: no answer (z3 timed out, or a construct is not modelled)."""


def _program_argument(arg: str, role: str, kernel: str, source_fmt: str | None):
    """OLD/NEW: a program file, or ``expr:EXPRESSION`` compiled as ``bpf compile`` does."""
    from lsfsim.bpf import FilterError, Program

    if arg.startswith(EXPR_PREFIX):
        prog = Program.from_expression(arg[len(EXPR_PREFIX):])
    else:
        prog = _load_program(arg, source_fmt)
    try:
        prog.check(kernel)
    except FilterError as exc:
        raise _refused(f"{role} {arg}", kernel, exc) from None
    return prog


def _one_line_decode(data: bytes, linktype: int) -> str:
    """scapy's one-line summary of a frame (the raw length if scapy cannot say)."""
    try:
        from scapy.config import conf
        from scapy.layers import inet, inet6, l2  # noqa: F401 - registers the decoders

        cls = conf.l2types.get(linktype)
        if cls is None:
            return f"{len(data)} bytes (link type {linktype})"
        return str(cls(data).summary())  # type: ignore[operator]
    except Exception:  # noqa: BLE001 - a decode is a courtesy; the verdicts stand alone
        return f"{len(data)} bytes"


@app.command("diff")
@one_line_errors
def diff_cmd(
    old: str = typer.Argument(..., help="Program file, or expr:EXPRESSION."),
    new: str = typer.Argument(..., help="Program file, or expr:EXPRESSION."),
    pcaps: Annotated[list[str] | None, typer.Option(
        "--pcap", help="Capture to compare on (repeatable).")] = None,
    kernel: str = typer.Option(DEFAULT_KERNEL, "--kernel", "-k", help="Linux version."),
    prove: bool = typer.Option(False, "--prove",
                               help="Decide for every packet up to --max-len bytes (z3)."),
    max_len: int = typer.Option(1514, "--max-len", help="Longest packet --prove considers."),
    witness: str | None = typer.Option(None, "-w", "--witness",
                                       help="Write the packets that differ to this pcap."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds z3 may take (--prove)."),
    source_fmt: str | None = typer.Option(None, "--from", help="Input format of both files."),
) -> None:
    """Where two programs return different values: on captures, or (--prove) on any packet.

    Exit 0: no difference (equivalent); 1: they differ; 2: bad input; 3: --prove
    could not decide (timeout, or a construct the prover does not model).
    """
    from lsfsim.pcapio import PcapError, PcapReader

    _kernel_version(kernel)
    pcaps = pcaps or []
    if not pcaps and not prove:
        raise InputError("nothing to compare on: give --pcap FILE or --prove")
    if not 0 <= max_len <= 0xFFFF:
        raise InputError(f"--max-len: {max_len} out of range (0..65535)")
    if not timeout > 0:
        raise InputError(f"--timeout: {timeout} must be positive")
    prog_a = _program_argument(old, "OLD", kernel, source_fmt)
    prog_b = _program_argument(new, "NEW", kernel, source_fmt)
    for pcap in pcaps:
        _check_pcap(pcap)
    run_a, run_b = prog_a.compile(kernel), prog_b.compile(kernel)
    different: list[tuple[bytes, int]] = []  # frames for -w
    out = sys.stdout
    if pcaps:
        out.write(f"{'file':<20} {'packet':>7} {'old':>10} {'new':>10}  decode\n")
        npackets = 0
        for pcap in pcaps:
            try:
                with PcapReader(pcap) as reader:
                    for number, rec in enumerate(reader):
                        npackets += 1
                        meta = skb_meta(rec.data, rec.linktype)
                        va = run_a(rec.data, meta, rec.wirelen)
                        vb = run_b(rec.data, meta, rec.wirelen)
                        if va != vb:
                            different.append((rec.data, rec.wirelen))
                            out.write(f"{Path(pcap).name:<20} {number:>7} {va:>10} {vb:>10}  "
                                      f"{_one_line_decode(rec.data, rec.linktype)}\n")
            except PcapError as exc:
                raise InputError(str(exc)) from None
        out.write(f"{npackets} packets in {len(pcaps)} file{'s' if len(pcaps) != 1 else ''}, "
                  f"{len(different)} with different return values\n")
    status = 1 if different else 0
    if prove:
        status = max(status, _prove(prog_a, prog_b, kernel, max_len, timeout, different))
    if witness is not None and different:
        from lsfsim.pcapio import PcapWriter

        try:
            with PcapWriter(witness) as writer:
                for data, wirelen in different:
                    writer.write(data, wirelen=max(wirelen, len(data)))
        except OSError as exc:
            raise InputError(f"{witness}: {exc.strerror or exc}") from None
        out.write(f"wrote {len(different)} packet{'s' if len(different) != 1 else ''} "
                  f"to {witness}\n")
    out.flush()
    raise typer.Exit(status)


def _semantics_name(kernel: str) -> str:
    from lsfsim.bpf.versions import semantics

    return semantics(kernel).name


def _prove(prog_a, prog_b, kernel: str, max_len: int, timeout: float,
           different: list[tuple[bytes, int]]) -> int:
    """Run the prover, print its answer; the exit status it implies."""
    from lsfsim.bpf.equiv import Equivalent, Undecided, prove_equivalent

    try:
        result = prove_equivalent(prog_a.insns, prog_b.insns, kernel=kernel, max_len=max_len,
                                  timeout=timeout)
    except Undecided as exc:
        sys.stdout.flush()
        fail(f"--prove cannot decide: {exc}", EXIT_UNDECIDED)
        raise AssertionError("unreachable") from None  # fail() raises typer.Exit
    out = sys.stdout
    if isinstance(result, Equivalent):
        out.write(f"equivalent: the same return value for every packet of 0..{max_len} bytes "
                  f"({_semantics_name(kernel)} semantics)\n")
        return 0
    pkt = result.packet
    out.write(f"different: a packet of {len(pkt)} bytes: OLD returns {result.value_a}, "
              f"NEW returns {result.value_b} (lsfsim's interpreter, "
              f"{_semantics_name(kernel)} semantics)\n")
    if result.libpcap is not None:
        la, lb = result.libpcap
        agrees = "agrees" if (la != lb) else "does NOT see a difference"
        out.write(f"  libpcap's bpf_filter: OLD {la}, NEW {lb} ({agrees})\n")
    if result.meta_fields:
        fields = ", ".join(f"{k}={v:#x}" for k, v in result.meta_fields.items())
        out.write(f"  with sk_buff fields {fields}\n")
    out.write(f"  decode: {_one_line_decode(pkt, 1)}\n")
    out.write(f"  bytes:  {pkt.hex()}\n")
    different.append((pkt, len(pkt)))
    return 1
