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
* Process-context tasks bound to one CPU take turns per burst (FIFO), a
  coarse stand-in for CFS.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import Any

import simpy

# top(1)'s buckets, indices into CPU.acct
HI, SI, SY, US = 0, 1, 2, 3
BUCKETS = ("hi", "si", "sy", "us")

# execution levels
HARDIRQ, SOFTIRQ, PROCESS = 0, 1, 2


class CPU:
    """One core: its accounting, its interrupt load and its process lock."""

    def __init__(self, env: simpy.Environment, index: int) -> None:
        self.env = env
        self.index = index
        self.acct = [0.0, 0.0, 0.0, 0.0]
        self.stolen = 0.0        # total duration of interrupt steps started so far
        self.busy_until = 0.0    # end of the current interrupt step
        self.in_softirq = False  # softirq running on this CPU (preempt count)
        self._owner: object | None = None
        self._waiters: deque[tuple[object, simpy.Event]] = deque()
        self.softnet: Any = None  # kernel.dev.SoftnetData, attached by the machine
        self.runner: Any = None   # kernel.softirq.InterruptRunner
        self.ksoftirqd: Any = None

    # --- interrupt steps ----------------------------------------------------
    def interrupt_step(self, duration: float) -> simpy.Timeout:
        """Register an interrupt-context step starting now; returns its timeout."""
        self.stolen += duration
        self.busy_until = self.env.now + duration
        return self.env.timeout(duration)

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

    def acquire(self, task: object) -> simpy.Event | None:
        """Take the CPU for a process-context burst; an event to wait on if busy."""
        if self._owner is None or self._owner is task:
            self._owner = task
            return None
        ev = self.env.event()
        self._waiters.append((task, ev))
        return ev

    def release(self, task: object) -> None:
        if self._owner is not task:
            return
        if self._waiters:
            self._owner, ev = self._waiters.popleft()
            ev.succeed()
        else:
            self._owner = None


class ExecContext:
    """Where kernel code runs: a CPU, a level, and the time reached so far.

    ``t`` runs ahead of ``env.now`` while a step is being computed; ``sync``
    lets simulated time catch up.  Wake-ups requested during a step fire at
    its end.
    """

    __slots__ = ("env", "cpu", "level", "bucket", "t", "profile", "calls", "tracer", "wakes",
                 "task")

    def __init__(self, env: simpy.Environment, cpu: CPU, level: int, bucket: int,
                 profile: dict[str, float], calls: dict[str, int], tracer: Any = None,
                 task: object | None = None) -> None:
        self.env = env
        self.cpu = cpu
        self.level = level
        self.bucket = bucket
        self.t = env.now
        self.profile = profile
        self.calls = calls
        self.tracer = tracer
        self.wakes: list[simpy.Event] = []
        self.task = task

    def charge(self, fn: str, seconds: float) -> None:
        """Charge ``seconds`` of CPU to kernel function ``fn`` (self time)."""
        tracer = self.tracer
        if tracer is not None:
            tracer.leaf(self, fn, seconds)
        self.t += seconds
        self.cpu.acct[self.bucket] += seconds
        profile = self.profile
        profile[fn] = profile.get(fn, 0.0) + seconds
        calls = self.calls
        calls[fn] = calls.get(fn, 0) + 1

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

    def sync(self) -> Generator[simpy.Event, Any, None]:
        """Let simulated time reach ``t``; then fire the step's wake-ups."""
        env = self.env
        dt = self.t - env.now
        if dt > 1e-15:
            if self.level == PROCESS:
                yield from self.cpu.burst(dt)
                self.t = env.now
            else:
                yield self.cpu.interrupt_step(dt)
        else:
            self.t = env.now
        if self.wakes:
            wakes, self.wakes = self.wakes, []
            for ev in wakes:
                if not ev.triggered:
                    ev.succeed()
