"""Shared CLI pieces: option aliases, the one place errors are formatted, and output for people or machines."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import sys
import threading
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


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: raised in the main thread so every ``finally`` (staging dirs, servers) runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def interruptible():
    """SIGINT and SIGTERM raise :class:`Interrupted` once; further signals are ignored while cleanup runs.

    Without this, SIGTERM kills Python outright and no ``finally`` runs: staging folders, a starting tritonserver,
    its stubs and their ``/dev/shm`` regions would stay behind. Previous handlers are restored on exit. Outside
    the main thread (where handlers cannot be set) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum, _frame):
        if fired:
            return  # cleanup in progress: let it finish
        fired.append(signum)
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def json_stdout(enabled: bool):
    """While a ``--format json`` command runs, everything else written to stdout goes to stderr.

    Libraries (torch's ONNX exporter prints its IR from C++, progress bars, ``print``) write to file descriptor 1;
    the JSON document must be the only thing there. :func:`emit` writes to the original stdout. Works on the
    descriptor when stdout is a real file, and on ``sys.stdout`` always (so ``CliRunner`` captures the JSON).
    """
    global _json_stream
    if not enabled:
        yield
        return
    original = sys.stdout
    saved_fd = None
    try:
        fd = original.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd == 1:
        original.flush()
        saved_fd = os.dup(1)
        _json_stream = open(saved_fd, "w", closefd=False, encoding="utf-8")  # noqa: SIM115
        os.dup2(2, 1)
    else:
        _json_stream = original
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = original
        with contextlib.suppress(Exception):
            _json_stream.flush()
        if saved_fd is not None:
            with contextlib.suppress(OSError):
                sys.stderr.flush()
            os.dup2(saved_fd, 1)
            os.close(saved_fd)
        _json_stream = None


_json_stream = None


def run_command(func: F) -> F:
    """Decorator for every command: a :class:`TritonRepoError` becomes one line on stderr and its exit code.

    SIGINT/SIGTERM unwind the command (exit 130/143) so its clean-up runs (see :func:`interruptible`); with
    ``--format json`` stdout carries the JSON document only (see :func:`json_stdout`), for a failure
    ``{"error", "hint", "exit_code"}`` (the one-line error still goes to stderr).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        json_mode = kwargs.get("fmt") is OutputFormat.json
        try:
            with interruptible(), json_stdout(json_mode):
                try:
                    return func(*args, **kwargs)
                except TritonRepoError as exc:
                    if json_mode:  # machines get a JSON document on stdout for failures too
                        emit(OutputFormat.json, {"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code},
                             lambda: None)
                    raise
        except TritonRepoError as exc:
            err_console.print(f"[bold red]error:[/] {exc.one_line()}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            err_console.print(f"interrupted ({signal.Signals(signum).name}): stopped and cleaned up", highlight=False)
            raise typer.Exit(128 + signum) from None

    return wrapper  # type: ignore[return-value]


def emit(fmt: OutputFormat, data: dict, render: Callable[[], None]) -> None:
    """Print ``data`` as JSON for machines, or call ``render`` to print it for people."""
    if fmt == OutputFormat.json:
        out = _json_stream or sys.stdout
        out.write(json.dumps(data, indent=2, default=str) + "\n")
        out.flush()
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
