"""JUnit XML for CI: one ``testcase`` per filter x load, a ``failure`` per failing one.

The layout is the common denominator CI systems read (Jenkins, GitLab,
GitHub actions' reporters): ``testsuites`` > ``testsuite`` (name, tests,
failures, errors, skipped, time) > ``testcase`` (classname, name, time) with a
``failure`` element whose ``message`` is the first line and whose text is the
whole report.  ``time`` is the wall-clock seconds of the simulated run.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from lsfsim.regress.runner import Outcome, format_load

__all__ = ["junit_xml", "write_junit"]


def junit_xml(suite_name: str, outcomes: Sequence[Outcome]) -> ET.ElementTree:
    """The XML tree of a suite's outcomes."""
    total = sum(o.figures.wall_seconds for o in outcomes if o.figures is not None)
    failures = sum(1 for o in outcomes if not o.passed)
    root = ET.Element("testsuites", name="lsfsim regress", tests=str(len(outcomes)),
                      failures=str(failures), errors="0", time=f"{total:.3f}")
    suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(len(outcomes)),
                          failures=str(failures), errors="0", skipped="0", time=f"{total:.3f}")
    for o in outcomes:
        seconds = o.figures.wall_seconds if o.figures is not None else 0.0
        case = ET.SubElement(suite, "testcase", classname=f"{suite_name}.{o.item.filter}",
                             name=f"{o.item.filter}[load={format_load(o.item.load)}]",
                             time=f"{seconds:.3f}")
        out = ET.SubElement(case, "system-out")
        out.text = (f"accepted {o.accepts}, lost {o.lost} ({o.ratio:.4%}), "
                    f"p99 {o.p99:.9f} s" + "".join(f"\n{n}" for n in o.notes))
        if not o.passed:
            failure = ET.SubElement(case, "failure", message=o.failures[0].splitlines()[0],
                                    type="lsfsim.regress")
            failure.text = o.message
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: str | Path, suite_name: str, outcomes: Sequence[Outcome]) -> None:
    """Write the XML through lsfsim.outputs: atomically for a regular file (a failed
    write leaves any previous file intact), straight into a FIFO or a device."""
    from lsfsim.outputs import open_output

    with open_output(path, "wb") as fh:
        junit_xml(suite_name, outcomes).write(fh, encoding="utf-8", xml_declaration=True)
