"""CFS as 2.6.33 runs it, for the tasks sharing one CPU (kernel/sched_fair.c, kernel/sched.c).

Each CPU has a ``CfsRq``: the task running (``curr``) and the runnable ones,
ordered by virtual runtime.  Every task is nice 0 (equal weights), so a task's
vruntime grows with its wall time on the CPU, as ``update_curr`` charges it
(sched_fair.c:518-546; 2.6.33 counts interrupt time in it too).

* The tunables (sched_fair.c:38, :57, :63, :87) are scaled at boot by
  ``1 + ilog2(min(ncpus, 8))`` (sched.c:7099-7131, SCHED_TUNABLESCALING_LOG):
  with two CPUs, latency 10 ms, min_granularity 2 ms, wakeup_granularity 2 ms.
* A task's slice is ``__sched_period(nr) / nr`` (:447-491): latency, or
  min_granularity x nr above nr_latency tasks.  The tick checks it
  (``check_preempt_tick``, :855-891): past its slice, or past min_granularity
  and ahead of the leftmost task by more than a slice, the task is marked for
  rescheduling.  HRTICK is off (sched_features.h:107): slices end at ticks only.
* A woken task is placed at ``max(its vruntime, min_vruntime - latency / 2)``
  (``place_entity`` with GENTLE_FAIR_SLEEPERS, :725-770) and marks the running
  task for rescheduling when it is more than wakeup_granularity behind it
  (``check_preempt_wakeup`` / ``wakeup_preempt_entity``, :1669-1760).  A new
  task starts a slice behind (START_DEBIT).

Simplifications: a task marked for rescheduling gives up the CPU at its next
preemption point in the model (the end of a burst: a system call, a slice of
user work, one ksoftirqd pass), not at the return from the interrupt that
marked it, which CONFIG_PREEMPT would allow; the next- and last-buddy
preferences and the context switch's own cost on preemption are not modelled.
"""

from __future__ import annotations

import simpy

NSEC = 1e-9
SYSCTL_SCHED_LATENCY = 5_000_000 * NSEC            # sched_fair.c:38
SYSCTL_SCHED_MIN_GRANULARITY = 1_000_000 * NSEC    # :57
SCHED_NR_LATENCY = 5                               # :63
SYSCTL_SCHED_WAKEUP_GRANULARITY = 1_000_000 * NSEC  # :87


def tunable_factor(ncpus: int) -> int:
    """get_update_sysctl_factor: 1 + ilog2(min(ncpus, 8)) (sched.c:7099-7118)."""
    return 1 + (min(max(ncpus, 1), 8).bit_length() - 1)


class SchedEntity:
    """struct sched_entity of one task."""

    __slots__ = ("task", "vruntime", "sum_exec_runtime", "prev_sum_exec_runtime", "exec_start",
                 "wait")

    def __init__(self, task: object) -> None:
        self.task = task
        self.vruntime = 0.0
        self.sum_exec_runtime = 0.0
        self.prev_sum_exec_runtime = 0.0
        self.exec_start = 0.0
        self.wait: simpy.Event | None = None   # set while runnable but not running


class CfsRq:
    """The CFS run queue of one CPU."""

    def __init__(self, env: simpy.Environment, ncpus: int) -> None:
        self.env = env
        factor = tunable_factor(ncpus)
        self.sched_latency = SYSCTL_SCHED_LATENCY * factor
        self.min_granularity = SYSCTL_SCHED_MIN_GRANULARITY * factor
        self.wakeup_granularity = SYSCTL_SCHED_WAKEUP_GRANULARITY * factor
        self.nr_latency = SCHED_NR_LATENCY
        self.curr: SchedEntity | None = None
        self.queue: list[SchedEntity] = []      # runnable, not running (the rbtree)
        self.min_vruntime = 0.0
        self.need_resched = False               # TIF_NEED_RESCHED of curr
        self.switches = 0                       # preemptions (curr still runnable)
        self._entities: dict[int, SchedEntity] = {}

    # --- helpers (the kernel's names) ------------------------------------------
    def entity(self, task: object) -> SchedEntity:
        se = self._entities.get(id(task))
        if se is None:
            se = self._entities[id(task)] = SchedEntity(task)
            se.vruntime = self.min_vruntime + self.sched_slice(len(self.queue) + 2)  # START_DEBIT
        return se

    @property
    def nr_running(self) -> int:
        return len(self.queue) + (self.curr is not None)

    def sched_period(self, nr_running: int) -> float:
        """__sched_period (sched_fair.c:447-458)."""
        if nr_running > self.nr_latency:
            return self.min_granularity * nr_running
        return self.sched_latency

    def sched_slice(self, nr_running: int) -> float:
        """sched_slice for equal weights: the period shared by the runnable tasks."""
        nr = max(nr_running, 1)
        return self.sched_period(nr) / nr

    def update_curr(self, now: float) -> None:
        curr = self.curr
        if curr is None:
            return
        delta = now - curr.exec_start
        if delta > 0:
            curr.sum_exec_runtime += delta
            curr.vruntime += delta
            curr.exec_start = now
        self._update_min_vruntime()

    def _update_min_vruntime(self) -> None:
        vruntime = self.min_vruntime
        curr, queue = self.curr, self.queue
        if curr is not None:
            vruntime = curr.vruntime
        if queue:
            left = min(se.vruntime for se in queue)
            vruntime = left if curr is None else min(vruntime, left)
        self.min_vruntime = max(self.min_vruntime, vruntime)

    def _leftmost(self) -> SchedEntity:
        return min(self.queue, key=lambda se: se.vruntime)   # ties: the earliest enqueued

    def _set_next(self, se: SchedEntity, now: float) -> None:
        self.queue.remove(se)
        self.curr = se
        se.exec_start = now
        se.prev_sum_exec_runtime = se.sum_exec_runtime
        wait, se.wait = se.wait, None
        if wait is not None:
            wait.succeed()

    def _schedule(self, now: float) -> None:
        """Pick the leftmost runnable task (curr is None here)."""
        self.need_resched = False
        if self.queue:
            self._set_next(self._leftmost(), now)

    # --- what tasks do ----------------------------------------------------------
    def acquire(self, task: object) -> simpy.Event | None:
        """The task becomes runnable (starts, or is woken): None if it runs at once,
        else an event that fires when it is picked."""
        se = self.entity(task)
        curr = self.curr
        if curr is se:
            return None
        now = self.env.now
        if curr is None and not self.queue:
            self.curr = se
            se.exec_start = now
            se.prev_sum_exec_runtime = se.sum_exec_runtime
            self.min_vruntime = max(self.min_vruntime, se.vruntime)
            return None
        self.update_curr(now)
        # place_entity(se, 0): sleeps up to half a latency do not count
        se.vruntime = max(se.vruntime, self.min_vruntime - self.sched_latency / 2)
        se.wait = self.env.event()
        self.queue.append(se)
        if curr is None:
            self._schedule(now)
        elif curr.vruntime - se.vruntime > self.wakeup_granularity:
            self.need_resched = True            # check_preempt_wakeup
        return se.wait

    def preempt_point(self, task: object) -> simpy.Event | None:
        """The running task may be switched out here (cond_resched, return to user):
        None if it goes on, else the event of its next turn."""
        if not self.need_resched:
            return None
        se = self._entities.get(id(task))
        if se is None or self.curr is not se:
            return None
        if not self.queue:
            self.need_resched = False
            return None
        now = self.env.now
        self.update_curr(now)
        se.wait = self.env.event()
        self.queue.append(se)                   # put_prev_entity: still runnable
        self.curr = None
        self.switches += 1
        self._schedule(now)
        return se.wait

    def release(self, task: object) -> None:
        """The task blocks (or ends): dequeue it and pick the next."""
        se = self._entities.get(id(task))
        if se is None:
            return
        now = self.env.now
        if self.curr is se:
            self.update_curr(now)
            self.curr = None
            self._schedule(now)
        elif se in self.queue:
            self.queue.remove(se)
            se.wait = None

    def scheduler_tick(self, now: float) -> None:
        """task_tick_fair -> entity_tick -> check_preempt_tick (sched_fair.c:855-989)."""
        curr = self.curr
        if curr is None:
            return
        self.update_curr(now)
        if not self.queue:
            return                              # nr_running == 1: no check
        ideal_runtime = self.sched_slice(self.nr_running)
        delta_exec = curr.sum_exec_runtime - curr.prev_sum_exec_runtime
        if delta_exec > ideal_runtime:
            self.need_resched = True
            return
        if delta_exec < self.min_granularity:
            return
        if curr.vruntime - self._leftmost().vruntime > ideal_runtime:
            self.need_resched = True
