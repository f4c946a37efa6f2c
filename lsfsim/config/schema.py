"""The machine being simulated, as typed immutable data: NIC, CPUs, kernel constants, costs.

A ``Model`` holds every figure in SI base units: seconds, bytes, bits/s (link),
bytes/s (DMA), Hz.  ``lsfsim.config.loader`` builds one from a model file; the
simulator never reads files itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lsfsim.config import units
from lsfsim.config.arch import Arch, KernelSizes, derive
from lsfsim.config.costs import COST_KEYS, PER_BYTE, PER_INSN
from lsfsim.config.errors import (
    FieldError,
    ModelError,
    did_you_mean,
    display_path,
    validation_error,
)
from lsfsim.config.fields import (
    FROM_FILE,
    BitRate,
    ByteRate,
    ByteSize,
    Count,
    Duration,
    MacAddress,
    PerByte,
    PerInsn,
    Probability,
    RingSize,
    Strict,
)

__all__ = ["Cost", "Cpu", "Hardware", "Kernel", "Model", "Nic", "Skb"]


class Cost(Strict):
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
            if info.context and info.context.get(FROM_FILE) and value != 0:
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


class Nic(Strict):
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


class Cpu(Strict):
    count: Annotated[StrictInt, Field(ge=1, le=64)]
    irq_affinity: Annotated[StrictInt, Field(ge=0)] = 0  # the CPU that takes the NIC's IRQ

    @model_validator(mode="after")
    def _affinity_in_range(self) -> Cpu:
        if self.irq_affinity >= self.count:
            raise FieldError(
                f"CPU {self.irq_affinity} does not exist: cpu.count is {self.count}"
                f" (CPUs 0..{self.count - 1})",
                ("irq_affinity",),
            )
        return self


class Hardware(Strict):
    nic: Nic
    cpu: Cpu


class Skb(Strict):
    """The sizes that make up skb->truesize that are not the word size's to decide.

    ``sizeof_sk_buff`` and ``sizeof_skb_shared_info`` are derived from ``kernel.arch``
    and the 2.6.33.2 struct layouts (lsfsim.config.arch) unless given: a model of a
    kernel with other layouts (modern.toml) gives both.
    """

    sizeof_sk_buff: ByteSize | None = None
    sizeof_skb_shared_info: ByteSize | None = None  # in truesize only from 3.2 (SKB_TRUESIZE)
    smp_cache_bytes: ByteSize = 64  # SKB_DATA_ALIGN rounds to this (1 << X86_L1_CACHE_SHIFT)
    net_skb_pad: ByteSize = 32  # dev_alloc_skb headroom
    net_ip_align: ByteSize = 2  # pcnet32's skb_reserve; part of the copybreak allocation
    pkt_buf_skb: ByteSize = 1544  # pcnet32 ring buffer length given to dev_alloc_skb

    @field_validator("smp_cache_bytes")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value <= 0 or value & (value - 1):
            raise ValueError(f"a cache line size is a power of two, got {value}")
        return value

    @model_validator(mode="after")
    def _buffer_fits(self) -> Skb:
        if self.pkt_buf_skb <= self.net_ip_align + 64:
            raise FieldError(
                f"pcnet32's buffer (pkt_buf_skb - net_ip_align = "
                f"{self.pkt_buf_skb - self.net_ip_align}) must hold a 64-byte minimum frame",
                ("pkt_buf_skb",),
            )
        return self


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
    raise ValueError(
        f"expected a positive integer or \"rx_ring/2\" (the pcnet32 default), got {value!r}"
    )


class Kernel(Strict):
    version: str
    hz: StrictInt = 250
    netdev_budget: Count = 300
    napi_weight: Annotated[int | None, BeforeValidator(_napi_weight)] = None  # None: rx_ring / 2
    netdev_max_backlog: Count = 1000
    dev_weight: Count = 64
    max_softirq_restart: Count = 10
    arch: Arch = "x86_64"  # the word size every struct size derives from (config.arch)
    # net.core sysctls and SOCK_MIN_RCVBUF: None is the kernel's boot default,
    # derived from the struct sizes (see ``sizes``); a value is a sysctl -w.
    rmem_default: ByteSize | None = None
    rmem_max: ByteSize | None = None
    wmem_default: ByteSize | None = None
    sock_min_rcvbuf: ByteSize | None = None
    optmem_max: ByteSize | None = None
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
            raise FieldError(
                f"unknown cost key{did_you_mean(unknown[0], tuple(COST_KEYS))}{more}",
                (unknown[0],),
            )
        missing = [k for k in COST_KEYS if k not in value]
        if missing:
            more = f" and {len(missing) - 6} more" if len(missing) > 6 else ""
            names = ", ".join(missing[:6]) + more
            raise ValueError(f"missing cost key{'s' if len(missing) > 1 else ''}: {names}")
        return value

    @field_validator("costs")
    @classmethod
    def _cost_terms(cls, value: dict[str, Cost]) -> dict[str, Cost]:
        """A per_byte or per_insn term where the simulator has no bytes or instructions to
        multiply it by would never be charged: refused, as a field that cannot act."""
        for key, cost in value.items():
            for term, keys in (("per_byte", PER_BYTE), ("per_insn", PER_INSN)):
                if getattr(cost, term) and key not in keys:
                    raise FieldError(
                        f"{key} has no {term} term (only {', '.join(sorted(keys))} do)",
                        (key, term))
        return value

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        m = _VERSION_RE.match(self.version)
        assert m is not None
        return int(m[1]), int(m[2]), int(m[3] or 0)

    @property
    def sizes(self) -> KernelSizes:
        """Every size the simulated kernel uses, derived from ``arch`` (config.arch)."""
        skb = self.skb
        return derive(self.arch, self.version_tuple, smp_cache_bytes=skb.smp_cache_bytes,
                      net_skb_pad=skb.net_skb_pad, net_ip_align=skb.net_ip_align,
                      pkt_buf_skb=skb.pkt_buf_skb, sizeof_sk_buff=skb.sizeof_sk_buff,
                      sizeof_skb_shared_info=skb.sizeof_skb_shared_info,
                      rmem_default=self.rmem_default, wmem_default=self.wmem_default,
                      rmem_max=self.rmem_max, sock_min_rcvbuf=self.sock_min_rcvbuf,
                      optmem_max=self.optmem_max)


class Model(Strict):
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
        where = display_path(self.source) if self.source else "<model>"
        for path, value in items.items():
            keys = path.split(".")
            node: Any = data
            for depth, key in enumerate(keys):
                if not isinstance(node, dict) or key not in node:
                    choices = list(node) if isinstance(node, dict) else []
                    raise ModelError(
                        f"no such field to override{did_you_mean(key, choices)}",
                        file=where, field=".".join(keys[: depth + 1]),
                    )
                if depth == len(keys) - 1:
                    node[key] = value
                else:
                    node = node[key]
        try:
            return Model.model_validate(data)
        except ValidationError as exc:
            raise validation_error(exc, Model, file=where, text=None,
                                   note=" (override)") from None
