"""mypy on lsfsim/ as CI wants it: clean, except the allow-listed modules, which must still need it.

pyproject.toml's [tool.mypy] lists the modules that still have type errors
(``ignore_errors``).  This runs mypy once with the same settings but without that
list, then fails if a module off the list has an error (a new error) or a module
on the list has none (it has been fixed: take it off, so the list only shrinks).
Prints the errors per module either way.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ERROR = re.compile(r"^(?P<path>[^:\s]+\.py):\d+(?::\d+)?: error:")


def _ini_value(value: object) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _module(path: str) -> str:
    parts = list(Path(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def main() -> int:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    allowed = {
        module
        for override in config.get("overrides", [])
        if override.get("ignore_errors")
        for module in override["module"]
    }
    settings = {k: v for k, v in config.items() if k != "overrides"}
    with tempfile.TemporaryDirectory() as tmp:
        ini = Path(tmp) / "mypy.ini"
        # the other per-module settings (stubs a library lacks) stay as they are
        kept = "".join(
            f"[mypy-{','.join(o['module'])}]\n"
            + "".join(f"{k} = {_ini_value(v)}\n" for k, v in o.items() if k != "module")
            for o in config.get("overrides", []) if not o.get("ignore_errors"))
        ini.write_text("[mypy]\n" + "".join(f"{k} = {_ini_value(v)}\n"
                                             for k, v in settings.items()) + kept)
        proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ini)],
                              cwd=ROOT, capture_output=True, text=True)
    if proc.returncode not in (0, 1):  # 2: mypy itself failed
        sys.stderr.write(proc.stdout + proc.stderr)
        return 2
    errors = Counter(_module(m["path"]) for m in map(ERROR.match, proc.stdout.splitlines()) if m)
    for module, count in sorted(errors.items()):
        print(f"{count:4d}  {module}{'' if module in allowed else '  (not allow-listed)'}")
    print(f"{sum(errors.values()):4d}  errors in {len(errors)} modules")
    new = sorted(m for m in errors if m not in allowed)
    fixed = sorted(allowed - set(errors))
    if new:
        print("mypy: errors in modules that must be clean:", file=sys.stderr)
        sys.stderr.writelines(line + "\n" for line in proc.stdout.splitlines()
                              if (m := ERROR.match(line)) and _module(m["path"]) in new)
    if fixed:
        print("mypy: now clean, take off [tool.mypy] ignore_errors in pyproject.toml: "
              + ", ".join(fixed), file=sys.stderr)
    return 1 if new or fixed else 0


if __name__ == "__main__":
    sys.exit(main())
