"""User space: a capture program (socket, setsockopt, recvfrom loop) and a sender.

A capture program opens a PF_PACKET socket, optionally sets promiscuous mode
and SO_RCVBUF, attaches its filter, then runs ``readers`` threads looping on
recvfrom, each pinned to a CPU, with optional user work per packet.  Every
step is a simulated system call, so the control path appears in traces and
its cost is charged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import simpy

from lsfsim.bpf import Program
from lsfsim.kernel import syscalls
from lsfsim.kernel.af_packet import PacketSock
from lsfsim.kernel.context import KernelContext
from lsfsim.kernel.cpu import CPU, PROCESS, SY, US
from lsfsim.kernel.dev import NetCore
from lsfsim.kernel.skbuff import PACKET_OUTGOING
from lsfsim.simpy_fast import succeed_at


class CaptureApp:
    """tcpdump's kernel-facing half: one socket, its filter, its reader threads."""

    def __init__(self, net: NetCore, index: int, program: Program | None, rcvbuf: int | None,
                 promisc: bool, readers: int, reader_work: float, buflen: int,
                 cpus: list[CPU], lazy_readers: list[Reader]) -> None:
        self.net = net
        self.kernel = net.kernel
        self.index = index
        self.name = f"capture{index}"
        self.program = program
        self.rcvbuf = rcvbuf
        self.promisc = promisc
        self.readers_wanted = readers
        self.reader_work = reader_work
        self.buflen = buflen
        self.cpus = cpus
        self.sock: PacketSock | None = None
        self.attach_errno: str | None = None
        self.readers: list[Reader] = []
        self.lazy_reader = False    # set by the machine: run the one reader lazily
        self._lazy_readers = lazy_readers   # the machine's, advanced before it looks
        self.kernel.env.process(self._start())

    def _start(self) -> Generator[simpy.Event, Any, None]:
        net = self.net
        env = self.kernel.env
        cpu = self.cpus[0]
        ctx = self.kernel.exec_context(cpu, PROCESS, SY, task=self)
        wait = cpu.acquire(self)
        if wait is not None:
            yield wait
        yield from cpu.after_irqs()
        ctx.t = env.now
        sock = syscalls.sys_socket(net, ctx)
        self.sock = sock
        if self.promisc:
            syscalls.sys_ioctl_promisc(net, ctx, True)
        if self.rcvbuf is not None:
            syscalls.sys_setsockopt_rcvbuf(net, ctx, sock, self.rcvbuf)
        if self.program is not None:
            self.attach_errno = syscalls.sys_setsockopt_filter(net, ctx, sock, self.program)
        yield from ctx.sync()
        cpu.release(self)
        for i in range(self.readers_wanted):
            self.readers.append(Reader(self.kernel, sock, self.cpus[i % len(self.cpus)],
                                       self.buflen, self.reader_work, f"reader{self.index}.{i}",
                                       lazy=self.lazy_reader))
        if self.lazy_reader:
            sock.lazy_reader = self.readers[0]
            self._lazy_readers.append(self.readers[0])


# What the recvfrom loop waits for next (besides a SimPy event: the CPU when shared).
BURST = "burst"   # its CPU time so far (ctx.t) to pass
SLEEP = "sleep"   # a wake-up (try_to_wake_up)
# a float: simulated time to reach, idle (the queue's head is still being computed)


class Reader:
    """A thread looping on recvfrom(fd, buf, buflen): blocks when the queue is empty.

    The loop is written once, as a generator that says what it waits for next
    (``BURST``, ``SLEEP``, a time, or the CPU), and is driven one of two ways:

    * as a SimPy process, in general;
    * *lazily*, when the thread is its socket's only reader and has a CPU to
      itself (no IRQ routed there, no other task): nothing can then delay it but
      its own queue, so its steps are computed when someone needs their effect,
      the way the NIC is.  ``packet_rcv`` first calls ``advance(env.now)``, which
      runs every step due by then: the rmem it checks, the sleeper it may wake
      and the queue the reader saw are exactly those of the process-driven
      thread.  The machine advances it before sampling and runs it to the end
      once the event queue is empty.  Both ways give the same results; the lazy
      one needs no SimPy event per packet.
    """

    def __init__(self, kernel: KernelContext, sock: PacketSock, cpu: CPU, buflen: int,
                 work: float, name: str, lazy: bool = False) -> None:
        self.kernel = kernel
        self.env = kernel.env
        self.sock = sock
        self.cpu = cpu
        self.buflen = buflen
        self.work = work
        self.name = name
        self.sleeps = 0
        self.ctx = kernel.exec_context(cpu, PROCESS, SY, task=self)
        self.now = kernel.env.now             # the thread's own clock: its last resume
        self.lazy = lazy
        self.next_time = self.now if lazy else math.inf   # lazy: its next resume
        self._wake: simpy.Event | None = None
        self._loop = self._recvfrom_loop()
        next(self._loop)
        if not lazy:
            kernel.env.process(self._process())

    # --- the two drivers --------------------------------------------------------
    def _process(self) -> Generator[simpy.Event, Any, None]:
        """Drive the loop as a SimPy process."""
        env = self.env
        ctx = self.ctx
        cpu = self.cpu
        loop = self._loop
        request = loop.send(env.now)
        while True:
            if request is BURST:
                yield from ctx.sync()         # ends once the CPU's interrupts returned
            else:
                if request is SLEEP:
                    self._wake = env.event()
                    yield self._wake
                elif type(request) is float:
                    yield env.timeout(request - env.now)
                else:
                    yield request             # the CPU, when another task holds it
                yield from cpu.after_irqs()   # woken inside a softirq: runs after it
            self.now = env.now
            request = loop.send(env.now)

    def advance(self, t: float) -> None:
        """Lazy driver: run every step of the loop due at or before ``t``."""
        loop = self._loop
        ctx = self.ctx
        while self.next_time <= t:
            self.now = now = self.next_time
            request = loop.send(now)
            while request is BURST and ctx.t - now <= 1e-15:
                ctx.t = now                   # nothing to wait for: go on at once
                request = loop.send(now)
            if request is BURST:
                self.next_time = ctx.t
            elif request is SLEEP:
                self.next_time = math.inf
            elif type(request) is float:
                self.next_time = request
            else:
                raise RuntimeError(f"{self.name}: a lazily run reader waited for its CPU")

    def try_to_wake_up(self, t: float) -> None:
        """Wake the sleeping thread at time ``t`` (from sock_def_readable)."""
        if self.lazy:
            self.next_time = t
            return
        wake, self._wake = self._wake, None
        assert wake is not None              # only a sleeping thread is woken
        succeed_at(self.env, wake, t)

    # --- the thread -------------------------------------------------------------
    def _recvfrom_loop(self) -> Generator[Any, float, None]:
        """The thread.  Each ``yield`` says what it waits for and returns the time
        it goes on at; the first one only takes the start time."""
        now = yield None
        kernel = self.kernel
        cpu = self.cpu
        sock = self.sock
        ctx = self.ctx
        plan_recvfrom, plan_sleep, plan_woken = sock.plan_recvfrom, sock.plan_sleep, sock.plan_woken
        queue = sock.sk_receive_queue
        latency = kernel.latency                  # StageLatency: rows of timestamps
        latency_pending, latency_limit = latency.pending, latency.limit
        backlog_stage = "backlog" in latency.stages   # pre-NAPI: netif_rx's queueing time
        buflen = self.buflen
        work = self.work
        copied_hook = kernel.hooks.copied
        returned_hook = kernel.hooks.recvfrom_returned
        shares_cpu = not self.lazy      # a lazy reader has its CPU to itself: never waits
        if shares_cpu:
            wait = cpu.acquire(self)
            if wait is not None:
                now = yield wait
        while True:
            ctx.t = now
            ctx.bucket = SY
            ctx.run(plan_recvfrom)         # sys_recvfrom -> ... -> skb_recv_datagram
            while True:
                if queue:
                    t_enq = queue[0].t_enq
                    if t_enq <= ctx.t:
                        break
                    now = yield BURST
                    if t_enq > now:
                        now = yield t_enq
                    ctx.t = now
                    continue
                sock.prepare_to_wait_exclusive(self)
                # Switch away.  Its time is not waited for here: if the wake-up comes
                # before the switch is over, the thread goes on from the switch's end.
                ctx.run(plan_sleep)
                self.sleeps += 1
                if shares_cpu:
                    cpu.release(self)
                    now = yield SLEEP
                    wait = cpu.acquire(self)
                    if wait is not None:
                        now = yield wait
                else:
                    now = yield SLEEP
                if ctx.t < now:
                    ctx.t = now
                ctx.run(plan_woken)
            t_deq = ctx.t
            skb = sock.packet_recvmsg(ctx, buflen)
            now = yield BURST                                 # the system call's burst
            sock.sock_rfree(skb)                              # skb_free_datagram -> sock_rfree
            sock.delivered += 1
            if copied_hook is not None:
                copied_hook(self, skb, t_deq, now)
            if returned_hook is not None:
                returned_hook(sock, skb, skb.len if skb.len <= buflen else buflen, now)
            if skb.pkt_type != PACKET_OUTGOING:   # the latency of received packets only
                if backlog_stage:
                    latency_pending.extend((skb.t_wire, skb.t_dma, skb.t_backlog, skb.t_poll,
                                            skb.t_enq, t_deq, now))
                else:
                    latency_pending.extend((skb.t_wire, skb.t_dma, skb.t_poll, skb.t_enq,
                                            t_deq, now))
                if len(latency_pending) >= latency_limit:
                    latency.fold()
            if work:
                ctx.bucket = US
                ctx.charge("user_work", work)
                now = yield BURST
            if shares_cpu:
                wait = cpu.preempt_point(self)    # return to user space: CFS may switch
                if wait is not None:
                    now = yield wait


class SenderApp:
    """A program sending raw frames with sendto at a fixed rate (packet_snd path)."""

    def __init__(self, net: NetCore, index: int, frames: Callable[[int], bytes], rate: float,
                 count: int, cpu: CPU) -> None:
        self.net = net
        self.kernel = net.kernel
        self.name = f"sender{index}"
        self.frames = frames
        self.gap = 1.0 / rate if rate > 0 else 0.0
        self.count = count
        self.cpu = cpu
        self.sent = 0
        self.errors: dict[str, int] = {}
        self.sock: PacketSock | None = None
        self.kernel.env.process(self._run())

    def _run(self) -> Generator[simpy.Event, Any, None]:
        net = self.net
        env = self.kernel.env
        cpu = self.cpu
        ctx = self.kernel.exec_context(cpu, PROCESS, SY, task=self)
        wait = cpu.acquire(self)
        if wait is not None:
            yield wait
        yield from cpu.after_irqs()
        ctx.t = env.now
        sock = self.sock = syscalls.sys_socket(net, ctx)
        yield from ctx.sync()
        cpu.release(self)
        next_time = env.now
        for i in range(self.count):
            if next_time > env.now:
                yield env.timeout(next_time - env.now)
            wait = cpu.acquire(self)
            if wait is not None:
                yield wait
            yield from cpu.after_irqs()
            ctx.t = env.now
            err = syscalls.sys_sendto(net, ctx, sock, self.frames(i))
            if err is None:
                self.sent += 1
            else:
                self.errors[err] = self.errors.get(err, 0) + 1
            yield from ctx.sync()
            cpu.release(self)
            next_time += self.gap
