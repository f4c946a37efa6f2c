"""lsfsim.simpy_fast: each trick on SimPy's private fields behaves as the public
interface would, checked against SimPy itself."""

from __future__ import annotations

import math
from importlib.metadata import version

import simpy

from lsfsim.simpy_fast import (
    before_each_step,
    events_scheduled,
    jump_clock,
    stop_when_alone,
    succeed_at,
)


def test_the_installed_simpy_is_the_pinned_major_version():
    major, minor = (int(x) for x in version("simpy").split(".")[:2])
    assert major == 4 and minor >= 1


def test_jump_clock_moves_the_clock_only_when_nothing_is_due_before():
    env = simpy.Environment()
    assert jump_clock(env, 2.5)                    # empty queue
    assert env.now == 2.5
    seen = []
    env.timeout(1.0).callbacks.append(lambda ev: seen.append(env.now))   # due at 3.5
    assert not jump_clock(env, 4.0)                # an event due before: untouched
    assert env.now == 2.5
    assert not jump_clock(env, 3.5)                # due at the end itself: untouched
    assert jump_clock(env, 3.0)
    assert env.now == 3.0
    env.run()
    assert seen == [3.5]                           # the pending event keeps its time


def test_after_a_jump_timeouts_count_from_the_new_time():
    env = simpy.Environment()
    times = []

    def proc():
        yield env.timeout(1.0)
        times.append(env.now)
        assert jump_clock(env, 5.0)
        yield env.timeout(1.0)
        times.append(env.now)

    env.process(proc())
    env.run()
    assert times == [1.0, 6.0]


def _resumed_at(t_wake: float, t_call: float) -> tuple[float, object, bool]:
    """A process waits on an event that another process triggers, at ``t_call``,
    for time ``t_wake``: when does the waiter resume, with what value?"""
    env = simpy.Environment()
    wake = env.event()
    out = []

    def sleeper():
        value = yield wake
        out.append((env.now, value))

    def waker():
        yield env.timeout(t_call)
        succeed_at(env, wake, t_wake)

    env.process(sleeper())
    env.process(waker())
    env.run()
    assert wake.triggered and wake.ok and wake.processed
    (t, value), = out
    return t, value, wake.ok


def test_succeed_at_wakes_the_waiter_at_the_given_time_with_no_value():
    assert _resumed_at(t_wake=3.0, t_call=1.0) == (3.0, None, True)


def test_succeed_at_a_past_time_wakes_at_once():
    assert _resumed_at(t_wake=0.5, t_call=1.0) == (1.0, None, True)


def test_succeed_at_equals_a_timeout_then_succeed_in_time_and_order():
    """The waiter resumes when and in the order a timeout-then-succeed would wake it."""
    def run(fast: bool) -> list[tuple[str, float]]:
        env = simpy.Environment()
        log: list[tuple[str, float]] = []
        wake = env.event()

        def sleeper():
            yield wake
            log.append(("woken", env.now))

        def other():
            yield env.timeout(2.0)
            log.append(("other", env.now))

        def waker():
            yield env.timeout(1.0)
            if fast:
                succeed_at(env, wake, 2.0)
            else:
                yield env.timeout(1.0)
                wake.succeed()

        env.process(sleeper())
        env.process(waker())
        env.process(other())
        env.run()
        return log

    fast, slow = run(True), run(False)
    assert sorted(fast) == sorted(slow)
    assert [t for _, t in fast] == [2.0, 2.0]


def test_events_scheduled_counts_the_events_in_between():
    env = simpy.Environment()
    before = events_scheduled(env)
    for i in range(7):
        env.timeout(i)
    ev = env.event()
    ev.succeed()
    after = events_scheduled(env)
    assert after - before == 8 + 1              # eight events, plus the reading's own number
    env.run()
    assert env.now == 6


def test_before_each_step_sees_every_event_time_then_the_end():
    env = simpy.Environment()
    seen = []
    before_each_step(env, seen.append)
    for t in (3.0, 1.0, 2.0):
        env.timeout(t)
    env.run()
    assert seen == [1.0, 2.0, 3.0, math.inf]      # env.run ends on an empty queue
    assert env.now == 3.0
    env2 = simpy.Environment()
    seen2 = []
    before_each_step(env2, seen2.append)
    env2.timeout(1.0)
    while env2.peek() != math.inf:
        env2.step()
    assert seen2 == [1.0]


def _ticking(env: simpy.Environment, ticks: list[float], holder: list[simpy.Event]):
    while True:
        holder[0] = env.timeout(1.0)
        yield holder[0]
        ticks.append(env.now)


def test_stop_when_alone_ends_the_run_at_the_last_other_event():
    """A background ticker does not keep a run going: the run ends at the last other
    event's time (with the hook in front of a sampler's, that sees the end too)."""
    env = simpy.Environment()
    ticks: list[float] = []
    holder: list[simpy.Event] = [env.event()]
    env.process(_ticking(env, ticks, holder))
    env.timeout(3.5)
    seen: list[float] = []
    before_each_step(env, seen.append)
    stop_when_alone(env, lambda queue: queue[0][3] is holder[0])
    env.run()
    assert ticks == [1.0, 2.0, 3.0]
    assert env.now == 3.5                    # not 4.0: the lone tick was dropped
    assert seen[-1] == math.inf              # the inner hook saw the end


def test_stop_when_alone_leaves_other_runs_alone():
    env = simpy.Environment()
    stop_when_alone(env, lambda queue: False)
    env.timeout(2.0)
    env.timeout(5.0)
    env.run()
    assert env.now == 5.0
