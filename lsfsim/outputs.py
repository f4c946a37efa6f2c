"""Writing output files without harming what is already there.

Every file lsfsim writes (``--json``, ``--report``, ``trace -o``, ``--plot``,
pcap files, ...) goes through ``open_output`` or ``write_output``, which treat
the target by what it is:

* a regular file (or a new name) is written to a temporary file in the same
  directory and renamed over it, so a reader never sees half a file and an
  error or Ctrl-C leaves the old content; an existing file keeps its
  permission bits and owner (copied onto the temporary file before the
  rename), a new one gets the mode ``open()`` would give it (0666 less the
  umask, where ``mkstemp`` alone would give 0600);
* a symbolic link is followed, link by link, and its target is written as
  above: the link stays a link;
* anything else that exists -- a character or block device, a FIFO,
  ``/dev/stdout`` and the other ``/proc/self/fd`` links -- is opened and
  written directly, never replaced (renaming over ``/dev/full`` would turn the
  device node into a regular file);
* ``-`` is standard output.

``check_output`` and ``check_output_dir`` look at a path before a run starts,
so that a bad path fails in a second, not after the whole simulation.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

MAX_LINKS = 40   # as the kernel's MAXSYMLINKS: a longer chain is a loop


class OutputError(OSError):
    """An output path that cannot be written; the message names it and why."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def resolve(path: str | os.PathLike[str]) -> tuple[str, bool]:
    """Follow ``path``'s symbolic links to the name that would be written.

    Returns ``(target, direct)``: ``direct`` is true when the chain goes
    through /proc (``/dev/stdout`` -> ``/proc/self/fd/1``), whose links the
    kernel resolves to an open file rather than a name: such a target is only
    ever opened, never renamed over.
    """
    p = os.path.abspath(os.fspath(path))
    for _ in range(MAX_LINKS):
        directory = os.path.realpath(os.path.dirname(p))
        if directory == "/proc" or directory.startswith("/proc/"):
            return p, True
        p = os.path.join(directory, os.path.basename(p))
        if not os.path.islink(p):
            return p, False
        p = os.path.normpath(os.path.join(directory, os.readlink(p)))
    raise OutputError(f"{path}: too many levels of symbolic links")


def _is_direct(target: str, via_proc: bool) -> bool:
    """Write straight into ``target`` (it exists and is not a regular file)?"""
    if via_proc:
        return True
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"{target}: is a directory")
    return not stat.S_ISREG(st.st_mode)


@contextlib.contextmanager
def open_output(path: str | os.PathLike[str], mode: str = "w",
                encoding: str | None = "utf-8", keep_partial: bool = False) -> Iterator[IO[Any]]:
    """Open ``path`` for writing (``mode`` ``"w"`` or ``"wb"``) as the module says.

    The file appears (or changes) only when the ``with`` block ends without an
    exception; on an exception the temporary file is removed and the old
    content stays.  A device, FIFO or ``-`` receives what was written so far.

    ``keep_partial``: for a stream every prefix of which is a valid file (a
    pcap file, whose records are written whole): when the block ends with
    KeyboardInterrupt (Ctrl-C), what was written so far is kept -- flushed
    and renamed over the target as at a normal end -- and the interrupt goes
    on.  Any other exception still removes the temporary file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode {mode!r}: only 'w' and 'wb'")
    enc = None if "b" in mode else encoding
    if os.fspath(path) == "-":
        stream: IO[Any] = sys.stdout.buffer if "b" in mode else sys.stdout
        yield stream
        stream.flush()
        return
    target, via_proc = resolve(path)
    if _is_direct(target, via_proc):
        with open(target, mode, encoding=enc) as fh:
            yield fh
        return
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    directory = os.path.dirname(target)
    interrupted: KeyboardInterrupt | None = None
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(target)}.",
                               suffix=".tmp")
    try:
        if old is None:
            os.fchmod(fd, 0o666 & ~_umask())
        else:
            os.fchmod(fd, stat.S_IMODE(old.st_mode))
            try:
                os.fchown(fd, old.st_uid, old.st_gid)
            except PermissionError:
                # we cannot hand a new inode back to its owner: rewrite the old one
                os.close(fd)
                fd = -1
                os.unlink(tmp)
                with open(target, mode, encoding=enc) as fh:
                    yield fh
                return
        with os.fdopen(fd, mode, encoding=enc) as fh:
            fd = -1
            try:
                yield fh
            except KeyboardInterrupt as exc:
                if not keep_partial:
                    raise
                interrupted = exc
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if interrupted is not None:
        raise interrupted


def write_output(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` (text or bytes) to ``path`` as ``open_output`` does."""
    with open_output(path, "wb" if isinstance(data, bytes) else "w") as fh:
        fh.write(data)


def _probe_directory(directory: str, what: str, path: str) -> None:
    """Create and remove a file in ``directory``: the one sure test of writability
    (``access()`` says yes to root everywhere, /proc included)."""
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".lsfsim-probe-")
    except OSError as exc:
        raise OutputError(f"{what}: {path}: cannot create files in {directory}: "
                          f"{exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)


def check_output(path: str | os.PathLike[str], what: str) -> None:
    """Raise OutputError unless ``open_output(path)`` would be able to write."""
    name = os.fspath(path)
    if name == "-":
        return
    try:
        target, via_proc = resolve(name)
    except OSError as exc:
        raise OutputError(f"{what}: {name}: {exc.strerror or exc}") from None
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputError(f"{what}: {name}: {exc.strerror or exc}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{what}: {name}: is a directory")
    if via_proc and st is None:
        raise OutputError(f"{what}: {name}: no such file")
    if st is not None and not os.access(target, os.W_OK):
        raise OutputError(f"{what}: {name}: permission denied")
    if st is not None and (via_proc or not stat.S_ISREG(st.st_mode)):
        return
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise OutputError(f"{what}: {name}: no such directory {directory}")
    _probe_directory(directory, what, name)


def check_output_dir(path: str | os.PathLike[str], what: str) -> None:
    """Raise OutputError unless ``path`` is, or can be created as, a writable directory."""
    name = os.fspath(path)
    p = Path(os.path.abspath(name))
    if p.exists() and not p.is_dir():
        raise OutputError(f"{what}: {name}: exists and is not a directory")
    existing = p
    while not existing.exists():
        if existing.is_symlink():
            raise OutputError(f"{what}: {name}: {existing} is a dangling symbolic link")
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{what}: {name}: {existing} is not a directory")
    _probe_directory(str(existing), what, name)
