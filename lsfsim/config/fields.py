"""Field types of the model schema: quantities with units, and checked values.

A model file writes every figure with a unit ("350ns", "100Mbit/s", "64KiB");
these types parse it (``lsfsim.config.units``) into SI base units.  In a file a
bare number where a unit belongs is ambiguous ("800": ns? µs?) and refused; Python
callers (overrides, ``to_dict`` round trips) pass SI numbers.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, ValidationInfo

from lsfsim.config import units

__all__ = [
    "FROM_FILE",
    "BitRate",
    "ByteRate",
    "ByteSize",
    "Count",
    "Duration",
    "Frequency",
    "MacAddress",
    "PerByte",
    "PerInsn",
    "Probability",
    "RingSize",
    "Strict",
]

# Validation context key set by the file loader: in a file, a bare number where a
# unit belongs is ambiguous ("800" - ns? µs?) and refused.  Python callers
# (overrides, to_dict round trips) pass SI numbers.
FROM_FILE = "from_file"


def _with_units(parse: Any, example: str) -> Any:
    def validate(value: Any, info: ValidationInfo) -> Any:
        if (
            info.context
            and info.context.get(FROM_FILE)
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


class Strict(BaseModel):
    """Base of every schema class: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
