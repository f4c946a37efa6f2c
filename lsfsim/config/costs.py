"""The cost registry: the kernel functions the simulator charges CPU time to.

Each cost is ``fixed + per_byte * bytes + per_insn * instructions`` (``Cost`` in
``lsfsim.config.schema``); which of the three terms a key uses is part of its
description.  A model file must give every key, and no other: a typo must not
silently cost nothing.
"""

from __future__ import annotations

__all__ = ["COST_KEYS", "PER_BYTE", "PER_INSN"]

COST_KEYS: dict[str, str] = {
    # interrupt and softirq
    "hardirq": "interrupt entry/exit (do_IRQ, irq_enter, irq_exit, APIC EOI), without the handler",
    "pcnet32_interrupt": "ISR fixed part (lock, status decode), without its CSR accesses",
    "pcnet32_wio_read_csr": "one CSR read: two port I/Os (RAP write, RDP read)",
    "pcnet32_wio_write_csr": "one CSR write: two port I/Os (RAP write, RDP write)",
    "__napi_schedule": "put the NAPI instance on the poll list and raise NET_RX_SOFTIRQ",
    "__do_softirq": "one pass of the softirq loop (pending mask, irq toggling)",
    "net_rx_action": "one run of the NET_RX handler (budget and time checks, list handling)",
    # the periodic tick (kernel.timer)
    "smp_apic_timer_interrupt": "local APIC timer interrupt entry/exit (ack_APIC_irq, irq_enter,"
                                " irq_exit), without the tick's work",
    "do_timer": "the timekeeping CPU's share of the tick: jiffies, update_wall_time (a"
                " clocksource read), calc_global_load",
    "update_process_times": "per tick and CPU: account_process_tick, run_local_timers (raise"
                            " TIMER_SOFTIRQ), rcu_check_callbacks",
    "scheduler_tick": "per tick and CPU: rq lock, update_rq_clock, task_tick_fair (the CFS slice"
                      " check), trigger_load_balance",
    "run_timer_softirq": "TIMER_SOFTIRQ with no timer due: hrtimer_run_pending, the timer"
                         " base lock and jiffies check",
    # driver receive
    "pcnet32_poll": "per poll call, without RX descriptors, TX reclaim entries and CSR accesses",
    "pcnet32_rx_entry": "per RX descriptor: status and length checks, ring bookkeeping; inlined:"
                        " pcnet32_poll's time",
    "dev_alloc_skb": "__alloc_skb + skb_reserve (skb head and data buffer from the slab)",
    "skb_put": "extend the data area (skb_put)",
    "memcpy": "copybreak copy out of the DMA buffer: fixed + per_byte",
    "eth_type_trans": "classify the frame, first touch of the header, pull 14 bytes",
    # core delivery
    "netif_receive_skb": "fixed part: timestamp, ptype walks, without the handlers",
    "deliver_skb": "per handler delivered before the last one (refcount + indirect call);"
                   " inline: netif_receive_skb's time in the profile and traces",
    "packet_rcv": "fixed part up to the filter verdict: skb_push, local_bh pair, RCU, call",
    "sk_run_filter": "the socket filter: fixed + per_insn (executed instructions, final RET"
                     " included)",
    "skb_clone": "clone a shared skb in packet_rcv (or for a transmit tap)",
    "kfree_skb": "drop an extra reference (atomic decrement and test)",
    "consume_skb": "free a whole skb and its data buffer",
    "__skb_queue_tail": "packet_rcv accept tail: dev_parse_header, pskb_trim, skb_set_owner_r,"
                        " queue lock, enqueue; inline: packet_rcv's time",
    "sock_def_readable": "sk_data_ready with no sleeper on the socket",
    "try_to_wake_up": "extra cost of sock_def_readable when it wakes a sleeping reader",
    "ip_rcv": "every packet that reaches IP; all of it for OTHERHOST/bad packets (dropped)",
    "ip_local_deliver": "extra for a host-bound packet: rest of IP + transport (beyond ip_rcv)",
    "tcp_send_ack": "build and queue an ACK (without dev_queue_xmit and the driver)",
    "netif_rx": "pre-NAPI drivers: enqueue to the per-CPU backlog from the ISR",
    "process_backlog": "pre-NAPI drivers: per call of the backlog poll, without the packets",
    # the reader
    "sys_recvfrom": "system call entry + exit (incl. fd lookup)",
    "packet_recvmsg": "packet_recvmsg incl. skb_recv_datagram (queue lock, dequeue), security hook",
    "skb_copy_datagram_iovec": "copy to user: fixed + per_byte",
    "skb_free_datagram": "sock_rfree (rmem release) + free of the skb",
    "schedule": "one context switch (to or from the reader)",
    # control path
    "sys_socketcall": "i386 only: the socketcall(2) multiplexer in front of every socket call"
                      " (copy of the argument block, audit hook)",
    "sys_socket": "socket(2): sock_create + sock_map_fd, without packet_create",
    "packet_create": "PF_PACKET socket creation: sk_alloc, sock_init_data",
    "dev_add_pack": "register the protocol hook (ptype_all insert)",
    "sys_setsockopt": "setsockopt(2) entry + exit, lock_sock, copy of the sock_fprog",
    "sk_attach_filter": "allocate and copy the program from user space: fixed + per_insn",
    "sk_chk_filter": "the checker: fixed + per_insn",
    "dev_set_promiscuity": "SIOCSIFFLAGS promiscuous on/off incl. the chip suspend/restart and its"
                           " CSR accesses",
    # transmit
    "sys_sendto": "sendto(2) entry + exit",
    "packet_snd": "packet_snd: sock_alloc_send_skb + copy from user, fixed + per_byte;"
                  " inlined: packet_sendmsg's time",
    "dev_queue_xmit": "qdisc enqueue/dequeue or direct transmit, without taps and driver",
    "dev_queue_xmit_nit": "per call while taps exist: RCU walk of ptype_all, fix-up per tap (the"
                          " clone per tap is skb_clone's, packet_rcv is charged apart)",
    "pcnet32_start_xmit": "fill a TX descriptor, DMA map, lock; without its CSR0 (TDMD) write",
    "pcnet32_tx": "per reclaimed TX descriptor in pcnet32_poll; inlined: pcnet32_poll's time",
    "dev_kfree_skb_any": "free a transmitted skb from IRQ-off context (via NET_TX_SOFTIRQ)",
    # reporting only
    "tracer_overhead": "function_graph overhead per traced call; used only in emitted ftrace"
                       " durations, never in throughput",
}

#: The keys whose time grows with the bytes handled (the copies); any other key's
#: ``per_byte`` would never be charged, so a model may not give one.
PER_BYTE: frozenset[str] = frozenset({"memcpy", "skb_copy_datagram_iovec", "packet_snd"})
#: The keys whose time grows with filter instructions (run, copied, checked).
PER_INSN: frozenset[str] = frozenset({"sk_run_filter", "sk_attach_filter", "sk_chk_filter"})
