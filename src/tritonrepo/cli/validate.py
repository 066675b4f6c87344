"""``tritonrepo validate``: the verdict Triton would give, offline; ``--live`` asks the real server."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from tritonrepo.cli._cli_utils import ServerOpt, console, run_command


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
) -> None:
    """Check a model repository as Triton would load it: exit 0 clean, 1 violations, 2 usage or I/O error.

    Examples:

        tritonrepo validate model_repository

        tritonrepo validate model_repository --format github --ignore TR104

        tritonrepo validate model_repository --live
    """
    from tritonrepo.validate import validate_repository  # noqa: PLC0415
    from tritonrepo.validate.report import to_github, to_json, to_junit  # noqa: PLC0415

    report = validate_repository(repo, select, ignore)
    live_result = None
    if live:
        from tritonrepo.validate.live import live_check  # noqa: PLC0415

        live_result = live_check(repo, server)
    if fmt == ReportFormat.json:
        sys.stdout.write(to_json(report) + "\n")
    elif fmt == ReportFormat.github:
        sys.stdout.write(to_github(report))
    elif fmt == ReportFormat.junit:
        sys.stdout.write(to_junit(report))
    else:
        _render(report)
    if live_result is not None and fmt == ReportFormat.text:
        live_result.render(console)
    failed = bool(report.errors) or (warnings_as_errors and bool(report.warnings))
    if live_result is not None and not live_result.ok:
        failed = True
    if failed:
        raise typer.Exit(1)


def _render(report) -> None:
    current = None
    for f in report.findings:
        if f.model != current:
            current = f.model
            console.print(f"[bold]{f.model}[/]")
        color = "red" if f.severity.value == "error" else "yellow"
        console.print(f"  {f.location()} [{color}]{f.code}[/] {f.message}", highlight=False, soft_wrap=True)
        console.print(f"      fix: {f.fix}", highlight=False, soft_wrap=True)
    verdict = "[green]loads[/]" if report.loads() else "[red]would not load[/]"
    console.print(
        f"{len(report.models)} models, {len(report.errors)} errors, {len(report.warnings)} warnings: repository {verdict}",
        highlight=False,
    )
