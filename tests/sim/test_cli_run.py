"""``lsfsim run``: options, JSON output, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from lsfsim.cli.main import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, ["run", *args])


def test_cbr_run_writes_the_documented_json(tmp_path):
    out = tmp_path / "r.json"
    res = _run("--traffic", "cbr", "--rate", "50000", "--size", "64", "--count", "500",
               "--json", str(out), "-q")
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    for key in ("offered", "rx_missed_errors", "rx_dropped", "softnet_dropped", "time_squeeze",
                "interrupts", "napi_polls", "received", "sockets", "sim_seconds",
                "wall_seconds", "events"):
        assert key in data, key
    assert data["offered"] == 500
    sock = data["sockets"][0]
    for key in ("filtered", "tp_packets", "tp_drops", "delivered", "queued"):
        assert key in sock
    assert sock["delivered"] == 500          # the cbr source sends from the lecture's host


def test_filter_and_sockets_options():
    res = _run("--traffic", "cbr", "--count", "300", "--filter", "tcp", "--sockets", "2", "-q",
               "--json", "-")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [s["filtered"] for s in data["sockets"]] == [300, 300]


def test_summary_names_the_kernel_counters():
    res = _run("--traffic", "cbr", "--count", "200", "--rcvbuf", "300", "--reader-work", "1ms")
    assert res.exit_code == 0, res.output
    for text in ("rx_missed_errors", "tp_drops", "PACKET_STATISTICS", "hi", "si",
                 "pcnet32_wio_write_csr", "latency"):
        assert text in res.output


def test_no_napi_option_counts_softnet():
    res = _run("--traffic", "cbr", "--count", "200", "--no-napi", "-q", "--json", "-")
    data = json.loads(res.stdout)
    assert data["napi_polls"] == 0
    # softnet_stat "total" counts netif_rx and netif_receive_skb: twice per frame
    assert sum(s["processed"] for s in data["softnet"]) == 2 * 200


def test_softnet_processed_counts_netif_rx_and_netif_receive_skb():
    """As 2.6.33's dev.c: netif_rx counts a frame before its backlog test (dropped ones
    too), netif_receive_skb counts it again, so pre-NAPI processed = offered + received;
    with NAPI only netif_receive_skb counts."""
    args = ("--model", "testbed-vm", "--traffic", "cbr", "--rate", "148810", "--size", "60",
            "--count", "1500", "-q", "--json", "-")
    pre = json.loads(_run(*args, "--no-napi").stdout)
    assert pre["softnet_dropped"] > 0
    processed = sum(s["processed"] for s in pre["softnet"])
    assert processed == pre["offered"] + pre["received"] == 2 * pre["received"] + \
        pre["softnet_dropped"]
    napi = json.loads(_run(*args).stdout)
    assert sum(s["processed"] for s in napi["softnet"]) == napi["received"]


def test_bad_inputs_give_one_line_errors(tmp_path):
    bad_model = tmp_path / "m.toml"
    bad_model.write_text("[hardware]\nname = 1\n")
    cases = [
        ("--traffic", "ftp"),
        ("--traffic", "pcap"),
        ("--pcap", str(tmp_path / "missing.pcap")),
        ("--filter", "host and and"),
        ("--model", "no-such-model"),
        ("--model", str(bad_model)),
        ("--reader-work", "5 parsecs"),
        ("--rx-ring", "33"),
        ("--size", "10"),
    ]
    for args in cases:
        res = _run(*args, "-q")
        assert res.exit_code == 2, (args, res.output)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("lsfsim: error:"), (args, res.output)
        assert "Traceback" not in res.output


def test_json_is_not_overwritten_by_a_failed_run(tmp_path):
    out = tmp_path / "r.json"
    out.write_text('{"old": true}')
    res = _run("--filter", "host and and", "--json", str(out), "-q")
    assert res.exit_code == 2
    assert json.loads(out.read_text()) == {"old": True}


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "lsfsim", "run", "--traffic", "cbr",
                           "--count", "50", "-q"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_models_command_lists_the_shipped_models():
    res = runner.invoke(app, ["models"])
    assert res.exit_code == 0, res.output
    names = [line.split()[0] for line in res.output.splitlines()]
    assert {"testbed", "testbed-vm", "modern"} <= set(names)
    assert "Linux 2.6.33" in res.output


def test_senders_are_seen_by_the_tap_as_outgoing():
    res = _run("--traffic", "cbr", "--count", "100", "--filter", "udp", "--senders", "1",
               "--send-count", "40", "--send-rate", "20000", "-q", "--json", "-")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["senders"] == [{"sent": 40, "errors": {}}]
    sock = data["sockets"][0]
    assert sock["seen_outgoing"] == 40
    assert sock["delivered"] == 100 + 40
    assert data["netdev"]["tx_packets"] == 40


def test_json_to_stdout_keeps_stdout_pure():
    """With ``--json -`` the summary and /proc views go to stderr: ``| jq`` works."""
    proc = subprocess.run([sys.executable, "-m", "lsfsim", "run", "--traffic", "cbr",
                           "--count", "200", "--proc", "--json", "-"],
                          capture_output=True, text=True, check=True)
    data = json.loads(proc.stdout)
    assert data["offered"] == 200
    assert "PACKET_STATISTICS" in proc.stderr and "softnet_stat" in proc.stderr


def test_fates_option_writes_one_record_per_frame(tmp_path):
    args = ("--model", "testbed-vm", "--traffic", "cbr", "--rate", "148810", "--size", "60",
            "--count", "300", "--rx-ring", "4", "--rcvbuf", "4000", "--reader-work", "30us",
            "-q")
    out = tmp_path / "fates.jsonl"
    res = _run(*args, "--fates", str(out), "--json", str(tmp_path / "r.json"))
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "r.json").read_text())
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["frame"] for r in records) == list(range(data["offered"]))
    places = data["conservation"]["places"]
    for place, n in places.items():
        assert sum(1 for r in records if r["place"] == place) == n
    table = tmp_path / "fates.csv"
    res = _run(*args, "--fates", str(table))
    assert res.exit_code == 0, res.output
    lines = table.read_text().splitlines()
    assert lines[0].startswith("frame,place,t,length,ring_host_owned,ring_size,")
    assert len(lines) == 1 + data["offered"]
    assert sum(1 for ln in lines if ",rcvbuf_drop," in ln) == data["sockets"][0]["rcvbuf_drops"]


def test_fates_path_is_checked_first_and_a_failed_run_keeps_the_old_file(tmp_path):
    res = _run("--count", "5", "--fates", str(tmp_path / "no" / "such" / "f.jsonl"))
    assert res.exit_code == 2 and "--fates" in res.output
    old = tmp_path / "f.jsonl"
    old.write_text("old\n")
    prog = tmp_path / "bad.txt"        # a jump out of range: sk_chk_filter refuses it
    prog.write_text("(000) ldh [12]\n(001) jeq #0x800 jt 2 jf 3\n(002) ret #65535\n")
    res = _run("--traffic", "cbr", "--count", "5", "--filter-file", str(prog),
               "--fates", str(old))
    assert res.exit_code == 2 and "EINVAL" in res.output
    assert old.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
