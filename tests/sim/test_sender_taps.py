"""A sender's PF_PACKET socket is a tap like any other, and SOCK_RAW frames carry their
network header at the frame's start (packet_snd's skb_reset_network_header)."""

from __future__ import annotations

from lsfsim.bpf import Program
from lsfsim.kernel import syscalls
from lsfsim.machine import Machine
from lsfsim.report.procfs import proc_net_packet
from lsfsim.report.summary import capture_table
from lsfsim.scenario import Scenario, SenderSpec, SocketSpec, TrafficSpec
from tests.sim.helpers import frame_skb, idle_machine, model, process_ctx, softirq_ctx

SKF_NET_OFF = -0x100000 & 0xFFFFFFFF


def _net_off_ethertype_filter() -> Program:
    """ldh [SKF_NET_OFF + 12]; jeq #0x800, accept, drop: true only where the network
    header is the frame's start (frame bytes 12-13 are the ethertype)."""
    return Program.from_insns([(0x28, 0, 0, SKF_NET_OFF + 12), (0x15, 0, 1, 0x0800),
                               (0x06, 0, 0, 65535), (0x06, 0, 0, 0)])


def test_skf_net_off_reads_frame_byte_k_on_a_sock_raw_frame():
    machine = idle_machine(model())
    tap = machine.sockets[0]
    ctx = process_ctx(machine)
    assert tap.sk_attach_filter(ctx, _net_off_ethertype_filter()) is None
    sender = syscalls.sys_socket(machine.net, ctx)
    frame = bytes(frame_skb(machine, 100).data)
    assert syscalls.sys_sendto(machine.net, ctx, sender, frame) is None
    # outgoing: network header at byte 0, so [NET_OFF + 12] is the ethertype 0x0800
    assert tap.seen_outgoing == 1 and tap.queued_total == 1 and tap.filtered == 0
    # incoming: network header at byte 14, so [NET_OFF + 12] is IP bytes 12-13 (saddr)
    machine.net.netif_receive_skb(softirq_ctx(machine), frame_skb(machine, 100))
    assert tap.seen == 2 and tap.filtered == 1


def _senders_scenario(filter_file: str | None = None) -> Scenario:
    return Scenario(traffic=TrafficSpec(kind="cbr", rate=20_000, packets=400, size=100),
                    sockets=[SocketSpec(filter=None, filter_file=filter_file, promisc=False)],
                    senders=[SenderSpec(rate=20_000, count=300, size=80),
                             SenderSpec(rate=10_000, count=100, size=80)])


def test_a_filter_on_skf_net_off_accepts_the_sent_frames_in_a_run(tmp_path):
    path = tmp_path / "netoff.bpf"
    path.write_text(_net_off_ethertype_filter().format("tcpdump-ddd"))
    result = Machine(model(), _senders_scenario(str(path))).run()
    cap = result.sockets[0]
    sent = sum(s["sent"] for s in result["senders"])
    assert cap["seen_outgoing"] == sent == 400
    # every sent frame passes (ethertype at NET_OFF + 12), every received one is filtered
    assert cap["filtered"] == cap["seen"] - cap["seen_outgoing"] == result["received"]


def test_sender_sockets_are_taps_in_results_summary_and_proc():
    result = Machine(model(), _senders_scenario()).run()
    socks = result.sockets
    assert [s["role"] for s in socks] == ["capture", "sender", "sender"]
    cap, s1, s2 = socks
    # each sender sees the incoming frames and the other sender's, never its own
    assert s1["seen"] == result["received"] + 100 and s1["seen_outgoing"] == 100
    # (the second socket is created after the first sender's first frame went out)
    assert s2["seen"] == result["received"] + s2["seen_outgoing"] and s2["seen_outgoing"] == 299
    for s in (s1, s2):
        # nobody reads: the queue fills to sk_rcvbuf, then packet_rcv drops
        assert s["delivered"] == 0 and s["rcvbuf_drops"] > 0
        # the largest truesize here: a 100-byte copybreak copy, SKB_DATA_ALIGN(134) + 184
        assert s["rmem_alloc"] + 376 >= s["rcvbuf"] > s["rmem_alloc"]
        assert s["seen"] == s["filtered"] + s["rcvbuf_drops"] + s["queued"]
        assert s["tp_drops"] == s["sk_drops"] == s["rcvbuf_drops"]
    proc = proc_net_packet(result).splitlines()
    assert len(proc) == 1 + 3
    assert sorted(int(line.split()[6]) for line in proc[1:]) == sorted(
        s["rmem_alloc"] for s in socks)
    rows = capture_table(result).columns[0]._cells
    assert rows == ["0", "1", "2"]
