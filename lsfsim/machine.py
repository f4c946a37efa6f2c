"""The simulated machine: one SimPy environment holding the hardware, kernel and programs.

``Machine(model, scenario).run()`` builds everything from validated data,
runs until the traffic is over and the kernel and readers have drained what
was queued (or until ``max_sim_seconds``), checks the conservation laws and
returns a ``Result``.

The machine composes; it does not take part.  The kernel units get a
``KernelContext`` (kernel.context) and the network core (``NetCore``), never
the machine; the machine keeps the wire, the NIC, the programs, the probes
and the run loop.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import simpy

from lsfsim.bpf import Program
from lsfsim.checks import check_filters, run_warnings
from lsfsim.config.model import Model
from lsfsim.drivers.pcnet32 import Pcnet32
from lsfsim.drivers.wire import Wire
from lsfsim.errors import ScenarioError
from lsfsim.kernel.af_packet import PacketSock
from lsfsim.kernel.context import LATENCY_STAGES, KernelContext  # noqa: F401  (re-exported)
from lsfsim.kernel.costs import Costs
from lsfsim.kernel.cpu import CallTracer, Plan, PlanGroup
from lsfsim.kernel.dev import ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, NapiStruct, NetCore
from lsfsim.kernel.ip import IpStack
from lsfsim.kernel.skbuff import TruesizeRules
from lsfsim.kernel.softirq import InterruptRunner, Ksoftirqd, NetRxSoftirq
from lsfsim.kernel.timer import PeriodicTick
from lsfsim.probes import Hooks, Probe
from lsfsim.result import Result, collect
from lsfsim.scenario import Scenario, SocketSpec, apply_overrides
from lsfsim.simpy_fast import events_scheduled, stop_when_alone
from lsfsim.stats import StageLatency
from lsfsim.traffic import ConstantRate, NcTransfer, OnOff, PcapReplay, Poisson, TrafficSource
from lsfsim.user import CaptureApp, Reader, SenderApp


class InvariantError(AssertionError):
    """A conservation law or a state invariant failed at the end of a run."""


def build_source(scenario: Scenario, model: Model) -> TrafficSource:
    """The traffic source a scenario asks for, addressed to the model's NIC.

    A source that refuses its parameters (a plain ValueError) is bad input: ScenarioError.
    """
    try:
        return _build_source(scenario, model)
    except ValueError as exc:
        if type(exc) is not ValueError:        # a domain error already (PcapError, ...)
            raise
        raise ScenarioError(f"traffic: {exc}") from exc


def _build_source(scenario: Scenario, model: Model) -> TrafficSource:
    spec = scenario.traffic
    host_mac = model.hardware.nic.mac
    seed = scenario.seed
    if spec.kind == "nc":
        total = spec.bytes or (spec.packets * 1448 if spec.packets else 100 * 10**6)
        return NcTransfer(total_bytes=total, sender=spec.src, receiver_mac=host_mac, seed=seed)
    if spec.kind == "pcap":
        assert spec.pcap is not None          # TrafficSpec's validator requires it
        if spec.speed is None:
            return PcapReplay(spec.pcap, timing="original")
        if spec.speed == 0:
            return PcapReplay(spec.pcap, timing="asap")
        return PcapReplay(spec.pcap, timing="scaled", speed=spec.speed)
    count = spec.packets
    if spec.bytes and not count:
        count = max(1, spec.bytes // spec.size)
    common: dict[str, Any] = dict(size=spec.size, proto=spec.proto, count=count,
                                  duration=spec.duration, seed=seed, src_ip=spec.src,
                                  dst_mac=host_mac)
    assert spec.rate is not None              # TrafficSpec's validator gives a default
    if spec.kind == "cbr":
        return ConstantRate(spec.rate, **common)
    if spec.kind == "poisson":
        return Poisson(spec.rate, **common)
    return OnOff(spec.rate, spec.on, spec.off, **common)


def build_program(spec: SocketSpec) -> Program | None:
    """The filter a capture program attaches: an expression compiled with libpcap
    (its accept value is the snaplen, as tcpdump's), a program file, or, with no
    filter but a snaplen, libpcap's ``ret #snaplen``."""
    if spec.filter_file:
        return Program.load(spec.filter_file)
    if spec.filter:
        return Program.from_expression(spec.filter, snaplen=spec.snaplen)
    if spec.snaplen < 65535:
        return Program.from_expression("", snaplen=spec.snaplen)
    return None


class Machine:
    """Hardware + kernel + programs in one SimPy environment.

    ``tracer``: the call tracer (every kernel call; trace.ftrace.FtraceTracer).
    ``probes``: observers (lsfsim.probes.Probe): attached once everything is
    built, their packet hooks wired into the kernel, finished after the run.
    """

    def __init__(self, model: Model, scenario: Scenario, tracer: CallTracer | None = None,
                 source: TrafficSource | None = None,
                 probes: Iterable[Probe[Machine]] | None = None,
                 lazy_readers: bool = True) -> None:
        if scenario.overrides:
            model = apply_overrides(model, scenario.overrides)
        if scenario.rx_ring is not None:
            model = model.with_overrides({"hardware.nic.rx_ring": scenario.rx_ring})
        self.model = model
        self.scenario = scenario
        self.kernel = model.kernel       # the kernel's configuration (model file)
        self.probes: list[Probe[Machine]] = list(probes or [])
        self.hooks = Hooks(self.probes)
        self.tracer = tracer
        self.env = simpy.Environment()
        hw = model.hardware
        for i, spec in enumerate(scenario.sockets):
            if spec.cpu is not None and spec.cpu >= hw.cpu.count:
                raise ScenarioError(f"sockets[{i}].cpu: CPU {spec.cpu} does not exist "
                                    f"(the model has {hw.cpu.count})")
        kernel = self.kernel_context = KernelContext(
            self.env, model.kernel, hw.cpu.count, scenario.seed, tracer=tracer,
            hooks=self.hooks, napi=scenario.napi)
        self.softirq = NetRxSoftirq(kernel)
        self.net = NetCore(kernel)
        self.cpus = kernel.cpus
        for cpu in self.cpus:
            cpu.softnet.backlog = NapiStruct("backlog", self.net.process_backlog,
                                             model.kernel.dev_weight)
            InterruptRunner(kernel, cpu, self.softirq)
            Ksoftirqd(kernel, cpu, self.softirq)
        self.irq_cpu = self.cpus[hw.cpu.irq_affinity]
        self.source = source if source is not None else build_source(scenario, model)
        self.wire = Wire(self.source, hw.nic.link_rate, preamble=hw.nic.preamble,
                         fcs=hw.nic.fcs, ifg=hw.nic.ifg, min_frame=hw.nic.min_frame,
                         env=self.env)
        self.dev = Pcnet32(self.net, hw.nic, self.wire, self.irq_cpu, napi=scenario.napi)
        self.net.register_netdev(self.dev)
        self.ip = IpStack(self.net)
        self.net.ptype_base[ETH_P_IP] = self.ip.ip_rcv
        self.net.ptype_base[ETH_P_ARP] = self.ip.other_rcv
        self.net.ptype_base[ETH_P_IPV6] = self.ip.other_rcv
        # user space: readers go to the CPUs without the IRQ first
        order = [c for c in self.cpus if c is not self.irq_cpu] + [self.irq_cpu]
        slot = itertools.count()
        self.lazy_readers: list[Reader] = []   # filled as the capture programs start
        self.apps: list[CaptureApp] = []
        for i, spec in enumerate(scenario.sockets):
            if spec.cpu is not None:
                cpus = [self.cpus[spec.cpu]]
            else:
                cpus = [order[next(slot) % len(order)] for _ in range(max(1, spec.readers))]
            self.apps.append(CaptureApp(self.net, i, build_program(spec), spec.rcvbuf,
                                        spec.promisc, spec.readers, spec.reader_work,
                                        spec.buflen, cpus, self.lazy_readers))
        # a filter the kernel refuses stops here, unless the scenario allows it
        self.refused_filters = check_filters(self.apps, model, scenario)
        self.senders: list[SenderApp] = []
        for i, sender in enumerate(scenario.senders):
            self.senders.append(SenderApp(self.net, i, _sender_frames(sender.size), sender.rate,
                                          sender.count, order[next(slot) % len(order)]))
        # the periodic tick: an interrupt on the CPUs where it decides something
        self.quiet_cpus = self._quiet_cpus()
        self.tick = PeriodicTick(kernel, [cpu.index in self.quiet_cpus for cpu in self.cpus])
        if lazy_readers:
            self._allow_lazy_readers()
        self.wall_seconds = 0.0
        self.events = 0
        for probe in self.probes:
            probe.attach(self)

    # --- the kernel's parts, for tests and probes -------------------------------
    @property
    def costs(self) -> Costs:
        return self.kernel_context.costs

    @property
    def truesize(self) -> TruesizeRules:
        return self.kernel_context.truesize

    @property
    def kver(self) -> tuple[int, int, int]:
        return self.kernel_context.kver

    @property
    def profile(self) -> defaultdict[str, float]:
        return self.kernel_context.profile

    @property
    def calls(self) -> defaultdict[str, int]:
        return self.kernel_context.calls

    @property
    def latency(self) -> StageLatency:
        return self.kernel_context.latency

    @property
    def plans(self) -> list[Plan | PlanGroup]:
        return self.kernel_context.plans

    @property
    def sockets(self) -> list[PacketSock]:
        """Every packet socket, in creation order."""
        return self.net.sockets

    def _quiet_cpus(self) -> set[int]:
        """The CPUs that take no device IRQ and run at most one thread: there nothing
        can delay that thread but its own work, and the tick is only a cost
        (kernel.timer.TickCount)."""
        users: dict[int, int] = {}        # programs with a thread there (setup or reader)
        threads: dict[int, int] = {}      # reader threads there
        for app in self.apps:
            for cpu in set(app.cpus):
                users[cpu.index] = users.get(cpu.index, 0) + 1
            for i in range(app.readers_wanted):
                index = app.cpus[i % len(app.cpus)].index
                threads[index] = threads.get(index, 0) + 1
        for sender in self.senders:
            users[sender.cpu.index] = users.get(sender.cpu.index, 0) + 1
        return {cpu.index for cpu in self.cpus
                if cpu is not self.irq_cpu and users.get(cpu.index, 0) <= 1
                and threads.get(cpu.index, 0) <= 1}

    def _allow_lazy_readers(self) -> None:
        """A capture program's single reader thread runs lazily when its CPU is quiet
        (see user.Reader)."""
        for app in self.apps:
            app.lazy_reader = (app.readers_wanted == 1
                               and app.cpus[0].index in self.quiet_cpus)

    def advance_lazy(self, t: float) -> None:
        """Bring the lazily run readers up to time ``t`` (before observing them)."""
        for reader in self.lazy_readers:
            reader.advance(t)
        self.tick.account(t)

    def drain_lazy(self, before: Callable[[float], None] | None = None) -> None:
        """The event queue is empty: run the lazy readers' remaining steps in time order.

        ``before(t)`` is called ahead of each step at time ``t`` (a sampler records
        its grid points up to there).
        """
        while True:
            t = min((r.next_time for r in self.lazy_readers), default=math.inf)
            if t == math.inf:
                return
            if before is not None:
                before(t)
            self.advance_lazy(t)

    @property
    def now(self) -> float:
        """Simulated time reached: the last event, or a lazy reader's last step if later."""
        return max([self.env.now, *(r.now for r in self.lazy_readers)])

    def fold_profile(self) -> None:
        self.kernel_context.fold_profile()

    def run(self, progress: Callable[[float], None] | None = None,
            report_every: int = 20000) -> Result:
        """Run to the end (drained, or max_sim_seconds) and return the result.

        ``progress`` is called every ``report_every`` events with the fraction of
        the offered frames sent so far (0 when the total is unknown).
        """
        env = self.env
        limit = self.scenario.max_sim_seconds
        if self.tick.timers:
            stop_when_alone(env, self.tick.alone)   # the tick alone does not keep it going
        started = time.perf_counter()
        eid0 = events_scheduled(env)
        if progress is None and limit is None:
            env.run()
        else:
            total = getattr(self.source, "total_frames", None)
            step, peek = env.step, env.peek
            horizon = math.inf if limit is None else limit
            if limit is not None and limit > env.now:
                env.timeout(limit - env.now)   # a mark that interrupt steps cannot run past
            while peek() <= horizon and peek() != math.inf:
                for _ in range(report_every):
                    if peek() > horizon or peek() == math.inf:
                        break
                    step()
                if progress is not None:
                    progress(self.wire.offered / total if total else 0.0)
            if limit is not None and env.now < limit:
                env.run(until=limit)
        if limit is None:
            self.drain_lazy()
        else:
            self.advance_lazy(env.now)
        self.tick.account(self.now)
        self.wall_seconds = time.perf_counter() - started
        self.events = events_scheduled(env) - eid0
        self.fold_profile()
        result = collect(model_name=self.model.name, scenario=self.scenario,
                         kernel=self.kernel_context, net=self.net, dev=self.dev, ip=self.ip,
                         wire=self.wire, apps=self.apps, senders=self.senders,
                         sim_seconds=self.now, wall_seconds=self.wall_seconds,
                         events=self.events)
        self._add_checks(result)
        self.check_invariants(result)
        for probe in self.probes:
            probe.finish()
        return result

    def _add_checks(self, result: Result) -> None:
        """What the user is told beyond the counters: refused filters, the replay's
        skipped records, warnings (lsfsim.checks)."""
        data = result.data
        by_index = {app.sock.index: app for app in self.apps if app.sock is not None}
        for sock in data["sockets"]:
            app = by_index.get(sock["index"])    # None: a sender's socket (no filter)
            sock["filter_refused"] = (self.refused_filters.get(app.index)
                                      if app is not None else None)
        data["replay"] = getattr(self.source, "replay_counts", lambda: None)()
        data["warnings"] = run_warnings(self.scenario, self.model, self.source, data)

    def check_invariants(self, result: Result) -> None:
        """Conservation and state invariants; raise InvariantError naming the broken one."""
        data = result.data
        places = data["conservation"]["places"]
        accounted = sum(places.values())
        if accounted != data["offered"]:
            raise InvariantError(
                f"conservation: offered {data['offered']} != sum of places {accounted} {places}")
        for sock in data["sockets"]:
            parts = sock["filtered"] + sock["rcvbuf_drops"] + sock["delivered"] + sock["queued"] \
                + sock["in_recvfrom"]
            if parts != sock["seen"]:
                raise InvariantError(
                    f"conservation: socket {sock['index']}: seen {sock['seen']} != filtered + "
                    f"dropped + delivered + queued ({parts})")
            if sock["rmem_alloc"] < 0:
                raise InvariantError(f"socket {sock['index']}: negative sk_rmem_alloc")
        broken = self.dev.check_ring()
        if broken is not None:
            raise InvariantError(broken)


def _sender_frames(size: int) -> Callable[[int], bytes]:
    from lsfsim.traffic.frames import HOST, REMOTE, make_builder

    build = make_builder("udp", HOST, REMOTE)
    return lambda i: build(size, i & 0xFFFF)


def run(scenario: Scenario | None = None, model: Model | str | None = None,
        progress: Callable[[float], None] | None = None,
        tracer: CallTracer | None = None) -> Result:
    """Build and run a scenario: the Python API behind ``lsfsim run``."""
    from lsfsim.config.model import load_model

    scenario = scenario or Scenario()
    if model is None:
        model = scenario.model
    if isinstance(model, str):
        model = load_model(model)
    machine = Machine(model, scenario, tracer=tracer)
    return machine.run(progress=progress)
