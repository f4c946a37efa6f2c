"""Hard interrupts, the NET_RX softirq and ksoftirqd (kernel/softirq.c, net/core/dev.c).

Each CPU has an *interrupt runner*: a SimPy process that takes hard IRQs
(``do_IRQ``), runs their handlers, and on ``irq_exit`` runs ``__do_softirq``
when NET_RX is pending and no softirq is already running on the CPU.
``__do_softirq`` restarts at most MAX_SOFTIRQ_RESTART times, then wakes
ksoftirqd, a process-context thread that competes with user threads.

Simplifications: only NET_RX is modelled (NET_TX work such as deferred frees
and qdisc restarts is charged inside NET_RX); a hard IRQ that arrives while
the runner is inside a softirq step is taken at the end of that step (one
packet), not in the middle of it.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import simpy

from lsfsim.kernel.context import KernelContext
from lsfsim.kernel.cpu import (
    CPU,
    HARDIRQ,
    HI,
    PROCESS,
    SI,
    SOFTIRQ,
    ExecContext,
    IrqDevice,
    Steps,
    charge,
    enter,
    exit_,
)


class InterruptRunner:
    """The interrupt context of one CPU (it registers itself as ``cpu.runner``)."""

    def __init__(self, kernel: KernelContext, cpu: CPU, softirq: NetRxSoftirq) -> None:
        self.env = kernel.env
        self.cpu = cpu
        self.softirq = softirq
        self.pending: deque[IrqDevice] = deque()   # devices whose IRQ line is asserted
        self.deferred: list[IrqDevice] = []        # devices whose line may assert while busy
        self._idle: simpy.Event | None = None
        self.ctx = kernel.exec_context(cpu, HARDIRQ, HI)
        cpu.runner = self
        self.env.process(self._run())

    @property
    def busy(self) -> bool:
        """Running, or in a step: it will look at its lines before it idles."""
        return self._idle is None

    @property
    def in_interrupt(self) -> bool:
        """A hard IRQ or softirq runs on this CPU (process context must wait).  The
        same state as ``busy``, asked for another reason: ``busy`` decides whether
        a device needs a timer for its line."""
        return self._idle is None

    def take_deferred(self, now: float) -> None:
        """Assert the deferred IRQ lines that are due by ``now``; the others get timers.

        A device whose line would assert while this CPU is busy need not wake the
        simulation: nothing can notice the IRQ before the runner looks, at its
        next preemption point or before it idles, and the device then asserts
        it with the time it was due (``last_irq``), as a timer would have.
        """
        while self.deferred:
            devices, self.deferred = self.deferred, []
            for dev in devices:
                dev.deferred_irq(now)

    def assert_deferred_before(self, t: float) -> None:
        """Assert the deferred lines due before ``t``; leave the others deferred.

        A line raised from outside the runner at ``t`` (the periodic tick) must
        queue behind the deferred lines that asserted earlier, as their timers
        would have fired first.  A line due at ``t`` or later stays deferred: its
        timer would have come after the tick's (scheduled a period earlier), and
        making one now would order it against other events at its time
        differently from the timer it stands for.
        """
        devices, self.deferred = self.deferred, []
        for dev in devices:
            if dev.irq_due < t:
                dev.deferred_irq(t)       # asserts it, with the time it was due
            else:
                self.deferred.append(dev)

    def raise_irq(self, dev: IrqDevice) -> None:
        """A device asserts its interrupt line towards this CPU (a hand-off, not a call:
        the runner, idle on an event, runs the handler as its next step)."""
        self.pending.append(dev)
        if self._idle is not None:
            idle, self._idle = self._idle, None
            idle.succeed()

    def _run(self) -> Steps:
        """do_IRQ for every interrupt, then irq_exit -> do_softirq."""
        env = self.env
        ctx = self.ctx
        cpu = self.cpu
        softnet = cpu.softnet
        softirq = self.softirq
        while True:
            if self.deferred:
                self.take_deferred(env.now)
            if not self.pending:
                self._idle = env.event()
                if cpu.irq_waiters:
                    cpu.irq_done()             # process context may run now
                yield self._idle
            ctx.t = env.now
            steps = self.handle_irqs(ctx)
            if steps is not None:
                yield from steps
            # irq_exit: pending softirqs run unless one is running already (in_interrupt);
            # 2.6.33's invoke_softirq does not look at ksoftirqd (softirq.c:297-303)
            if (softnet.net_rx_pending or cpu.timer_pending) and not cpu.in_softirq:
                yield from softirq.do_softirq(ctx)
            step = ctx.step_event()
            if step is not None:
                yield step

    def handle_irqs(self, ctx: ExecContext) -> Steps | None:
        """Run every pending handler in hard-IRQ context.

        Returns None when done, or the steps still to run when a handler receives
        packets itself (the pre-NAPI driver), so that NAPI's handlers cost no
        generator (the ``Steps | None`` convention of kernel.cpu).
        """
        level, bucket = ctx.level, ctx.bucket
        ctx.level, ctx.bucket = HARDIRQ, HI
        tracer = ctx.tracer
        while self.pending:
            dev = self.pending.popleft()
            if tracer is not None:
                tracer.irq_entry(ctx, dev.irq)
            steps = dev.interrupt(ctx)     # its first plan charges do_IRQ (do_irq_steps)
            if steps is not None:
                return self._handler_steps(ctx, dev, steps, level, bucket)
            if tracer is not None:
                tracer.irq_exit(ctx, dev.irq)
        ctx.level, ctx.bucket = level, bucket
        return None

    def _handler_steps(self, ctx: ExecContext, dev: IrqDevice, steps: Steps,
                       level: int, bucket: int) -> Steps:
        """The rest of a handler that takes simulated steps, then the other pending IRQs."""
        yield from steps
        if ctx.tracer is not None:
            ctx.tracer.irq_exit(ctx, dev.irq)
        ctx.level, ctx.bucket = level, bucket
        more = self.handle_irqs(ctx)
        if more is not None:
            yield from more

    def preempt_point(self, ctx: ExecContext) -> Steps:
        """Between two softirq steps on this runner: take hard IRQs that arrived."""
        if self.deferred and ctx.task is None:
            self.take_deferred(self.env.now)
        if self.pending and ctx.level == SOFTIRQ and ctx.task is None:
            steps = self.handle_irqs(ctx)
            if steps is not None:
                yield from steps
            step = ctx.step_event()
            if step is not None:
                yield step


def do_irq_steps(costs: Any) -> tuple[tuple[int, str, float], ...]:
    """do_IRQ's own cost (entry, exit, EOI), to begin a handler's first plan.

    A handler's plan starts with it, so that taking an interrupt is one
    addition when untraced; the tracer shows it as do_IRQ's self time.
    """
    return (charge("do_IRQ", costs.hardirq),)


class NetRxSoftirq:
    """NET_RX_SOFTIRQ: __do_softirq's restart loop and net_rx_action, with their plans."""

    def __init__(self, kernel: KernelContext) -> None:
        self.config = kernel.config
        c = kernel.costs
        rx_action = (enter("net_rx_action"), charge("net_rx_action", c.net_rx_action))
        self.plan_do_softirq = kernel.plan(charge("__do_softirq", c.do_softirq), *rx_action)
        self.plan_do_softirq_pass = kernel.plan(charge("__do_softirq", c.do_softirq))
        self.jiffies = kernel.jiffies
        self.limit_eq = -1 if kernel.kver >= (4, 12) else 0   # time_after_eq vs time_after
        self.plan_net_rx_action = kernel.plan(*rx_action)
        self.plan_net_rx_action_exit = kernel.plan(exit_("net_rx_action"))
        self.plan_schedule = kernel.plan(charge("schedule", c.schedule))

    def do_softirq(self, ctx: ExecContext) -> Steps:
        """__do_softirq: run NET_RX, restarting while it is raised again, at most 10 passes."""
        cpu = ctx.cpu
        softnet = cpu.softnet
        level, bucket = ctx.level, ctx.bucket
        if ctx.level != PROCESS:
            ctx.level = SOFTIRQ
        ctx.bucket = SI
        cpu.in_softirq = True
        tracer = ctx.tracer
        if tracer is not None:
            tracer.softirq_entry(ctx)
        restart = self.config.max_softirq_restart
        while True:
            # one pass over the pending bits, in order: TIMER (1) before NET_RX (3)
            net_rx = softnet.net_rx_pending
            softnet.net_rx_pending = False
            if cpu.timer_pending:
                cpu.timer_pending = False
                ctx.run(self.plan_do_softirq_pass)
                plan = cpu.plan_timer_softirq
                if plan is not None:
                    ctx.run(plan)
                if net_rx:
                    ctx.run(self.plan_net_rx_action)
                    yield from self.net_rx_action(ctx, entered=True)
            else:
                ctx.run(self.plan_do_softirq)  # __do_softirq, then NET_RX's handler:
                yield from self.net_rx_action(ctx, entered=True)
            if not (softnet.net_rx_pending or cpu.timer_pending):
                break
            restart -= 1
            if restart <= 0:
                if ctx.level != PROCESS:
                    cpu.ksoftirqd.wakeup_softirqd()
                break
        if tracer is not None:
            tracer.softirq_exit(ctx)
        cpu.in_softirq = False
        ctx.level, ctx.bucket = level, bucket

    def net_rx_action(self, ctx: ExecContext, entered: bool = False) -> Steps:
        """Poll the CPU's NAPI list within netdev_budget and a 2-jiffy time limit.

        ``entered``: the caller's plan already charged the entry (do_softirq's does).
        The poll list is a hand-off, not a call: a driver's interrupt handler put its
        napi_struct there (``NetCore.napi_schedule``) and raised NET_RX.
        """
        softnet = ctx.cpu.softnet
        if not entered:
            ctx.run(self.plan_net_rx_action)
        budget = self.config.netdev_budget
        jiffies = self.jiffies
        time_limit = jiffies.read(ctx.t) + 2    # dev.c:2947 (2.6.33.2)
        poll_list = softnet.poll_list
        while poll_list:
            # dev.c:2961: budget <= 0 || time_after(jiffies, time_limit); from 4.12,
            # time_after_eq against jiffies + usecs_to_jiffies(netdev_budget_usecs),
            # which is also 2 jiffies with the default 2 * USEC_PER_SEC / HZ
            if budget <= 0 or jiffies.read(ctx.t) - time_limit > self.limit_eq:
                softnet.time_squeeze += 1
                softnet.net_rx_pending = True   # __raise_softirq_irqoff(NET_RX_SOFTIRQ)
                break
            napi = poll_list[0]
            weight = napi.weight
            work = yield from napi.poll(ctx, weight)
            budget -= work
            if work == weight and poll_list and poll_list[0] is napi:
                poll_list.rotate(-1)            # list_move_tail: round robin
        if ctx.tracer is not None:              # only the tracer sees a bare return
            ctx.run(self.plan_net_rx_action_exit)


class Ksoftirqd:
    """ksoftirqd/N: a SCHED_NORMAL kthread running softirqs in process context
    (it registers itself as ``cpu.ksoftirqd``)."""

    def __init__(self, kernel: KernelContext, cpu: CPU, softirq: NetRxSoftirq) -> None:
        self.env = kernel.env
        self.cpu = cpu
        self.softirq = softirq
        self.name = f"ksoftirqd/{cpu.index}"
        self.ctx = kernel.exec_context(cpu, PROCESS, SI, task=self)
        self._wake: simpy.Event | None = None
        self.wakeups = 0
        cpu.ksoftirqd = self
        self.env.process(self._run())

    @property
    def awake(self) -> bool:
        """Runnable or running (TASK_RUNNING), not asleep waiting for a wake-up."""
        return self._wake is None

    def wakeup_softirqd(self) -> None:
        self.wakeups += 1
        if self._wake is not None:
            wake, self._wake = self._wake, None
            wake.succeed()

    def _run(self) -> Steps:
        """run_ksoftirqd (softirq.c:695-730): while softirqs are pending, do_softirq,
        then cond_resched; sleep when none is."""
        env = self.env
        cpu = self.cpu
        ctx = self.ctx
        softirq = self.softirq
        while True:
            self._wake = env.event()
            yield self._wake
            wait = cpu.acquire(self)
            if wait is not None:
                yield wait
            yield from cpu.after_irqs()
            ctx.t = env.now
            ctx.run(softirq.plan_schedule)          # switched in
            while cpu.softirq_pending and not cpu.in_softirq:
                yield from softirq.do_softirq(ctx)
                yield from ctx.sync()
                wait = cpu.preempt_point(self)      # cond_resched()
                if wait is not None:
                    yield wait
                    yield from cpu.after_irqs()
                    ctx.t = env.now
                    ctx.run(softirq.plan_schedule)
                ctx.t = env.now
            yield from ctx.sync()
            cpu.release(self)

