"""User space: a capture program (socket, setsockopt, recvfrom loop) and a sender.

A capture program opens a PF_PACKET socket, optionally sets promiscuous mode
and SO_RCVBUF, attaches its filter, then runs ``readers`` threads looping on
recvfrom, each pinned to a CPU, with optional user work per packet.  Every
step is a simulated system call, so the control path appears in traces and
its cost is charged.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from lsfsim.bpf import Program
from lsfsim.kernel import syscalls
from lsfsim.kernel.af_packet import PacketSock
from lsfsim.kernel.cpu import CPU, PROCESS, SY, US, ExecContext, charge, enter, exit_, self_time
from lsfsim.kernel.skbuff import PACKET_OUTGOING

if TYPE_CHECKING:
    from lsfsim.machine import Machine


class CaptureApp:
    """tcpdump's kernel-facing half: one socket, its filter, its reader threads."""

    def __init__(self, machine: Machine, index: int, program: Program | None, rcvbuf: int | None,
                 promisc: bool, readers: int, reader_work: float, buflen: int,
                 cpus: list[CPU]) -> None:
        self.machine = machine
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
        machine.env.process(self._start())

    def _start(self) -> Generator[simpy.Event, Any, None]:
        machine = self.machine
        cpu = self.cpus[0]
        ctx = ExecContext(machine.env, cpu, PROCESS, SY, machine.profile, machine.calls,
                          machine.tracer, task=self)
        wait = cpu.acquire(self)
        if wait is not None:
            yield wait
        ctx.t = machine.env.now
        sock = syscalls.sys_socket(machine, ctx)
        self.sock = sock
        if self.promisc:
            syscalls.sys_ioctl_promisc(machine, ctx, True)
        if self.rcvbuf is not None:
            syscalls.sys_setsockopt_rcvbuf(machine, ctx, sock, self.rcvbuf)
        if self.program is not None:
            self.attach_errno = syscalls.sys_setsockopt_filter(machine, ctx, sock, self.program)
        yield from ctx.sync()
        cpu.release(self)
        for i in range(self.readers_wanted):
            self.readers.append(Reader(machine, sock, self.cpus[i % len(self.cpus)],
                                       self.buflen, self.reader_work, f"reader{self.index}.{i}"))


class Reader:
    """A thread looping on recvfrom(fd, buf, buflen): blocks when the queue is empty."""

    def __init__(self, machine: Machine, sock: PacketSock, cpu: CPU, buflen: int,
                 work: float, name: str) -> None:
        self.machine = machine
        self.sock = sock
        self.cpu = cpu
        self.buflen = buflen
        self.work = work
        self.name = name
        self.sleeps = 0
        self.ctx = ExecContext(machine.env, cpu, PROCESS, SY, machine.profile, machine.calls,
                               machine.tracer, task=self)
        machine.env.process(self._run())

    def _run(self) -> Generator[simpy.Event, Any, None]:
        machine = self.machine
        env = machine.env
        cpu = self.cpu
        sock = self.sock
        ctx = self.ctx
        c = machine.costs
        plan = machine.plan
        # schedule() spans the sleep, as in ftrace: a context switch away, the wait,
        # and a context switch back when woken
        plan_sleep = plan(enter("schedule"), charge("schedule", c.schedule))
        plan_woken = plan(self_time("schedule", c.schedule), exit_("schedule"))
        queue = sock.sk_receive_queue
        record_latency = machine.latency.record
        buflen = self.buflen
        work = self.work
        lifecycle = machine.lifecycle
        while True:
            wait = cpu.acquire(self)
            if wait is not None:
                yield wait
            ctx.t = env.now
            ctx.bucket = SY
            ctx.run(sock.plan_recvfrom)    # sys_recvfrom -> ... -> skb_recv_datagram
            while True:
                if queue:
                    t_enq = queue[0].t_enq
                    if t_enq <= ctx.t:
                        break
                    yield from ctx.sync()
                    if t_enq > env.now:
                        yield env.timeout(t_enq - env.now)
                    ctx.t = env.now
                    continue
                wake = sock.prepare_to_wait_exclusive()
                # Switch away.  Its time is not waited for here: if the wake-up comes
                # before the switch is over, the thread goes on from the switch's end.
                ctx.run(plan_sleep)
                cpu.release(self)
                self.sleeps += 1
                yield wake
                wait = cpu.acquire(self)
                if wait is not None:
                    yield wait
                if ctx.t < env.now:
                    ctx.t = env.now
                ctx.run(plan_woken)
            t_deq = ctx.t
            skb = sock.packet_recvmsg(ctx, buflen)
            yield from ctx.sync()                             # the system call's burst
            sock.sock_rfree(skb)                              # skb_free_datagram -> sock_rfree
            sock.delivered += 1
            if lifecycle is not None:
                lifecycle.copied(self, skb, t_deq, env.now)
            if skb.pkt_type != PACKET_OUTGOING:   # the latency of received packets only
                record_latency(skb.t_wire, skb.t_dma, skb.t_poll, skb.t_enq, t_deq, env.now)
            if work:
                ctx.bucket = US
                ctx.charge("user_work", work)
                yield from ctx.sync()
            cpu.release(self)


class SenderApp:
    """A program sending raw frames with sendto at a fixed rate (packet_snd path)."""

    def __init__(self, machine: Machine, frames: Any, rate: float, count: int, cpu: CPU) -> None:
        self.machine = machine
        self.name = f"sender{len(machine.senders)}"
        self.frames = frames
        self.gap = 1.0 / rate if rate > 0 else 0.0
        self.count = count
        self.cpu = cpu
        self.sent = 0
        self.errors: dict[str, int] = {}
        self.sock: PacketSock | None = None
        machine.env.process(self._run())

    def _run(self) -> Generator[simpy.Event, Any, None]:
        machine = self.machine
        env = machine.env
        cpu = self.cpu
        ctx = ExecContext(env, cpu, PROCESS, SY, machine.profile, machine.calls,
                          machine.tracer, task=self)
        wait = cpu.acquire(self)
        if wait is not None:
            yield wait
        ctx.t = env.now
        self.sock = syscalls.sys_socket(machine, ctx)
        yield from ctx.sync()
        cpu.release(self)
        next_time = env.now
        for i in range(self.count):
            if next_time > env.now:
                yield env.timeout(next_time - env.now)
            wait = cpu.acquire(self)
            if wait is not None:
                yield wait
            ctx.t = env.now
            err = syscalls.sys_sendto(machine, ctx, self.sock, self.frames(i))
            if err is None:
                self.sent += 1
            else:
                self.errors[err] = self.errors.get(err, 0) + 1
            yield from ctx.sync()
            cpu.release(self)
            next_time += self.gap
