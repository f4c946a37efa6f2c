"""Writing a result file so that a failure never leaves it half-written.

One function, ``write_output``, so that every file a study writes (tables,
figures) goes through the same rules:

* a regular file (or a new one) is written to a temporary file beside it,
  flushed to disk and renamed over it: readers see the old file or the new
  one, never a part;
* a FIFO or a device is written through (it cannot be renamed over);
* a symbolic link is followed: the file it points to is replaced, the link kept.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def write_output(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module's rules)."""
    target = Path(os.path.realpath(path))
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        with open(target, "wb") as fp:
            fp.write(data)
        return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fp:
            fp.write(data)
            fp.flush()
            os.fsync(fp.fileno())
        if mode is not None:
            os.chmod(tmp, stat.S_IMODE(mode))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
