#!/usr/bin/env python3
"""Regenerate the figures and conclusion tables of docs/studies.md.

Runs each ready study in full (``lsfsim study NAME``; about 12 minutes on two
cores for all five), writes its figure to docs/studies/NAME.png and puts its
conclusion table and sentence between the markers ``<!-- study NAME -->`` and
``<!-- /study -->`` of docs/studies.md.  The prose around them (what the
kernel's code predicts) is written by hand and checked against the new
numbers by the reader.

    python docs/build_studies.py                    # all five studies
    python docs/build_studies.py attach livelock    # some
    python docs/build_studies.py --tables DIR       # from DIR/NAME.parquet, without running
    python docs/build_studies.py --jobs 2 --scheduler tcp://host:8786
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

from lsfsim.study.studies import STUDIES, run_study  # noqa: E402

PAGE = DOCS / "studies.md"
FIGURES = DOCS / "studies"


def cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3g}"
    if isinstance(value, int | float):
        return f"{int(value):,}".replace(",", " ") if abs(value) >= 10000 else str(int(value))
    return str(value)


def markdown(table: Any, sentence: str) -> str:
    lines = ["| " + " | ".join(f"`{c}`" for c in table.columns) + " |",
             "|" + "|".join("---:" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row.values()) + " |"
              for row in table.to_dict("records")]
    return "\n".join(lines) + f"\n\n*{sentence[0].upper() + sentence[1:]}.*\n"


def replace_block(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- study {name} -->\n).*?(<!-- /study -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{PAGE}: no '<!-- study {name} -->' ... '<!-- /study -->' block")
    return pattern.sub(lambda m: m[1] + body + m[2], text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=list(STUDIES))
    parser.add_argument("--tables", help="read DIR/NAME.parquet instead of running the study")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--scheduler")
    args = parser.parse_args()
    import pandas as pd

    from lsfsim.outputs import write_output
    from lsfsim.study.plot import figure_bytes

    text = PAGE.read_text()
    for name in args.names:
        study = STUDIES[name]
        if args.tables:
            df = pd.read_parquet(Path(args.tables) / f"{name}.parquet")
            png = FIGURES / f"{name}.png"
            write_output(png, figure_bytes(study.figure(df), str(png)))
            table, sentence = study.conclude(df)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                _, table, sentence = run_study(name, tmp, jobs=args.jobs,
                                               scheduler=args.scheduler)
                shutil.copy(Path(tmp) / f"{name}.png", FIGURES / f"{name}.png")
        text = replace_block(text, name, markdown(table, sentence))
        PAGE.write_text(text)          # after each study: a later failure keeps this one
        print(f"{name}: {sentence}")


if __name__ == "__main__":
    main()
