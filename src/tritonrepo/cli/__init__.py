"""The ``tritonrepo`` command line (typer). Each command lives in its own module."""

from __future__ import annotations

import typer

from tritonrepo import __version__
from tritonrepo.cli import add_hf, bench, ensemble, infer, init, package, push, serve, tune, validate

app = typer.Typer(
    name="tritonrepo",
    help="Turn Hugging Face checkpoints into Triton Inference Server model repositories.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command(name="init")(init.init)
app.command(name="add-hf")(add_hf.add_hf)
app.command(name="ensemble")(ensemble.ensemble)
app.command(name="serve")(serve.serve)
app.command(name="infer")(infer.infer)
app.command(name="validate")(validate.validate)
app.command(name="push")(push.push)
app.command(name="pull")(push.pull)
app.command(name="package")(package.package)
app.command(name="bench")(bench.bench)
app.command(name="tune")(tune.tune)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tritonrepo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Turn Hugging Face checkpoints into Triton Inference Server model repositories."""


def main() -> None:
    """Console-script entry point."""
    app()
