"""libpcap through ctypes: pcap_compile against tcpdump, bpf_filter against tcpdump's filtering.

Oracles: ``tcpdump -ddd`` (the same pcap_compile, run by tcpdump itself) for
compiled programs, and ``tcpdump -r F EXPR`` (libpcap's userland bpf_filter
applied to a savefile) for filter verdicts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lsfsim.bpf import CompileError, Program, pcapc
from lsfsim.bpf.formats import parse
from lsfsim.bpf.isa import Insn
from lsfsim.pcapio import PcapWriter, iter_pcap
from tests.captures import REAL_TRACES

TCPDUMP = shutil.which("tcpdump")
needs_tcpdump = pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed")
TRACES = REAL_TRACES
REPO = Path(__file__).resolve().parents[2]

EXPRESSIONS = [
    "host 208.68.139.89", "tcp", "udp port 53", "arp or rarp", "ip6 and tcp", "vlan 100 and ip",
    "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0", "ip[2:2] > 576", "len > 100", "ether multicast",
    "icmp[icmptype] == icmp-echo", "portrange 1000-2000", "net 10.0.0.0/8", "ip protochain 6",
    "ip[8] % 3 = 1", "ip[8] ^ 3 = 1", "-ip[8] = 4294967295", "mpls", "pppoes", "geneve",
    "ether proto 0x88cc", "ip[ip[0]&0xf] = 1", "greater 1000", "not (tcp or udp)",
    "ip multicast",  # changed in libpcap 1.10.4: only 224/4, not >= 224
]


def tcpdump_version() -> str:
    out = subprocess.run([TCPDUMP, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"^libpcap version (\S+)", out, re.MULTILINE)
    return m.group(1) if m else ""


@pytest.fixture(scope="module")
def same_libpcap() -> None:
    """Skip unless pcapc uses the libpcap tcpdump uses (else the code may differ)."""
    if TCPDUMP is None:
        pytest.skip("tcpdump is not installed")
    ours = pcapc.libpcap_version()
    if f"libpcap version {tcpdump_version()} " not in ours:
        pytest.skip(f"pcapc uses {ours}, tcpdump libpcap {tcpdump_version()}")


def capture_with(tmp_path: Path, linktype: int, snaplen: int) -> Path:
    path = tmp_path / f"lt{linktype}-{snaplen}.pcap"
    with PcapWriter(path, linktype=linktype, snaplen=snaplen) as writer:
        writer.write(bytes(64), 1.0)
    return path


def tcpdump_program(pcap: Path, expr: str, *flags: str) -> list[Insn]:
    proc = subprocess.run([TCPDUMP, "-ddd", *flags, "-r", str(pcap), "--", expr],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return parse(proc.stdout, "tcpdump-ddd")


@pytest.mark.usefixtures("same_libpcap")
@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_compile_matches_tcpdump(tmp_path: Path, expr: str) -> None:
    pcap = capture_with(tmp_path, 1, 262144)
    assert pcapc.compile_expression(expr, 262144, 1) == tcpdump_program(pcap, expr)
    assert Program.from_expression(expr).insns == tuple(tcpdump_program(pcap, expr))


@pytest.mark.usefixtures("same_libpcap")
@pytest.mark.parametrize(
    ("name", "file_linktype", "snaplen", "expr"),
    [
        ("RAW", 101, 1500, "tcp port 80"),         # LINKTYPE_RAW in files, DLT_RAW (12) in memory
        ("LINUX_SLL", 113, 65535, "ip and udp"),
        # (DLT_NULL would differ: its AF field follows the file byte order)
        ("PPP", 9, 96, "ip6 or ip"),
        ("IEEE802_11", 105, 2000, "type mgt subtype beacon"),
        ("EN10MB", 1, 68, "host 10.0.0.1"),
    ],
)
def test_compile_other_link_types(tmp_path: Path, name: str, file_linktype: int, snaplen: int,
                                  expr: str) -> None:
    pcap = capture_with(tmp_path, file_linktype, snaplen)
    assert pcapc.compile_expression(expr, snaplen, name) == tcpdump_program(pcap, expr)


@pytest.mark.usefixtures("same_libpcap")
def test_no_optimize_matches_tcpdump_O(tmp_path: Path) -> None:
    pcap = capture_with(tmp_path, 1, 262144)
    expr = "host 208.68.139.89"
    unopt = pcapc.compile_expression(expr, optimize=False)
    assert unopt == tcpdump_program(pcap, expr, "-O")
    assert len(unopt) > len(pcapc.compile_expression(expr))


def test_snaplen_is_the_accept_value() -> None:
    """The "ret #snaplen" of an accepting filter; -s 0 means 262144 as in tcpdump."""
    assert pcapc.compile_expression("", 65535) == [Insn(0x06, 0, 0, 65535)]
    assert pcapc.compile_expression("", 0) == [Insn(0x06, 0, 0, 262144)]
    assert pcapc.compile_expression("tcp", 96)[-2] == Insn(0x06, 0, 0, 96)


def test_netmask_host_order() -> None:
    """ip broadcast needs the netmask; hostmask = ~netmask, worked by hand."""
    with pytest.raises(CompileError, match="netmask"):
        pcapc.compile_expression("ip broadcast")
    prog = pcapc.compile_expression("ip broadcast", netmask="255.255.255.0")
    assert Insn(0x45, 0, 2, 0xFF) in prog  # jset #0xff: any host bit set?
    assert pcapc.compile_expression("ip broadcast", netmask=0xFFFF0000) != prog
    with pytest.raises(ValueError, match="bad netmask"):
        pcapc.compile_expression("ip broadcast", netmask="255.255.0")


@needs_tcpdump
@pytest.mark.parametrize("expr", ["tcp port 99999", "ip[0] & 0xf0 = 0x40 and foo", "host",
                                  "ether host 00:11"])
def test_compile_errors_carry_libpcap_text(tmp_path: Path, expr: str) -> None:
    pcap = capture_with(tmp_path, 1, 262144)
    proc = subprocess.run([TCPDUMP, "-d", "-r", str(pcap), "--", expr],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    theirs = proc.stderr.strip().splitlines()[-1]
    theirs = re.sub(r"^tcpdump: (can't parse filter expression: )?", "", theirs)
    with pytest.raises(CompileError) as info:
        pcapc.compile_expression(expr)
    assert theirs in str(info.value)
    assert repr(expr) in str(info.value)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown link type 'NOPE'"):
        pcapc.compile_expression("tcp", linktype="NOPE")
    with pytest.raises(ValueError, match="snaplen"):
        pcapc.compile_expression("tcp", snaplen=-1)
    with pytest.raises(CompileError, match="NUL"):
        pcapc.compile_expression("tcp\0udp")


def test_linktype_values() -> None:
    # DLT numbers from pcap/dlt.h (Linux)
    assert pcapc.linktype_value("EN10MB") == 1
    assert pcapc.linktype_value("en10mb") == 1
    assert pcapc.linktype_value("DLT_EN10MB") == 1
    assert pcapc.linktype_value("ethernet") == 1
    assert pcapc.linktype_value("RAW") == 12
    assert pcapc.linktype_value("LINUX_SLL") == 113
    assert pcapc.linktype_value("NULL") == 0
    assert pcapc.linktype_value("105") == 105
    assert pcapc.linktype_value("0x71") == 113
    assert pcapc.linktype_value(228) == 228
    with pytest.raises(ValueError):
        pcapc.linktype_value(-1)


def test_compile_is_thread_safe() -> None:
    want = {e: pcapc.compile_expression(e) for e in EXPRESSIONS[:8]}
    errors: list[str] = []

    def work() -> None:
        for _ in range(20):
            for expr, prog in want.items():
                if pcapc.compile_expression(expr) != prog:
                    errors.append(expr)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_libpcap_version_names_the_library() -> None:
    text = pcapc.libpcap_version()
    assert text.startswith("libpcap version ")
    assert Path(pcapc.libpcap_path()).exists()
    assert pcapc.libpcap_path() in text


def test_library_override_with_bundled_copy() -> None:
    """LSFSIM_LIBPCAP selects the .so; the PyPI package bundles one."""
    import importlib.util

    spec = importlib.util.find_spec("libpcap")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("PyPI libpcap not installed")
    bundled = next(Path(d) for d in spec.submodule_search_locations)
    candidates = list(bundled.glob("_platform/linux/*/tcpdump/libpcap.so"))
    import platform

    so = [c for c in candidates if platform.machine() in str(c)]
    if not so:
        pytest.skip("no bundled libpcap for this machine")
    env = dict(os.environ, LSFSIM_LIBPCAP=str(so[0]),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = ("from lsfsim.bpf import pcapc; print(pcapc.libpcap_version()); "
            "print(len(pcapc.compile_expression('tcp')))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert str(so[0].resolve()) in out.stdout


# --- bpf_validate / bpf_filter ----------------------------------------------------------------
def test_bpf_validate() -> None:
    ok = [Insn(0x28, 0, 0, 12), Insn(0x15, 0, 1, 0x800), Insn(6, 0, 0, 1), Insn(6, 0, 0, 0)]
    assert pcapc.bpf_validate(ok)
    assert not pcapc.bpf_validate([])
    assert not pcapc.bpf_validate(ok[:2])                                   # falls off the end
    assert not pcapc.bpf_validate([Insn(0x15, 0, 5, 1), Insn(6, 0, 0, 0)])  # jf out of range
    assert not pcapc.bpf_validate([Insn(0x60, 0, 0, 16), Insn(6, 0, 0, 0)])  # M[16]
    assert not pcapc.bpf_validate([Insn(0x34, 0, 0, 0), Insn(6, 0, 0, 0)])   # div #0
    assert not pcapc.bpf_validate([Insn(0xFFFF, 0, 0, 0), Insn(6, 0, 0, 0)])


def test_bpf_filter_refuses_what_would_crash_or_hang() -> None:
    with pytest.raises(ValueError, match="bpf_validate"):
        pcapc.bpf_filter([Insn(0x60, 0, 0, 100), Insn(0x16, 0, 0, 0)], bytes(10))
    loop = [Insn(0x05, 0, 0, 0xFFFFFFFF), Insn(6, 0, 0, 0)]  # ja to itself
    assert pcapc.bpf_validate(loop)  # libpcap lets backward jumps through
    with pytest.raises(ValueError, match="backwards"):
        pcapc.bpf_filter(loop, bytes(10))


def test_bpf_filter_by_hand() -> None:
    # ld #pktlen; ret a: the wire length, not the captured length
    prog = [Insn(0x80, 0, 0, 0), Insn(0x16, 0, 0, 0)]
    assert pcapc.bpf_filter(prog, bytes(60)) == 60
    assert pcapc.bpf_filter(prog, bytes(60), wirelen=1514) == 1514
    # ldh [12] on a 13-byte packet: out of bounds -> 0
    prog = [Insn(0x28, 0, 0, 12), Insn(0x16, 0, 0, 0)]
    assert pcapc.bpf_filter(prog, bytes(13)) == 0
    assert pcapc.bpf_filter(prog, bytes(12) + b"\x08\x00") == 0x800
    # protochain's backward jumps run when allowed
    prog = pcapc.compile_expression("ip protochain 6")
    assert pcapc.bpf_filter(prog, bytes(60), allow_backward=True) == 0


@needs_tcpdump
@pytest.mark.parametrize("expr", ["tcp", "udp port 53", "ip6", "arp", "vlan", "len > 200",
                                  "ether multicast", "tcp[tcpflags] & tcp-syn != 0"])
def test_bpf_filter_agrees_with_tcpdump_on_traces(tmp_path: Path, expr: str) -> None:
    """tcpdump -r F EXPR keeps exactly the records libpcap's bpf_filter accepts."""
    traces = sorted((TRACES / "tcpdump-tests").glob("*.pcap"))[:60]
    total = accepted_total = 0
    for path in traces:
        records = list(iter_pcap(path))
        if not records or records[0].linktype != 1:
            continue
        prog = pcapc.compile_expression(expr, 262144, 1)
        verdicts = [pcapc.bpf_filter(prog, r.data, r.wirelen) for r in records]
        out = tmp_path / "kept.pcap"
        subprocess.run([TCPDUMP, "-r", str(path), "-w", str(out), "--", expr],
                       capture_output=True, check=True)
        kept = [r.data for r in iter_pcap(out)]
        assert kept == [r.data for r, v in zip(records, verdicts, strict=True) if v], path.name
        total += len(records)
        accepted_total += len(kept)
    assert total > 100
