"""The simulated kernel: one module per kernel source file it models.

| module       | kernel source                                   |
|--------------|-------------------------------------------------|
| skbuff       | net/core/skbuff.c, include/linux/skbuff.h       |
| cpu          | kernel/sched.c (contexts, accounting)           |
| softirq      | kernel/softirq.c, net_rx_action in net/core/dev.c |
| dev          | net/core/dev.c                                  |
| sock         | net/core/sock.c, net/core/datagram.c            |
| af_packet    | net/packet/af_packet.c                          |
| ip           | net/ipv4/ip_input.c, tcp_input.c (as a sink)    |
| syscalls     | net/socket.c                                    |
"""
