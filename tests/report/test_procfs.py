"""/proc views: the 2.6.33 seq_file layouts, with each counter in its column.

The oracle is the kernel: the format strings below are copied from Linux
2.6.33 (net/core/dev.c dev_seq_show, dev_seq_printf_stats, softnet_seq_show;
net/packet/af_packet.c packet_seq_show) and, where the layout has not
changed since, the running kernel's own files.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from lsfsim.report import procfs
from lsfsim.result import Result
from tests.report import sampled

K_DEV_HEADER = ("Inter-|   Receive                            "
                "                    |  Transmit\n"
                " face |bytes    packets errs drop fifo frame "
                "compressed multicast|bytes    packets errs "
                "drop fifo colls carrier compressed\n")
K_DEV_FMT = ("%6s:%8lu %7lu %4lu %4lu %4lu %5lu %10lu %9lu "
             "%8lu %7lu %4lu %4lu %4lu %5lu %7lu %10lu\n")
K_SOFTNET_FMT = "%08x %08x %08x %08x %08x %08x %08x %08x %08x\n"
K_PACKET_HEADER = "sk       RefCnt Type Proto  Iface R Rmem   User   Inode\n"

NETDEV_KEYS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "rx_missed_errors",
               "rx_fifo_errors", "rx_length_errors", "rx_over_errors", "rx_crc_errors",
               "rx_frame_errors", "multicast", "tx_bytes", "tx_packets", "tx_errors",
               "tx_dropped", "collisions")


def fake_result(nsock: int = 2) -> Result:
    """Distinct powers of two per counter, so a sum or a swapped column shows."""
    netdev = {k: 2 ** (i + 1) for i, k in enumerate(NETDEV_KEYS)}
    netdev["rx_bytes"] = 12_345_678_901          # wider than its %8lu field
    softnet = [{"cpu": 0, "processed": 2 ** 32 + 5, "dropped": 7, "time_squeeze": 0x1F,
                "cpu_collision": 3},
               {"cpu": 1, "processed": 0xABCDEF, "dropped": 0, "time_squeeze": 0,
                "cpu_collision": 0}]
    sockets = [{"index": i, "rmem_alloc": 1000 * (i + 1), "tp_packets": 50 + i,
                "tp_drops": 9 + i} for i in range(nsock)]
    return Result({"netdev": netdev, "softnet": softnet, "sockets": sockets})


def test_dev_header_is_the_kernels() -> None:
    assert procfs.DEV_HEADER == K_DEV_HEADER
    text = procfs.proc_net_dev(fake_result())
    assert text.startswith(K_DEV_HEADER)


def test_dev_header_matches_the_running_kernel() -> None:
    path = Path("/proc/net/dev")
    if not path.exists():
        pytest.skip("no /proc/net/dev on this system")
    assert "".join(path.read_text().splitlines(keepends=True)[:2]) == K_DEV_HEADER


def test_dev_columns() -> None:
    r = fake_result()
    nd = r.data["netdev"]
    lines = procfs.proc_net_dev(r).splitlines(keepends=True)[2:]
    assert [ln.split(":")[0].strip() for ln in lines] == ["lo", "eth0"]
    assert lines[0] == K_DEV_FMT % ("lo", *([0] * 16))
    # the 2.6.33 mapping: drop = rx_dropped + rx_missed_errors, frame = length + over + crc
    # + frame errors, compressed/tx fifo/carrier not kept (0)
    expected = K_DEV_FMT % (
        "eth0", nd["rx_bytes"], nd["rx_packets"], nd["rx_errors"],
        nd["rx_dropped"] + nd["rx_missed_errors"], nd["rx_fifo_errors"],
        nd["rx_length_errors"] + nd["rx_over_errors"] + nd["rx_crc_errors"]
        + nd["rx_frame_errors"], 0, nd["multicast"], nd["tx_bytes"], nd["tx_packets"],
        nd["tx_errors"], nd["tx_dropped"], 0, nd["collisions"], 0, 0)
    assert lines[1] == expected
    fields = lines[1].split(":")[1].split()
    assert len(fields) == 16
    assert int(fields[3]) == 2 ** 4 + 2 ** 5             # rx_dropped + rx_missed_errors
    assert int(fields[5]) == 2 ** 7 + 2 ** 8 + 2 ** 9 + 2 ** 10


def test_dev_lines_have_the_running_kernels_column_count() -> None:
    path = Path("/proc/net/dev")
    if not path.exists():
        pytest.skip("no /proc/net/dev on this system")
    real = path.read_text().splitlines()[2:]
    ours = procfs.proc_net_dev(fake_result()).splitlines()[2:]
    assert real, "the running kernel lists no device"
    assert {len(ln.split(":")[1].split()) for ln in real} == \
        {len(ln.split(":")[1].split()) for ln in ours} == {16}


def test_softnet_stat() -> None:
    lines = procfs.proc_net_softnet_stat(fake_result()).splitlines(keepends=True)
    assert len(lines) == 2                                   # one per CPU
    assert lines[0] == K_SOFTNET_FMT % (5, 7, 0x1F, 0, 0, 0, 0, 0, 3)   # unsigned int wraps
    assert lines[1] == "00abcdef" + " 00000000" * 8 + "\n"
    for ln in lines:
        assert re.fullmatch(r"([0-9a-f]{8} ){8}[0-9a-f]{8}\n", ln)


def test_packet() -> None:
    text = procfs.proc_net_packet(fake_result())
    lines = text.splitlines()
    assert text.startswith(K_PACKET_HEADER)
    assert len(lines) == 3
    rows = [ln.split() for ln in lines[1:]]
    # newest socket first (sk_add_node puts it at the head of the list)
    assert [int(r[6]) for r in rows] == [2000, 1000]
    for r in rows:
        assert re.fullmatch(r"[0-9a-f]{16}", r[0])
        # RefCnt, Type SOCK_RAW, Proto ETH_P_ALL, Iface (unbound), R (running), User root
        assert r[1:6] == ["3", "3", "0003", "0", "1"] and r[7] == "0"
    assert rows[0][0] != rows[1][0] and rows[0][8] != rows[1][8]
    # stable: the same socket index gets the same pointer and inode in another run
    assert procfs.proc_net_packet(fake_result()) == text
    # the %-6u style fields: left-aligned, padded to their width
    assert lines[1][17:] == f"{3:<6d} {3:<4d} {3:04x}   {0:<5d} {1:1d} {2000:<6d} {0:<6d} " \
                            f"{procfs.fake_inode(1):<6d}"


@pytest.mark.kernel
def test_packet_fields_match_a_real_socket() -> None:
    """A real unbound ETH_P_ALL socket shows the same RefCnt, Type, Proto, Iface, R, User."""
    if os.geteuid() != 0:
        pytest.skip("PF_PACKET sockets need root (CAP_NET_RAW)")
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    except PermissionError as exc:
        pytest.skip(f"cannot open a PF_PACKET socket: {exc}")
    with s:
        inode = os.fstat(s.fileno()).st_ino
        rows = [ln.split() for ln in Path("/proc/net/packet").read_text().splitlines()[1:]]
        mine = [r for r in rows if int(r[8]) == inode]
        assert len(mine) == 1
        ours = procfs.proc_net_packet(fake_result(1)).splitlines()[1].split()
        # RefCnt, Type, Proto, Iface, R and User; Rmem varies with traffic
        assert mine[0][1:6] == ours[1:6]
        assert mine[0][7] == ours[7]


def test_packet_statistics_and_render_all_on_a_run() -> None:
    result, _sampler = sampled("SLOW_READER")
    s = result.sockets[0]
    stats = procfs.packet_statistics(result)
    assert stats == (f"socket 0: getsockopt(PACKET_STATISTICS) = "
                     f"{{ tp_packets = {s['tp_packets']}, tp_drops = {s['tp_drops']} }}\n")
    assert s["tp_drops"] > 0
    text = procfs.render_all(result)
    titles = [ln for ln in text.splitlines() if ln.startswith("==>")]
    assert titles == ["==> /proc/net/dev <==", "==> /proc/net/softnet_stat <==",
                      "==> /proc/net/packet <==", "==> getsockopt(PACKET_STATISTICS) <=="]
    assert procfs.proc_net_dev(result) in text
    eth0 = [ln for ln in text.splitlines() if ln.lstrip().startswith("eth0:")][0].split()
    assert int(eth0[2]) == result["netdev"]["rx_packets"] == result["offered"]
    softnet = procfs.proc_net_softnet_stat(result).splitlines()
    assert len(softnet) == len(result["cpu_time"])
    assert sum(int(ln.split()[0], 16) for ln in softnet) == result["received"]


def test_no_sockets() -> None:
    empty: dict[str, Any] = {"netdev": fake_result().data["netdev"], "softnet": [],
                             "sockets": []}
    text = procfs.render_all(Result(empty))
    assert text.endswith("(no sockets)")
    assert procfs.proc_net_packet(Result(empty)) == K_PACKET_HEADER
