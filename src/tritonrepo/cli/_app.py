"""The typer application: one lazily imported click command per entry of ``tritonrepo.cli.COMMANDS``."""

from __future__ import annotations

import importlib

import click
import typer
from typer.core import TyperGroup

from tritonrepo import __version__

from tritonrepo.cli import COMMANDS


def _load(name: str) -> click.Command:
    """Import the command's module and build its click command (as ``app.command(name=...)(fn)`` would)."""
    module, function = COMMANDS[name].split(":")
    fn = getattr(importlib.import_module(f"tritonrepo.cli.{module}"), function)
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command(name=name)(fn)
    return typer.main.get_command(single)


class _LazyGroup(TyperGroup):
    """A group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name not in self.commands:
            self.commands[cmd_name] = _load(cmd_name)
        return self.commands[cmd_name]


app = typer.Typer(
    name="tritonrepo",
    cls=_LazyGroup,
    help="Turn Hugging Face checkpoints into Triton Inference Server model repositories.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tritonrepo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Turn Hugging Face checkpoints into Triton Inference Server model repositories."""
