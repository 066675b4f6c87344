"""``tritonrepo push`` / ``tritonrepo pull``: a model repository to and from S3-compatible object storage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from tritonrepo.cli._cli_utils import FormatOpt, OutputFormat, console, emit, run_command

EndpointOpt = Annotated[
    str | None,
    typer.Option("--endpoint-url", envvar="AWS_ENDPOINT_URL", help="S3 endpoint for MinIO, OSS, SeaweedFS, ..."),
]

PushForceOpt = Annotated[bool, typer.Option(
    "--force", help="Also replace files of versions that already exist remotely (they cannot change atomically).")]
PullForceOpt = Annotated[bool, typer.Option("--force", help="Replace DEST if it exists and is not empty.")]


@run_command
def push(
    repo: Annotated[Path, typer.Argument(help="Local model repository.")],
    url: Annotated[str, typer.Argument(help="s3://bucket/prefix")],
    endpoint_url: EndpointOpt = None,
    force: PushForceOpt = False,
    validate: Annotated[bool, typer.Option("--validate/--no-validate", help="Refuse a repository with validation errors.")] = True,
    fmt: FormatOpt = OutputFormat.text,
) -> None:
    """Upload the changed files (by SHA-256) so that a Triton server polling the prefix never sees a half-uploaded model.

    Examples:

        tritonrepo push model_repository s3://models/prod

        AWS_ENDPOINT_URL=http://minio:9000 tritonrepo push model_repository s3://models/prod
    """
    from tritonrepo.storage import parse_url, push as run_push, triton_url  # noqa: PLC0415

    location = parse_url(url)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), console=console,
                  disable=fmt != OutputFormat.text or not console.is_terminal, transient=True) as bar:
        task = bar.add_task("uploading", total=None)
        result = run_push(repo, url, endpoint_url=endpoint_url, force=force, check=validate,
                          progress=lambda rel, n: bar.update(task, advance=n, description=rel))
    data = {
        "url": str(location), "uploaded": result.uploaded, "unchanged": result.unchanged, "bytes": result.bytes,
        "stale_remote_files": result.stale, "triton_model_repository": triton_url(location, endpoint_url),
    }

    def render() -> None:
        console.print(f"[bold green]pushed[/] {repo} -> {location}: {len(result.uploaded)} files uploaded "
                      f"({result.bytes} bytes), {result.unchanged} unchanged")
        if result.stale:
            console.print(f"[yellow]note:[/] {len(result.stale)} remote files are not in {repo} (left in place)")
        console.print(f"serve with: tritonserver --model-repository={data['triton_model_repository']}")

    emit(fmt, data, render)


@run_command
def pull(
    url: Annotated[str, typer.Argument(help="s3://bucket/prefix")],
    dest: Annotated[Path, typer.Argument(help="Local directory to create.")],
    endpoint_url: EndpointOpt = None,
    force: PullForceOpt = False,
    fmt: FormatOpt = OutputFormat.text,
) -> None:
    """Download a repository from object storage (staged beside DEST, then renamed into place).

    Examples:

        tritonrepo pull s3://models/prod ./model_repository
    """
    from tritonrepo.storage import pull as run_pull  # noqa: PLC0415

    count = run_pull(url, dest, endpoint_url=endpoint_url, force=force)
    data = {"url": url, "dest": str(dest.resolve()), "files": count}
    emit(fmt, data, lambda: console.print(f"[bold green]pulled[/] {url} -> {dest}: {count} files"))
