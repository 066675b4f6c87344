"""``tritonrepo serve``: a real Triton server on the repository, until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from tritonrepo.cli._cli_utils import ServerOpt, console, run_command
from tritonrepo.config import read_config
from tritonrepo.repository import open_repository
from tritonrepo.server import TritonServer, find_engine


@run_command
def serve(
    repo: Annotated[Path, typer.Argument(help="Model repository.")] = Path("model_repository"),
    server: ServerOpt = None,
    http_port: Annotated[int, typer.Option("--http-port", help="0 picks a free port.")] = 8000,
    grpc_port: Annotated[int, typer.Option("--grpc-port", help="0 picks a free port.")] = 8001,
    metrics_port: Annotated[int, typer.Option("--metrics-port")] = 8002,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for readiness.")] = 300.0,
) -> None:
    """Start Triton on REPO (loopback), wait until every model is ready, print the URLs; Ctrl-C stops it.

    Examples:

        tritonrepo serve

        tritonrepo serve model_repository --server /opt/tritonserver/bin/tritonserver
    """
    repo = open_repository(repo)
    engine = find_engine(server)
    uses_ort = any(
        (p / "config.pbtxt").is_file() and read_config(p).backend == "onnxruntime" for p in repo.iterdir() if p.is_dir()
    )
    if uses_ort and not engine.native_onnxruntime:
        console.print(
            "[yellow]note:[/] this tritonserver (nvidia-pytriton wheel) has no native ONNX Runtime backend; ONNX models "
            "are served by tritonrepo's Python-based 'onnxruntime' backend. Use the NGC container's native backend in "
            "production."
        )
    srv = TritonServer(repo, engine=engine, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port)
    with console.status("starting tritonserver and loading models", spinner="dots"):
        srv.start(timeout=timeout)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        console.print(f"[bold green]ready[/] {repo}")
        console.print(f"  HTTP  http://{srv.http_url}   (e.g. curl {srv.http_url}/v2/health/ready)")
        console.print(f"  gRPC  {srv.grpc_url}")
        console.print(f"  log   {srv.log_path}")
        console.print("Ctrl-C to stop")
        while not stop.wait(0.5):
            if srv._proc is not None and srv._proc.poll() is not None:  # noqa: SLF001
                console.print(f"[red]tritonserver exited with status {srv._proc.returncode}[/]")  # noqa: SLF001
                raise typer.Exit(1)
    finally:
        srv.stop()
        console.print("stopped")
