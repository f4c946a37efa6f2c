"""The simulator's own errors for bad input that only shows once a machine is built.

The command line reports these (with the other domain errors: InputError,
the bpf errors, ModelError, PcapError, a scenario's validation errors, OSError
on user files) as one line and exit status 2; any other exception is a bug in
lsfsim and is reported as one (lsfsim.cli.common.one_line_errors).
"""

from __future__ import annotations


class ScenarioError(ValueError):
    """The scenario does not fit the model or its traffic cannot be made (a CPU it
    names does not exist, a traffic parameter out of range): bad input."""
