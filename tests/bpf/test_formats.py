"""Program text formats against their real producers.

Oracles: the tcpdump binary (``-d``, ``-dd``, ``-ddd`` output must read back
and be written again byte for byte), libpcap's own ``bpf_image()`` called
through ctypes for every one of the 65536 opcodes, and bpf_asm's grammar
(tools/bpf/bpf_exp.y, bpf_exp.l) for hand-worked assembler examples.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsfsim.bpf import ParseError, formats
from lsfsim.bpf.formats import FORMATS, canonical, detect, insn_text, load, parse
from lsfsim.bpf.formats.asm_writer import ASM
from lsfsim.bpf.formats.image import is_jump
from lsfsim.bpf.isa import SKF_AD_OFF, Insn, encode
from lsfsim.pcapio import PcapWriter

TCPDUMP = shutil.which("tcpdump")
needs_tcpdump = pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed")

# Expressions covering every instruction libpcap emits: loads of all sizes and
# modes, MSH, scratch memory, all ALU ops (mod, xor, neg too), all jumps, ja
# (protochain), ret a.  More than 40, as the tcpdump comparison wants.
EXPRESSIONS = [
    "host 208.68.139.89", "tcp", "udp port 53", "ip", "ip6", "arp", "rarp",
    "tcp[tcpflags] & tcp-syn != 0", "ip[2:2] > 576", "len > 100", "len <= 64",
    "ether broadcast", "ether multicast", "vlan", "vlan 100 and ip", "mpls", "pppoes",
    "icmp[icmptype] == icmp-echo", "portrange 1000-2000", "net 10.0.0.0/8",
    "src host 1.2.3.4 and dst port 80", "not tcp", "ip proto 47", "ip6 and tcp",
    "tcp port 80 and (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0)",
    "ip[8] * 2 > 100", "ip[8] / 3 = 5", "ip[8] % 3 = 1", "ip[8] ^ 3 = 1", "ip[8] - 1 < 5",
    "ip[8] + 1 >= 5", "ip[8] << 2 = 8", "ip[8] >> 1 = 2", "ip[8] | 1 = 1", "ip[8] & 6 = 2",
    "-ip[8] = 4294967295", "ip protochain 6", "ip6 protochain 17", "geneve",
    "ether host 00:11:22:33:44:55", "greater 1000", "less 64", "ip multicast",
    "ip6 multicast", "tcp[13] & 2 = 2", "ether[0] & 1 = 1", "udp[8:4] = 0xdeadbeef",
    "ip host 1.1.1.1 or ip host 2.2.2.2 or ip host 3.3.3.3", "decnet host 10.15", "stp",
    "llc", "iso", "ipx", "sctp", "ah", "esp", "ip[6:2] & 0x1fff = 0",
    "ether proto 0x88cc", "tcp portrange 1-1024 and not src net 192.168.0.0/16",
    "ip and len = 1500", "ip[0] & 0xf != 5", "tcp dst port 22 or udp src port 123",
    "vlan and vlan", "ip[ip[0]&0xf] = 1", "ip[8] != 0 and ip[8] / ip[9] = 2",
]


@pytest.fixture(scope="module")
def eth_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Ethernet capture with snaplen 262144: tcpdump -d -r takes its link type and snaplen."""
    path = tmp_path_factory.mktemp("formats") / "eth.pcap"
    with PcapWriter(path, linktype=1, snaplen=262144) as writer:
        writer.write(bytes(60), 1.0)
    return path


def tcpdump(flag: str, pcap: Path, expr: str, optimize: bool = True) -> str:
    cmd = [TCPDUMP, flag, "-r", str(pcap)] + ([] if optimize else ["-O"]) + ["--", expr]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# --- tcpdump output, byte for byte ----------------------------------------------------
@needs_tcpdump
@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_tcpdump_output_round_trips(eth_pcap: Path, expr: str) -> None:
    outputs = {fmt: tcpdump(flag, eth_pcap, expr)
               for flag, fmt in (("-d", "tcpdump-d"), ("-dd", "tcpdump-dd"),
                                 ("-ddd", "tcpdump-ddd"))}
    progs = {}
    for fmt, text in outputs.items():
        assert detect(text) == fmt
        progs[fmt] = parse(text, fmt)
        assert parse(text) == progs[fmt]
        assert formats.format(progs[fmt], fmt) == text
    full = progs["tcpdump-ddd"]
    assert progs["tcpdump-dd"] == full
    # -d prints only what an instruction uses (libpcap leaves stale k in tax ...)
    assert progs["tcpdump-d"] == canonical(full)
    # and -d written from the full program is tcpdump's text too
    assert formats.format(full, "tcpdump-d") == outputs["tcpdump-d"]


@needs_tcpdump
@pytest.mark.parametrize("expr", ["host 208.68.139.89", "ip protochain 6", "tcp port 80"])
def test_tcpdump_unoptimized_output_round_trips(eth_pcap: Path, expr: str) -> None:
    text = tcpdump("-d", eth_pcap, expr, optimize=False)
    assert formats.format(parse(text), "tcpdump-d") == text


def test_libpcap_stale_k_is_dropped_by_canonical() -> None:
    """tax ignores k; canonical() and the -d format drop it, the others keep it."""
    prog = [Insn(0x07, 0, 0, 5), Insn(0x16, 3, 4, 9)]
    assert canonical(prog) == [Insn(0x07, 0, 0, 0), Insn(0x16, 0, 0, 0)]
    for fmt in ("tcpdump-dd", "tcpdump-ddd", "binary"):
        assert parse(formats.format(prog, fmt), fmt) == prog


# --- every opcode against libpcap's bpf_image() -----------------------------------------
def _system_libpcap() -> ctypes.CDLL:
    """The libpcap tcpdump links (the bundled PyPI one lacks SKF_AD_RANDOM/VLAN_TPID names)."""
    name = ctypes.util.find_library("pcap")
    if name is None:
        pytest.skip("no system libpcap")
    lib = ctypes.CDLL(name)
    lib.bpf_image.restype = ctypes.c_char_p
    lib.bpf_image.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.pcap_lib_version.restype = ctypes.c_char_p
    if not lib.pcap_lib_version().startswith(b"libpcap version 1.10"):
        pytest.skip(f"formats follow libpcap 1.10, found {lib.pcap_lib_version()!r}")
    return lib


def test_insn_text_matches_bpf_image_for_all_opcodes() -> None:
    lib = _system_libpcap()
    rnd = random.Random(6633)
    interesting_k = [0, 1, 12, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFEFFFFF, 0xFFF00000]
    interesting_k += [(SKF_AD_OFF + off) & 0xFFFFFFFF for off in range(-4, 72)]
    checked = 0
    for code in range(1 << 16):
        for k in (rnd.choice(interesting_k), rnd.getrandbits(32)):
            insn = Insn(code, rnd.randrange(256), rnd.randrange(256), k)
            pc = rnd.choice([0, 7, 998, 999, 1000, 4095])
            want = lib.bpf_image(encode([insn]), pc).decode()
            assert f"({pc:03d}) " + insn_text(insn, pc) == want, insn
            checked += 1
    # the ancillary names, each one
    for off in range(0, 64):
        for code in (0x20, 0x28, 0x30):
            insn = Insn(code, 0, 0, (SKF_AD_OFF + off) & 0xFFFFFFFF)
            assert "(000) " + insn_text(insn, 0) == lib.bpf_image(encode([insn]), 0).decode()
    assert checked == 2 << 16


def test_odd_instructions_read_back() -> None:
    """Text tcpdump -d prints for instructions libpcap rarely emits, read back by hand."""
    text = (
        "(000) ld       #pktlen\n"
        "(001) ldxb     4*([14]&0xf)\n"
        "(002) st       M[15]\n"
        "(003) ldx      M[15]\n"
        "(004) txa      \n"
        "(005) div      x\n"
        "(006) mod      #7\n"
        "(007) xor      #0xff\n"
        "(008) neg      \n"
        "(009) ld       [proto]\n"
        "(010) ldh      [vlanp]\n"
        "(011) ld       [x + -4]\n"
        "(012) jset     #0x1             jt 13\tjf 14\n"
        "(013) ja       15\n"
        "(014) unimp    0x81\n"
        "(015) ret      \n"
        "(016) ret      #-1\n"
    )
    want = [
        Insn(0x80, 0, 0, 0), Insn(0xB1, 0, 0, 14), Insn(0x02, 0, 0, 15), Insn(0x61, 0, 0, 15),
        Insn(0x87, 0, 0, 0), Insn(0x3C, 0, 0, 0), Insn(0x94, 0, 0, 7), Insn(0xA4, 0, 0, 0xFF),
        Insn(0x84, 0, 0, 0), Insn(0x20, 0, 0, 0xFFFFF000), Insn(0x28, 0, 0, 0xFFFFF030),
        Insn(0x40, 0, 0, 0xFFFFFFFC), Insn(0x45, 0, 1, 1), Insn(0x05, 0, 0, 1),
        Insn(0x81, 0, 0, 0), Insn(0x16, 0, 0, 0), Insn(0x06, 0, 0, 0xFFFFFFFF),
    ]
    assert parse(text) == want
    assert formats.format(want, "tcpdump-d") == text


def test_lecture_style_text_without_numbers() -> None:
    """The lecture prints -d output without "(000)" and with single spaces."""
    text = " ldh [12]\njeq #0x800 jt 2 jf 3\nret #65535\nret #0\n"
    assert detect(text) == "tcpdump-d"
    assert parse(text) == [Insn(0x28, 0, 0, 12), Insn(0x15, 0, 1, 0x800),
                           Insn(0x06, 0, 0, 65535), Insn(0x06, 0, 0, 0)]


def test_ddd_comma_form_of_bpf_asm() -> None:
    """bpf_asm (no -c) prints "n,code jt jf k,..." on one line: read as tcpdump-ddd."""
    text = "4,40 0 0 12,21 0 1 2048,6 0 0 4294967295,6 0 0 0,\n"
    assert detect(text) == "tcpdump-ddd"
    assert parse(text) == [Insn(40, 0, 0, 12), Insn(21, 0, 1, 2048),
                           Insn(6, 0, 0, 0xFFFFFFFF), Insn(6, 0, 0, 0)]


def test_dd_inside_a_c_array() -> None:
    text = ("struct sock_filter code[] = {\n{ 0x28, 0, 0, 0x0000000c },\n"
            "{ 0x6, 0, 0, 0x00040000 },\n};\n")
    assert parse(text) == [Insn(0x28, 0, 0, 12), Insn(0x06, 0, 0, 0x40000)]


# --- bpf_asm -------------------------------------------------------------------------------
def test_bpf_asm_kernel_documentation_example() -> None:
    """The ICMP sampling example of Documentation/networking/filter.rst, by hand."""
    text = """
  ldh [12]
  jne #0x800, drop
  ldb [23]
  jneq #1, drop
  # get a random uint32 number
  ld rand
  mod #4
  jneq #1, drop
  ret #-1
  drop: ret #0
"""
    # "  # get ..." is not at column 1, so it is no comment for bpf_asm's lexer
    with pytest.raises(ParseError) as info:
        parse(text, "bpf_asm")
    assert (info.value.line, info.value.column) == (6, 3)
    prog = parse(text.replace("  # get", "# get"), "bpf_asm")
    assert prog == [
        Insn(0x28, 0, 0, 12), Insn(0x15, 0, 6, 0x800), Insn(0x30, 0, 0, 23),
        Insn(0x15, 0, 4, 1), Insn(0x20, 0, 0, (SKF_AD_OFF + 56) & 0xFFFFFFFF),
        Insn(0x94, 0, 0, 4), Insn(0x15, 0, 1, 1), Insn(0x06, 0, 0, 0xFFFFFFFF),
        Insn(0x06, 0, 0, 0),
    ]


def test_bpf_asm_operand_forms() -> None:
    text = """
    ld [x + 5]
    ldh [%x + 6]
    ldb [7]
    ld #len
    ldx len
    ld M[3]
    ldx 4*([14]&0xf)
    ldxb 4*([14]&0xf)
    ldi #9
    ldxi 10
    st M[1]
    stx M[2]
    ld #proto
    ldh vlan_tci
    ldb #vlan_pr
    ld vlan_avail
    ret %a
    ret x
    ret #0x10
    add %x
    xor #0b101
    and #017
    neg
    tax
    txa
    """
    ad = SKF_AD_OFF & 0xFFFFFFFF
    assert parse(text, "bpf_asm") == [
        Insn(0x40, 0, 0, 5), Insn(0x48, 0, 0, 6), Insn(0x30, 0, 0, 7), Insn(0x80, 0, 0, 0),
        Insn(0x81, 0, 0, 0), Insn(0x60, 0, 0, 3), Insn(0xB1, 0, 0, 14), Insn(0xB1, 0, 0, 14),
        Insn(0x00, 0, 0, 9), Insn(0x01, 0, 0, 10), Insn(0x02, 0, 0, 1), Insn(0x03, 0, 0, 2),
        Insn(0x20, 0, 0, ad), Insn(0x28, 0, 0, ad + 44), Insn(0x30, 0, 0, ad + 48),
        Insn(0x20, 0, 0, ad + 48), Insn(0x16, 0, 0, 0), Insn(0x0E, 0, 0, 0),
        Insn(0x06, 0, 0, 16), Insn(0x0C, 0, 0, 0), Insn(0xA4, 0, 0, 5), Insn(0x54, 0, 0, 15),
        Insn(0x84, 0, 0, 0), Insn(0x07, 0, 0, 0), Insn(0x87, 0, 0, 0),
    ]


def test_bpf_asm_jumps() -> None:
    text = """
    start: ldh [12]
    jeq #0x800, ip, other   ; two labels
    ip: jgt x, big           ; jt only, jf falls through
    jlt #5, small            ; jlt = jge, jumping on false
    jle %x, small            ; jle = jgt, jumping on false
    jset #1, big, small
    ja start
    other: jmp small
    big: ret #1
    small: ret #0
    """
    assert parse(text, "bpf_asm") == [
        Insn(0x28, 0, 0, 12), Insn(0x15, 0, 5, 0x800), Insn(0x2D, 5, 0, 0),
        Insn(0x35, 0, 5, 5), Insn(0x2D, 0, 4, 0), Insn(0x45, 2, 3, 1),
        Insn(0x05, 0, 0, 0xFFFFFFF9), Insn(0x05, 0, 0, 1), Insn(0x06, 0, 0, 1),
        Insn(0x06, 0, 0, 0),
    ]


def test_bpf_asm_lexer_quirks() -> None:
    """flex's longest match with bpf_exp.l's rule order, worked by hand."""
    # keywords, 'M', 'x', 'a' and extensions are case-insensitive; labels are not
    assert parse("LD M[1]\nRET %A\n", "bpf_asm") == [Insn(0x60, 0, 0, 1), Insn(0x16, 0, 0, 0)]
    # "^#.*" is a comment at column 1 ... unless the line is exactly "#len" (an
    # earlier rule of the same length wins the tie)
    assert parse("ld\n#len\nret a\n", "bpf_asm") == [Insn(0x80, 0, 0, 0), Insn(0x16, 0, 0, 0)]
    with pytest.raises(ParseError):
        parse("ld\n#len \nret a\n", "bpf_asm")  # now the comment is longer
    # "#length" is "#len" then the label "gth"; "lenx" is a label
    for bad in ("ld #length\nret a\n", "ld lenx\nret a\n"):
        with pytest.raises(ParseError):
            parse(bad, "bpf_asm")
    # numbers: 0x (any case), 0b, octal with a leading 0, signed decimal
    assert parse("ret #0X1f\nret #0B11\nret #017\nret #+7\nret #-2\n", "bpf_asm") == [
        Insn(6, 0, 0, 31), Insn(6, 0, 0, 3), Insn(6, 0, 0, 15), Insn(6, 0, 0, 7),
        Insn(6, 0, 0, 0xFFFFFFFE)]
    for bad in ("ret #08\n", "ret #0x\n", "ret #-0\n", "ret #4294967296\n"):
        with pytest.raises(ParseError):
            parse(bad, "bpf_asm")
    # /* */ comments may span lines; the longest match runs to the last "*/" it can
    assert parse("/* a\n**/ ret #1 */ ret #2\n", "bpf_asm") == [Insn(6, 0, 0, 2)]
    # one-letter labels cannot exist (the label rule wants two characters)
    with pytest.raises(ParseError):
        parse("ja b\nb: ret #0\n", "bpf_asm")
    # "[x+4]": flex reads "+4" as a number, so bpf_asm refuses it; we accept it
    assert parse("ld [x+4]\nret a\n", "bpf_asm") == [Insn(0x40, 0, 0, 4), Insn(0x16, 0, 0, 0)]


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("ld [12]\nret #\n", 3, 1, "expected a number, got end of input"),
        ("ldh [12\nret a\n", 2, 1, "expected ']'"),
        ("ja nowhere\nret #0\n", 1, 4, "no such label 'nowhere'"),
        ("l1: ret #0\nl1: ret #1\n", 2, 1, "label 'l1' already defined at line 1"),
        ("ldx 2*([14]&0xf)\nret a\n", 1, 5, "only 4*([k]&0xf)"),
        ("ret a\n  @\n", 2, 3, "unknown character '@'"),
        ("ld M[1]\nfoo\n", 2, 1, "expected an instruction, got 'foo'"),
        ("/* open\nret a\n", 1, 1, "unterminated /* comment"),
    ],
)
def test_bpf_asm_errors_say_where(text: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text, "bpf_asm")
    assert (info.value.line, info.value.column) == (line, column)
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"line {line}, column {column}: ")


def test_bpf_asm_jump_out_of_range() -> None:
    text = "jeq #1, far\n" + "ld #0\n" * 256 + "far: ret #0\n"
    with pytest.raises(ParseError, match="out of range"):
        parse(text, "bpf_asm")
    ok = "jeq #1, far\n" + "ld #0\n" * 255 + "far: ret #0\n"
    assert parse(ok, "bpf_asm")[0] == Insn(0x15, 255, 0, 1)


def test_bpf_asm_format_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ValueError, match="code 0xffff"):
        formats.format([Insn(0xFFFF, 0, 0, 0)], "bpf_asm")
    with pytest.raises(ValueError, match="past the end"):
        formats.format([Insn(0x15, 0, 3, 1), Insn(6, 0, 0, 0)], "bpf_asm")


# --- other formats' errors ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "fmt", "line", "column"),
    [
        ("(000) ldh      [12]\n(002) ret      #0\n", "tcpdump-d", 2, 1),
        ("(000) jeq      #0x800           jt 1\tjf 300\n", "tcpdump-d", 1, 41),
        ("(000) frob     #1\n", "tcpdump-d", 1, 7),
        ("(000) ld       [bogus]\n", "tcpdump-d", 1, 17),
        ("(000) jeq      #0x800\n", "tcpdump-d", 1, 22),
        ("{ 0x28, 0, 0, 0x0000000c },\n{ 0x10000, 0, 0, 0 },\n", "tcpdump-dd", 2, 3),
        ("{ 0x28, 0, 0 },\n", "tcpdump-dd", 1, 1),
        ("2\n40 0 0 12\n", "tcpdump-ddd", 2, 1),
        ("1\n40 0 0 12\n6 0 0 0\n", "tcpdump-ddd", 3, 1),
        ("1\n40 0 256 12\n", "tcpdump-ddd", 2, 6),
        ("x\n", "tcpdump-ddd", 1, 1),
    ],
)
def test_text_format_errors_say_where(text: str, fmt: str, line: int, column: int) -> None:
    with pytest.raises(ParseError) as info:
        parse(text, fmt)
    assert (info.value.line, info.value.column) == (line, column), str(info.value)


def test_binary_format(tmp_path: Path) -> None:
    prog = [Insn(0x28, 0, 0, 12), Insn(0x15, 0, 1, 0x800), Insn(6, 0, 0, 0xFFFF), Insn(6, 0, 0, 0)]
    blob = formats.format(prog, "binary")
    # struct sock_filter on x86: u16 code, u8 jt, u8 jf, u32 k, little-endian
    assert blob[:8] == bytes([0x28, 0, 0, 0, 12, 0, 0, 0])
    assert detect(blob) == "binary"
    assert parse(blob) == prog
    path = tmp_path / "prog.bin"
    path.write_bytes(formats.format([Insn(0x0A0A, 0x0A, 0x0A, 0x0A0A0A0A)], "binary"))
    assert load(path) == [Insn(0x0A0A, 10, 10, 0x0A0A0A0A)]  # all newlines, still binary
    with pytest.raises(ParseError, match="13 bytes is not a whole number"):
        parse(bytes(13), "binary")
    with pytest.raises(ParseError, match="empty"):
        parse(b"", "binary")


def test_unknown_format_name() -> None:
    with pytest.raises(ValueError, match="unknown program format 'pcap'"):
        parse("ret #0", "pcap")
    with pytest.raises(ValueError, match="unknown program format"):
        formats.format([Insn(6, 0, 0, 0)], "tcpdump-x")


def test_load_detects_text_formats(tmp_path: Path) -> None:
    prog = [Insn(0x28, 0, 0, 12), Insn(0x15, 0, 1, 0x800), Insn(6, 0, 0, 0xFFFF), Insn(6, 0, 0, 0)]
    for fmt in FORMATS:
        path = tmp_path / f"p.{fmt}"
        payload = formats.format(prog, fmt)
        path.write_bytes(payload if isinstance(payload, bytes) else payload.encode())
        assert load(path) == prog, fmt
        assert load(path, fmt) == prog, fmt


# --- properties and fuzzing ----------------------------------------------------------------
insns = st.builds(Insn, st.integers(0, 0xFFFF), st.integers(0, 255), st.integers(0, 255),
                  st.integers(0, 0xFFFFFFFF))
valid_codes = sorted(ASM)


@st.composite
def asm_programs(draw: st.DrawFn) -> list[Insn]:
    """Programs bpf_asm can write: known codes, jumps landing inside the program."""
    n = draw(st.integers(1, 40))
    prog = []
    for pc in range(n):
        code = draw(st.sampled_from(valid_codes))
        room = n - pc - 1
        if code == 0x05:
            k = (draw(st.integers(-pc - 1, room - 1)) if room or pc else -1) & 0xFFFFFFFF
            if room == 0 and pc == 0:
                code, k = 0x06, 0
            prog.append(Insn(code, 0, 0, k))
        elif is_jump(code):
            if room == 0:
                prog.append(Insn(0x06, 0, 0, 0))
            else:
                hi = min(room - 1, 255)
                prog.append(Insn(code, draw(st.integers(0, hi)), draw(st.integers(0, hi)),
                                 draw(st.integers(0, 0xFFFFFFFF))))
        else:
            prog.append(Insn(code, draw(st.integers(0, 3)), 0, draw(st.integers(0, 0xFFFFFFFF))))
    return prog


@settings(max_examples=300, deadline=None)
@given(st.lists(insns, min_size=1, max_size=30))
def test_lossless_formats_round_trip(prog: list[Insn]) -> None:
    for fmt in ("tcpdump-dd", "tcpdump-ddd", "binary"):
        out = formats.format(prog, fmt)
        assert parse(out, fmt) == prog
        assert parse(out) == prog
    d = formats.format(prog, "tcpdump-d")
    assert parse(d, "tcpdump-d") == parse(d) == canonical(prog)
    assert formats.format(parse(d), "tcpdump-d") == d


@settings(max_examples=300, deadline=None)
@given(asm_programs())
def test_bpf_asm_round_trip(prog: list[Insn]) -> None:
    text = formats.format(prog, "bpf_asm")
    assert parse(text, "bpf_asm") == canonical(prog)
    assert parse(text) == canonical(prog)


def _only_parse_errors(data: str | bytes, fmt: str | None) -> None:
    try:
        parse(data, fmt)
    except ParseError as exc:
        assert exc.line is None or exc.line >= 1
        assert exc.column is None or exc.column >= 1
        assert "\n" not in str(exc)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200), st.sampled_from([None, *FORMATS]))
def test_fuzz_random_text_only_parse_error(text: str, fmt: str | None) -> None:
    _only_parse_errors(text, fmt)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([None, *FORMATS]))
def test_fuzz_random_bytes_only_parse_error(blob: bytes, fmt: str | None) -> None:
    _only_parse_errors(blob, fmt)


_SEED_PROGRAM = [
    Insn(0x28, 0, 0, 12), Insn(0x15, 0, 8, 0x800), Insn(0xB1, 0, 0, 14), Insn(0x48, 0, 0, 16),
    Insn(0x02, 0, 0, 3), Insn(0x20, 0, 0, (SKF_AD_OFF + 4) & 0xFFFFFFFF), Insn(0x94, 0, 0, 3),
    Insn(0x45, 1, 0, 4), Insn(0x05, 0, 0, 0), Insn(0x06, 0, 0, 0xFFFF), Insn(0x16, 0, 0, 0),
]
_ALPHABET = "0123456789abcdefx#[]()+-*&%,:;{}\n\t M ljtfAX/"


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["tcpdump-d", "tcpdump-dd", "tcpdump-ddd", "bpf_asm"]),
       st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["ins", "del", "rep"]),
                          st.sampled_from(_ALPHABET)), min_size=1, max_size=6),
       st.booleans())
def test_fuzz_mutated_programs_only_parse_error(fmt: str, edits: list[tuple[int, str, str]],
                                                autodetect: bool) -> None:
    text = formats.format(_SEED_PROGRAM, fmt)
    assert isinstance(text, str)
    for pos, op, ch in edits:
        pos %= len(text) + 1
        if op == "ins":
            text = text[:pos] + ch + text[pos:]
        elif op == "del":
            text = text[:pos] + text[pos + 1:]
        else:
            text = text[:pos] + ch + text[pos + 1:]
    _only_parse_errors(text, None if autodetect else fmt)


@pytest.mark.parametrize(
    "text",
    ["ret #" + "1" * 5000, "(000) ret      #" + "1" * 5000, "{ 0x6, 0, 0, " + "1" * 5000 + " },",
     "1\n6 0 0 " + "1" * 5000, "1" * 5000 + "\n", "(" + "0" * 5000 + ") ret #0",
     "jeq #0 jt " + "9" * 5000 + " jf 1", "(\u0660\u0660\u0660) ret #0", "ret #0x" + "f" * 50],
)
def test_huge_or_foreign_numbers_are_parse_errors(text: str) -> None:
    """int() refuses > 4300 digits and reads non-ASCII digits: neither may leak out."""
    with pytest.raises(ParseError) as info:
        parse(text)
    assert len(str(info.value)) < 200
