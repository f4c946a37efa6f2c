"""What a run is checked for beyond the scenario's field rules, and what the user is told.

Before the run, ``check_filters`` looks at every capture program's filter as
``setsockopt(SO_ATTACH_FILTER)`` will: the sock_kmalloc charge against
optmem_max (ENOMEM) and sk_chk_filter's rules (EINVAL).  The real kernel
leaves the socket unfiltered after a refusal and the program may not notice;
a run that silently captured everything would report results for a filter
that never ran, so a refusal stops the run (``FilterRefused``) unless the
scenario says ``allow_refused_filter``.  The verdict is the one the simulated
kernel reaches (same checker, same limit), so the kernel code needs no hook.

After the run, ``run_warnings`` lists what the user should know about the
result: a refused filter run anyway, a rate the link cannot carry, a replayed
capture's oddities, most frames dropped by the NIC's address filter.  Each is
one line; ``lsfsim run`` prints them on stderr and the JSON keeps them under
``warnings``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lsfsim.bpf import FilterError, Program
from lsfsim.errors import ScenarioError
from lsfsim.kernel.af_packet import attach_semantics, sock_kmalloc_refusal

if TYPE_CHECKING:
    from lsfsim.config.model import Model
    from lsfsim.scenario import Scenario


class FilterRefused(ScenarioError):
    """setsockopt(SO_ATTACH_FILTER) would fail: ``errno``, the rule, the instruction."""

    def __init__(self, socket: int, error: FilterError, kernel_version: str) -> None:
        self.socket = socket
        self.error = error
        self.errno = error.errno
        self.pc = error.pc
        super().__init__(f"sockets[{socket}]: Linux {kernel_version} refuses the filter "
                         f"(SO_ATTACH_FILTER): {error}")


def attach_verdict(program: Program, model: Model) -> FilterError | None:
    """What sk_attach_filter would return for ``program`` on a fresh socket of ``model``'s
    kernel: None (attached) or the FilterError (errno, rule, instruction index)."""
    kernel = model.kernel
    # sock_kmalloc on a fresh socket (sk_omem_alloc 0): the same test as the kernel's
    reason = sock_kmalloc_refusal(len(program), kernel.sizes)
    if reason is not None:
        return FilterError("ENOMEM", reason)
    try:
        program.check(attach_semantics(kernel))
    except FilterError as exc:
        return exc
    return None


def check_filters(apps: list[Any], model: Model, scenario: Scenario) -> dict[int, str]:
    """Each capture program's refusal, by app index, as one line ("EINVAL at
    instruction 3: ...").  Raises FilterRefused for the first one unless the
    scenario allows refused filters (then the result reports them)."""
    refused: dict[int, str] = {}
    for app in apps:
        if app.program is None:
            continue
        error = attach_verdict(app.program, model)
        if error is None:
            continue
        if not scenario.allow_refused_filter:
            raise FilterRefused(app.index, error, model.kernel.version)
        refused[app.index] = str(error)
    return refused


def link_capacity(model: Model, size: int) -> float:
    """Frames per second the link carries back to back, for frames of ``size`` bytes
    without FCS: each holds the wire for preamble + frame (padded) + FCS, then the gap."""
    nic = model.hardware.nic
    byte_times = nic.preamble + max(size, nic.min_frame) + nic.fcs + nic.ifg
    return nic.link_rate / 8.0 / byte_times


def run_warnings(scenario: Scenario, model: Model, source: Any,
                 data: dict[str, Any]) -> list[str]:
    """One line per thing the user should know about this run (see the module)."""
    out: list[str] = []
    for sock in data["sockets"]:
        if sock.get("filter_refused"):
            out.append(f"socket {sock['index']}: the kernel refused the filter "
                       f"({sock['filter_refused']}): the socket captured unfiltered, "
                       f"as the kernel leaves it")
    traffic = scenario.traffic
    if traffic.kind in ("cbr", "poisson", "onoff") and traffic.rate and data["offered"] > 1:
        nic = model.hardware.nic
        most = link_capacity(model, traffic.size)
        if traffic.rate > most * 1.0001:
            asked = "rate asked for" if traffic._rate_given else "default rate"
            out.append(f"the {asked} ({traffic.rate:,.0f} frames/s) exceeds what the "
                       f"link carries: at most {most:,.0f} frames/s of {traffic.size} bytes "
                       f"(+ FCS {nic.fcs}, preamble {nic.preamble}, gap {nic.ifg}) at "
                       f"{nic.link_rate / 1e6:g} Mbit/s; frames went back to back")
    replay = getattr(source, "replay_warnings", None)
    if replay is not None:
        out.extend(replay())
    offered, refused = data["offered"], data["mac_filtered"]
    if offered and refused * 2 > offered:
        promisc = any(s.promisc for s in scenario.sockets)
        why = ("" if promisc else
               ": the interface is not promiscuous (-p/--no-promisc or promisc=False)")
        out.append(f"{refused:,} of {offered:,} frames ({100 * refused / offered:.0f}%) were "
                   f"addressed to other stations and dropped by the NIC's address "
                   f"filter{why}")
    return out
