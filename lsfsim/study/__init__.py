"""What-if studies: sweeps of run parameters and the ready studies built on them.

``sweep(base, params)`` runs the grid and returns a pandas DataFrame;
``run_points`` is the engine underneath (local processes or Dask), usable with
any picklable points; ``lsfsim.study.studies`` holds the ready studies.
"""

from lsfsim.study.engine import Outcome, run_points
from lsfsim.study.sweep import sweep

__all__ = ["Outcome", "run_points", "sweep"]
