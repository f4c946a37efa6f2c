"""The result of a run: every counter and statistic, as plain data.

``Result.data`` is what ``--json`` writes (schema in docs/json-schema.md).
Counters carry the kernel's names: /proc/net/dev fields under ``netdev``,
/proc/net/softnet_stat under ``softnet``, PACKET_STATISTICS per socket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsfsim import __version__
from lsfsim.drivers.pcnet32 import Pcnet32
from lsfsim.drivers.wire import Wire
from lsfsim.kernel.context import KernelContext
from lsfsim.kernel.dev import NetCore
from lsfsim.kernel.ip import IpStack
from lsfsim.scenario import Scenario
from lsfsim.user import CaptureApp, SenderApp
from lsfsim.vocabulary import BUCKETS

SCHEMA_VERSION = 1


@dataclass
class Result:
    """A finished run: ``data`` holds everything; helpers read common figures."""

    data: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @property
    def sockets(self) -> list[dict[str, Any]]:
        return self.data["sockets"]

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.data, indent=indent, sort_keys=True)

    def write_json(self, path: str | Path) -> None:
        """Write as lsfsim.outputs does: atomically to a regular file (a failed write
        leaves any previous file intact), straight into a device or FIFO."""
        from lsfsim.outputs import write_output

        write_output(path, self.to_json() + "\n")

    def deterministic(self) -> dict[str, Any]:
        """The data without wall-clock figures (equal for equal scenario and seed)."""
        data = dict(self.data)
        for key in ("wall_seconds", "packets_per_wall_second"):
            data.pop(key, None)
        return data


def collect(*, model_name: str, scenario: Scenario, kernel: KernelContext, net: NetCore,
            dev: Pcnet32, ip: IpStack, wire: Wire, apps: list[CaptureApp],
            senders: list[SenderApp], sim_seconds: float, wall_seconds: float,
            events: int) -> Result:
    """Read every component's counters into a Result (each reports its own: the NIC its
    netdev stats, each CPU its softnet_stat row, each socket its counters)."""
    softnets = [cpu.softnet for cpu in kernel.cpus]
    in_backlog = sum(len(s.input_pkt_queue) for s in softnets)
    softnet_dropped = sum(s.dropped for s in softnets)
    netdev = dev.netdev_stats()
    places = {
        "mac_filtered": dev.mac_filtered,
        "rx_missed_errors": dev.rx_missed_true,     # the true count, not CSR112's 16 bits
        "rx_oversize": dev.rx_oversize,
        "rx_dropped": netdev["rx_dropped"],
        "softnet_dropped": softnet_dropped,
        "received": net.received,
        "in_rx_ring": dev.rx_ring_host_owned(),
        "in_backlog": in_backlog,
        "on_wire": 1 if dev.frame_in_flight() else 0,
    }
    sockets: list[dict[str, Any]] = []
    for app in apps:
        sock = app.sock
        if sock is None:
            continue
        sockets.append({
            "index": sock.index,
            "role": "capture",
            "filter_instructions": len(app.program) if app.program else 0,
            "attach_errno": app.attach_errno,
            **sock.counters(),
            "readers": [{"name": r.name, "cpu": r.cpu.index, "sleeps": r.sleeps}
                        for r in app.readers],
        })
    # A sender's socket is an ETH_P_ALL tap too (packet_create -> dev_add_pack): it sees
    # every incoming frame and the other sockets' outgoing ones (dev_queue_xmit_nit skips
    # only the sending socket), and nobody reads it, so its queue fills to sk_rcvbuf and
    # then drops, as on the real machine.
    for sender in senders:
        ssock = sender.sock
        if ssock is None:
            continue
        sockets.append({"index": ssock.index, "role": "sender", "filter_instructions": 0,
                        "attach_errno": None, **ssock.counters(), "readers": []})
    cpu_time = []
    for cpu in kernel.cpus:
        busy = dict(zip(BUCKETS, cpu.acct, strict=True))
        busy["idle"] = max(0.0, sim_seconds - sum(cpu.acct))
        cpu_time.append({"cpu": cpu.index, **busy})
    calls = kernel.calls
    functions = {fn: {"seconds": secs, "calls": calls.get(fn, 0)}
                 for fn, secs in sorted(kernel.profile.items(), key=lambda kv: -kv[1])}
    stages = {
        "wire": {"packets": wire.offered, "bytes": wire.offered_bytes},
        "nic": {"packets": netdev["rx_packets"], "bytes": netdev["rx_bytes"]},
        "netif_receive_skb": {"packets": net.received},
        "ip_rcv": {"packets": ip.delivered + ip.otherhost},
    }
    for s in sockets:
        stages[f"socket{s['index']}_queued"] = {"packets": s["seen"] - s["filtered"]
                                                - s["rcvbuf_drops"]}
        stages[f"socket{s['index']}_user"] = {"packets": s["delivered"],
                                              "bytes": s["delivered_bytes"]}
    data: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "lsfsim_version": __version__,
        "model": model_name,
        "kernel_version": kernel.config.version,
        "arch": kernel.sizes.arch,
        "scenario": scenario.model_dump(mode="json"),
        "offered": wire.offered,
        "offered_bytes": wire.offered_bytes,
        "rx_missed_errors": netdev["rx_missed_errors"],
        "rx_missed_true": dev.rx_missed_true,
        "rx_dropped": netdev["rx_dropped"],
        "rx_errors": netdev["rx_errors"],
        "mac_filtered": dev.mac_filtered,
        "softnet_dropped": softnet_dropped,
        "time_squeeze": sum(s.time_squeeze for s in softnets),
        "interrupts": dev.interrupts,
        "napi_polls": dev.napi.polls,
        "received": net.received,
        "ip_delivered": ip.delivered,
        "acks_sent": ip.acks_sent,
        "ksoftirqd_wakeups": sum(c.ksoftirqd.wakeups for c in kernel.cpus),
        "sockets": sockets,
        "senders": [{"sent": s.sent, "errors": s.errors} for s in senders],
        "netdev": netdev,
        "softnet": [s.softnet_stat() for s in softnets],
        "cpu_time": cpu_time,
        "functions": functions,
        "latency": kernel.latency.summary(),
        "stages": stages,
        "conservation": {"places": places},
        "sim_seconds": sim_seconds,
        "wall_seconds": wall_seconds,
        "events": events,
        "packets_per_wall_second": wire.offered / wall_seconds if wall_seconds else 0.0,
    }
    return Result(data)
