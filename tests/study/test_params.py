"""``--vary NAME=...``: names, values in the option's syntax, ranges, refusals."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsfsim.cli.common import InputError
from lsfsim.study.params import parse_vary, run_defaults, run_options


def test_names_are_the_run_options_without_dashes():
    names = set(run_options())
    assert {"rate", "size", "rcvbuf", "snaplen", "rx-ring", "readers", "reader-work", "model",
            "napi", "filter", "sockets", "drain", "promisc"} <= names
    assert run_options()["napi"].kwarg == "no_napi" and run_options()["napi"].negated
    assert run_options()["filter"].kwarg == "filter_expr"


def test_defaults_are_lsfsim_runs():
    from dataclasses import fields

    from lsfsim.cli.scenario_options import ScenarioOptions

    defaults = run_defaults()
    assert {f.name for f in fields(ScenarioOptions)} - {"overrides"} == set(defaults)
    # model None: the lecture's testbed (and, with nothing else given, its scenario)
    assert defaults["model"] is None and defaults["readers"] == 1 and defaults["seed"] == 1


@pytest.mark.parametrize("spec, values", [
    ("rcvbuf=4096..65536*2", (4096, 8192, 16384, 32768, 65536)),
    ("rate=10000..50000+20000", (10000.0, 30000.0, 50000.0)),
    ("speed=0.1..0.3+0.1", (0.1, 0.2, 0.3)),
    ("reader-work=0,10us,20us", ("0", "10us", "20us")),
    ("reader-work=0us..20us+10us", ("0us", "10us", "20us")),
    ("napi=true,false", (True, False)),
    ("kernel.rmem_max=128KiB,1MiB,16MiB", ("128KiB", "1MiB", "16MiB")),
    ("model=testbed,testbed-vm", ("testbed", "testbed-vm")),
    ("snaplen=96,1500..1500+1", (96, 1500)),
])
def test_values_and_ranges(spec, values):
    assert parse_vary(spec).values == values


@pytest.mark.parametrize("spec, message", [
    ("rcvbuf=abc", "--vary rcvbuf: 'abc' is not an integer"),
    ("bogus=1", "--vary bogus: no such run option or model field"),
    ("rx_ring=4", "did you mean 'rx-ring'?"),
    ("rate=5..1+1", "an empty range"),
    ("rate=1..5+0", "an empty range"),
    ("rcvbuf=1..8*1", "an empty range"),
    ("reader-work=1us..5ms+1us", "use one unit throughout a range"),
    ("sockets=-1", "'-1' is less than 0"),
    ("napi=maybe", "'maybe' is not true or false"),
    ("seed=1,2", "use --repeat"),
    ("rate=", "an empty value"),
    ("rate=1,1", "a value is given twice"),
    ("rate", "expected NAME=V1,V2"),
])
def test_refusals_name_the_parameter(spec, message):
    with pytest.raises(InputError, match=None) as err:
        parse_vary(spec)
    assert message in str(err.value)


@given(a=st.integers(1, 1000), n=st.integers(0, 50), step=st.integers(1, 100))
def test_arithmetic_range_is_every_step_up_to_the_end(a, n, step):
    b = a + n * step + step // 2
    values = parse_vary(f"rcvbuf={a}..{b}+{step}").values
    assert values[0] == a and all(v <= b for v in values)
    assert all(y - x == step for x, y in zip(values, values[1:], strict=False))
    assert values[-1] + step > b


@given(a=st.integers(1, 5000), f=st.integers(2, 5), k=st.integers(0, 8))
def test_geometric_range_multiplies(a, f, k):
    b = a * f ** k
    values = parse_vary(f"rcvbuf={a}..{b}*{f}").values
    assert list(values) == [a * f ** i for i in range(k + 1)]
    assert Decimal(values[-1]) * f > b


def test_sweep_takes_every_run_option_with_runs_default():
    import inspect

    from lsfsim.cli.main import app

    def params(name: str) -> dict:
        info = next(c for c in app.registered_commands if c.name == name)
        return dict(inspect.signature(info.callback).parameters)   # as typer sees it

    run, swp = params("run"), params("sweep")
    for kwarg, option in run_options().items():
        p = run[option.kwarg]
        assert option.kwarg in swp, kwarg
        assert swp[option.kwarg].default == p.default and \
            swp[option.kwarg].annotation == p.annotation, kwarg
    assert swp["overrides"].annotation == run["overrides"].annotation
