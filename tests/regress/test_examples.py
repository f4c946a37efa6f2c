"""The example suite passes as shipped (it is what README points to)."""

from __future__ import annotations

from tests.regress.helpers import REPO, invoke


def test_the_example_suite_passes() -> None:
    suite = REPO / "examples" / "regress" / "lecture.lsfsim.toml"
    result = invoke(str(suite), "--jobs", "2")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()[1:]]
    assert [(r[0], r[1], r[-1]) for r in rows] == [
        (name, load, "pass") for name in ("optimus", "nc-data", "udp-vlan")
        for load in ("1x", "10x", "asap")]
