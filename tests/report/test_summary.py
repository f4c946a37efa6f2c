"""The run summary's tables: each names what it counts, and its rows add up."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from lsfsim.machine import Machine
from lsfsim.report.summary import offered_table, socket_table
from lsfsim.scenario import Scenario, SocketSpec, TrafficSpec
from tests.sim.helpers import model


def _text(table) -> str:
    console = Console(width=140, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


def _rows(text: str) -> dict[str, tuple[int, float]]:
    """label -> (count, percent) of each body row of a rendered table."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("│").split("│")]
        if len(cells) == 4 and cells[3].endswith("%"):
            rows[cells[0]] = (int(cells[2].replace(",", "")), float(cells[3][:-1]))
    return rows


@pytest.fixture(scope="module")
def nc_result():
    """The lecture's transfer, short: the host's ACKs reach the socket too."""
    scenario = Scenario(traffic=TrafficSpec(kind="nc", bytes=60_000),
                        sockets=[SocketSpec(filter=None, promisc=False)])
    return Machine(model(), scenario).run()


def test_socket_table_shows_outgoing_apart_and_shares_of_what_it_saw(nc_result):
    s = nc_result.sockets[0]
    assert s["seen_outgoing"] > 0 and s["seen"] > nc_result["offered"]
    text = _text(socket_table(s))
    assert "% of seen" in text and "of offered" not in text
    rows = _rows(text)
    assert rows["seen: from the wire"][0] == s["seen"] - s["seen_outgoing"]
    assert rows["seen: sent by this host"][0] == s["seen_outgoing"]
    fates = [v for k, v in rows.items() if not k.startswith("seen:")]
    assert sum(n for n, _ in fates) == s["seen"]
    assert sum(p for _, p in fates) == pytest.approx(100.0, abs=0.2)


def test_offered_table_adds_up_to_the_frames_offered(nc_result):
    text = _text(offered_table(nc_result.data))
    offered = nc_result["offered"]
    assert re.search(rf"where the {offered:,} frames offered", text)
    rows = _rows(text)
    assert sum(n for n, _ in rows.values()) == offered
    assert all(p <= 100.0 for _, p in rows.values())
    assert rows["reached netif_receive_skb (the taps and IP)"][0] == nc_result["received"]


def test_frames_left_in_the_ring_and_backlog_are_rows_of_their_own():
    """A run stopped under load (pre-NAPI, the emulated NIC): frames still in the ring,
    on the backlog and on the wire are places of their own, and the rows still add up."""
    scenario = Scenario(traffic=TrafficSpec(kind="cbr", rate=148_000, packets=400, size=60),
                        sockets=[SocketSpec(filter=None, promisc=False)], drain=False,
                        max_sim_seconds=0.7e-3, napi=False)
    result = Machine(model("testbed-vm"), scenario).run()
    places = result["conservation"]["places"]
    assert places["in_rx_ring"] and places["in_backlog"] and places["on_wire"]
    rows = _rows(_text(offered_table(result.data)))
    assert sum(n for n, _ in rows.values()) == result["offered"]
    for key in ("in_rx_ring", "in_backlog", "on_wire"):
        assert rows[f"still {key.replace('_', ' ')} at the end"][0] == places[key]
