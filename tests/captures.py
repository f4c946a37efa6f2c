"""Where the tests find real captures (traffic nobody on the project wrote).

The project ships a small set in traces/real/ (tcpdump's and libpcap's own test
captures, BSD licence, see traces/real/README.md), so a bare clone exercises real
traffic.  A larger corpus laid out the same way (``tcpdump-tests/``,
``libpcap-filter-tests/``) is used instead when present: by default
``../shared/traces`` beside the project; ``LSFSIM_TEST_TRACES=DIR`` names another
folder, ``LSFSIM_TEST_TRACES=`` (empty) keeps to the shipped set.  Every file of the
shipped set is in that corpus under the same name, so tests that name a capture
work with either.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "traces" / "real"
DEFAULT_CORPUS = REPO / ".." / "shared" / "traces"
SUBDIRS = ("tcpdump-tests", "libpcap-filter-tests")


def _corpus() -> Path | None:
    chosen = os.environ.get("LSFSIM_TEST_TRACES")
    if chosen is None:
        return DEFAULT_CORPUS if DEFAULT_CORPUS.is_dir() else None
    return Path(chosen) if chosen else None


#: The captures the tests read: the larger corpus when there is one, else the shipped set.
REAL_TRACES: Path = _corpus() or SHIPPED
#: True when REAL_TRACES is the larger corpus (thresholds on counts depend on it).
FULL_CORPUS: bool = REAL_TRACES != SHIPPED


def real_captures() -> list[Path]:
    """Every pcap and pcapng file of REAL_TRACES, sorted."""
    return sorted(p for p in REAL_TRACES.rglob("*") if p.suffix in (".pcap", ".pcapng"))
