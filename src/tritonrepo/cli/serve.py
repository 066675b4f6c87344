"""``tritonrepo serve``: a real Triton server on the repository (a folder or ``s3://…``), until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from tritonrepo.cli._cli_utils import FormatOpt, OutputFormat, ServerOpt, console, emit, run_command
from tritonrepo.errors import TritonRepoError
from tritonrepo.server import TritonServer, find_engine


def _remote_repository(repo: str, endpoint_url: str | None) -> str:
    """The ``--model-repository`` value for an ``s3://`` REPO, after checking that the prefix holds objects.

    ``s3://bucket/prefix`` with ``--endpoint-url``/``AWS_ENDPOINT_URL`` becomes Triton's
    ``s3://http://host:port/bucket/prefix``; a REPO already in that form is passed as is. Credentials and region
    come from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``), which
    Triton's S3 client reads too.
    """
    from tritonrepo.storage import S3Location, client, explain, parse_url, triton_url  # noqa: PLC0415

    rest = repo[len("s3://"):]
    if rest.startswith(("http://", "https://")):  # Triton's own form: s3://http://host:port/bucket/prefix
        scheme, _, tail = rest.partition("://")
        host, _, path = tail.partition("/")
        endpoint_url = f"{scheme}://{host}"
        bucket, _, prefix = path.partition("/")
        location = S3Location(bucket, prefix.strip("/"))
        if not bucket:
            raise TritonRepoError(f"{repo}: no bucket in the URL", "use s3://http://host:port/bucket/prefix")
    else:
        location = parse_url(repo)
    try:
        found = client(endpoint_url).list_objects_v2(Bucket=location.bucket, Prefix=location.key(""), MaxKeys=1)
    except Exception as exc:  # noqa: BLE001 - botocore raises many types; one line each
        raise explain(exc, location, endpoint_url) from None
    if not found.get("KeyCount"):
        raise TritonRepoError(f"{location}: no objects under this prefix", "push a repository there first (tritonrepo push)")
    return triton_url(location, endpoint_url)


@run_command
def serve(
    repo: Annotated[str, typer.Argument(help="Model repository: a folder, or s3://bucket/prefix.")] = "model_repository",
    server: ServerOpt = None,
    endpoint_url: Annotated[str | None, typer.Option(
        "--endpoint-url", envvar="AWS_ENDPOINT_URL", help="S3 endpoint for an s3:// REPO on MinIO, OSS, SeaweedFS, ...")] = None,
    http_port: Annotated[int, typer.Option("--http-port", help="0 picks a free port.")] = 8000,
    grpc_port: Annotated[int, typer.Option("--grpc-port", help="0 picks a free port.")] = 8001,
    metrics_port: Annotated[int, typer.Option("--metrics-port", help="0 picks a free port.")] = 8002,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for readiness.")] = 300.0,
    fmt: FormatOpt = OutputFormat.text,
) -> None:
    """Start Triton on REPO (loopback), wait until every model is ready, print the URLs; Ctrl-C stops it.

    With --format json one JSON document (repository, http, grpc, metrics, log) is printed when the server is ready.

    Examples:

        tritonrepo serve

        tritonrepo serve model_repository --server /opt/tritonserver/bin/tritonserver

        AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... tritonrepo serve s3://models/prod --endpoint-url http://minio:9000
    """
    engine = find_engine(server)
    if repo.startswith("s3://"):
        target: object = _remote_repository(repo, endpoint_url)
        uses_ort = False
    elif "://" in repo:
        raise TritonRepoError(f"{repo}: only local folders and s3:// URLs can be served",
                              "tritonrepo pull it into a folder first, or push it to S3")
    else:
        from tritonrepo.config import read_config  # noqa: PLC0415
        from tritonrepo.repository import open_repository  # noqa: PLC0415

        target = open_repository(repo)
        uses_ort = any((p / "config.pbtxt").is_file() and read_config(p).backend == "onnxruntime"
                       for p in target.iterdir() if p.is_dir())
    if uses_ort and not engine.native_onnxruntime:
        console.print(
            "[yellow]note:[/] this tritonserver (nvidia-pytriton wheel) has no native ONNX Runtime backend; ONNX models "
            "are served by tritonrepo's Python-based 'onnxruntime' backend. Use the NGC container's native backend in "
            "production."
        )
    srv = TritonServer(target, engine=engine, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port)
    try:
        with console.status("starting tritonserver and loading models", spinner="dots"):
            srv.start(timeout=timeout, keep_log=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):  # once ready, a signal is the normal way to stop: exit 0
            signal.signal(sig, lambda *_: stop.set())
        data = {"repository": str(target), "http": srv.http_url, "grpc": srv.grpc_url,
                "metrics": f"127.0.0.1:{srv.metrics_port}", "log": str(srv.log_path)}

        def render() -> None:
            console.print(f"[bold green]ready[/] {target}")
            console.print(f"  HTTP  http://{srv.http_url}   (e.g. curl {srv.http_url}/v2/health/ready)")
            console.print(f"  gRPC  {srv.grpc_url}")
            console.print(f"  log   {srv.log_path}   (removed when the server stops)")
            console.print("Ctrl-C to stop")

        emit(fmt, data, render)
        while not stop.wait(0.5):
            if (status := srv.exit_status()) is not None:
                raise TritonRepoError(f"tritonserver exited with status {status}: {srv.failure_summary()}", exit_code=1)
    finally:
        srv.stop()
    console.print("stopped")
