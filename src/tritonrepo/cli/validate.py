"""``tritonrepo validate``: the verdict Triton would give, offline; ``--live`` asks the real server."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from tritonrepo.cli._cli_utils import ServerOpt, console, run_command

DEFAULT_TRITON_VERSION = "24.10"  # tritonrepo.releases.DEFAULT.ngc (not imported: --help stays fast)


class ReportFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"
    junit = "junit"


@run_command
def validate(
    repo: Annotated[Path, typer.Argument(help="Model repository.")] = Path("model_repository"),
    select: Annotated[list[str] | None, typer.Option("--select", help="Only rules with this code prefix (repeat).")] = None,
    ignore: Annotated[list[str] | None, typer.Option("--ignore", help="Skip rules with this code prefix (repeat).")] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="text, json, github (annotations) or junit.")] = ReportFormat.text,
    warnings_as_errors: Annotated[bool, typer.Option("--warnings-as-errors", help="Exit 1 on warnings too.")] = False,
    live: Annotated[bool, typer.Option("--live", help="Also load the repository in a real Triton server and replay golden samples.")] = False,
    server: ServerOpt = None,
    strict_model_config: Annotated[bool, typer.Option("--strict-model-config", help="As tritonserver's: no auto-complete, every model needs config.pbtxt.")] = False,
    disable_auto_complete_config: Annotated[bool, typer.Option("--disable-auto-complete-config", help="As tritonserver's: no backend auto-complete (model.py's auto_complete_config is not run).")] = False,
    backend_directory: Annotated[Path | None, typer.Option("--backend-directory", help="As tritonserver's: resolve backends, runtimes and custom libraries there (default: the standard backends of --triton-version).")] = None,
    backend_config: Annotated[list[str] | None, typer.Option("--backend-config", help="As tritonserver's: <backend>,<setting>=<value> (repeat).")] = None,
    model_control_mode: Annotated[str, typer.Option("--model-control-mode", help="As tritonserver's: none, poll or explicit.")] = "none",
    load_model: Annotated[list[str] | None, typer.Option("--load-model", help="As tritonserver's (explicit mode): check only this model and the models its ensembles call (repeat; * for all).")] = None,
    repoagent_directory: Annotated[Path | None, typer.Option("--repoagent-directory", help="As tritonserver's: where repository agents are found.")] = None,
    triton_version: Annotated[str, typer.Option("--triton-version", help="Release whose rules apply: NGC yy.mm (24.10) or server version (2.51).")] = DEFAULT_TRITON_VERSION,
    no_exec: Annotated[bool, typer.Option("--no-exec", help="Never run model.py (untrusted repositories): Python models' auto_complete_config is skipped and reported.")] = False,
    exec_timeout: Annotated[float, typer.Option("--exec-timeout", help="Seconds one model.py auto_complete_config may run.")] = 30.0,
    verify_hashes: Annotated[bool, typer.Option("--verify-hashes", help="Hash the files a tritonrepo.json manifest records (TR701); default: compare sizes only.")] = False,
) -> None:
    """Check a model repository as Triton would load it: exit 0 clean, 1 violations, 2 usage or I/O error.

    Examples:

        tritonrepo validate model_repository

        tritonrepo validate model_repository --format github --ignore TR104

        tritonrepo validate model_repository --live

        tritonrepo validate model_repository --disable-auto-complete-config --triton-version 24.10

        tritonrepo validate model_repository --model-control-mode explicit --load-model pipeline --no-exec
    """
    from tritonrepo.cli._validate_core import run  # noqa: PLC0415
    from tritonrepo.validate.options import ServerOptions, parse_backend_config  # noqa: PLC0415

    options = ServerOptions(
        strict_model_config=strict_model_config,
        disable_auto_complete_config=disable_auto_complete_config,
        backend_directory=backend_directory,
        backend_config=parse_backend_config(backend_config),
        model_control_mode=model_control_mode,
        load_model=tuple(load_model or ()),
        repoagent_directory=repoagent_directory,
        triton_version=triton_version,
        exec_model_py=not no_exec,
        exec_timeout=exec_timeout,
        verify_hashes=verify_hashes,
    )
    code = run(repo, select, ignore, fmt.value, warnings_as_errors, options)
    if code == 2:
        raise typer.Exit(2)
    if live:
        from tritonrepo.validate.live import live_check  # noqa: PLC0415

        live_result = live_check(repo, server)
        if fmt == ReportFormat.text:
            live_result.render(console)
        if not live_result.ok:
            code = 1
    if code:
        raise typer.Exit(code)
