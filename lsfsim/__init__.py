"""lsfsim: a discrete-event simulator of the Linux packet-capture path.

The receive path of Linux 2.6.33 (pcnet32 -> NAPI -> netif_receive_skb ->
packet_rcv -> recvfrom) modelled function by function, with a classic BPF
machine that behaves like the kernel's.
"""

__version__ = "0.1.0"
