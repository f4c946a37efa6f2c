"""Entry point: ``lsfsim [--version] COMMAND ...``."""

from __future__ import annotations

import typer

from lsfsim import __version__

app = typer.Typer(
    name="lsfsim",
    help="Simulate the Linux packet-capture path (pcnet32, NAPI, PF_PACKET, classic BPF).",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        from lsfsim.bpf.pcapc import libpcap_version

        typer.echo(f"lsfsim {__version__}")
        typer.echo(f"libpcap: {libpcap_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True,
        help="Show the version and the libpcap in use.",
    ),
) -> None:
    """lsfsim: a discrete-event simulator of Linux packet capture."""


@app.command("models")
def models_command() -> None:
    """List the models (models/NAME.toml) usable with --model, with their descriptions."""
    from lsfsim.cli.common import fail
    from lsfsim.config.model import ModelError, list_models, load_model

    for name in list_models():
        try:
            model = load_model(name)
        except ModelError as exc:
            fail(str(exc))
        hw, kernel = model.hardware, model.kernel
        typer.echo(f"{name:14} Linux {kernel.version}, {hw.cpu.count} CPU(s), "
                   f"{hw.nic.type} at {hw.nic.link_rate / 1e6:g} Mbit/s: {model.description}")


def _register() -> None:
    from lsfsim.cli import bpf_cmd

    app.add_typer(bpf_cmd.app, name="bpf")
    from lsfsim.cli import regress_cmd, run_cmd, study_cmd, sweep_cmd, trace_cmd

    run_cmd.register(app)
    trace_cmd.register(app)
    sweep_cmd.register(app)
    study_cmd.register(app)
    regress_cmd.register(app)


_register()


def main() -> None:
    app()
