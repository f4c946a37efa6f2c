"""Model files and their loader: the machine (NIC, CPUs), kernel constants and costs.

``load_model("testbed")`` returns a validated, immutable ``Model`` in SI units.
One job per module: ``costs`` (the cost registry), ``units`` (quantities written
in model files, parsed and formatted), ``fields`` (the schema's field types),
``schema`` (the ``Model``), ``errors`` and ``positions`` (one-line errors with the
file's line), ``loader`` (finding and reading files); ``model`` gathers them all.
"""

from lsfsim.config.costs import COST_KEYS
from lsfsim.config.errors import ModelError
from lsfsim.config.loader import list_models, load_model, models_dirs, shipped_models_dir
from lsfsim.config.schema import Cost, Cpu, Hardware, Kernel, Model, Nic, Skb
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
