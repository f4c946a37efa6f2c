"""The periodic timer tick: jiffies, update_process_times, scheduler_tick (kernel/timer.c,
kernel/time/tick-common.c, arch/x86/kernel/apic/apic.c).

Every 1/HZ the local APIC timer of each CPU raises a hard interrupt,
``smp_apic_timer_interrupt`` (apic.c:809-826 in 2.6.33.2: irq_enter,
local_apic_timer_interrupt, irq_exit).  Its clock event handler is
``tick_handle_periodic`` (tick-common.c:79) -> ``tick_periodic`` (:60-73):

* on the CPU that keeps time (``tick_do_timer_cpu``, the boot CPU: :162-163)
  ``do_timer(1)`` advances jiffies (timer.c:1235);
* on every CPU ``update_process_times`` (timer.c:1191-1204) raises TIMER_SOFTIRQ
  (``run_local_timers``, :1222-1227) and calls ``scheduler_tick`` (the CFS slice
  check, kernel.cpu.CfsRq.scheduler_tick).

Its ``irq_exit`` then runs the pending softirqs (softirq.c:297-303): TIMER, and
NET_RX if ``net_rx_action`` left itself raised, whether or not ksoftirqd is
awake: 2.6.33's ``invoke_softirq`` does not look at ksoftirqd.

Two ways of running it, with the same figures:

* as a hard interrupt on the CPU's interrupt runner (``LocalApicTimer``), on a
  CPU that takes device IRQs or runs more than one task: there the tick decides
  things (jiffies, slices, softirqs from irq_exit);
* on a *quiet* CPU (no device IRQ, at most one task), its only effect is its
  cost, a few microseconds every 1/HZ: ``TickCount`` charges it by count when
  the accounts are read, with no event.  The one task's bursts are not
  stretched by it (a simplification: under 0.2 % of the CPU at HZ=250) and a
  tracer does not see those ticks.  This keeps the lazily run reader exact.

Ticks come at (k + TICK_PHASE)/HZ on every CPU at once.  When the next tick is the
only event left, the run stops (``simpy_fast.stop_when_alone``), and the idle
ticks up to the run's end (a lazily run reader may still be working) are
charged by count, as they would have cost had they been taken: a run ends
where its last work ends, not at a tick.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Generator
from typing import Any, Protocol

import simpy

from lsfsim.kernel.costs import Costs
from lsfsim.kernel.cpu import (
    CPU,
    HI,
    SI,
    CallTracer,
    ExecContext,
    Plan,
    Step,
    Steps,
    charge,
    enter,
    exit_,
)
from lsfsim.simpy_fast import only_scheduled
from lsfsim.vocabulary import LOCAL_TIMER_VECTOR


class TickKernel(Protocol):
    """What the tick uses of the kernel context (kernel.context.KernelContext)."""

    env: simpy.Environment
    costs: Costs
    cpus: list[CPU]
    jiffies: Jiffies
    tracer: CallTracer | None
    profile: defaultdict[str, float]
    calls: defaultdict[str, int]

    @property
    def hz(self) -> int: ...

    def plan(self, *steps: Step) -> Plan: ...


TICK_DO_TIMER_CPU = 0   # the boot CPU takes the do_timer duty (tick-common.c:159-164)

# The ticks' phase: tick k comes at (k + TICK_PHASE) / HZ.  The local APIC timers
# start at no particular moment of a run; an irrational fraction of a period keeps
# ticks off the round times of generated traffic and sampling grids, where equal
# times would make the order of events matter.
TICK_PHASE = (5 ** 0.5 - 1) / 2


def ticks_by(t: float, hz: int) -> int:
    """The number of ticks at or before time ``t``."""
    return int(t * hz + (1.0 - TICK_PHASE))


class Jiffies:
    """jiffies_64: advanced by the timekeeping CPU's tick (do_timer).

    ``read(t)`` is the value seen at time ``t``: the count of ticks taken so far
    when the timekeeping CPU's tick is an interrupt, else (a quiet timekeeping
    CPU, whose ticks are never late) the number of tick times up to ``t``.
    """

    __slots__ = ("value", "hz", "counted")

    def __init__(self, hz: int) -> None:
        self.value = 0
        self.hz = hz
        self.counted = True     # False: the timekeeping CPU is quiet, read by time

    def read(self, t: float) -> int:
        if self.counted:
            return self.value
        return ticks_by(t, self.hz)


def tick_plans(kernel: TickKernel, do_timer: bool) -> tuple[Plan, Plan]:
    """The tick's hard-IRQ part, and the softirq its irq_exit runs on an idle CPU
    (__do_softirq with TIMER only: what a counted tick charges)."""
    c = kernel.costs
    timekeeping = (charge("do_timer", c.do_timer),) if do_timer else ()
    hard = kernel.plan(
        charge("smp_apic_timer_interrupt", c.smp_apic_timer_interrupt),
        enter("tick_handle_periodic"), *timekeeping,
        enter("update_process_times"), charge("update_process_times", c.update_process_times),
        charge("scheduler_tick", c.scheduler_tick),
        exit_("update_process_times"), exit_("tick_handle_periodic"))
    soft = kernel.plan(charge("__do_softirq", c.do_softirq),
                       charge("run_timer_softirq", c.run_timer_softirq))
    return hard, soft


class TickCount:
    """The ticks of one CPU charged so far; those not taken as interrupts are charged
    by count (``account``): all of a quiet CPU's, and an interrupt CPU's idle ticks
    after the last event of the run."""

    def __init__(self, kernel: TickKernel, cpu: CPU, do_timer: bool) -> None:
        self.cpu = cpu
        self.hz = kernel.hz
        self.hard, self.idle_soft = tick_plans(kernel, do_timer)
        self.ticks = 0

    def account(self, t: float) -> None:
        """Charge the ticks up to time ``t`` not charged yet, each as an idle tick."""
        n = ticks_by(t, self.hz) - self.ticks
        if n > 0:
            self.ticks += n
            self.hard.count += n
            self.idle_soft.count += n
            # one addition per tick: the sums come out the same however the ticks
            # are batched (a sampler reads the accounts in between)
            acct = self.cpu.acct
            hard, soft = self.hard.total, self.idle_soft.total
            for _ in range(n):
                acct[HI] += hard
                acct[SI] += soft


class LocalApicTimer:
    """One CPU's local APIC timer as an interrupt source (an IrqDevice)."""

    irq = LOCAL_TIMER_VECTOR

    def __init__(self, kernel: TickKernel, cpu: CPU, jiffies: Jiffies) -> None:
        self.cpu = cpu
        self.jiffies = jiffies
        self.do_timer = cpu.index == TICK_DO_TIMER_CPU
        self.count = TickCount(kernel, cpu, self.do_timer)
        self.plan = self.count.hard

    def interrupt(self, ctx: ExecContext) -> Steps | None:
        """smp_apic_timer_interrupt -> tick_handle_periodic -> tick_periodic."""
        self.count.ticks += 1
        ctx.run(self.plan)
        if self.do_timer:
            self.jiffies.value += 1
        cpu = self.cpu
        cpu.timer_pending = True              # run_local_timers: raise_softirq(TIMER)
        cpu.rq.scheduler_tick(ctx.t)
        return None

    def deferred_irq(self, now: float) -> None:   # never deferred: a timer raises it
        pass

    @property
    def irq_due(self) -> float:
        return math.inf


class PeriodicTick:
    """Every CPU's tick: interrupts on the busy CPUs, counts on the quiet ones."""

    def __init__(self, kernel: TickKernel, quiet: list[bool]) -> None:
        self.env = kernel.env
        self.period = 1.0 / kernel.hz
        self.jiffies = kernel.jiffies
        self.timers: list[LocalApicTimer] = []
        self.quiet: list[TickCount] = []
        self.next_tick: simpy.Event | None = None   # the pending timeout of the next tick
        self.stopped = False                        # dropped: nothing else was left
        c = kernel.costs
        for cpu, is_quiet in zip(kernel.cpus, quiet, strict=True):
            do_timer = cpu.index == TICK_DO_TIMER_CPU
            cpu.plan_timer_softirq = kernel.plan(charge("run_timer_softirq",
                                                        c.run_timer_softirq))
            if is_quiet:
                self.quiet.append(TickCount(kernel, cpu, do_timer))
                if do_timer:
                    self.jiffies.counted = False
            else:
                self.timers.append(LocalApicTimer(kernel, cpu, self.jiffies))
        if self.timers:
            self.env.process(self._run())

    def account(self, t: float) -> None:
        """Charge the ticks up to ``t`` not taken as interrupts: the quiet CPUs', and
        once the tick has stopped, the idle ticks that followed the last event."""
        for q in self.quiet:
            q.account(t)
        if self.stopped:
            for timer in self.timers:
                timer.count.account(t)

    def alone(self, queue: list[Any]) -> bool:
        """Only the next tick is scheduled: nothing else can happen any more (the run
        drops it and stops, see ``simpy_fast.stop_when_alone``)."""
        if self.only_tick_left():
            self.stopped = True
            return True
        return False

    def only_tick_left(self) -> bool:
        """The next tick is the one event scheduled (for other background tickers)."""
        return only_scheduled(self.env, self.next_tick)

    def _run(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        period = self.period
        k = 0
        while True:
            self.next_tick = env.timeout((k + TICK_PHASE) * period - env.now)
            yield self.next_tick
            for timer in self.timers:
                runner = timer.cpu.runner
                if runner.deferred:
                    runner.assert_deferred_before(env.now)
                runner.raise_irq(timer)
            k += 1
