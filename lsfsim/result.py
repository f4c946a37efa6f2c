"""The result of a run: every counter and statistic, as plain data.

``Result.data`` is what ``--json`` writes (schema in docs/json-schema.md).
Counters carry the kernel's names: /proc/net/dev fields under ``netdev``,
/proc/net/softnet_stat under ``softnet``, PACKET_STATISTICS per socket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsfsim import __version__
from lsfsim.kernel.cpu import BUCKETS

if TYPE_CHECKING:
    from lsfsim.machine import Machine

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


def collect(m: Machine) -> Result:
    """Read every counter of a machine into a Result."""
    from lsfsim.checks import refusal, run_warnings

    dev = m.dev
    softnets = [cpu.softnet for cpu in m.cpus]
    in_ring = dev.chip_rx - dev.cur_rx
    in_backlog = sum(len(s.input_pkt_queue) for s in softnets)
    on_wire = 1 if dev._next is not None else 0
    softnet_dropped = sum(s.dropped for s in softnets)
    places = {
        "mac_filtered": dev.mac_filtered,
        "rx_missed_errors": dev.rx_missed_errors,
        "rx_length_errors": dev.rx_length_errors,
        "rx_dropped": dev.rx_dropped,
        "softnet_dropped": softnet_dropped,
        "received": m.net.received,
        "in_rx_ring": in_ring,
        "in_backlog": in_backlog,
        "on_wire": on_wire,
    }
    sockets = []
    for app in m.apps:
        sock = app.sock
        if sock is None:
            continue
        queued = len(sock.sk_receive_queue)
        in_recvfrom = sock.queued_total - sock.delivered - queued
        sockets.append({
            "index": sock.index,
            "filter_instructions": len(app.program) if app.program else 0,
            "attach_errno": app.attach_errno,
            "filter_refused": refusal(m, app),
            "rcvbuf": sock.sk_rcvbuf,
            "seen": sock.seen,
            "seen_outgoing": sock.seen_outgoing,
            "filtered": sock.filtered,
            "rcvbuf_drops": sock.rcvbuf_drops,
            "tp_packets": sock.tp_packets + sock.tp_drops,
            "tp_drops": sock.tp_drops,
            "sk_drops": sock.sk_drops,
            "delivered": sock.delivered,
            "delivered_bytes": sock.delivered_bytes,
            "truncated": sock.truncated,
            "queued": queued,
            "in_recvfrom": in_recvfrom,
            "rmem_alloc": sock.sk_rmem_alloc,
            "max_rmem_alloc": sock.max_rmem,
            "readers": [{"name": r.name, "cpu": r.cpu.index, "sleeps": r.sleeps}
                        for r in app.readers],
        })
    sim_seconds = m.now
    netdev = {
        "rx_bytes": dev.rx_bytes, "rx_packets": dev.rx_packets, "rx_errors": dev.rx_errors,
        "rx_dropped": dev.rx_dropped, "rx_missed_errors": dev.rx_missed_errors,
        "rx_fifo_errors": dev.rx_fifo_errors, "rx_length_errors": dev.rx_length_errors,
        "rx_over_errors": dev.rx_over_errors, "rx_crc_errors": dev.rx_crc_errors,
        "rx_frame_errors": dev.rx_frame_errors, "multicast": dev.multicast,
        "tx_bytes": dev.tx_bytes, "tx_packets": dev.tx_packets, "tx_errors": dev.tx_errors,
        "tx_dropped": dev.tx_dropped, "collisions": dev.collisions,
    }
    cpu_time = []
    for cpu in m.cpus:
        busy = dict(zip(BUCKETS, cpu.acct, strict=True))
        busy["idle"] = max(0.0, sim_seconds - sum(cpu.acct))
        cpu_time.append({"cpu": cpu.index, **busy})
    functions = {fn: {"seconds": secs, "calls": m.calls.get(fn, 0)}
                 for fn, secs in sorted(m.profile.items(), key=lambda kv: -kv[1])}
    stages = {
        "wire": {"packets": m.wire.offered, "bytes": m.wire.offered_bytes},
        "nic": {"packets": dev.rx_packets, "bytes": dev.rx_bytes},
        "netif_receive_skb": {"packets": m.net.received},
        "ip_rcv": {"packets": m.ip.delivered + m.ip.otherhost},
    }
    for s in sockets:
        stages[f"socket{s['index']}_queued"] = {"packets": s["seen"] - s["filtered"]
                                                - s["rcvbuf_drops"]}
        stages[f"socket{s['index']}_user"] = {"packets": s["delivered"],
                                              "bytes": s["delivered_bytes"]}
    data: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "lsfsim_version": __version__,
        "model": m.model.name,
        "kernel_version": m.kernel.version,
        "scenario": m.scenario.model_dump(mode="json"),
        "offered": m.wire.offered,
        "offered_bytes": m.wire.offered_bytes,
        "rx_missed_errors": dev.rx_missed_errors,
        "rx_dropped": dev.rx_dropped,
        "rx_errors": dev.rx_errors,
        "mac_filtered": dev.mac_filtered,
        "softnet_dropped": softnet_dropped,
        "time_squeeze": sum(s.time_squeeze for s in softnets),
        "interrupts": dev.interrupts,
        "napi_polls": dev.napi.polls,
        "received": m.net.received,
        "ip_delivered": m.ip.delivered,
        "acks_sent": m.ip.acks_sent,
        "ksoftirqd_wakeups": sum(c.ksoftirqd.wakeups for c in m.cpus),
        "sockets": sockets,
        "senders": [{"sent": s.sent, "errors": s.errors} for s in m.senders],
        "netdev": netdev,
        "softnet": [{"cpu": s.cpu_index, "processed": s.processed, "dropped": s.dropped,
                     "time_squeeze": s.time_squeeze, "cpu_collision": s.cpu_collision}
                    for s in softnets],
        "cpu_time": cpu_time,
        "functions": functions,
        "latency": m.latency.summary(),
        "stages": stages,
        "conservation": {"places": places},
        "sim_seconds": sim_seconds,
        "wall_seconds": m.wall_seconds,
        "events": m.events,
        "packets_per_wall_second": m.wire.offered / m.wall_seconds if m.wall_seconds else 0.0,
    }
    data["replay"] = getattr(m.source, "replay_counts", lambda: None)()
    data["warnings"] = run_warnings(m, data)
    return Result(data)
