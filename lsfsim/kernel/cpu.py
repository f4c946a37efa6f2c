"""CPUs and execution contexts: hardirq over softirq over process context.

Every modelled kernel function charges its CPU time through one place,
``ExecContext.charge(fn, seconds)``, keyed by the kernel function's name.  The
per-function profile, top-style accounting (hi/si/sy/us) and the ftrace-style
tracer all listen there.

How time passes (a simplification of the scheduler, stated once here):

* Interrupt context (hardirq, and softirq run from ``irq_exit``) runs on a
  CPU's interrupt runner.  Its work is cut into *steps* (one hard interrupt,
  or one packet inside a NAPI poll); the effects of a step are applied when it
  starts and its time then passes in one SimPy timeout.
* Process context (user threads, ksoftirqd) runs *bursts* (one system call,
  one slice of user work).  Interrupt steps preempt bursts: a burst ends only
  once it has had its full duration of CPU time not taken by interrupt steps
  that started while it ran ("stolen time").  This is exact priority
  preemption for the burst's completion time, computed lazily.
* Process context runs only when no hard IRQ or softirq is running on its CPU
  (the kernel is preemptible only with preempt_count 0: a task woken by
  sock_def_readable inside the softirq runs once the softirq has returned).
  A task that resumes (woken, picked, a burst over) while the CPU's interrupt
  runner is busy waits for it to go idle (``CPU.irq_wait``).
* Process-context tasks bound to one CPU share it as CFS does
  (kernel.sched_fair.CfsRq): slices checked at the tick, wake-up preemption,
  switches at the tasks' preemption points.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Generator
from typing import Any, Protocol

import simpy

from lsfsim.kernel.netdevice import SoftnetData
from lsfsim.kernel.sched_fair import CfsRq
from lsfsim.simpy_fast import jump_clock
from lsfsim.vocabulary import (  # noqa: F401  (re-exported: the kernel's own names)
    BUCKETS,
    HARDIRQ,
    HI,
    PROCESS,
    SI,
    SOFTIRQ,
    SY,
    US,
)

Steps = Generator[simpy.Event, Any, None]
"""Simulated steps still to run: the caller drives them with ``yield from``.

The convention for kernel functions that usually finish at once but sometimes
must let simulated time pass: they return ``Steps | None``, None when they are
done (no generator was made: the fast, common case), else the generator of
what remains, which the caller runs at once::

    steps = dev.interrupt(ctx)
    if steps is not None:
        yield from steps

``ExecContext.step_event`` follows the same rule with a single event.
"""


RUN_AHEAD = 64     # interrupt steps in a row that may skip their timeout


class IrqDevice(Protocol):
    """A device on an interrupt line, as the CPU's interrupt runner handles it."""

    irq: int

    def interrupt(self, ctx: ExecContext) -> Steps | None:
        """The handler, in hard-IRQ context (see ``Steps`` for the return value)."""
        ...

    def deferred_irq(self, now: float) -> None:
        """The runner looks at this device's deferred line at ``now``."""
        ...

    @property
    def irq_due(self) -> float:
        """When this device's deferred line asserts (inf: not armed)."""
        ...


class InterruptLines(Protocol):
    """What devices and poll loops use of a CPU's interrupt runner
    (kernel.softirq.InterruptRunner)."""

    pending: deque[IrqDevice]
    deferred: list[IrqDevice]

    @property
    def busy(self) -> bool: ...

    @property
    def in_interrupt(self) -> bool: ...

    def raise_irq(self, dev: IrqDevice) -> None: ...

    def assert_deferred_before(self, t: float) -> None: ...

    def preempt_point(self, ctx: ExecContext) -> Steps: ...


class SoftirqThread(Protocol):
    """What __do_softirq and the result use of ksoftirqd (kernel.softirq.Ksoftirqd)."""

    wakeups: int

    def wakeup_softirqd(self) -> None: ...


class CallTracer(Protocol):
    """What ``ExecContext`` tells a tracer (trace.ftrace.FtraceTracer): every call,
    interrupt and softirq, with the context it runs in."""

    def enter(self, ctx: ExecContext, fn: str) -> None: ...

    def exit(self, ctx: ExecContext, fn: str) -> None: ...

    def leaf(self, ctx: ExecContext, fn: str, seconds: float) -> None: ...

    def mark(self, ctx: ExecContext, fn: str) -> None: ...

    def fold(self, ctx: ExecContext, fn: str) -> None: ...

    def irq_entry(self, ctx: ExecContext, irq: int) -> None: ...

    def irq_exit(self, ctx: ExecContext, irq: int) -> None: ...

    def softirq_entry(self, ctx: ExecContext) -> None: ...

    def softirq_exit(self, ctx: ExecContext) -> None: ...


class CPU:
    """One core: its accounting, its interrupt load and its process lock, with the
    kernel's per-CPU state: softnet_data, the interrupt runner and ksoftirqd (which
    register themselves here when the machine starts them)."""

    runner: InterruptLines
    ksoftirqd: SoftirqThread

    def __init__(self, env: simpy.Environment, index: int, ncpus: int = 1) -> None:
        self.env = env
        self.index = index
        self.acct = [0.0, 0.0, 0.0, 0.0]
        self.stolen = 0.0        # total duration of interrupt steps started so far
        self.busy_until = 0.0    # end of the current interrupt step
        self.in_softirq = False  # softirq running on this CPU (preempt count)
        self.timer_pending = False   # TIMER_SOFTIRQ raised by the tick
        self.plan_timer_softirq: Plan | None = None   # run_timer_softirq (kernel.timer)
        self.run_ahead = True    # steps may move the clock instead of waiting (interrupt_step)
        self._ahead = 0
        self.rq = CfsRq(env, ncpus)
        self.irq_waiters: list[simpy.Event] = []   # tasks waiting for irq_exit
        self.softnet = SoftnetData(index)

    @property
    def owner(self) -> object | None:
        """The process-context task running on this CPU (None when idle)."""
        curr = self.rq.curr
        return curr.task if curr is not None else None

    @property
    def softirq_pending(self) -> bool:
        """local_softirq_pending(): NET_RX or TIMER raised on this CPU."""
        return self.softnet.net_rx_pending or self.timer_pending

    # --- process context waits for interrupt context ---------------------------
    def irq_wait(self) -> simpy.Event | None:
        """None if no hard IRQ or softirq is running here, else an event that fires
        when the interrupt runner goes idle (process context may then run)."""
        if not self.runner.in_interrupt:
            return None
        ev = self.env.event()
        self.irq_waiters.append(ev)
        return ev

    def after_irqs(self) -> Generator[simpy.Event, Any, None]:
        """Wait until no hard IRQ or softirq runs on this CPU (at once if none does)."""
        ev = self.irq_wait()
        while ev is not None:
            yield ev
            ev = self.irq_wait()

    def irq_done(self) -> None:
        """The interrupt runner goes idle: the tasks waiting for it may run."""
        waiters, self.irq_waiters = self.irq_waiters, []
        for ev in waiters:
            ev.succeed()

    # --- interrupt steps ----------------------------------------------------
    def interrupt_step(self, duration: float, now: float) -> simpy.Timeout | None:
        """Register an interrupt-context step starting ``now`` (the clock, as the caller
        read it); returns its timeout.

        None means the step is over already: no other event was due before its
        end, so a timeout would only have moved the clock, and the clock was moved
        instead (``simpy_fast.jump_clock``).  The run is exactly the same, with
        fewer events.  At most ``RUN_AHEAD`` steps in a row go so, that the
        simulation still yields now and then (progress reports).
        """
        env = self.env
        self.stolen += duration
        end = now + duration
        self.busy_until = end
        if self.run_ahead and self._ahead < RUN_AHEAD and jump_clock(env, end):
            self._ahead += 1
            return None
        self._ahead = 0
        return env.timeout(duration)

    # --- process bursts -----------------------------------------------------
    def burst(self, duration: float) -> Generator[simpy.Event, Any, None]:
        """Run ``duration`` of process-context CPU time, preempted by interrupts."""
        env = self.env
        stolen = self.stolen
        wait = self.busy_until - env.now
        yield env.timeout(duration + wait if wait > 0 else duration)
        while self.stolen != stolen:
            extra = self.stolen - stolen
            stolen = self.stolen
            yield env.timeout(extra)
        yield from self.after_irqs()          # process context only after irq_exit

    def acquire(self, task: object) -> simpy.Event | None:
        """The task wants this CPU (it starts or was woken): an event to wait on if
        another task runs (CfsRq.acquire)."""
        return self.rq.acquire(task)

    def preempt_point(self, task: object) -> simpy.Event | None:
        """Between two bursts of the running task: an event to wait on if CFS
        switches it out here."""
        return self.rq.preempt_point(task)

    def release(self, task: object) -> None:
        """The task blocks: the next runnable task gets the CPU."""
        self.rq.release(task)


ENTER, EXIT, CHARGE, MARK, VARIABLE, SELF, FOLD = 0, 1, 2, 3, 4, 5, 6


def enter(fn: str) -> tuple[int, str, float]:
    """Plan step: a function with children begins."""
    return (ENTER, fn, 0.0)


def exit_(fn: str) -> tuple[int, str, float]:
    """Plan step: that function returns."""
    return (EXIT, fn, 0.0)


def charge(fn: str, seconds: float) -> tuple[int, str, float]:
    """Plan step: ``fn`` costs ``seconds`` (self time if ``fn`` is the open function)."""
    return (CHARGE, fn, seconds)


def self_time(fn: str, seconds: float) -> tuple[int, str, float]:
    """Plan step: more self time for the open function ``fn`` (inlined code), not a call."""
    return (SELF, fn, seconds)


def variable(fn: str, fixed: float) -> tuple[int, str, float]:
    """Plan step: ``fn`` costs ``fixed`` plus the run's variable part (bytes, instructions)."""
    return (VARIABLE, fn, fixed)


def mark(fn: str) -> tuple[int, str, float]:
    """Plan step: a callee folded into its caller's cost (see ExecContext.mark)."""
    return (MARK, fn, 0.0)


def fold(fn: str) -> tuple[int, str, float]:
    """Plan step: a folded callee that has callees of its own; ``exit_(fn)`` closes it.

    Like ``mark``, it costs nothing of its own (its time is carved out of the
    nearest charged caller's self time, trace.calltree) and only the tracer sees it.
    """
    return (FOLD, fn, 0.0)


class Plan:
    """A fixed run of kernel calls with their costs, e.g. ``eth_type_trans() { skb_pull(); }``.

    Hot paths are written as plans so that an untraced run charges a whole run in
    one addition and counts it once; the per-function profile is rebuilt from the
    counts at the end (``fold``).  A traced run replays the steps one by one, so
    the tracer sees every call.  Either way the time charged is the same.
    """

    __slots__ = ("steps", "total", "count", "extra")

    def __init__(self, *steps: tuple[int, str, float]) -> None:
        if sum(1 for op, _fn, _dt in steps if op == VARIABLE) > 1:
            raise ValueError("a plan has at most one variable step")
        self.steps = steps
        self.total = sum(dt for op, _fn, dt in steps if op in (CHARGE, VARIABLE, SELF))
        self.count = 0
        self.extra = 0.0

    def fold(self, profile: defaultdict[str, float], calls: defaultdict[str, int]) -> None:
        """Add the untraced runs to the per-function profile, then forget them."""
        if self.count:
            for op, fn, dt in self.steps:
                if op in (CHARGE, VARIABLE, SELF):
                    profile[fn] += dt * self.count
                if op in (CHARGE, VARIABLE):
                    calls[fn] += self.count
                if op == VARIABLE:
                    profile[fn] += self.extra
            self.count = 0
            self.extra = 0.0


Step = tuple[int, str, float]


class PlanGroup:
    """Variants of one call sequence, joined from named parts on first use and cached.

    ``parts`` maps a name to its steps; ``get(key, names)`` returns the plan of
    ``names`` joined in order, made the first time ``key`` is asked for.  A
    group sits in the plan registry where its variants would have been
    registered one by one, and folds them in key order: the per-function
    profile then adds the same numbers in the same order whichever variant was
    used first (floating-point sums depend on their order).
    """

    __slots__ = ("parts", "plans")

    def __init__(self, parts: dict[str, tuple[Step, ...]]) -> None:
        self.parts = parts
        self.plans: dict[int, Plan] = {}

    def get(self, key: int, names: tuple[str, ...]) -> Plan:
        """The plan for ``key``: ``names``' parts joined (only on first use)."""
        plan = self.plans.get(key)
        if plan is None:
            parts = self.parts
            plan = self.plans[key] = Plan(*(step for name in names for step in parts[name]))
        return plan

    def fold(self, profile: defaultdict[str, float], calls: defaultdict[str, int]) -> None:
        for key in sorted(self.plans):
            self.plans[key].fold(profile, calls)


class ExecContext:
    """Where kernel code runs: a CPU, a level, and the time reached so far.

    ``t`` runs ahead of ``env.now`` while a step is being computed; ``sync``
    lets simulated time catch up.  Wake-ups requested during a step fire at
    its end.
    """

    __slots__ = ("env", "cpu", "acct", "level", "bucket", "t", "profile", "calls", "tracer",
                 "task")

    def __init__(self, env: simpy.Environment, cpu: CPU, level: int, bucket: int,
                 profile: defaultdict[str, float], calls: defaultdict[str, int],
                 tracer: CallTracer | None = None,
                 task: object | None = None) -> None:
        self.env = env
        self.cpu = cpu
        self.acct = cpu.acct
        self.level = level
        self.bucket = bucket
        self.t = env.now
        self.profile = profile
        self.calls = calls
        self.tracer = tracer
        self.task = task

    def charge(self, fn: str, seconds: float, call: bool = True) -> None:
        """Charge ``seconds`` of CPU to kernel function ``fn`` (self time).

        ``call=False``: more self time of an open function, not a new call.
        """
        if self.tracer is not None:
            self.tracer.leaf(self, fn, seconds)
        self.t += seconds
        self.acct[self.bucket] += seconds
        self.profile[fn] += seconds
        if call:
            self.calls[fn] += 1

    def run(self, plan: Plan, extra: float = 0.0) -> None:
        """Execute a plan: one addition when untraced, every step when traced.

        ``extra`` is the variable part of the plan's variable step (copy bytes,
        filter instructions), in seconds.  Time advances by exactly the same
        amount either way, so tracing never changes a simulation.
        """
        tracer = self.tracer
        total = plan.total + extra
        if tracer is None:
            self.t += total
            self.acct[self.bucket] += total
            plan.count += 1
            if extra:
                plan.extra += extra
            return
        end = self.t + total
        profile, calls = self.profile, self.calls
        for op, fn, dt in plan.steps:
            if op == ENTER:
                tracer.enter(self, fn)
            elif op == EXIT:
                tracer.exit(self, fn)
            elif op == MARK:
                tracer.mark(self, fn)
            elif op == FOLD:
                tracer.fold(self, fn)
            else:
                if op == VARIABLE:
                    dt += extra
                tracer.leaf(self, fn, dt)
                self.t = min(self.t + dt, end)   # rounding never runs past the plan's end
                profile[fn] += dt
                if op != SELF:
                    calls[fn] += 1
        self.t = end
        self.acct[self.bucket] += total

    def run_once(self, *steps: Step) -> None:
        """Execute steps that run too rarely to deserve a registered plan (the control
        path: socket, setsockopt): each charge goes to the profile at once."""
        if self.tracer is not None:
            self.run(Plan(*steps))
            return
        for op, fn, dt in steps:
            if op in (CHARGE, VARIABLE, SELF):
                self.charge(fn, dt, call=op != SELF)

    def enter(self, fn: str) -> None:
        """A function with children begins (only the tracer cares)."""
        if self.tracer is not None:
            self.tracer.enter(self, fn)

    def exit(self, fn: str) -> None:
        if self.tracer is not None:
            self.tracer.exit(self, fn)

    def mark(self, fn: str) -> None:
        """A callee the cost model folds into its caller (skb_push, spin locks...).

        Free when not tracing; the tracer shows it as a call whose duration is
        carved out of the caller's self time.
        """
        if self.tracer is not None:
            self.tracer.mark(self, fn)

    def sync(self) -> Steps:
        """Let simulated time catch up with ``t``."""
        if self.level != PROCESS:
            step = self.step_event()
            if step is not None:
                yield step
            return
        env = self.env
        dt = self.t - env.now
        if dt > 1e-15:
            yield from self.cpu.burst(dt)
        self.t = env.now

    def step_event(self) -> simpy.Timeout | None:
        """Interrupt context: the timeout that lets time reach ``t`` (None if there).

        The inlined form of ``sync`` for hot loops: ``ev = ctx.step_event()`` then
        ``if ev is not None: yield ev``.
        """
        now = self.env.now
        dt = self.t - now
        if dt > 1e-15:
            return self.cpu.interrupt_step(dt, now)
        self.t = now
        return None
