"""Start and stop a real Triton Inference Server on a model repository.

Two engines are supported:

* a ``tritonserver`` binary on ``PATH`` or given by path (e.g. inside the NGC container), used as is;
* the ``tritonserver`` shipped in the PyPI wheel ``nvidia-pytriton`` (``pip install tritonrepo[server]``):
  Triton 2.51.0 with only the Python backend. It needs ``LD_LIBRARY_PATH`` pointing at the wheel's
  ``nvidia_pytriton.libs``, a backend directory holding ``libtriton_python.so``,
  ``triton_python_backend_utils.py`` and the stub built for the running Python, and this interpreter's
  environment first on ``PATH`` (the stub ignores ``PYTHONPATH``). That wheel has no ONNX Runtime backend, so
  tritonrepo installs a *Python-based backend* named ``onnxruntime`` (``backends/onnxruntime/model.py``) that
  serves ``model.onnx`` through onnxruntime's Python API. Production deployments should use the NGC
  container's native ``onnxruntime`` backend; the generated configs are valid for both.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from tritonrepo.errors import TritonRepoError


@dataclass
class Engine:
    """A runnable ``tritonserver``.

    Attributes:
        binary: path of the ``tritonserver`` executable.
        kind: ``"pytriton"`` (the wheel's server, Python backend only) or ``"system"``.
        lib_dir: directory for ``LD_LIBRARY_PATH`` (pytriton only).
        dist_dir: the wheel's ``pytriton/tritonserver`` folder (pytriton only).
    """

    binary: Path
    kind: str
    lib_dir: Path | None = None
    dist_dir: Path | None = None

    @property
    def native_onnxruntime(self) -> bool:
        """False when ONNX models are served by tritonrepo's Python-based ``onnxruntime`` backend."""
        return self.kind == "system"


def find_engine(binary: str | os.PathLike[str] | None = None) -> Engine:
    """Locate a Triton server.

    Order: ``binary`` if given; else the ``nvidia-pytriton`` wheel's server; else ``tritonserver`` on PATH.

    Raises:
        TritonRepoError: when none is found.
    """
    if binary:
        p = Path(binary)
        if not (p.is_file() and os.access(p, os.X_OK)):
            raise TritonRepoError(f"{p}: not an executable tritonserver", "give the path of a tritonserver binary")
        return Engine(binary=p, kind="system")
    try:
        import pytriton  # noqa: PLC0415

        dist = Path(pytriton.__file__).parent / "tritonserver"
        libs = Path(pytriton.__file__).parent.parent / "nvidia_pytriton.libs"
        if (dist / "bin" / "tritonserver").is_file():
            return Engine(binary=dist / "bin" / "tritonserver", kind="pytriton", lib_dir=libs, dist_dir=dist)
    except ImportError:
        pass
    found = shutil.which("tritonserver")
    if found:
        return Engine(binary=Path(found), kind="system")
    raise TritonRepoError(
        "no Triton server found",
        "pip install 'tritonrepo[server]' (nvidia-pytriton), put tritonserver on PATH, or pass --server PATH",
    )


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare_backends(engine: Engine, root: Path) -> Path:
    """Assemble a backend directory for the pytriton engine under ``root``; returns it.

    ``python/`` gets the backend library, its utils and the stub for this Python; ``onnxruntime/`` gets
    tritonrepo's Python-based ONNX backend and its runtime helpers.
    """
    assert engine.dist_dir is not None
    backends = root / "backends"
    py = backends / "python"
    py.mkdir(parents=True)
    src = engine.dist_dir / "backends" / "python"
    for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
        shutil.copy2(src / name, py / name)
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    stub = engine.dist_dir / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise TritonRepoError(f"nvidia-pytriton ships no Python backend stub for Python {version}")
    shutil.copy2(stub, py / "triton_python_backend_stub")
    ort = backends / "onnxruntime"
    ort.mkdir()
    pkg = resources.files("tritonrepo")
    for name in ("model.py", "ort_checks.py"):
        (ort / name).write_bytes((pkg / "backends" / "onnxruntime" / name).read_bytes())
    (ort / "tritonrepo_runtime.py").write_bytes((pkg / "triton_models" / "runtime.py").read_bytes())
    return backends


@dataclass
class TritonServer:
    """A running ``tritonserver`` process on loopback ports. Use as a context manager.

    Args:
        repository: the model repository directory, or a URL Triton reads itself (``s3://http://host:port/bucket/prefix``).
        engine: from :func:`find_engine` (default: found automatically).
        model_control: ``"none"`` (load everything at start) or ``"explicit"`` (load via the API).
        load: model names to load at start in explicit mode.
        extra_args: more ``tritonserver`` flags.
        log_verbose: Triton's ``--log-verbose`` level.

    Attributes after :meth:`start`: ``http_port``, ``grpc_port``, ``metrics_port``, ``log_path``.
    """

    repository: Path | str
    engine: Engine | None = None
    model_control: str = "none"
    load: list[str] = field(default_factory=list)
    extra_args: list[str] = field(default_factory=list)
    log_verbose: int = 0
    http_port: int = 0
    grpc_port: int = 0
    metrics_port: int = 0
    _proc: subprocess.Popen | None = None
    _workdir: Path | None = None

    @property
    def http_url(self) -> str:
        """``127.0.0.1:<port>`` for ``tritonclient.http``."""
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        """``127.0.0.1:<port>`` for ``tritonclient.grpc``."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def log_path(self) -> Path:
        """The server's combined stdout/stderr log."""
        assert self._workdir is not None
        return self._workdir / "tritonserver.log"

    def log(self) -> str:
        """The server log so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def command(self) -> tuple[list[str], dict[str, str]]:
        """The command line and environment used to start the server."""
        assert self._workdir is not None
        engine = self.engine or find_engine()
        args = [
            str(engine.binary),
            f"--model-repository={self._repository_arg()}",
            f"--http-port={self.http_port}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-port={self.metrics_port}",
            "--http-address=127.0.0.1",
            "--grpc-address=127.0.0.1",
            f"--model-control-mode={self.model_control}",
            f"--log-verbose={self.log_verbose}",
            "--exit-on-error=true",
        ]
        for name in self.load:
            args.append(f"--load-model={name}")
        env = os.environ.copy()
        if engine.kind == "pytriton":
            args.append(f"--backend-directory={self._workdir / 'backends'}")
            args.append("--allow-metrics=false")
            assert engine.lib_dir is not None
            env["LD_LIBRARY_PATH"] = ":".join(p for p in (str(engine.lib_dir), env.get("LD_LIBRARY_PATH", "")) if p)
            env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        args.extend(self.extra_args)
        return args, env

    def _repository_arg(self) -> str:
        repo = str(self.repository)
        return repo if "://" in repo else str(Path(repo).resolve())

    def start(self, timeout: float = 120.0) -> TritonServer:
        """Start the server and wait until it is ready (every model loaded).

        Raises:
            TritonRepoError: the server exited or was not ready within ``timeout`` seconds; the message
                carries the server's own ``failed to load`` lines (exit code 1).
        """
        self.engine = self.engine or find_engine()
        self._workdir = Path(tempfile.mkdtemp(prefix="tritonrepo-server-"))
        if self.engine.kind == "pytriton":
            _prepare_backends(self.engine, self._workdir)
        self.http_port = self.http_port or free_port()
        self.grpc_port = self.grpc_port or free_port()
        self.metrics_port = self.metrics_port or free_port()
        args, env = self.command()
        logf = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._logf = logf
        self._proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        """Poll ``/v2/health/ready`` until it answers 200. Raises :class:`TritonRepoError` on exit/timeout."""
        import urllib.error  # noqa: PLC0415
        import urllib.request  # noqa: PLC0415

        deadline = time.monotonic() + timeout
        url = f"http://{self.http_url}/v2/health/ready"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise TritonRepoError(
                    f"tritonserver exited with status {self._proc.returncode}: {self.failure_summary()}",
                    f"see the server log {self.log_path}",
                    exit_code=1,
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback only
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise TritonRepoError(
            f"tritonserver not ready after {timeout:.0f}s: {self.failure_summary()}",
            f"see the server log {self.log_path}",
            exit_code=1,
        )

    def failure_summary(self) -> str:
        """The server's error lines (``E...`` log lines), joined; or its last line."""
        lines = [ln for ln in self.log().splitlines() if ln.strip()]
        errors = [ln.split("] ", 1)[-1] for ln in lines if ln.startswith("E")]
        if errors:
            return " | ".join(errors[:5])
        return lines[-1] if lines else "no output"

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server (SIGINT, then SIGKILL after ``timeout``) and remove its working directory."""
        if self._proc is not None and self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGINT)
                self._proc.wait(timeout=timeout)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self._proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self._proc.wait()
        if getattr(self, "_logf", None) is not None:
            self._logf.close()
            self._logf = None
        if self._workdir is not None and not os.environ.get("TRITONREPO_KEEP_SERVER_DIR"):
            shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> TritonServer:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
