"""The model, as one import: schema, cost registry, loader and errors.

The parts live in modules with one job each: ``costs`` (the cost registry),
``units`` and ``fields`` (quantities with units), ``schema`` (the typed model),
``errors`` and ``positions`` (one-line errors with the file's line), ``loader``
(finding and reading model files).  This module gathers their public names, so
``from lsfsim.config.model import load_model, Model`` keeps working.
"""

from __future__ import annotations

from lsfsim.config.costs import COST_KEYS
from lsfsim.config.errors import ModelError
from lsfsim.config.fields import (
    BitRate,
    ByteRate,
    ByteSize,
    Count,
    Duration,
    Frequency,
    MacAddress,
    PerByte,
    PerInsn,
    Probability,
    RingSize,
)
from lsfsim.config.loader import list_models, load_model, models_dirs, shipped_models_dir
from lsfsim.config.schema import Cost, Cpu, Hardware, Kernel, Model, Nic, Skb

__all__ = [
    "COST_KEYS",
    "BitRate",
    "ByteRate",
    "ByteSize",
    "Cost",
    "Count",
    "Cpu",
    "Duration",
    "Frequency",
    "Hardware",
    "Kernel",
    "MacAddress",
    "Model",
    "ModelError",
    "Nic",
    "PerByte",
    "PerInsn",
    "Probability",
    "RingSize",
    "Skb",
    "list_models",
    "load_model",
    "models_dirs",
    "shipped_models_dir",
]
