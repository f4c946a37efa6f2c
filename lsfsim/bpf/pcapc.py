"""libpcap through ctypes: pcap_compile, and bpf_filter as an oracle.

The filter compiler is libpcap's own (the one tcpdump uses), so a program
compiled here is the program tcpdump would hand to the kernel.  libpcap's C
``bpf_filter`` and ``bpf_validate`` are exposed too, as an independent
reference for our interpreter.

Library lookup: the system libpcap first (``ctypes.util.find_library``, then
``libpcap.so.0.8`` / ``libpcap.so.1``), then the copy bundled in the PyPI
package ``libpcap``.  ``LSFSIM_LIBPCAP=/path/to/libpcap.so`` overrides both.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import ipaddress
import os
import platform
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from lsfsim.bpf.errors import CompileError
from lsfsim.bpf.isa import BPF_JA, BPF_JMP, CODES_2_6_33, CODES_MOD_XOR, Insn, encode

__all__ = [
    "PCAP_NETMASK_UNKNOWN",
    "bpf_filter",
    "bpf_validate",
    "compile_expression",
    "libpcap_path",
    "libpcap_version",
    "linktype_value",
]

PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
MAXIMUM_SNAPLEN = 262144  # what tcpdump uses for -s 0
PCAP_ERRBUF_SIZE = 256


class _BpfInsn(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    ]


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_BpfInsn))]


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


_PYPI_ARCH = {
    "x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64",
    "ppc64le": "ppc64le", "i386": "x86", "i686": "x86", "x86": "x86",
}


def _candidates() -> list[str]:
    override = os.environ.get("LSFSIM_LIBPCAP")
    if override:
        return [override]
    names: list[str] = []
    found = ctypes.util.find_library("pcap")
    if found:
        names.append(found)
    names += ["libpcap.so.0.8", "libpcap.so.1", "libpcap.so"]
    spec = importlib.util.find_spec("libpcap")
    if spec is not None and spec.submodule_search_locations:
        base = Path(next(iter(spec.submodule_search_locations)))
        arch = _PYPI_ARCH.get(platform.machine().lower(), platform.machine().lower())
        names.append(str(base / "_platform" / "linux" / arch / "tcpdump" / "libpcap.so"))
    return names


@lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL:
    errors = []
    for name in _candidates():
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
            continue
        _declare(lib)
        return lib
    raise OSError("no usable libpcap found (" + "; ".join(errors) + ")")


def _declare(lib: ctypes.CDLL) -> None:
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_close.restype = None
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    lib.pcap_compile.restype = ctypes.c_int
    lib.pcap_compile.argtypes = [
        ctypes.c_void_p, ctypes.POINTER(_BpfProgram), ctypes.c_char_p, ctypes.c_int,
        ctypes.c_uint32,
    ]
    lib.pcap_freecode.restype = None
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_datalink_name_to_val.restype = ctypes.c_int
    lib.pcap_datalink_name_to_val.argtypes = [ctypes.c_char_p]
    lib.pcap_lib_version.restype = ctypes.c_char_p
    lib.pcap_lib_version.argtypes = []
    lib.bpf_filter.restype = ctypes.c_uint
    lib.bpf_filter.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint]
    lib.bpf_validate.restype = ctypes.c_int
    lib.bpf_validate.argtypes = [ctypes.c_void_p, ctypes.c_int]


@lru_cache(maxsize=1)
def libpcap_path() -> str:
    """The file of the libpcap in use (resolved with dladdr)."""
    lib = _lib()
    try:
        libc = ctypes.CDLL(None)
        info = _DlInfo()
        addr = ctypes.cast(lib.pcap_lib_version, ctypes.c_void_p)
        if libc.dladdr(addr, ctypes.byref(info)) and info.dli_fname:
            return os.path.realpath(info.dli_fname.decode())
    except (OSError, AttributeError):
        pass
    return str(lib._name)


def libpcap_version() -> str:
    """``pcap_lib_version()`` and the shared object it comes from."""
    return f"{_lib().pcap_lib_version().decode()} ({libpcap_path()})"


# --- pcap_compile ------------------------------------------------------------
_lock = threading.Lock()
_handles: OrderedDict[tuple[int, int], int] = OrderedDict()
_MAX_HANDLES = 16


def _dead_handle(linktype: int, snaplen: int) -> int:
    """A cached ``pcap_open_dead(linktype, snaplen)``; call with ``_lock`` held."""
    key = (linktype, snaplen)
    handle = _handles.get(key)
    if handle is not None:
        _handles.move_to_end(key)
        return handle
    lib = _lib()
    handle = lib.pcap_open_dead(linktype, snaplen)
    if not handle:
        raise CompileError(f"pcap_open_dead({linktype}, {snaplen}) failed")
    _handles[key] = handle
    if len(_handles) > _MAX_HANDLES:
        _, old = _handles.popitem(last=False)
        lib.pcap_close(old)
    return handle


def linktype_value(name_or_number: int | str) -> int:
    """A DLT_/LINKTYPE_ value from a number or a name (``EN10MB``, ``DLT_RAW``, ``1``)."""
    if isinstance(name_or_number, int) and not isinstance(name_or_number, bool):
        if not 0 <= name_or_number < (1 << 31):
            raise ValueError(f"link type {name_or_number} out of range")
        return name_or_number
    text = str(name_or_number).strip()
    try:
        return linktype_value(int(text, 0))
    except ValueError:
        pass
    name = text.upper()
    for prefix in ("DLT_", "LINKTYPE_"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name == "ETHERNET":
        name = "EN10MB"
    value = _lib().pcap_datalink_name_to_val(name.encode())
    if value < 0:
        raise ValueError(f"unknown link type {text!r} (use a DLT name such as EN10MB or a number)")
    return value


def _netmask_value(netmask: int | str | None) -> int:
    """The netmask pcap_compile wants: host byte order, or PCAP_NETMASK_UNKNOWN."""
    if netmask is None:
        return PCAP_NETMASK_UNKNOWN
    if isinstance(netmask, int) and not isinstance(netmask, bool):
        if not 0 <= netmask <= 0xFFFFFFFF:
            raise ValueError(f"netmask {netmask} out of range")
        return netmask
    try:
        return int(ipaddress.IPv4Address(str(netmask).strip()))
    except ValueError:
        raise ValueError(f"bad netmask {netmask!r} "
                         f"(want a dotted quad such as 255.255.255.0)") from None


def compile_expression(
    expr: str,
    snaplen: int = MAXIMUM_SNAPLEN,
    linktype: int | str = 1,
    netmask: int | str | None = None,
    optimize: bool = True,
) -> list[Insn]:
    """Compile a pcap filter expression with libpcap's ``pcap_compile``.

    ``snaplen`` 0 means 262144, as for ``tcpdump -s 0``.  Raises CompileError
    with libpcap's text when the expression is refused.
    """
    if not isinstance(snaplen, int) or not 0 <= snaplen < (1 << 31):
        raise ValueError(f"snaplen {snaplen!r} out of range")
    if snaplen == 0:
        snaplen = MAXIMUM_SNAPLEN
    dlt = linktype_value(linktype)
    mask = _netmask_value(netmask)
    try:
        raw = expr.encode()
    except UnicodeEncodeError as exc:
        raise CompileError(f"filter expression is not valid text: {exc}") from None
    if b"\0" in raw:
        raise CompileError("filter expression contains a NUL character")
    lib = _lib()
    prog = _BpfProgram()
    with _lock:
        handle = _dead_handle(dlt, snaplen)
        if lib.pcap_compile(handle, ctypes.byref(prog), raw, int(bool(optimize)), mask) < 0:
            message = (lib.pcap_geterr(handle) or b"pcap_compile failed").decode(errors="replace")
            raise CompileError(f"filter expression {expr!r}: {message}")
        try:
            insns = [
                Insn(prog.bf_insns[i].code, prog.bf_insns[i].jt, prog.bf_insns[i].jf,
                     prog.bf_insns[i].k)
                for i in range(prog.bf_len)
            ]
        finally:
            lib.pcap_freecode(ctypes.byref(prog))
    return insns


# --- bpf_validate / bpf_filter --------------------------------------------------
# The opcodes libpcap's bpf_filter has a case for; on any other it calls
# abort(), and bpf_validate lets some through (any BPF_MISC code, RET|X ...).
FILTER_CODES = CODES_2_6_33 | CODES_MOD_XOR

@lru_cache(maxsize=256)
def _program_buffer(insns: tuple[Insn, ...]) -> tuple[ctypes.Array | None, bool, bool]:
    """The C array of a program, whether bpf_validate accepts it, whether it jumps back."""
    blob = encode(insns)
    buf = ctypes.create_string_buffer(blob, len(blob)) if blob else None
    valid = bool(insns) and bool(_lib().bpf_validate(buf, len(insns)))
    # ja's k is an unsigned offset; a "negative" one (as s32) lands at or before the ja.
    backward = any(insn.code == BPF_JMP | BPF_JA and insn.k >= 1 << 31 for insn in insns)
    valid = valid and all(insn.code in FILTER_CODES for insn in insns)
    return buf, valid, backward


def bpf_validate(insns: Sequence[Insn]) -> bool:
    """libpcap's ``bpf_validate`` (jumps in range, M[] < 16, ends in RET ...).

    Also False for opcodes libpcap's bpf_filter does not implement, which
    bpf_validate itself lets through and bpf_filter would abort() on.
    """
    return _program_buffer(tuple(Insn(*i) for i in insns))[1]


def bpf_filter(
    insns: Sequence[Insn],
    packet: bytes,
    wirelen: int | None = None,
    *,
    allow_backward: bool = False,
) -> int:
    """Run libpcap's C ``bpf_filter(pc, pkt, wirelen, buflen)``; return its verdict.

    libpcap's interpreter trusts its input, so the program must pass
    ``bpf_validate`` above (else ValueError).  bpf_validate lets backward ``ja``
    through (libpcap's protochain code uses them) and such a loop would never
    return; they are refused unless ``allow_backward``.
    """
    buf, valid, backward = _program_buffer(tuple(Insn(*i) for i in insns))
    if not valid:
        raise ValueError("libpcap's bpf_validate refuses this program")
    if backward and not allow_backward:
        raise ValueError("program jumps backwards; pass allow_backward=True to run it anyway")
    data = bytes(packet)
    if wirelen is None:
        wirelen = len(data)
    return _lib().bpf_filter(buf, data, wirelen, len(data))
