"""The scenario options shared by ``lsfsim run``, ``trace`` and ``lifecycle``.

One definition per option (name, type, help), so the three commands cannot
drift apart: each command lists them as ``model: options.Model = None``.
One meaning per name everywhere: ``--count`` is how many frames to offer;
frames are selected by index (from 0) with ``--frames`` (``trace``) or the
positional ``N[,M...]`` (``lifecycle``).
"""

from __future__ import annotations

from typing import Annotated

import typer

Model = Annotated[str | None, typer.Option(
    "--model", help="Model NAME (models/NAME.toml) or FILE [default: testbed].")]
Traffic = Annotated[str | None, typer.Option("--traffic", help="nc | cbr | poisson | onoff | pcap")]
Rate = Annotated[float | None,
                 typer.Option("--rate", help="Packets per second (cbr, poisson, onoff).")]
Size = Annotated[int | None, typer.Option("--size", help="Frame length without FCS, 60..1514.")]
Count = Annotated[int | None, typer.Option("--count", help="Number of frames to offer.")]
# --count's old name in `run` and `lifecycle`; accepted with a note, not listed
Packets = Annotated[int | None, typer.Option("--packets", hidden=True,
                                             help="Deprecated name of --count.")]
Bytes = Annotated[int | None,
                  typer.Option("--bytes", help="Bytes to offer (nc: bytes to transfer).")]
Duration = Annotated[str | None,
                     typer.Option("--duration", help="Traffic duration, e.g. 1s, 200ms.")]
Pcap = Annotated[str | None, typer.Option("--pcap", help="Replay this pcap/pcapng file.")]
Speed = Annotated[float | None, typer.Option(
    "--speed", help="pcap replay: x times faster; 0 = as fast as the link allows.")]
Filter = Annotated[str | None,
                   typer.Option("--filter", help="pcap filter expression (libpcap).")]
FilterFile = Annotated[str | None, typer.Option(
    "--filter-file", help="BPF program file (any lsfsim bpf format).")]
AllowRefusedFilter = Annotated[bool, typer.Option(
    "--allow-refused-filter",
    help="Run even if the kernel refuses the filter (the socket then captures unfiltered).")]
Snaplen = Annotated[int | None, typer.Option(
    "--snaplen", help="Snapshot length (the filter's accept value).")]
Rcvbuf = Annotated[int | None,
                   typer.Option("--rcvbuf", help="SO_RCVBUF value (the kernel doubles it).")]
RxRing = Annotated[int | None,
                   typer.Option("--rx-ring", help="RX descriptors (power of two, 4..512).")]
Sockets = Annotated[int, typer.Option(
    "--sockets", min=0, help="Number of capture sockets (at most 1024).")]
Readers = Annotated[int, typer.Option("--readers", min=0, help="Reader threads per socket.")]
ReaderWork = Annotated[str | None,
                       typer.Option("--reader-work", help="User work per packet, e.g. 20us.")]
ReaderCpu = Annotated[int | None, typer.Option(
    "--reader-cpu", min=0,
    help="Pin the reader threads to this CPU (default: away from the IRQ's CPU).")]
NoNapi = Annotated[bool, typer.Option(
    "--no-napi", help="Pre-NAPI driver: netif_rx from the IRQ handler.")]
Promisc = Annotated[bool, typer.Option(
    "--promisc/--no-promisc", " /-p",
    help="Set IFF_PROMISC (SIOCSIFFLAGS), as tcpdump does unless -p.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed.")]
NoDrain = Annotated[bool, typer.Option(
    "--no-drain", help="Stop at --duration instead of draining queues.")]
Senders = Annotated[int, typer.Option(
    "--senders", min=0, help="Programs sending raw frames with sendto (packet_snd).")]
SendRate = Annotated[float, typer.Option("--send-rate", min=1,
                                          help="Frames per second per sender.")]
SendCount = Annotated[int, typer.Option("--send-count", min=1, help="Frames each sender sends.")]
Set = Annotated[list[str] | None, typer.Option(
    "--set", metavar="FIELD=VALUE",
    help="Change a model field for this run, in the model file's units "
         "(kernel.rmem_max=16MiB); repeatable.")]
