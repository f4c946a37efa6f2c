"""The machine being simulated: NIC, CPUs, kernel constants and per-function costs.

A model file (TOML, see models/README.md) is read once, validated and turned into
a typed, immutable ``Model``; the simulator never reads files itself.  Every
figure carries a unit in the file ("350ns", "100Mbit/s", "64KiB") and is held
here in SI base units: seconds, bytes, bits/s (link), bytes/s (DMA), Hz.

Errors are one line naming the file, the line when it can be found in the text,
and the dotted field: ``models/x.toml:12: kernel.costs.packet_rcv: expected a
duration like '350ns' or '1.2us', got '5MB'``.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lsfsim.config import units

__all__ = [
    "COST_KEYS",
    "Cost",
    "Cpu",
    "Hardware",
    "Kernel",
    "Model",
    "ModelError",
    "Nic",
    "Skb",
    "list_models",
    "load_model",
    "models_dirs",
    "shipped_models_dir",
]

# --- the cost registry ---------------------------------------------------------------------
#
# Keys are the kernel functions the simulator charges time to.  Each cost is
# fixed + per_byte * bytes + per_insn * instructions; which of the three terms a
# key uses is part of its description.  A model file must give every key.

COST_KEYS: dict[str, str] = {
    # interrupt and softirq
    "hardirq": "interrupt entry/exit (do_IRQ, irq_enter, irq_exit, APIC EOI), without the handler",
    "pcnet32_interrupt": "ISR fixed part (lock, status decode), without its CSR accesses",
    "pcnet32_wio_read_csr": "one CSR read: two port I/Os (RAP write, RDP read)",
    "pcnet32_wio_write_csr": "one CSR write: two port I/Os (RAP write, RDP write)",
    "__napi_schedule": "put the NAPI instance on the poll list and raise NET_RX_SOFTIRQ",
    "__do_softirq": "one pass of the softirq loop (pending mask, irq toggling)",
    "net_rx_action": "one run of the NET_RX handler (budget and time checks, list handling)",
    # driver receive
    "pcnet32_poll": "per poll call, without RX descriptors, TX reclaim entries and CSR accesses",
    "pcnet32_rx_entry": "per RX descriptor: status and length checks, ring bookkeeping",
    "dev_alloc_skb": "__alloc_skb + skb_reserve (skb head and data buffer from the slab)",
    "skb_put": "extend the data area (skb_put)",
    "memcpy": "copybreak copy out of the DMA buffer: fixed + per_byte",
    "eth_type_trans": "classify the frame, first touch of the header, pull 14 bytes",
    # core delivery
    "netif_receive_skb": "fixed part: timestamp, ptype walks, without the handlers",
    "deliver_skb": "per handler delivered before the last one (refcount + indirect call)",
    "packet_rcv": "fixed part up to the filter verdict: skb_push, local_bh pair, RCU, call",
    "sk_run_filter": "the socket filter: fixed + per_insn (executed instructions, final RET included)",
    "skb_clone": "clone a shared skb in packet_rcv (or for a transmit tap)",
    "kfree_skb": "drop an extra reference (atomic decrement and test)",
    "consume_skb": "free a whole skb and its data buffer",
    "__skb_queue_tail": "packet_rcv accept tail: dev_parse_header, pskb_trim, skb_set_owner_r,"
                        " queue lock, enqueue",
    "sock_def_readable": "sk_data_ready with no sleeper on the socket",
    "try_to_wake_up": "extra cost of sock_def_readable when it wakes a sleeping reader",
    "ip_rcv": "every packet that reaches IP; all of it for OTHERHOST/bad packets (dropped)",
    "ip_local_deliver": "extra for a host-bound packet: rest of IP + transport (beyond ip_rcv)",
    "tcp_send_ack": "build and queue an ACK (without dev_queue_xmit and the driver)",
    "netif_rx": "pre-NAPI drivers: enqueue to the per-CPU backlog from the ISR",
    "process_backlog": "pre-NAPI drivers: per call of the backlog poll, without the packets",
    # the reader
    "sys_recvfrom": "system call entry + exit (incl. fd lookup)",
    "packet_recvmsg": "packet_recvmsg incl. skb_recv_datagram (queue lock, dequeue), security hook",
    "skb_copy_datagram_iovec": "copy to user: fixed + per_byte",
    "skb_free_datagram": "sock_rfree (rmem release) + free of the skb",
    "schedule": "one context switch (to or from the reader)",
    # control path
    "sys_socket": "socket(2): sock_create + sock_map_fd, without packet_create",
    "packet_create": "PF_PACKET socket creation: sk_alloc, sock_init_data",
    "dev_add_pack": "register the protocol hook (ptype_all insert)",
    "sys_setsockopt": "setsockopt(2) entry + exit, lock_sock, copy of the sock_fprog",
    "sk_attach_filter": "allocate and copy the program from user space: fixed + per_insn",
    "sk_chk_filter": "the checker: fixed + per_insn",
    "dev_set_promiscuity": "SIOCSIFFLAGS promiscuous on/off incl. the chip suspend/restart and its"
                           " CSR accesses",
    # transmit
    "sys_sendto": "sendto(2) entry + exit",
    "packet_snd": "packet_snd: sock_alloc_send_skb + copy from user, fixed + per_byte",
    "dev_queue_xmit": "qdisc enqueue/dequeue or direct transmit, without taps and driver",
    "dev_queue_xmit_nit": "per transmit tap: clone and hand to packet_rcv (packet_rcv charged apart)",
    "pcnet32_start_xmit": "fill a TX descriptor, DMA map, lock; without its CSR0 (TDMD) write",
    "pcnet32_tx": "per reclaimed TX descriptor in pcnet32_poll",
    "dev_kfree_skb_any": "free a transmitted skb from IRQ-off context (via NET_TX_SOFTIRQ)",
    # reporting only
    "tracer_overhead": "function_graph overhead per traced call; used only in emitted ftrace"
                       " durations, never in throughput",
}


# --- errors --------------------------------------------------------------------------------


class ModelError(ValueError):
    """A bad model file or override, as one line: ``file:line: field: what is wrong``."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.detail = message
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        what = f"{field}: " if field else ""
        super().__init__(" ".join(f"{where}{what}{message}".split()))


class _FieldError(ValueError):
    """A validator error that belongs to a sub-field (for the line lookup and the path)."""

    def __init__(self, message: str, subpath: tuple[str, ...]) -> None:
        super().__init__(message)
        self.subpath = subpath


def _did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- unit-carrying field types -------------------------------------------------------------

# Validation context key set by the file loader: in a file, a bare number where a
# unit belongs is ambiguous ("800" - ns? µs?) and refused.  Python callers
# (overrides, to_dict round trips) pass SI numbers.
_FROM_FILE = "from_file"


def _with_units(parse: Any, example: str) -> Any:
    def validate(value: Any, info: ValidationInfo) -> Any:
        if (
            info.context
            and info.context.get(_FROM_FILE)
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and value != 0
        ):
            raise ValueError(
                f"expected a quoted value with a unit like '{example}', got {value!r}"
                " (a bare number has no unit)"
            )
        return parse(value)

    return BeforeValidator(validate)


Duration = Annotated[float, _with_units(units.parse_duration, "350ns")]
PerByte = Annotated[float, _with_units(units.parse_per_byte, "0.3ns/B")]
PerInsn = Annotated[float, _with_units(units.parse_per_insn, "4ns/insn")]
BitRate = Annotated[float, _with_units(units.parse_bitrate, "100Mbit/s")]
ByteRate = Annotated[float, _with_units(units.parse_byterate, "133MB/s")]
Frequency = Annotated[float, _with_units(units.parse_frequency, "2.6GHz")]
# Sizes may be bare integers (bytes) even in files: "rx_copybreak = 200" is unambiguous.
ByteSize = Annotated[int, BeforeValidator(units.parse_size)]


def _probability(value: Any) -> float:
    """0..1, or a percentage string such as "0.1%"."""
    hint = "a probability between 0 and 1 (or a percentage like '0.1%')"
    if isinstance(value, bool):
        raise ValueError(f"expected {hint}, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            p = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(f"expected {hint}, got {value!r}") from None
    elif isinstance(value, int | float):
        p = float(value)
    else:
        raise ValueError(f"expected {hint}, got {value!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"expected {hint}, got {value!r}")
    return p


Probability = Annotated[float, BeforeValidator(_probability)]

_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$")


def _mac(value: Any) -> str:
    """A unicast station address, normalised to lower-case ``aa:bb:cc:dd:ee:ff``.

    pcnet32_probe1 refuses an address that fails is_valid_ether_addr (multicast
    or all zeros), so the model does too.
    """
    if not isinstance(value, str) or not _MAC_RE.match(value.strip()):
        raise ValueError(f"expected a MAC address like '00:0c:29:4a:7b:01', got {value!r}")
    octets = [int(x, 16) for x in re.split("[:-]", value.strip())]
    if octets[0] & 1:
        raise ValueError(f"{value!r} is a multicast address; a NIC's own address must be unicast")
    if not any(octets):
        raise ValueError(f"{value!r} is all zeros; not a valid station address")
    return ":".join(f"{o:02x}" for o in octets)


MacAddress = Annotated[str, BeforeValidator(_mac)]


def _ring_size(value: Any) -> Any:
    """pcnet32_set_ringparam rounds a ring size up to a power of two in [4, 512].

    A model gives the size the driver ends up with, so anything else is refused
    with the size the driver would have chosen.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        return value  # StrictInt reports the type
    if value < 4 or value > 512 or value & (value - 1):
        hint = ""
        if 4 <= value <= 512:
            up = 1 << (value - 1).bit_length()
            hint = f"; pcnet32_set_ringparam would round {value} up to {up}"
        raise ValueError(f"pcnet32 ring sizes are powers of two from 4 to 512, got {value}{hint}")
    return value


RingSize = Annotated[StrictInt, BeforeValidator(_ring_size)]
Count = Annotated[StrictInt, Field(ge=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the model -----------------------------------------------------------------------------


class Cost(_Strict):
    """Time charged for one call: ``fixed + per_byte * nbytes + per_insn * ninsns`` seconds.

    In a file: either a duration (``"100ns"``) or a table
    ``{ fixed = "30ns", per_insn = "4ns/insn" }`` (``per_byte`` likewise).
    """

    fixed: Duration = 0.0
    per_byte: PerByte = 0.0
    per_insn: PerInsn = 0.0

    @model_validator(mode="before")
    @classmethod
    def _from_scalar(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            units.parse_duration(value)  # report a bad unit at the cost's own key
            return {"fixed": value}
        if isinstance(value, int | float) and not isinstance(value, bool):
            if info.context and info.context.get(_FROM_FILE) and value != 0:
                raise ValueError(
                    f"expected a duration like '350ns' or a table {{ fixed = ..., per_byte = ...,"
                    f" per_insn = ... }}, got {value!r} (a bare number has no unit)"
                )
            return {"fixed": value}
        if isinstance(value, dict | Cost):
            return value
        raise ValueError(
            "expected a duration like '350ns' or a table { fixed = ..., per_byte = ...,"
            f" per_insn = ... }}, got {value!r}"
        )

    def __call__(self, nbytes: float = 0, ninsns: float = 0) -> float:
        return self.fixed + self.per_byte * nbytes + self.per_insn * ninsns


class Nic(_Strict):
    """The NIC and its wire.  Only the AMD PCnet (pcnet32 driver) is modelled."""

    type: str = "pcnet32"
    link_rate: BitRate
    preamble: ByteSize = 8  # preamble + SFD
    ifg: ByteSize = 12  # inter-frame gap
    min_frame: ByteSize = 60  # without FCS; shorter frames are padded (APAD_XMT)
    fcs: ByteSize = 4
    rx_ring: RingSize = 32  # PCNET32_LOG_RX_BUFFERS 5
    tx_ring: RingSize = 16  # PCNET32_LOG_TX_BUFFERS 4
    rx_copybreak: ByteSize = 200
    dma_rate: ByteRate
    dma_latency: Duration
    mac: MacAddress
    alloc_fail_rate: Probability = 0.0
    vm: StrictBool = False  # informational: the NIC is emulated by a hypervisor

    @field_validator("type", mode="before")
    @classmethod
    def _only_pcnet32(cls, value: Any) -> Any:
        if value != "pcnet32":
            raise ValueError(f"only the 'pcnet32' NIC is modelled, got {value!r}")
        return value

    @field_validator("min_frame", "fcs", "preamble")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError(f"must be positive, got {value}")
        return value


class Cpu(_Strict):
    count: Annotated[StrictInt, Field(ge=1, le=64)]
    clock: Frequency  # informational: costs are given in time, not cycles
    irq_affinity: Annotated[StrictInt, Field(ge=0)] = 0  # the CPU that takes the NIC's IRQ

    @model_validator(mode="after")
    def _affinity_in_range(self) -> Cpu:
        if self.irq_affinity >= self.count:
            raise _FieldError(
                f"CPU {self.irq_affinity} does not exist: cpu.count is {self.count}"
                f" (CPUs 0..{self.count - 1})",
                ("irq_affinity",),
            )
        return self


class Hardware(_Strict):
    name: str = ""
    description: str = ""
    nic: Nic
    cpu: Cpu


class Skb(_Strict):
    """Sizes that make up skb->truesize (defaults: 2.6.33, x86_64, typical distro config)."""

    sizeof_sk_buff: ByteSize = 232
    sizeof_skb_shared_info: ByteSize = 320  # counted in truesize only from 3.2 (SKB_TRUESIZE)
    smp_cache_bytes: ByteSize = 64  # SKB_DATA_ALIGN rounds to this
    net_skb_pad: ByteSize = 32  # dev_alloc_skb headroom
    net_ip_align: ByteSize = 2
    pkt_buf_skb: ByteSize = 1544  # pcnet32 ring buffer length given to dev_alloc_skb

    @field_validator("smp_cache_bytes")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value <= 0 or value & (value - 1):
            raise ValueError(f"a cache line size is a power of two, got {value}")
        return value


_VERSION_RE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:-[0-9A-Za-z._+~-]+)?$")


def _napi_weight(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str) and value.replace(" ", "") == "rx_ring/2":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"must be at least 1, got {value}")
        return value
    raise ValueError(f"expected a positive integer or \"rx_ring/2\" (the pcnet32 default), got {value!r}")


class Kernel(_Strict):
    version: str
    hz: StrictInt = 250
    netdev_budget: Count = 300
    napi_weight: Annotated[int | None, BeforeValidator(_napi_weight)] = None  # None: rx_ring / 2
    netdev_max_backlog: Count = 1000
    dev_weight: Count = 64
    max_softirq_restart: Count = 10
    rmem_default: ByteSize = 124928
    rmem_max: ByteSize = 131071
    wmem_default: ByteSize = 124928
    sock_min_rcvbuf: ByteSize = 256
    optmem_max: ByteSize = 20480
    tx_queue_len: Count = 1000
    skb: Skb = Skb()
    costs: dict[str, Cost]

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if not isinstance(value, str) or not _VERSION_RE.match(value):
            raise ValueError(f"expected a kernel version like '2.6.33' or '6.8', got {value!r}")
        return value

    @field_validator("hz")
    @classmethod
    def _hz(cls, value: int) -> int:
        if value not in (100, 250, 300, 1000):
            raise ValueError(f"CONFIG_HZ is one of 100, 250, 300, 1000, got {value}")
        return value

    @field_validator("costs", mode="before")
    @classmethod
    def _cost_keys(cls, value: Any) -> Any:
        """Every key of COST_KEYS, and nothing else: a typo must not silently cost 0."""
        if not isinstance(value, dict):
            return value  # pydantic reports the type
        unknown = [k for k in value if k not in COST_KEYS]
        if unknown:
            more = f" (and {len(unknown) - 1} more unknown)" if len(unknown) > 1 else ""
            raise _FieldError(
                f"unknown cost key{_did_you_mean(unknown[0], tuple(COST_KEYS))}{more}",
                (unknown[0],),
            )
        missing = [k for k in COST_KEYS if k not in value]
        if missing:
            names = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
            raise ValueError(f"missing cost key{'s' if len(missing) > 1 else ''}: {names}")
        return value

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        m = _VERSION_RE.match(self.version)
        assert m is not None
        return int(m[1]), int(m[2]), int(m[3] or 0)


class Model(_Strict):
    """A whole machine.  Immutable; change it with ``with_overrides``."""

    name: str
    description: str = ""
    hardware: Hardware
    kernel: Kernel
    source: str = ""  # the file it was loaded from (set by the loader)

    @property
    def napi_weight(self) -> int:
        """The effective NAPI weight: pcnet32 uses rx_ring / 2 unless the model sets one."""
        w = self.kernel.napi_weight
        return w if w is not None else self.hardware.nic.rx_ring // 2

    def to_dict(self) -> dict[str, Any]:
        """Plain data in SI units (JSON-ready); ``Model.model_validate`` reads it back."""
        return self.model_dump(mode="python")

    def with_overrides(self, overrides: Mapping[str, Any] | None = None, /,
                       **kwargs: Any) -> Model:
        """A copy with dotted fields changed and everything revalidated.

        ``m.with_overrides({"hardware.nic.rx_ring": 64})`` or, as keywords,
        ``m.with_overrides(hardware__nic__rx_ring=64)``.  Values may carry units
        ("2us", "64KiB") or be SI numbers.
        """
        items = dict(overrides or {})
        items.update({k.replace("__", "."): v for k, v in kwargs.items()})
        data = self.to_dict()
        where = _display_path(self.source) if self.source else "<model>"
        for path, value in items.items():
            keys = path.split(".")
            node: Any = data
            for depth, key in enumerate(keys):
                if not isinstance(node, dict) or key not in node:
                    choices = list(node) if isinstance(node, dict) else []
                    raise ModelError(
                        f"no such field to override{_did_you_mean(key, choices)}",
                        file=where, field=".".join(keys[: depth + 1]),
                    )
                if depth == len(keys) - 1:
                    node[key] = value
                else:
                    node = node[key]
        try:
            return Model.model_validate(data)
        except ValidationError as exc:
            raise _model_error(exc, file=where, text=None, note=" (override)") from None


# --- loading -------------------------------------------------------------------------------


def models_dirs() -> list[Path]:
    """Where model names are looked up: each entry of $LSFSIM_MODELS, then the shipped models."""
    dirs: list[Path] = []
    env = os.environ.get("LSFSIM_MODELS")
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs.append(shipped_models_dir())
    return dirs


def shipped_models_dir() -> Path:
    """The folder of the models that come with lsfsim.

    An installed copy (a wheel, ``pip install .``) carries them as package data in
    ``lsfsim/models/`` (pyproject.toml maps the project's models/ folder there); a
    source checkout, and an editable install that runs it, has them in models/
    beside the package.
    """
    packaged = resources.files("lsfsim") / "models"
    if packaged.is_dir():
        return Path(str(packaged))
    import lsfsim

    return Path(lsfsim.__file__).resolve().parents[1] / "models"


def list_models() -> list[str]:
    """Names usable with ``load_model`` (the stems of *.toml in ``models_dirs()``)."""
    names: set[str] = set()
    for d in models_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.toml"))
    return sorted(names)


def _display_path(path: str | Path) -> str:
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def _looks_like_path(name_or_path: str | os.PathLike[str]) -> bool:
    text = os.fspath(name_or_path)
    return (
        isinstance(name_or_path, os.PathLike)
        or "/" in text
        or os.sep in text
        or text.endswith(".toml")
    )


def _resolve(name_or_path: str | os.PathLike[str]) -> Path:
    text = os.fspath(name_or_path)
    if _looks_like_path(name_or_path):
        return Path(text)
    for d in models_dirs():
        candidate = d / f"{text}.toml"
        if candidate.is_file():
            return candidate
    available = list_models()
    raise ModelError(
        f"unknown model '{text}'{_did_you_mean(text, available)}; available: "
        + (", ".join(available) if available else "none")
        + " (or give a path to a .toml file)"
    )


def load_model(name_or_path: str | os.PathLike[str]) -> Model:
    """Read, validate and return a model: a path to a .toml file, or a name from
    ``list_models()``.  Raises ``ModelError`` (one line) on any problem."""
    path = _resolve(name_or_path)
    # A path is shown as the user gave it; a model found by name relative to the
    # working directory when possible ("models/testbed.toml").
    by_name = not _looks_like_path(name_or_path)
    shown = _display_path(path) if by_name else os.fspath(name_or_path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file: {exc.strerror or exc}", file=shown) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(f"not UTF-8 text (byte {exc.start})", file=shown) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, shown) from None
    if "source" in data:
        raise ModelError("is set by the loader; remove it from the model file", file=shown,
                         line=_locate(text, ("source",)), field="source")
    data.setdefault("name", path.stem)
    data["source"] = str(path.resolve())
    try:
        return Model.model_validate(data, context={_FROM_FILE: True})
    except ValidationError as exc:
        raise _model_error(exc, file=shown, text=text) from None


def _toml_error(exc: tomllib.TOMLDecodeError, file: str) -> ModelError:
    """Keep tomllib's line and column, in the usual file:line:column form."""
    msg = str(exc)
    line = getattr(exc, "lineno", None)
    col = getattr(exc, "colno", None)
    m = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", msg)
    if m:
        line, col = int(m[1]), int(m[2])
        msg = msg[: m.start()]
    msg = getattr(exc, "msg", None) or msg
    where = f"{file}:{line}:{col}" if line else file
    return ModelError(f"{where}: invalid TOML: {msg}")


def _fields_at(loc: tuple[str, ...]) -> list[str]:
    """The field names allowed at ``loc`` (for "did you mean")."""
    cls: Any = Model
    for key in loc:
        field = cls.model_fields.get(key) if isinstance(cls, type) and issubclass(cls, BaseModel) else None
        if field is None:
            return []
        cls = field.annotation
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return list(cls.model_fields)
    return []


def _describe(err: Mapping[str, Any]) -> tuple[tuple[str, ...], str]:
    """(dotted location, message) for one pydantic error."""
    loc = tuple(str(x) for x in err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    exc = ctx.get("error")
    if isinstance(exc, _FieldError):
        return loc + exc.subpath, str(exc)
    if kind == "value_error":
        return loc, str(exc) if exc is not None else err["msg"]
    if kind == "extra_forbidden":
        allowed = [f for f in _fields_at(loc[:-1]) if f != "source"]
        return loc, f"unknown key{_did_you_mean(loc[-1], allowed)}"
    if kind == "missing":
        return loc, "missing (required)"
    value = err.get("input")
    got = "" if isinstance(value, dict) else f", got {value!r}"
    return loc, f"{err['msg']}{got}"


def _model_error(exc: ValidationError, *, file: str, text: str | None,
                 note: str = "") -> ModelError:
    """The first error of the file (by line), as one line.

    A missing key comes after the others: "cpus: unknown key" explains
    "cpu: missing" and is what the user has to fix.
    """
    described = []
    for err in exc.errors():
        loc, msg = _describe(err)
        line = _locate(text, loc) if text is not None else None
        rank = (err["type"] == "missing", line if line is not None else 1 << 30)
        described.append((rank, loc, msg, line))
    described.sort(key=lambda d: d[0])
    _, loc, msg, line = described[0]
    extra = len(described) - 1
    tail = f" [+{extra} more error{'s' if extra > 1 else ''}]" if extra else ""
    return ModelError(f"{msg}{note}{tail}", file=file, line=line, field=".".join(loc) or None)


_HEADER_RE = re.compile(r"^\[\[?\s*(?P<key>[^\]]+?)\s*\]\]?")
_KEY_RE = re.compile(
    r"^(?P<key>(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)


def _split_key(key: str) -> tuple[str, ...]:
    parts = re.findall(r"\"[^\"]*\"|'[^']*'|[^.\s]+", key)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def _locate(text: str | None, loc: tuple[str, ...]) -> int | None:
    """The line defining ``loc``, or the closest enclosing key or table.

    A line scanner, not a TOML parser: good enough for error messages; a key
    inside a multi-line string could fool it, which costs only a line number.
    """
    if not text:
        return None
    table: tuple[str, ...] = ()
    best_len, best_line = 0, None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _HEADER_RE.match(line)
        if m:
            table = _split_key(m["key"])
            path = table
        else:
            m = _KEY_RE.match(line)
            if not m:
                continue
            path = table + _split_key(m["key"])
        # A line defining loc or an enclosing table, or a key inside loc
        # (``nic.foo = 1`` when loc is ``...nic.nic``).
        n = min(len(path), len(loc))
        if n > best_len and loc[:n] == path[:n]:
            best_len, best_line = n, lineno
    return best_line
