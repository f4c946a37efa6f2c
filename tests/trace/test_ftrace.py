"""The ftrace-style tracer: format, call trees against the lecture's traces, time accounting."""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from lsfsim.cli.common import InputError
from lsfsim.cli.trace_options import parse_packets, parse_window
from lsfsim.config.model import load_model
from lsfsim.kernel.cpu import HI, PROCESS, SI, SOFTIRQ, SY
from lsfsim.scenario import LECTURE_FILTER, Scenario, SenderSpec, SocketSpec, TrafficSpec
from lsfsim.trace import FtraceTracer, LifecycleRecorder, run_traced
from lsfsim.trace.ftrace import format_duration, self_time_totals
from lsfsim.trace.output import format_abs_time

SEED = Path(os.environ.get("LSFSIM_TEST_SEED",
                          Path(__file__).resolve().parents[2] / ".." / "shared" / "seed"))
LECTURE = SEED / "lsf-lecture.txt"


# --- call trees -----------------------------------------------------------------
@dataclass
class Call:
    name: str
    children: list[Call] = field(default_factory=list)
    duration: float | None = None       # microseconds, from the text


_TOKEN = re.compile(r"/\*.*?\*/|([A-Za-z_][A-Za-z0-9_]*)\(\)\s*([{;])|(\})", re.S)


def parse_lecture_tree(text: str, pos: int) -> Call:
    """The brace tree starting at ``pos`` in the lecture's ftrace listings (comments skipped)."""
    stack = [Call("<top>")]
    for m in _TOKEN.finditer(text, pos):
        name, kind, close = m.groups()
        if name:
            node = Call(name)
            stack[-1].children.append(node)
            if kind == "{":
                stack.append(node)
        elif close:
            stack.pop()
            if len(stack) == 1:
                return stack[0].children[0]
    raise AssertionError("unbalanced braces in the lecture trace")


_LINE = re.compile(r"^ *(\d+)\) (.{14})\|  ( *)(\S.*)$")


def parse_graph(text: str, cpu: int | None = None) -> list[Call]:
    """function_graph text -> call trees, checking indentation against nesting."""
    roots: list[Call] = []
    stack: list[Call] = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m or (cpu is not None and int(m.group(1)) != cpu):
            continue
        dur_field, indent, call = m.group(2), m.group(3), m.group(4)
        depth = len(stack) - 1 if call == "}" else len(stack)
        assert len(indent) == 2 * depth, f"indentation does not match nesting: {line!r}"
        dm = re.search(r"([0-9.]+) us", dur_field)
        dur = float(dm.group(1)) if dm else None
        if call == "}":
            node = stack.pop()
            node.duration = dur
            continue
        cm = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\(\) \{|([A-Za-z_][A-Za-z0-9_]*)\(\);", call)
        assert cm, f"not a function_graph call: {line!r}"
        node = Call(cm.group(1) or cm.group(2), duration=dur)
        (stack[-1].children if stack else roots).append(node)
        if cm.group(1):
            assert dur is None, f"an opening line has no duration: {line!r}"
            stack.append(node)
    return roots


def names(tree: Call) -> set[str]:
    return {tree.name}.union(*(names(c) for c in tree.children))


def prune(tree: Call, keep: set[str]) -> list[Call]:
    """Drop calls not in ``keep``; their kept descendants move up to the nearest kept ancestor."""
    kids = [k for c in tree.children for k in prune(c, keep)]
    if tree.name in keep:
        return [Call(tree.name, kids)]
    return kids


def embeds(pattern: Call, tree: Call) -> bool:
    """``pattern`` is ``tree`` with calls left out: same root, children in order, nesting kept."""
    if pattern.name != tree.name:
        return False
    i = 0
    for child in pattern.children:
        while i < len(tree.children) and not embeds(child, tree.children[i]):
            i += 1
        if i == len(tree.children):
            return False
        i += 1
    return True


def walk(trees: list[Call]):
    for t in trees:
        yield t
        yield from walk(t.children)


def child_names(node: Call) -> list[str]:
    return [c.name for c in node.children]


# --- runs -------------------------------------------------------------------------
def traced_text(scenario: Scenario, **tracer_args) -> tuple[str, FtraceTracer, object]:
    tracer = FtraceTracer(**tracer_args)
    result = run_traced("testbed", scenario, tracer=tracer)
    out = io.StringIO()
    tracer.write_text(out)
    return out.getvalue(), tracer, result


def _sock(**sock) -> SocketSpec:
    """The lecture's capture program (its filter), without the SIOCSIFFLAGS call."""
    return SocketSpec(**{"filter": LECTURE_FILTER, "promisc": False, **sock})


def nc(nbytes: int = 30000, **sock) -> Scenario:
    return Scenario(traffic=TrafficSpec(kind="nc", bytes=nbytes), sockets=[_sock(**sock)])


def cbr(size: int, packets: int = 4, rate: float = 2000.0, **sock) -> Scenario:
    return Scenario(traffic=TrafficSpec(kind="cbr", rate=rate, packets=packets, size=size),
                    sockets=[_sock(**sock)])


@pytest.fixture(scope="module")
def nc_run():
    """The default short scenario, traced without selection (the lecture's filter)."""
    return traced_text(nc())


@pytest.fixture(scope="module")
def lecture_text() -> str:
    if not LECTURE.is_file():
        pytest.skip(f"the lecture text is not at {LECTURE}")
    return LECTURE.read_text()


def lecture_tree(text: str, start: str, occurrence: int = 0) -> Call:
    hits = [m.start() for m in re.finditer(start, text)]
    assert len(hits) > occurrence, f"{start!r} not found in the lecture"
    return parse_lecture_tree(text, hits[occurrence])


def assert_lecture_tree_in(lecture: Call, sim_roots: list[Call], required: set[str]) -> None:
    """The lecture's tree, restricted to the functions the simulator shows for that operation,
    is found (names and nesting, extra calls allowed) in the simulated trace; and the functions
    ``required`` survive that restriction."""
    candidates = [n for n in walk(sim_roots) if n.name == lecture.name]
    assert candidates, f"the simulated trace has no {lecture.name}()"
    vocabulary = set().union(*(names(c) for c in candidates))
    pattern = prune(lecture, vocabulary)
    assert len(pattern) == 1, f"{lecture.name} itself must be modelled"
    missing = required - names(pattern[0])
    assert not missing, f"lecture functions not in the simulated {lecture.name}: {missing}"
    assert any(embeds(pattern[0], c) for c in candidates), (
        f"the lecture's {lecture.name} tree {pattern[0]} is not a subtree of the simulation's")


# --- the lecture's traces ------------------------------------------------------------
def test_socket_and_setsockopt_trees_match_the_lecture(lecture_text, nc_run):
    text, _tracer, _result = nc_run
    sim = parse_graph(text, cpu=1)
    socket_tree = lecture_tree(lecture_text, re.escape("sys_socketcall() {"))
    sys_socket = next(c for c in socket_tree.children if c.name == "sys_socket")
    assert_lecture_tree_in(sys_socket, sim, {"sys_socket", "packet_create", "dev_add_pack"})
    assert_lecture_tree_in(lecture_tree(lecture_text, re.escape("sys_setsockopt() {")), sim,
                           {"sys_setsockopt", "sk_attach_filter", "sk_chk_filter"})


def test_interrupt_tree_matches_the_lecture(lecture_text, nc_run):
    text, _tracer, _result = nc_run
    sim = parse_graph(text, cpu=0)
    lecture = lecture_tree(lecture_text, re.escape("pcnet32_interrupt() {"))
    assert_lecture_tree_in(lecture, sim, {"pcnet32_interrupt", "__napi_schedule",
                                          "pcnet32_wio_read_csr", "pcnet32_wio_write_csr"})
    # every interrupt is framed by the ftrace markers and runs do_IRQ first (the
    # periodic tick enters through its own vector: smp_apic_timer_interrupt)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.endswith("==========> |"):
            assert re.match(r"^ 0\) +\|  (do_IRQ|smp_apic_timer_interrupt)\(\) \{$",
                            lines[i + 1]), lines[i + 1]
    assert sum(ln.endswith("==========> |") for ln in lines) == \
        sum(ln.endswith("<========== |") for ln in lines) > 0


def test_poll_tree_matches_the_lecture_for_a_small_frame(lecture_text):
    """The lecture's poll copies the frame (memcpy): a frame up to rx_copybreak (200 bytes)."""
    text, _t, _r = traced_text(cbr(100, packets=2), functions=["pcnet32_poll"])
    sim = parse_graph(text)
    lecture = lecture_tree(lecture_text, re.escape("pcnet32_poll() {"))
    assert_lecture_tree_in(lecture, sim, {"pcnet32_poll", "dev_alloc_skb", "skb_put", "memcpy",
                                          "eth_type_trans", "skb_pull", "netif_receive_skb",
                                          "__napi_complete"})
    polls = [n for n in sim if n.name == "pcnet32_poll"]
    assert len(polls) == 2 and all("memcpy" in child_names(p) for p in polls)


def test_large_frames_go_up_in_place_without_memcpy():
    """pcnet32_rx_entry above rx_copybreak: the ring's skb goes up and the slot gets a new
    one (dev_alloc_skb), nothing is copied."""
    text, _t, _r = traced_text(cbr(1000, packets=2), functions=["pcnet32_poll"])
    polls = [n for n in parse_graph(text) if n.name == "pcnet32_poll"]
    assert len(polls) == 2
    for poll in polls:
        kids = child_names(poll)
        assert "memcpy" not in kids and "nommu_sync_single_for_device" not in kids
        assert kids.index("dev_alloc_skb") < kids.index("skb_put") < kids.index("eth_type_trans")


def test_packet_rcv_accept_and_drop_trees_match_the_lecture(lecture_text, nc_run):
    pattern = r"netif_receive_skb\(\) \{\s*packet_rcv\(\)"
    drop, accept = lecture_tree(lecture_text, pattern, 0), lecture_tree(lecture_text, pattern, 1)
    text, _tracer, _result = nc_run
    sim_accept = parse_graph(text, cpu=0)
    assert_lecture_tree_in(accept, sim_accept, {"netif_receive_skb", "packet_rcv", "skb_push",
                                                "sk_run_filter", "skb_clone", "kfree_skb",
                                                "sock_def_readable", "ip_rcv"})
    # UDP frames through a "tcp" filter: every packet_rcv drops
    text, _t, result = traced_text(cbr(100, packets=3, filter="tcp"),
                                   functions=["netif_receive_skb"])
    assert result.sockets[0]["filtered"] == 3
    sim_drop = parse_graph(text)
    assert_lecture_tree_in(drop, sim_drop, {"netif_receive_skb", "packet_rcv", "skb_push",
                                            "sk_run_filter", "consume_skb", "ip_rcv"})
    rcvs = [n for n in walk(sim_drop) if n.name == "packet_rcv"]
    assert len(rcvs) == 3
    for rcv in rcvs:
        assert "skb_clone" not in child_names(rcv) and child_names(rcv)[-1] == "consume_skb"


def test_recvfrom_tree_matches_the_lecture(lecture_text, nc_run):
    text, _tracer, _result = nc_run
    sim = parse_graph(text, cpu=1)
    lecture = lecture_tree(lecture_text, re.escape("sys_recvfrom() {"))
    assert_lecture_tree_in(lecture, sim, {"sys_recvfrom", "sock_recvmsg", "packet_recvmsg",
                                          "skb_recv_datagram", "skb_copy_datagram_iovec",
                                          "skb_free_datagram", "sock_rfree"})


def test_sendto_goes_through_packet_sendmsg_to_dev_queue_xmit():
    scenario = Scenario(traffic=TrafficSpec(kind="cbr", rate=1000.0, packets=1, size=60),
                        sockets=[SocketSpec(filter=None)],
                        senders=[SenderSpec(rate=10000.0, count=3, size=100)])
    text, _t, result = traced_text(scenario, functions=["sys_sendto"])
    assert result["senders"][0]["sent"] == 3
    sends = [n for n in parse_graph(text) if n.name == "sys_sendto"]
    assert len(sends) == 3
    for send in sends:
        # packet_snd is inlined into packet_sendmsg: never a call of its own
        sendmsg = next(c for c in send.children if c.name == "sock_sendmsg")
        packet = next(c for c in sendmsg.children if c.name == "packet_sendmsg")
        xmit = next(c for c in packet.children if c.name == "dev_queue_xmit")
        direct = next(c for c in xmit.children if c.name == "sch_direct_xmit")
        hard = next(c for c in direct.children if c.name == "dev_hard_start_xmit")
        assert child_names(hard) == ["dev_queue_xmit_nit", "pcnet32_start_xmit"]
        # the capture socket sees the outgoing frame: packet_rcv nests in dev_queue_xmit_nit
        assert child_names(hard.children[0]) == ["skb_clone", "packet_rcv"]


# --- time accounting -------------------------------------------------------------------
def test_parents_last_at_least_as_long_as_their_children(nc_run):
    text, _tracer, _result = nc_run
    checked = 0
    for cpu in (0, 1):
        for node in walk(parse_graph(text, cpu=cpu)):
            if node.children and node.duration is not None:
                kids = sum(c.duration for c in node.children if c.duration is not None)
                # three decimals in the text: 0.5 ns rounding per printed figure
                assert node.duration + 0.0005 * (len(node.children) + 1) >= kids, node.name
                checked += 1
    assert checked > 100


def test_self_times_add_up_to_the_runs_cpu_time_and_profile(nc_run):
    """With no selection, the trace accounts for every charged nanosecond."""
    _text, tracer, result = nc_run
    out = io.StringIO()
    tracer.write_json(out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    per_ctx: dict[tuple[int, str], float] = {}
    per_fn: dict[str, float] = {}
    for ev in events:
        if ev["type"] in ("exit", "leaf", "entry"):
            key = (ev["cpu"], ev["ctx"])
            per_ctx[key] = per_ctx.get(key, 0.0) + ev["self"]
            per_fn[ev["fn"]] = per_fn.get(ev["fn"], 0.0) + ev["charged"]
    # but for the ticks charged by count, untraced (docs/tracing.md, "The tick"): a
    # whole number of idle ticks per CPU, each its hard-IRQ part and its softirq
    costs = load_model("testbed").kernel.costs
    idle_si = costs["__do_softirq"]() + costs["run_timer_softirq"]()
    counted = 0
    for row in result["cpu_time"]:
        cpu = row["cpu"]
        idle_hi = sum(costs[k]() for k in ("smp_apic_timer_interrupt", "update_process_times",
                                           "scheduler_tick")) + (costs["do_timer"]() if cpu == 0
                                                                 else 0.0)
        n = round((row["si"] - per_ctx.get((cpu, "si"), 0.0)) / idle_si)
        assert n >= 0
        counted += n
        for bucket, extra in (("hi", n * idle_hi), ("si", n * idle_si), ("sy", 0.0),
                              ("us", 0.0)):
            assert per_ctx.get((cpu, bucket), 0.0) + extra == pytest.approx(row[bucket],
                                                                             abs=1e-12)
    assert result["cpu_time"][0]["si"] > 0 and result["cpu_time"][1]["sy"] > 0
    assert counted > 0                       # the reader's CPU has ticks charged by count
    tick = {"smp_apic_timer_interrupt", "update_process_times", "scheduler_tick", "do_timer",
            "run_timer_softirq", "__do_softirq"}
    assert set(per_fn) >= set(result["functions"]) - tick
    for fn, entry in result["functions"].items():
        if fn not in tick:
            assert per_fn[fn] == pytest.approx(entry["seconds"], abs=1e-12), fn
    assert self_time_totals(tracer.lines) == pytest.approx(per_ctx, abs=1e-12)


def test_json_events_are_sorted_and_complete(nc_run):
    _text, tracer, _result = nc_run
    out = io.StringIO()
    tracer.write_json(out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    stamps = [ev["ts"] for ev in events]
    assert stamps == sorted(stamps)
    for ev in events:
        assert {"ts", "cpu", "depth", "fn", "duration", "type"} <= set(ev) or ev["type"] == "switch"
    assert {ev["type"] for ev in events} >= {"entry", "exit", "leaf", "irq_entry", "irq_exit",
                                             "switch"}


# --- format -----------------------------------------------------------------------
@pytest.mark.parametrize("seconds, expected", [
    # hand-derived from print_graph_duration / trace_print_graph_duration / trace_find_mark
    (123e-9, "  0.123 us    |  "),
    (10e-6, "  10.000 us   |  "),             # not above 10 us: no marker
    (10.001e-6, "+ 10.001 us   |  "),
    (100.5e-6, "! 100.500 us  |  "),
    (1234.567e-6, "# 1234.567 us |  "),
    (12345.678e-6, "* 12345.67 us |  "),     # 5 digits of us: 2 of ns
    (123456.789e-6, "@ 123456.7 us |  "),    # 6 digits: 1
    (1.234567891, "$ 1234567 us  |  "),      # 7 digits: none
])
def test_duration_column_is_ftraces(seconds, expected):
    assert format_duration(seconds) == expected


def test_header_task_switch_and_idle(nc_run):
    text, _tracer, _result = nc_run
    lines = text.splitlines()
    assert lines[:4] == ["# tracer: function_graph", "#",
                         "# CPU  DURATION                  FUNCTION CALLS",
                         "# |     |   |                     |   |   |   |"]
    switch = [i for i, ln in enumerate(lines) if " => " in ln]
    assert switch
    for i in switch:
        assert lines[i - 1] == lines[i + 1] == " " + "-" * 42
        assert re.match(r"^ \d\) +\S+ +=> +\S+ *$", lines[i]), lines[i]
    # the control path runs as capture0, then the reader takes over CPU 1
    assert any(re.match(r"^ 1\) +capture0 +=> +reader0\.0 *$", lines[i]) for i in switch)


@pytest.mark.parametrize("seconds, expected", [
    # print_graph_abs_time: "%5lu.%06lu |  " of do_div(ns, NSEC_PER_SEC), remainder / 1000
    (0.0, "    0.000000 |  "),
    (1.5e-6, "    0.000001 |  "),
    (1.999e-6, "    0.000001 |  "),            # 1999 ns: truncated to the microsecond
    (0.012345678, "    0.012345 |  "),
    (12.3456789, "   12.345678 |  "),
    (123456.5, "123456.500000 |  "),            # %5lu is a minimum width
])
def test_abs_time_column_is_ftraces(seconds, expected):
    assert format_abs_time(seconds) == expected


def test_abstime_prefixes_every_call_line_with_its_time(nc_run):
    """The same text with the time column in front of each call and interrupt line, and
    print_graph_headers' TIME column; the task-switch banner has none."""
    text, tracer, _result = nc_run
    buf = io.StringIO()
    tracer.write_text(buf, abstime=True)
    lines = buf.getvalue().splitlines()
    assert lines[:4] == ["# tracer: function_graph", "#",
                         "#     TIME        CPU  DURATION                  FUNCTION CALLS",
                         "#      |          |     |   |                     |   |   |   |"]
    plain = text.splitlines()[4:]
    stamped = lines[4:]
    assert len(plain) == len(stamped)
    times = []
    body = iter(tracer.sorted_lines())
    for a, b in zip(plain, stamped, strict=True):
        if b == a:                           # banner lines and the blank after them
            assert not re.match(r"^ *\d+\.\d{6} \|  ", a)
            continue
        m = re.match(r"^( *(\d+)\.(\d{6}) \|  )(.*)$", b)
        assert m and m.group(4) == a, (a, b)
        ln = next(body)
        assert m.group(1) == format_abs_time(ln.t)
        times.append(int(m.group(2)) * 10**6 + int(m.group(3)))
    assert next(body, None) is None
    assert times == sorted(times) and times[-1] > times[0]


def test_overhead_adds_tracer_overhead_per_traced_call():
    overhead = load_model("testbed").kernel.costs["tracer_overhead"].fixed
    assert overhead > 0
    plain = traced_text(cbr(100, packets=2), functions=["packet_rcv"])[0]
    loaded = traced_text(cbr(100, packets=2), functions=["packet_rcv"], overhead=True)[0]
    a, b = parse_graph(plain), parse_graph(loaded)
    assert [n.name for n in walk(a)] == [n.name for n in walk(b)]
    for x, y in zip(walk(a), walk(b), strict=True):
        calls = sum(1 for _ in walk([x]))
        assert y.duration - x.duration == pytest.approx(calls * overhead * 1e6, abs=0.0011)


# --- selections --------------------------------------------------------------------------
def test_functions_selection_keeps_only_those_subtrees():
    text, tracer, _r = traced_text(nc(), functions=["sk_*_filter", "eth_type_trans"])
    roots = parse_graph(text, cpu=0) + parse_graph(text, cpu=1)
    assert {r.name for r in roots} == {"sk_attach_filter", "eth_type_trans", "sk_run_filter"}
    assert {ln.fn for ln in tracer.lines} == {
        "sk_attach_filter", "sock_kmalloc", "__kmalloc", "get_slab", "_copy_from_user",
        "sk_chk_filter", "local_bh_disable", "__local_bh_disable", "local_bh_enable",
        "eth_type_trans", "skb_pull", "sk_run_filter"}


def test_window_keeps_calls_overlapping_it():
    lo, hi = parse_window("200us:400us")
    text, tracer, _r = traced_text(nc(), window=(lo, hi))
    assert tracer.lines
    assert "sys_socket() {" not in text          # the control path ran at t = 0
    outer = [ln for ln in tracer.sorted_lines() if ln.depth == 0]
    assert outer
    for ln in outer:
        if ln.type in ("entry", "irq_entry"):
            assert ln.t <= hi
        elif ln.type == "exit":
            assert ln.t >= lo
        elif ln.type == "leaf":
            assert ln.t <= hi and ln.t + ln.duration >= lo


def test_packets_selection_follows_one_frame_and_the_control_path():
    tracer = FtraceTracer(packets=parse_packets("3"))
    recorder = LifecycleRecorder(packets=[3])
    run_traced("testbed", nc(), tracer=tracer, recorder=recorder)
    life = recorder[3]
    lines = tracer.sorted_lines()
    assert {ln.pkt for ln in lines} <= {3, None}
    rx = [ln for ln in lines if ln.fn == "netif_receive_skb" and ln.type == "entry"]
    assert len(rx) == 1 and rx[0].pkt == 3
    assert life.t_dma <= rx[0].t <= life.verdicts[0].t_enq
    # the frame's recvfrom, and the control path
    recv = [ln for ln in lines if ln.fn == "sys_recvfrom" and ln.type == "exit"]
    assert len(recv) == 1 and recv[0].pkt == 3
    assert recv[0].t == pytest.approx(life.copies[0].t_done)
    fns = {ln.fn for ln in lines}
    assert {"sys_socket", "sys_setsockopt", "pcnet32_interrupt", "pcnet32_poll"} <= fns


@pytest.mark.parametrize("bad", ["x", "3:1", "-2", ""])
def test_bad_packet_ranges_are_refused(bad):
    with pytest.raises(InputError, match="--packets"):
        parse_packets(bad)


# --- hooks out of time order (a unit test of the tracer itself) -----------------------------
class _Task:
    def __init__(self, name: str) -> None:
        self.name = name


class _Ctx:
    """What the tracer reads of an ExecContext (hashed by identity, as ExecContext is)."""

    def __init__(self, cpu: int, level: int, bucket: int, task=None) -> None:
        self.t = 0.0
        self.cpu = SimpleNamespace(index=cpu, owner=task)
        self.level = level
        self.bucket = bucket
        self.task = task


def _ctx(cpu: int, level: int, bucket: int, task=None) -> _Ctx:
    return _Ctx(cpu, level, bucket, task)


def test_contexts_computed_ahead_are_sorted_into_time_order():
    tracer = FtraceTracer()
    reader = _Task("reader0.0")
    proc = _ctx(0, PROCESS, SY, reader)
    irq = _ctx(0, SOFTIRQ, SI)
    irq.cpu = proc.cpu                      # the same CPU, owned by the reader
    # the process context computes its whole burst first: 0 .. 10 us
    tracer.enter(proc, "sys_recvfrom")
    tracer.leaf(proc, "sys_recvfrom", 4e-6)
    proc.t += 4e-6
    tracer.leaf(proc, "schedule", 6e-6)
    proc.t += 6e-6
    tracer.exit(proc, "sys_recvfrom")
    # then an interrupt that happened at 5 us
    irq.t = 5e-6
    tracer.irq_entry(irq, 10)
    tracer.leaf(irq, "do_IRQ", 1e-6)
    irq.t += 1e-6
    tracer.irq_exit(irq, 10)
    # a softirq run by ksoftirqd: a root of its own
    ksoftirqd = _Task("ksoftirqd/0")
    kctx = _ctx(0, PROCESS, SI, ksoftirqd)
    kctx.t = 20e-6
    tracer.softirq_entry(kctx)
    tracer.leaf(kctx, "__do_softirq", 1e-6)
    kctx.t += 1e-6
    tracer.softirq_exit(kctx)
    types = [(ln.type, ln.fn, ln.task) for ln in tracer.sorted_lines()]
    assert types == [
        ("entry", "sys_recvfrom", "reader0.0"),
        ("leaf", "schedule", "reader0.0"),
        ("irq_entry", "do_IRQ", "reader0.0"),   # interrupt context shows the task it interrupts
        ("leaf", "do_IRQ", "reader0.0"),
        ("irq_exit", "do_IRQ", "reader0.0"),
        ("exit", "sys_recvfrom", "reader0.0"),
        ("leaf", "__do_softirq", "ksoftirqd/0"),
    ]
    text = "\n".join(tracer.iter_text())
    assert "reader0.0    =>  ksoftirqd/0" in text
    assert tracer.lines[2].bucket == HI


def test_folded_callees_are_carved_out_of_their_caller():
    tracer = FtraceTracer()
    ctx = _ctx(0, SOFTIRQ, SI)
    tracer.enter(ctx, "packet_rcv")
    tracer.leaf(ctx, "packet_rcv", 100e-9)
    ctx.t += 100e-9
    tracer.mark(ctx, "skb_push")
    tracer.leaf(ctx, "sk_run_filter", 50e-9)
    ctx.t += 50e-9
    tracer.mark(ctx, "local_bh_enable")
    tracer.exit(ctx, "packet_rcv")
    lines = {ln.fn: ln for ln in tracer.sorted_lines()}
    assert lines["skb_push"].duration == pytest.approx(5e-9)          # 5 % of 100 ns
    assert lines["local_bh_enable"].duration == pytest.approx(5e-9)
    assert lines["packet_rcv"].self_time == pytest.approx(90e-9)
    assert lines["packet_rcv"].duration == pytest.approx(150e-9)
    kids = sum(lines[f].duration for f in ("skb_push", "sk_run_filter", "local_bh_enable"))
    assert kids <= lines["packet_rcv"].duration


# --- the command line ---------------------------------------------------------------------
def _cli(*args: str):
    import typer
    from typer.testing import CliRunner

    from lsfsim.cli import trace_cmd

    app = typer.Typer()
    trace_cmd.register(app)
    return CliRunner().invoke(app, list(args))


def test_cli_trace_with_selection(tmp_path):
    out = tmp_path / "trace.txt"
    res = _cli("trace", "--functions", "pcnet32_interrupt", "-o", str(out))
    assert res.exit_code == 0, res.output
    roots = parse_graph(out.read_text())
    assert roots and {r.name for r in roots} == {"pcnet32_interrupt"}
    res = _cli("trace", "--traffic", "cbr", "--count", "2", "--size", "100", "--format", "json",
               "--frames", "1", "--cpu", "0")
    assert res.exit_code == 0, res.output
    events = [json.loads(line) for line in res.stdout.splitlines()]
    assert {e["cpu"] for e in events} == {0}
    assert {e.get("pkt") for e in events} <= {1, None}


@pytest.mark.parametrize("args, message", [
    (["--frames", "a:b"], "--frames"),
    (["--packets", "1"], "now --frames"),
    (["--window", "5"], "--window"),
    (["--window", "1ms:2"], "--window"),
    (["--format", "xml"], "--format"),
    (["--functions", ","], "--functions"),
    (["--abstime", "--format", "json"], "--abstime"),
])
def test_cli_bad_options_give_one_line_errors(args, message):
    res = _cli("trace", *args)
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], res.output
