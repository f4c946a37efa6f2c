"""Run many independent points: in this process, in local worker processes, or on Dask.

``run_points(points, jobs=N, scheduler=ADDRESS, on_result=f)`` calls every
point (a picklable callable taking no argument) once and reports each
``Outcome`` to ``on_result`` as soon as it is known, in completion order, so a
caller can write it before the next one arrives.  A point that raises is an
``Outcome`` with the exception's one-line message: never fatal to the others.

* ``jobs=1`` (and no scheduler): one after the other, in this process;
* ``jobs=N``: a ``concurrent.futures.ProcessPoolExecutor`` of N workers
  forked from this process once it has imported the simulator, so a point
  costs no interpreter start nor import, and a script or notebook calling
  ``sweep()`` needs no ``if __name__ == "__main__"`` guard (elsewhere than on
  Linux/Unix: spawned workers, which need that guard);
* ``scheduler="tcp://host:8786"``: each point is a task on an existing
  dask.distributed cluster (``distributed.Client``); its workers must be able
  to import this package.  The client disconnects at the end and leaves the
  cluster running.

The engine knows nothing of scenarios: filter regression suites or other
capture paths can hand it their own points.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

CONNECT_TIMEOUT = 3.0     # seconds to reach a scheduler before giving up


class SchedulerError(OSError):
    """The Dask scheduler could not be reached (one line, names the address)."""


@dataclass
class Outcome:
    """What became of one point: its value, or the one-line error that stopped it."""

    index: int
    value: Any = None
    error: str | None = None
    seconds: float = 0.0     # wall time of the call itself, where it ran

    @property
    def ok(self) -> bool:
        return self.error is None


def default_jobs() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:      # not Linux
        return max(1, os.cpu_count() or 1)


def call_point(point: Callable[[], Any]) -> tuple[Any, str | None, float]:
    """Call one point; (value, None, seconds) or (None, "Error: message", seconds)."""
    started = time.perf_counter()
    try:
        value = point()
    except Exception as exc:  # noqa: BLE001 - any failure is this point's result
        return None, one_line(exc), time.perf_counter() - started
    return value, None, time.perf_counter() - started


def one_line(exc: BaseException) -> str:
    """``ExceptionName: message`` on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_points(points: Sequence[Callable[[], Any]], *, jobs: int | None = None,
               scheduler: str | None = None,
               on_result: Callable[[Outcome], None] | None = None,
               connect_timeout: float = CONNECT_TIMEOUT) -> list[Outcome]:
    """Run every point; return the outcomes in the points' order."""
    outcomes: list[Outcome | None] = [None] * len(points)

    def report(outcome: Outcome) -> None:
        outcomes[outcome.index] = outcome
        if on_result is not None:
            on_result(outcome)

    if points:
        if scheduler:
            _on_dask(points, scheduler, connect_timeout, report)
        elif (jobs or default_jobs()) <= 1:
            for i, point in enumerate(points):
                report(Outcome(i, *call_point(point)))
        else:
            _in_processes(points, min(jobs or default_jobs(), len(points)), report)
    return [o if o is not None else Outcome(i, error="not run") for i, o in enumerate(outcomes)]


def _in_processes(points: Sequence[Callable[[], Any]], jobs: int,
                  report: Callable[[Outcome], None]) -> None:
    import lsfsim.machine  # noqa: F401 - imported once here, inherited by forked workers

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(method))
    pending: dict[Future[Any], int] = {}
    try:
        pending = {pool.submit(call_point, p): i for i, p in enumerate(points)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                index = pending.pop(fut)
                try:
                    report(Outcome(index, *fut.result()))
                except BrokenProcessPool:
                    report(Outcome(index, error="a worker process died (killed, or out of "
                                                "memory) while this point or another ran"))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _on_dask(points: Sequence[Callable[[], Any]], address: str, timeout: float,
             report: Callable[[Outcome], None]) -> None:
    client = connect(address, timeout)
    try:
        from distributed import as_completed

        futures = client.map(call_point, list(points), pure=False)
        index = {fut.key: i for i, fut in enumerate(futures)}
        for fut in as_completed(futures, loop=client.loop):
            i = index[fut.key]
            try:
                report(Outcome(i, *fut.result()))
            except Exception as exc:  # noqa: BLE001 - a lost worker, a cancelled task
                report(Outcome(i, error=one_line(exc)))
            fut.release()
    except BaseException:
        client.cancel(list(_pending(locals().get("futures", ()))))
        raise
    finally:
        client.close()


def _pending(futures: Iterable[Any]) -> Iterable[Any]:
    return (f for f in futures if not f.done())


def connect(address: str, timeout: float = CONNECT_TIMEOUT) -> Any:
    """A distributed.Client on ``address``, or SchedulerError within ``timeout`` seconds."""
    import logging

    from distributed import Client

    # a refused connection is logged by distributed before it raises: we say it once
    log = logging.getLogger("distributed")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerError(f"--scheduler {address}: cannot reach the Dask scheduler "
                             f"within {timeout:g} s ({one_line(exc)})") from None
    finally:
        log.setLevel(level)
