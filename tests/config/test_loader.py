"""Model files: every shipped model loads, constants agree with the kernel's own
formulas (and with the running kernel where it can answer), and every kind of
mistake gives one line with the file, line and field."""

from __future__ import annotations

import os
import platform
import re
import socket
import tomllib
from pathlib import Path

import pytest

from lsfsim.config import (
    COST_KEYS,
    Cost,
    Model,
    ModelError,
    list_models,
    load_model,
)

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
TESTBED = MODELS_DIR / "testbed.toml"
SHIPPED = ("testbed", "testbed-vm", "testbed-x86_64", "modern")


def _align(n: int, to: int) -> int:
    """SKB_DATA_ALIGN."""
    return (n + to - 1) // to * to


def _variant(tmp_path: Path, old: str, new: str, name: str = "x.toml") -> Path:
    """testbed.toml with one textual change, written to tmp_path."""
    text = TESTBED.read_text()
    assert old in text, old
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1))
    return path


def _line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def _error(path: Path) -> ModelError:
    with pytest.raises(ModelError) as exc:
        load_model(path)
    msg = str(exc.value)
    assert "\n" not in msg
    return exc.value


# --- the shipped models ------------------------------------------------------------------


def test_list_models_has_the_shipped_ones() -> None:
    assert set(SHIPPED) <= set(list_models())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads(name: str) -> None:
    m = load_model(name)
    assert m.name == name
    assert set(m.kernel.costs) == set(COST_KEYS)
    assert Path(m.source) == (MODELS_DIR / f"{name}.toml").resolve()
    costs = m.kernel.costs.values()
    assert all(c.fixed >= 0 and c.per_byte >= 0 and c.per_insn >= 0 for c in costs)
    # Loading by path gives the same model.
    assert load_model(MODELS_DIR / f"{name}.toml") == m


@pytest.mark.parametrize("name", SHIPPED)
def test_every_figure_has_a_comment(name: str) -> None:
    """Each key line carries a comment, or sits under a comment block."""
    exempt = {"name", "description", "type"}
    prev_comment = False
    for lineno, raw in enumerate((MODELS_DIR / f"{name}.toml").read_text().splitlines(), 1):
        line = raw.strip()
        if not line:
            prev_comment = False
            continue
        if line.startswith("#"):
            prev_comment = True
            continue
        m = re.match(r"^([A-Za-z0-9_]+)\s*=", line)
        if m and m[1] not in exempt:
            assert "#" in line or prev_comment, f"{name}.toml:{lineno}: {m[1]} has no comment"
        prev_comment = prev_comment and not line.startswith("[")


def test_testbed_constants_follow_the_2_6_33_formulas() -> None:
    m = load_model("testbed")
    k, skb = m.kernel.sizes, m.kernel.sizes
    assert m.kernel.arch == "i386" and k.word == 4
    # SK_RMEM_MAX = _SK_MEM_PACKETS * (sizeof(struct sk_buff) + 256)
    assert k.rmem_default == 256 * (skb.sizeof_sk_buff + 256) == 112640
    assert k.wmem_default == k.rmem_default
    assert k.rmem_max == 131071  # sk_init, RAM >= 512 MiB
    assert k.optmem_max == 4 * (2 * 1024 + 512)  # sizeof(long) * (2*UIO_MAXIOV + 512)
    assert k.sock_min_rcvbuf == 256
    assert m.hardware.nic.rx_ring == 2**5 and m.hardware.nic.tx_ring == 2**4
    assert m.napi_weight == 16  # rx_ring_size / 2
    assert m.kernel.version_tuple == (2, 6, 33)
    assert m.hardware.nic.link_rate == 100e6
    # truesize of a pcnet32 in-place buffer: SKB_DATA_ALIGN(1544 + 32) + 184 = 1784
    truesize = _align(skb.pkt_buf_skb + skb.net_skb_pad, skb.smp_cache_bytes) + skb.sizeof_sk_buff
    assert truesize == 1784


def test_modern_constants_follow_the_6_8_formulas() -> None:
    m = load_model("modern")
    k, skb = m.kernel.sizes, m.kernel.sizes
    assert m.kernel.version_tuple >= (6, 8, 0)
    c = skb.smp_cache_bytes
    skb_truesize_256 = 256 + _align(skb.sizeof_sk_buff, c) + _align(skb.sizeof_skb_shared_info, c)
    assert k.rmem_default == 256 * skb_truesize_256 == 212992
    assert k.sock_min_rcvbuf == 2048 + _align(skb.sizeof_sk_buff, c) == 2304
    assert k.optmem_max == 131072
    assert skb.net_ip_align == 0 and skb.net_skb_pad == max(32, c)


def _running_kernel() -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", platform.release())
    return (int(m[1]), int(m[2])) if m else (0, 0)


@pytest.mark.skipif(platform.system() != "Linux", reason="needs a Linux kernel to ask")
def test_modern_sock_min_rcvbuf_matches_the_running_kernel() -> None:
    """SO_RCVBUF 0 makes the kernel clamp to SOCK_MIN_RCVBUF; no privilege needed."""
    if _running_kernel() < (3, 5):
        pytest.skip(f"running kernel {platform.release()} predates SOCK_MIN_RCVBUF = 2048 + skb")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 0)
        got = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    assert load_model("modern").kernel.sizes.sock_min_rcvbuf == got


def test_modern_optmem_max_matches_the_running_kernel() -> None:
    path = Path("/proc/sys/net/core/optmem_max")
    if not path.exists() or _running_kernel() < (6, 8):
        pytest.skip(f"needs Linux >= 6.8 with /proc (running {platform.release()})")
    assert load_model("modern").kernel.sizes.optmem_max == int(path.read_text())


def test_vm_profile_differs_only_in_io_and_irq_costs() -> None:
    native, vm = load_model("testbed"), load_model("testbed-vm")

    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in d.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    a, b = flat(native.to_dict()), flat(vm.to_dict())
    differ = {key for key in a if a[key] != b[key]}
    assert differ == {
        "name", "description", "source", "hardware.nic.mac",
        "kernel.costs.hardirq.fixed",
        "kernel.costs.pcnet32_wio_read_csr.fixed",
        "kernel.costs.pcnet32_wio_write_csr.fixed",
        "kernel.costs.dev_set_promiscuity.fixed",
        # the tick: its interrupt as hardirq, and the clocksource read (a port I/O) in do_timer
        "kernel.costs.smp_apic_timer_interrupt.fixed",
        "kernel.costs.do_timer.fixed",
    }
    port_native, port_vm = 0.5e-6, 2e-6  # one inw/outw
    assert vm.kernel.costs["do_timer"]() - native.kernel.costs["do_timer"]() == \
        pytest.approx(port_vm)
    assert vm.kernel.costs["smp_apic_timer_interrupt"]() == vm.kernel.costs["hardirq"]()
    for key in ("pcnet32_wio_read_csr", "pcnet32_wio_write_csr"):
        assert native.kernel.costs[key]() == pytest.approx(2 * port_native)
        assert vm.kernel.costs[key]() == pytest.approx(2 * port_vm)
    assert vm.kernel.costs["hardirq"]() == pytest.approx(3e-6)
    # The ISR of the lecture's trace: 2 CSR reads + 2 CSR writes.  VM: 3 + 0.2 + 16 us.
    c = vm.kernel.costs
    isr = (c["hardirq"]() + c["pcnet32_interrupt"]() + c["__napi_schedule"]()
           + 2 * c["pcnet32_wio_read_csr"]() + 2 * c["pcnet32_wio_write_csr"]())
    assert isr == pytest.approx(3e-6 + 0.2e-6 + 16e-6)
    # dev_set_promiscuity contains 7 CSR accesses: the VM pays 3 us more for each.
    assert (c["dev_set_promiscuity"]() - native.kernel.costs["dev_set_promiscuity"]()
            == pytest.approx(7 * (4e-6 - 1e-6)))


# --- Cost --------------------------------------------------------------------------------


def test_cost_call_and_forms() -> None:
    c = Cost.model_validate({"fixed": "30ns", "per_insn": "4ns/insn", "per_byte": "0.3ns/B"})
    assert c() == pytest.approx(30e-9)
    assert c(ninsns=6) == pytest.approx(30e-9 + 6 * 4e-9)
    assert c(nbytes=100, ninsns=1) == pytest.approx(30e-9 + 100 * 0.3e-9 + 4e-9)
    assert Cost.model_validate("100ns") == Cost(fixed=100e-9)
    m = load_model("testbed")
    assert m.kernel.costs["memcpy"](nbytes=60) == pytest.approx(100e-9 + 60 * 0.3e-9)
    assert m.kernel.costs["sk_run_filter"](ninsns=1) == pytest.approx(34e-9)


# --- errors: one line, file, line, field ---------------------------------------------------


def test_unknown_key_names_file_line_field_and_suggests(tmp_path: Path) -> None:
    path = _variant(tmp_path, "rx_copybreak = 200", "rx_copybreak = 200\nrx_copybrek = 100")
    err = _error(path)
    line = _line_of(path, "rx_copybrek = 100")
    assert str(err).startswith(f"{path}:{line}: hardware.nic.rx_copybrek: unknown key")
    assert "did you mean 'rx_copybreak'?" in str(err)
    assert (err.line, err.field) == (line, "hardware.nic.rx_copybrek")


def test_unknown_table(tmp_path: Path) -> None:
    path = _variant(tmp_path, "[hardware.cpu]", "[hardware.cpus]")
    err = str(_error(path))
    assert f":{_line_of(path, '[hardware.cpus]')}: hardware.cpus: unknown key" in err
    assert "did you mean 'cpu'?" in err


def test_wrong_unit_in_a_cost(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'packet_rcv = "100ns"', 'packet_rcv = "5MB"')
    line = _line_of(path, 'packet_rcv = "5MB"')
    assert str(_error(path)) == (
        f"{path}:{line}: kernel.costs.packet_rcv: expected a duration like '350ns' or '1.2us',"
        " got '5MB'"
    )


def test_wrong_unit_inside_a_cost_table(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'per_insn = "4ns/insn"', 'per_insn = "4ns"')
    err = str(_error(path))
    line = _line_of(path, 'per_insn = "4ns"')
    assert f":{line}: kernel.costs.sk_run_filter.per_insn: expected a per-instruction cost" in err


def test_wrong_unit_in_hardware(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'link_rate = "100Mbit/s"', 'link_rate = "100ms"')
    err = str(_error(path))
    assert f":{_line_of(path, 'link_rate')}: hardware.nic.link_rate: expected a link rate" in err


def test_bare_number_with_a_unit_field_is_refused(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'dma_latency = "1us"', "dma_latency = 1")
    err = str(_error(path))
    assert "hardware.nic.dma_latency" in err and "bare number" in err
    path = _variant(tmp_path, 'hardirq = "800ns"', "hardirq = 800", "y.toml")
    err = str(_error(path))
    assert f":{_line_of(path, 'hardirq = 800')}: kernel.costs.hardirq:" in err


def test_rx_ring_not_a_power_of_two(tmp_path: Path) -> None:
    path = _variant(tmp_path, "rx_ring = 32 ", "rx_ring = 33 ")
    err = str(_error(path))
    assert err.startswith(f"{path}:{_line_of(path, 'rx_ring = 33')}: hardware.nic.rx_ring: ")
    assert "powers of two" in err and "round 33 up to 64" in err


@pytest.mark.parametrize("size", [2, 1024, 0])
def test_ring_size_out_of_range(tmp_path: Path, size: int) -> None:
    path = _variant(tmp_path, "tx_ring = 16 ", f"tx_ring = {size} ")
    assert "hardware.nic.tx_ring: pcnet32 ring sizes are powers of two from 4 to 512" in str(
        _error(path))


def test_irq_affinity_beyond_cpu_count(tmp_path: Path) -> None:
    path = _variant(tmp_path, "irq_affinity = 0 ", "irq_affinity = 5 ")
    err = _error(path)
    assert err.field == "hardware.cpu.irq_affinity"
    assert err.line == _line_of(path, "irq_affinity = 5")
    assert "cpu.count is 2" in str(err)


def test_missing_cost_key(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'tcp_send_ack = "1us"', "")
    err = _error(path)
    assert err.field == "kernel.costs"
    assert err.line == _line_of(path, "[kernel.costs]")
    assert str(err).endswith("missing cost key: tcp_send_ack")


def test_unknown_cost_key(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'skb_put = "10ns"', 'skb_putt = "10ns"')
    err = _error(path)
    assert err.field == "kernel.costs.skb_putt"
    assert err.line == _line_of(path, "skb_putt")
    assert "did you mean 'skb_put'?" in str(err)


def test_missing_required_field(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'version = "2.6.33"', "")
    assert "kernel.version: missing" in str(_error(path))


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("hz = 250", "hz = 200", "kernel.hz"),
        ('version = "2.6.33"', 'version = "two"', "kernel.version"),
        ('mac = "02:00:4c:53:46:01"', 'mac = "01:00:5e:00:00:01"', "hardware.nic.mac"),
        ('mac = "02:00:4c:53:46:01"', 'mac = "02:00:4c:53:46"', "hardware.nic.mac"),
        ('type = "pcnet32"', 'type = "e1000"', "hardware.nic.type"),
        ("alloc_fail_rate = 0", "alloc_fail_rate = 1.5", "hardware.nic.alloc_fail_rate"),
        ('napi_weight = "rx_ring/2"', "napi_weight = 0", "kernel.napi_weight"),
        ("count = 2 ", "count = 65 ", "hardware.cpu.count"),
        ("smp_cache_bytes = 64", "smp_cache_bytes = 48", "kernel.skb.smp_cache_bytes"),
        ("netdev_budget = 300", "netdev_budget = 0", "kernel.netdev_budget"),
    ],
)
def test_impossible_values(tmp_path: Path, old: str, new: str, field: str) -> None:
    path = _variant(tmp_path, old, new)
    err = _error(path)
    assert err.field == field
    assert err.line == _line_of(path, new.split(" =")[0] + " =")


def test_toml_syntax_error_keeps_line_and_column(tmp_path: Path) -> None:
    path = _variant(tmp_path, "hz = 250", "hz = = 250")
    line = _line_of(path, "hz = = 250")
    # the column of the second '=' (1-based), where a value was expected
    assert str(_error(path)).startswith(f"{path}:{line}:6: invalid TOML: ")


def test_source_may_not_be_set_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('source = "elsewhere"\n' + TESTBED.read_text())
    assert _error(path).field == "source"


def test_unknown_model_name_lists_the_available_ones() -> None:
    with pytest.raises(ModelError) as exc:
        load_model("tesbed")
    msg = str(exc.value)
    assert "unknown model 'tesbed'" in msg and "did you mean 'testbed'?" in msg
    for name in SHIPPED:
        assert name in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read model file"):
        load_model(tmp_path / "nope.toml")


def test_models_are_found_in_lsfsim_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mine.toml").write_text(TESTBED.read_text().replace('name = "testbed"', ""))
    monkeypatch.setenv("LSFSIM_MODELS", str(tmp_path))
    assert "mine" in list_models() and "testbed" in list_models()
    m = load_model("mine")
    assert m.name == "mine"  # defaults to the file stem
    assert Path(m.source) == (tmp_path / "mine.toml").resolve()


def test_model_error_is_a_value_error() -> None:
    assert issubclass(ModelError, ValueError)


# --- overrides, immutability, round trip ---------------------------------------------------


def test_overrides_revalidate() -> None:
    m = load_model("testbed")
    m64 = m.with_overrides({"hardware.nic.rx_ring": 64})
    assert m64.hardware.nic.rx_ring == 64 and m64.napi_weight == 32
    assert m.hardware.nic.rx_ring == 32  # the original is unchanged
    with pytest.raises(ModelError, match=r"hardware\.nic\.rx_ring: .*round 33 up to 64"):
        m.with_overrides({"hardware.nic.rx_ring": 33})
    with pytest.raises(ModelError, match=r"hardware\.cpu\.irq_affinity: CPU 5 does not exist"):
        m.with_overrides(hardware__cpu__irq_affinity=5)
    with pytest.raises(ModelError, match=r"hardware\.nic\.rx_rng: .*did you mean 'rx_ring'"):
        m.with_overrides({"hardware.nic.rx_rng": 64})
    with pytest.raises(ModelError, match=r"kernel\.costs\.packet_rcv: expected a duration"):
        m.with_overrides({"kernel.costs.packet_rcv": "5MB"})


def test_overrides_take_units_and_si_numbers() -> None:
    m = load_model("testbed")
    m2 = m.with_overrides({
        "kernel.costs.packet_rcv": "150ns",
        "kernel.costs.memcpy.per_byte": "1ns/B",
        "hardware.nic.link_rate": "1Gbit/s",
        "kernel.rmem_default": "256KiB",
        "kernel.napi_weight": 8,
        "hardware.nic.dma_latency": 2e-6,
    })
    assert m2.kernel.costs["packet_rcv"]() == pytest.approx(150e-9)
    assert m2.kernel.costs["memcpy"](nbytes=10) == pytest.approx(100e-9 + 10e-9)
    assert m2.hardware.nic.link_rate == 1e9
    assert m2.kernel.rmem_default == 262144
    assert m2.napi_weight == 8
    assert m2.hardware.nic.dma_latency == 2e-6
    assert m2.source == m.source


def test_models_are_immutable() -> None:
    m = load_model("testbed")
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        m.hardware.nic.rx_ring = 64  # type: ignore[misc]


@pytest.mark.parametrize("name", SHIPPED)
def test_to_dict_round_trips(name: str) -> None:
    m = load_model(name)
    d = m.to_dict()
    assert d["hardware"]["nic"]["link_rate"] == m.hardware.nic.link_rate
    assert Model.model_validate(d) == m
    import json

    assert json.loads(json.dumps(d)) == d


def test_shipped_files_are_plain_toml() -> None:
    for name in SHIPPED:
        with open(MODELS_DIR / f"{name}.toml", "rb") as f:
            data = tomllib.load(f)
        assert set(data["kernel"]["costs"]) == set(COST_KEYS)


def test_lsfsim_models_may_hold_several_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (b / "other.toml").write_text(TESTBED.read_text())
    monkeypatch.setenv("LSFSIM_MODELS", os.pathsep.join([str(a), str(b)]))
    assert load_model("other").hardware.nic.rx_ring == 32
