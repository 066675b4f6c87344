"""Shared CLI pieces: option aliases, the one place errors are formatted, and output for people or machines."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from tritonrepo.errors import TritonRepoError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


class OutputFormat(str, Enum):
    """``--format``: ``text`` (tables for people) or ``json`` (one JSON document on stdout)."""

    text = "text"
    json = "json"


RepoOpt = Annotated[
    Path, typer.Option("--repo", "-r", help="Model repository directory.", envvar="TRITONREPO_REPO")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing version folder or config.")]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="Output for people (text) or machines (json).")]
ServerOpt = Annotated[
    Path | None,
    typer.Option("--server", help="tritonserver binary (default: the nvidia-pytriton wheel's, else PATH)."),
]


def quiet_libraries() -> None:
    """Silence the warnings torch/transformers/optimum print during export (our own output says what matters)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    for name in ("transformers", "optimum", "torch", "onnx", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import transformers  # noqa: PLC0415

        transformers.logging.set_verbosity_error()
        from optimum.utils import logging as optimum_logging  # noqa: PLC0415

        optimum_logging.set_verbosity_error()
    except (ImportError, AttributeError):  # pragma: no cover
        pass


def run_command(func: F) -> F:
    """Decorator for every command: a :class:`TritonRepoError` becomes one line on stderr and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TritonRepoError as exc:
            err_console.print(f"[bold red]error:[/] {exc.one_line()}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: nothing was written", highlight=False)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def emit(fmt: OutputFormat, data: dict, render: Callable[[], None]) -> None:
    """Print ``data`` as JSON for machines, or call ``render`` to print it for people."""
    if fmt == OutputFormat.json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        render()


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    """A rich table with ``columns`` and ``rows`` (values printed with ``str``)."""
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[str(v) for v in r])
    return t


def tensor_dicts(tensors) -> list[dict]:
    """Config inputs/outputs as ``[{"name", "data_type", "dims"}]`` for tables and JSON."""
    from tritonrepo.dtypes import triton_type_name  # noqa: PLC0415

    return [{"name": t.name, "data_type": triton_type_name(t.data_type), "dims": list(t.dims)} for t in tensors]
