"""Model files and their loader: the machine (NIC, CPUs), kernel constants and costs.

``load_model("testbed")`` returns a validated, immutable ``Model`` in SI units;
``lsfsim.config.units`` parses and formats the quantities written in model files.
"""

from lsfsim.config.model import (
    COST_KEYS,
    Cost,
    Cpu,
    Hardware,
    Kernel,
    Model,
    ModelError,
    Nic,
    Skb,
    list_models,
    load_model,
    models_dirs,
    shipped_models_dir,
)
from lsfsim.config.units import (
    format_bytes,
    format_duration,
    format_rate,
    parse_bitrate,
    parse_byterate,
    parse_duration,
    parse_frequency,
    parse_per_byte,
    parse_per_insn,
    parse_size,
)

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
    "format_bytes",
    "format_duration",
    "format_rate",
    "list_models",
    "load_model",
    "models_dirs",
    "parse_bitrate",
    "parse_byterate",
    "parse_duration",
    "parse_frequency",
    "parse_per_byte",
    "parse_per_insn",
    "parse_size",
    "shipped_models_dir",
]
