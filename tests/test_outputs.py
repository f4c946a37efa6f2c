"""lsfsim.outputs: regular files replaced atomically, links followed, devices and
FIFOs written through, modes and owners kept; output paths checked before a run."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from lsfsim.outputs import (
    OutputError,
    check_output,
    check_output_dir,
    open_output,
    write_output,
)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_new_file_gets_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o027)
    try:
        write_output(tmp_path / "new.json", "{}\n")
    finally:
        os.umask(old)
    st = os.stat(tmp_path / "new.json")
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert (tmp_path / "new.json").read_text() == "{}\n"
    assert _siblings(tmp_path / "new.json") == ["new.json"]     # no temporary file left


@needs_root
def test_existing_file_keeps_its_mode_and_owner(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    os.chown(target, 12345, 23456)
    inode = os.stat(target).st_ino
    write_output(target, "new\n")
    st = os.stat(target)
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert (st.st_uid, st.st_gid) == (12345, 23456)
    assert st.st_ino != inode                       # replaced by rename, not rewritten


def test_symlink_is_followed_and_stays_a_link(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to("real.json")                    # relative, as ln -s makes it
    write_output(link, "new")
    assert link.is_symlink() and os.readlink(link) == "real.json"
    assert real.read_text() == "new"


def test_symlink_chain_and_dangling_link(tmp_path):
    (tmp_path / "d").mkdir()
    real = tmp_path / "d" / "real.bin"
    real.write_bytes(b"old")
    (tmp_path / "b").symlink_to(real)
    (tmp_path / "a").symlink_to(tmp_path / "b")
    write_output(tmp_path / "a", b"\x00\x01")
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()
    assert real.read_bytes() == b"\x00\x01"
    # a link to a name that does not exist yet: the name is created, the link kept
    (tmp_path / "dangling").symlink_to(tmp_path / "d" / "later.txt")
    write_output(tmp_path / "dangling", "x")
    assert (tmp_path / "dangling").is_symlink()
    assert (tmp_path / "d" / "later.txt").read_text() == "x"


def test_fifo_is_written_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_output(fifo, "through the pipe\n")
    reader.join(10)
    assert got == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert _siblings(fifo) == ["pipe"]


def test_char_device_is_written_through_not_replaced(tmp_path):
    null = os.stat("/dev/null")
    dev = tmp_path / "mynull"
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, null.st_rdev)
    except PermissionError:
        pytest.skip("mknod is not permitted here")
    try:
        write_output(dev, "discarded")
    except OSError as exc:   # a filesystem mounted nodev: opening the node fails, and
        pytest.skip(f"device nodes cannot be opened here: {exc}")
    st = os.lstat(dev)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == null.st_rdev
    # /dev/null itself, and through a symlink
    write_output("/dev/null", b"x")
    (tmp_path / "tonull").symlink_to("/dev/null")
    write_output(tmp_path / "tonull", "y")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert (tmp_path / "tonull").is_symlink()
    assert _siblings(dev) == ["mynull", "tonull"]


def test_dev_full_reports_the_error_and_stays_a_device():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with pytest.raises(OSError, match="No space left"):
        write_output("/dev/full", "x" * 10000)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_interrupted_write_leaves_the_old_content(tmp_path, exc):
    target = tmp_path / "out.txt"
    target.write_text("old content\n")
    with pytest.raises(exc), open_output(target, "w") as fh:
        fh.write("half of the new")
        fh.flush()
        raise exc
    assert target.read_text() == "old content\n"
    assert _siblings(target) == ["out.txt"]


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError):
        write_output(tmp_path, "x")


def test_check_output(tmp_path):
    check_output(tmp_path / "new.json", "--json")
    check_output("-", "--json")
    check_output("/dev/null", "--json")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    check_output(fifo, "--json")                    # must not open (and block on) the FIFO
    for bad, why in ((tmp_path, "is a directory"),
                     (tmp_path / "no" / "x.json", "no such directory"),
                     ("/proc/nope", "no such file")):
        with pytest.raises(OutputError, match=why) as info:
            check_output(bad, "--json")
        assert str(info.value).startswith(f"--json: {bad}: ")
    assert _siblings(tmp_path / "x") == ["pipe"]    # the probe file is gone


def test_check_output_dir(tmp_path):
    check_output_dir(tmp_path / "a" / "b", "--report")     # can be created
    assert not (tmp_path / "a").exists()                    # ... but is not, yet
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match="exists and is not a directory"):
        check_output_dir(tmp_path / "f", "--report")
    with pytest.raises(OutputError, match="is not a directory"):
        check_output_dir(tmp_path / "f" / "sub", "--report")
    with pytest.raises(OutputError, match="cannot create files in /proc"):
        check_output_dir("/proc/nope", "--report")


def test_pcap_writer_is_atomic_and_writes_through(tmp_path):
    from lsfsim.pcapio import PcapWriter, read_all

    target = tmp_path / "c.pcap"
    with PcapWriter(target) as w:
        w.write(b"\x01" * 60, ts=0.5)
    assert len(read_all(target.read_bytes())) == 1
    with pytest.raises(RuntimeError), PcapWriter(target) as w:
        w.write(b"\x02" * 60, ts=1.0)
        raise RuntimeError("stop")
    assert read_all(target.read_bytes())[0].data == b"\x01" * 60   # the old file is intact
    assert _siblings(target) == ["c.pcap"]
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    with PcapWriter(fifo) as w:
        w.write(b"\x03" * 60, ts=0.0)
    reader.join(10)
    assert read_all(got[0])[0].data == b"\x03" * 60
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_keep_partial_keeps_what_was_written_on_ctrl_c_only(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), open_output(target, "wb", keep_partial=True) as fh:
        fh.write(b"first part")              # still in the file object's buffer
        raise KeyboardInterrupt
    assert target.read_bytes() == b"first part"            # flushed and renamed
    assert _siblings(target) == ["out.bin"]
    # any other error is still an error: the temporary goes, the old content stays
    with pytest.raises(RuntimeError), open_output(target, "wb", keep_partial=True) as fh:
        fh.write(b"second")
        raise RuntimeError("a bug")
    assert target.read_bytes() == b"first part"
    assert _siblings(target) == ["out.bin"]


def test_pcap_writer_keep_partial_leaves_a_valid_capture(tmp_path):
    from lsfsim.pcapio import PcapWriter, read_all

    target = tmp_path / "c.pcap"
    with pytest.raises(KeyboardInterrupt), PcapWriter(target, keep_partial=True) as w:
        for i in range(3):
            w.write(bytes([i]) * 60, ts=float(i))
        raise KeyboardInterrupt
    assert [r.data[0] for r in read_all(target.read_bytes())] == [0, 1, 2]
