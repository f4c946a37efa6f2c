"""The places where the simulator goes past SimPy's public interface, for speed.

Every read or write of a private field of SimPy (``Environment._now``,
``_queue``, ``_eid``; ``Event._ok``, ``_value``) is here and nowhere else, so
that a SimPy release that renames them breaks one small module whose tests
(tests/sim/test_simpy_fast.py) say what each trick must keep true.
pyproject.toml pins ``simpy>=4.1,<5``: these are SimPy 4's internals.

What each one buys (docs/model.md, "Fewer events, same run"):

* ``jump_clock``: an interrupt step with no event due before its end moves the
  clock instead of scheduling a timeout (kernel.cpu.CPU.interrupt_step);
* ``succeed_at``: a sleeping reader is woken at a time of the waker's choosing
  (its ``ctx.t``, ahead of ``env.now``) with one event, not a timeout plus an
  event (user.Reader.try_to_wake_up);
* ``stop_when_alone``, ``only_scheduled``: the periodic tick, a background
  event, does not keep a run going once nothing else is left to happen
  (machine.Machine.run, kernel.timer.PeriodicTick);
* ``events_scheduled``: how many events a run scheduled, for the run's
  ``events`` figure (machine.Machine.run).

The sampler's hook on ``env.step`` (``before_each_step``) uses only public
names; it is here because it too changes how SimPy runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import simpy


def jump_clock(env: simpy.Environment, end: float) -> bool:
    """Move the clock to ``end`` if no event is due before it (nor at it); True if moved.

    The inlined form of ``if env.peek() > end: <advance env.now to end>``:
    called once per interrupt step, a hot path.
    """
    queue = env._queue
    if not queue or queue[0][0] > end:
        env._now = end
        return True
    return False


def stop_when_alone(env: simpy.Environment, alone: Callable[[list[Any]], bool]) -> None:
    """Before each step, if ``alone(queue)`` (a background event, such as the next
    timer tick, is all that is scheduled), drop it: the run then ends where the
    last real work ended instead of at the background event's time."""
    step = env.step
    queue = env._queue

    def step_unless_alone() -> None:
        if len(queue) == 1 and alone(queue):
            queue.pop()
            return
        step()

    env.step = step_unless_alone  # type: ignore[method-assign]


def only_scheduled(env: simpy.Environment, event: simpy.Event | None) -> bool:
    """``event`` is the one event scheduled (a background ticker may then stop)."""
    queue = env._queue
    return len(queue) == 1 and queue[0][3] is event


def succeed_at(env: simpy.Environment, event: simpy.Event, t: float) -> None:
    """Trigger a pending ``event`` (value None) so that it is processed at time ``t``
    (at once when ``t`` is not in the future): ``event.succeed()`` with a delay."""
    event._ok = True
    event._value = None
    now = env._now
    env.schedule(event, delay=t - now if t > now else 0.0)


def events_scheduled(env: simpy.Environment) -> int:
    """A counter of the events scheduled so far (SimPy numbers every scheduled event).

    The difference of two readings is the number of events scheduled in between,
    plus one (each reading takes a number, as an event would).
    """
    eid = getattr(env, "_eid", None)
    if eid is None:
        return 0
    value = next(eid)
    env._eid = itertools.count(value + 1)
    return value


def before_each_step(env: simpy.Environment, before: Callable[[float], None]) -> None:
    """Call ``before(t)`` ahead of processing each event, ``t`` being its time
    (``math.inf`` when the queue is empty: the run is about to end)."""
    step = env.step
    peek = env.peek

    def hooked_step() -> None:
        before(peek())
        step()

    env.step = hooked_step  # type: ignore[method-assign]
