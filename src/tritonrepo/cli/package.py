"""``tritonrepo package``: Dockerfile, requirements, Kubernetes/KServe/PAI-EAS manifests and a docker run line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tritonrepo.cli._cli_utils import FormatOpt, OutputFormat, console, emit, run_command

PackageForceOpt = Annotated[bool, typer.Option("--force", help="Replace the artefacts in --out if it is not empty.")]


@run_command
def package(
    repo: Annotated[Path, typer.Argument(help="Model repository.")] = Path("model_repository"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the artefacts.")] = Path("deploy"),
    triton_version: Annotated[str, typer.Option("--triton-version", help="Known NGC release yy.mm or server version 2.x[.y] (23.10 … 25.06).")] = "24.10",
    name: Annotated[str, typer.Option("--name", help="Service name.")] = "triton",
    image: Annotated[str | None, typer.Option("--image", help="Image tag (default NAME:latest).")] = None,
    model_repository_url: Annotated[str | None, typer.Option("--model-repository-url", help="Read the repository from s3://… instead of the image.")] = None,
    endpoint_url: Annotated[str | None, typer.Option("--endpoint-url", help="S3 endpoint (MinIO/OSS/SeaweedFS).")] = None,
    pvc: Annotated[str | None, typer.Option("--pvc", help="Read the repository from this PersistentVolumeClaim.")] = None,
    oss_url: Annotated[str | None, typer.Option("--oss-url", help="oss://bucket/prefix for PAI-EAS.")] = None,
    replicas: Annotated[int, typer.Option("--replicas")] = 1,
    force: PackageForceOpt = False,
    fmt: FormatOpt = OutputFormat.text,
) -> None:
    """Write deploy artefacts generated from what the repository contains.

    Examples:

        tritonrepo package model_repository --out deploy

        tritonrepo package model_repository --model-repository-url s3://models/prod --endpoint-url http://minio:9000
    """
    from tritonrepo.package import PackageOptions, inspect_repository  # noqa: PLC0415
    from tritonrepo.package import package as run_package  # noqa: PLC0415

    opts = PackageOptions(triton_version=triton_version, name=name, image=image, model_repository_url=model_repository_url,
                          endpoint_url=endpoint_url, pvc=pvc, oss_url=oss_url, replicas=replicas)
    facts = inspect_repository(Path(repo))
    written = run_package(repo, out, opts, force=force, facts=facts)
    data = {"artefacts": {k: str(v) for k, v in written.items()}, "requirements": facts.requirements,
            "python_instances": facts.python_instances, "shm_mib": facts.shm_mib, "gpu": facts.gpu}

    def render() -> None:
        console.print(f"[bold green]packaged[/] {repo} -> {out}: {', '.join(written)}")
        console.print(f"requirements: {', '.join(f'{k}=={v}' for k, v in facts.requirements.items()) or 'none'}; "
                      f"/dev/shm {facts.shm_mib} MiB for {facts.python_instances} Python-backend instance(s)")

    emit(fmt, data, render)
