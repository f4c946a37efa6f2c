"""What kernel code uses of the machine around it, in one object.

Every kernel unit (softirq, the network core, sockets, the IP stack, the
driver) and the user programs take a ``KernelContext`` instead of the whole
machine: the SimPy environment, the kernel's configuration and cost table,
the truesize rules of its version, the run's random numbers, the CPUs, the
registry of call plans, the per-function profile, the latency record, the
call tracer and the packet hooks of the probes.  With it, ``packet_rcv`` and
its friends run in a unit test without a machine (tests/sim/test_context.py).

The machine (lsfsim.machine) composes a context, the wire, the NIC and the
programs, and keeps the run loop.
"""

from __future__ import annotations

import random
from collections import defaultdict

import simpy

from lsfsim.config.model import Kernel as KernelConfig
from lsfsim.kernel.costs import Costs
from lsfsim.kernel.cpu import CPU, CallTracer, ExecContext, Plan, PlanGroup, Step
from lsfsim.kernel.skbuff import TruesizeRules
from lsfsim.kernel.timer import Jiffies
from lsfsim.probes import Hooks
from lsfsim.stats import StageLatency

# a received packet's stages, wire to user space (plus "total", the whole span)
LATENCY_STAGES = ("nic_dma", "rx_ring", "softirq", "socket_queue", "recvfrom")
# pre-NAPI, the interrupt handler's netif_rx queues the skb on the CPU's backlog and
# process_backlog takes it later, in the softirq: the wait between is a stage of its own
LATENCY_STAGES_PRE_NAPI = ("nic_dma", "rx_ring", "backlog", "softirq", "socket_queue",
                           "recvfrom")


def word_bits(config: KernelConfig) -> int:
    """The kernel's machine word in bits: 32 for i386, 64 for x86_64 (``kernel.arch``).

    It decides what only an i386 kernel's traces show (``sys_socketcall``, an
    out-of-line ``copy_to_user``); every size follows from it in lsfsim.config.arch.
    """
    return 32 if config.arch == "i386" else 64


class KernelContext:
    """The kernel's view of the machine: environment, configuration, CPUs, plans, probes."""

    def __init__(self, env: simpy.Environment, config: KernelConfig, ncpus: int, seed: int,
                 tracer: CallTracer | None = None, hooks: Hooks | None = None,
                 napi: bool = True) -> None:
        self.env = env
        self.config = config
        self.kver = config.version_tuple
        self.costs = Costs(config.costs)
        # every size derives from the model's architecture (lsfsim.config.arch)
        self.sizes = sizes = config.sizes
        self.truesize = TruesizeRules(
            sizeof_sk_buff=sizes.sizeof_sk_buff,
            sizeof_skb_shared_info=sizes.sizeof_skb_shared_info,
            smp_cache_bytes=sizes.smp_cache_bytes,
            net_skb_pad=sizes.net_skb_pad,
            includes_shinfo=self.kver >= (3, 2),
        )
        self.word_bits = word_bits(config)
        self.rng = random.Random(seed)
        self.tracer = tracer
        self.hooks = hooks if hooks is not None else Hooks()
        self.profile: defaultdict[str, float] = defaultdict(float)
        self.calls: defaultdict[str, int] = defaultdict(int)
        self.latency = StageLatency(LATENCY_STAGES if napi else LATENCY_STAGES_PRE_NAPI)
        self.plans: list[Plan | PlanGroup] = []
        self.cpus = [CPU(env, i, ncpus) for i in range(ncpus)]
        self.jiffies = Jiffies(config.hz)       # advanced by the tick (kernel.timer)

    @property
    def hz(self) -> int:
        """CONFIG_HZ: the tick's rate."""
        return self.config.hz

    def plan(self, *steps: Step) -> Plan:
        """A fixed run of kernel calls, registered so its profile is folded at the end."""
        plan = Plan(*steps)
        self.plans.append(plan)
        return plan

    def plan_group(self, **parts: tuple[Step, ...]) -> PlanGroup:
        """Variants of a call sequence joined from named parts on first use (PlanGroup),
        registered here so their profile is folded at the end."""
        group = PlanGroup(parts)
        self.plans.append(group)
        return group

    def fold_profile(self) -> None:
        """Add every plan's untraced runs to the per-function profile."""
        for plan in self.plans:
            plan.fold(self.profile, self.calls)

    def exec_context(self, cpu: CPU, level: int, bucket: int,
                     task: object | None = None) -> ExecContext:
        """Where kernel code will run: a CPU, a level, a top(1) bucket, the task if any."""
        return ExecContext(self.env, cpu, level, bucket, self.profile, self.calls, self.tracer,
                           task=task)
