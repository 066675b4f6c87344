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

import ctypes
import os
import re
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


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when ``host:port`` cannot be bound (another process listens there)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


#: Log lines that say nothing about the repository on a CPU-only machine (the wheel's server always prints them).
NOISE = re.compile(r"CudaDriverHelper|CUDA|cuda|pinned memory|libcuda|nvml|GPU metrics|Failed to (?:initialize|load) NVML")


def _death_signal():
    """Linux, main thread only: a ``preexec_fn`` giving the server SIGTERM when the process that started it dies
    (even by SIGKILL; ``PR_SET_PDEATHSIG`` follows the forking *thread*, hence main thread only). ``prctl`` is
    looked up here, before the fork: nothing is loaded in the child."""
    import threading  # noqa: PLC0415

    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def shm_regions_of(pgid: int) -> set[str]:
    """Names of the ``/dev/shm`` regions the Python-backend stubs of process group ``pgid`` use.

    The stub's second argument is its region name (``triton_python_backend_shm_region_<uuid>``, or
    ``triton_onnxruntime_backend_…`` for tritonrepo's Python-based ONNX backend), see python_backend
    ``src/stub_launcher.cc``. The server (the group's leader, ``pgid``) maps every region it created too, which
    also finds the region of a stub that already died (a zombie has no command line: the stub of a model the 2.51
    server hangs on). Read from ``/proc``, so only on Linux; an empty set elsewhere.
    """
    names: set[str] = set()
    try:
        names |= set(_REGION.findall(Path(f"/proc/{pgid}/maps").read_text(errors="replace")))
    except OSError:
        pass
    try:  # a region opened (shm_open) and not mapped yet
        for fd in Path(f"/proc/{pgid}/fd").iterdir():
            try:
                names |= set(_REGION.findall(os.readlink(fd)))
            except OSError:
                continue
    except OSError:
        pass
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.getpgid(int(proc.name)) != pgid:
                continue
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            continue
        names |= set(_REGION.findall(cmdline))  # also while the stub is still the ``bash -c`` that launches it
    return names


_REGION = re.compile(r"\btriton_[a-z]+_backend_shm_region_[0-9a-f-]{36}")


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
    _shm: set[str] = field(default_factory=set)
    kept_log: Path | None = None

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

    def check_ports(self) -> None:
        """Raise :class:`TritonRepoError` at once when a requested (non-zero) port is taken on 127.0.0.1.

        Triton itself reports a taken port only after every model has loaded (seconds to minutes).
        """
        for label, port in (("HTTP", self.http_port), ("gRPC", self.grpc_port), ("metrics", self.metrics_port)):
            if port and port_in_use(port):
                flag = {"HTTP": "--http-port", "gRPC": "--grpc-port", "metrics": "--metrics-port"}[label]
                raise TritonRepoError(f"port {port} ({label}) is already in use on 127.0.0.1",
                                      f"stop what listens there, or pass {flag} 0 to pick a free port")

    def start(self, timeout: float = 120.0, *, keep_log: bool = False) -> TritonServer:
        """Start the server and wait until it is ready (every model loaded).

        Args:
            timeout: seconds to wait for readiness.
            keep_log: on failure, keep the server log (``kept_log``, in the temp dir) and name it in the hint; else
                it is removed with the working directory and the hint says how to keep it.

        Raises:
            TritonRepoError: a requested port is taken (before anything starts); the server exited or was not
                ready within ``timeout`` seconds: the message carries the server's own error lines, CUDA noise
                filtered (exit code 1).
        """
        self.check_ports()
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
        self._proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                      preexec_fn=_death_signal())
        try:
            self.wait_ready(timeout)
        except TritonRepoError as exc:
            self.stop(keep_log=keep_log)
            hint = (f"see the server log {self.kept_log}" if self.kept_log
                    else "set TRITONREPO_KEEP_SERVER_DIR=1 to keep the server log")
            raise TritonRepoError(exc.message, hint, exc.exit_code) from None
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
            self._shm |= shm_regions_of(self._proc.pid)
            if self._proc.poll() is not None:
                raise TritonRepoError(
                    f"tritonserver exited with status {self._proc.returncode}: {self.failure_summary()}",
                    exit_code=1,
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback only
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        pending = self.loading_models()
        raise TritonRepoError(
            f"tritonserver not ready after {timeout:.0f}s: "
            + (f"still loading {', '.join(pending)}" if pending else self.failure_summary()),
            exit_code=1,
        )

    def exit_status(self) -> int | None:
        """The server's exit status once it has exited (negative: killed by that signal), else ``None``.

        While it runs, also notes the ``/dev/shm`` regions its stubs map, so that :meth:`stop` removes them even
        if the server crashes later (a crashed server cannot unlink them, nor be asked for them).
        """
        if self._proc is None:
            return None
        status = self._proc.poll()
        if status is None:
            self._shm |= shm_regions_of(self._proc.pid)
        return status

    def loading_models(self) -> list[str]:
        """Models the log shows as ``loading: <name>:<version>`` and not yet loaded or failed."""
        log = self.log()
        started = re.findall(r'"loading: ([^:"]+):\d+"', log)
        done = set(re.findall(r"successfully loaded '([^']+)'", log)) | set(re.findall(r"failed to load '([^']+)'", log))
        return sorted(set(started) - done)

    def failure_summary(self) -> str:
        """The server's error lines (``E...`` log lines), ``failed to load`` first, without CUDA noise on a
        CPU-only machine and without the Python frames after ``At:``, joined; else its last line."""
        lines = [ln for ln in self.log().splitlines() if ln.strip()]
        errors = []
        for ln in lines:
            if not ln.startswith("E") or (NOISE.search(ln) and "failed to load" not in ln):
                continue
            text = ln.split("] ", 1)[-1].strip()
            if text.startswith('"') and text.endswith('"'):
                text = text[1:-1].replace('\\"', '"')
            text = text.split("\\n\\nAt:", 1)[0].replace("\\n", " ").strip()
            if text not in errors:
                errors.append(text)
        errors.sort(key=lambda t: "failed to load" not in t)
        if errors:
            return " | ".join(errors[:5])
        quiet = [ln for ln in lines if not NOISE.search(ln)]
        return quiet[-1] if quiet else "no output"

    def stop(self, timeout: float = 20.0, *, keep_log: bool = False) -> None:
        """Stop the server (SIGINT, then SIGKILL after ``timeout``), remove the ``/dev/shm`` regions its stubs
        leave behind and its working directory; ``keep_log`` moves the log to ``kept_log`` in the temp dir first."""
        if self._proc is not None:
            # while it runs, the server maps every region it created (a dead stub's too); after a crash, the stubs
            # still alive in its process group name theirs
            self._shm |= shm_regions_of(self._proc.pid)
            if self._proc.poll() is None:
                try:
                    os.killpg(self._proc.pid, signal.SIGINT)
                    self._proc.wait(timeout=timeout)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    pass
            # the server when SIGINT did not stop it in time, and the stubs it left behind when it exited or crashed
            # (one still in initialize() is not waited for)
            self._kill_group()
            self._proc.wait()
        for name in self._shm:  # regions of stubs killed before they could unlink them
            Path("/dev/shm", name).unlink(missing_ok=True)
        self._shm = set()
        if getattr(self, "_logf", None) is not None:
            self._logf.close()
            self._logf = None
        keep_dir = bool(os.environ.get("TRITONREPO_KEEP_SERVER_DIR"))
        if keep_dir and self._workdir is not None:
            self.kept_log = self.log_path
        elif keep_log and self._workdir is not None and self.log_path.is_file():
            fd, kept = tempfile.mkstemp(prefix="tritonrepo-server-", suffix=".log")
            os.close(fd)
            shutil.move(self.log_path, kept)
            self.kept_log = Path(kept)
        if self._workdir is not None and not os.environ.get("TRITONREPO_KEEP_SERVER_DIR"):
            shutil.rmtree(self._workdir, ignore_errors=True)

    def _kill_group(self) -> None:
        """SIGKILL the server's process group, noting its regions first with the group stopped (SIGSTOP): a server
        stopped while loading keeps creating regions and starting stubs until it dies (2**31-1 instances: thousands
        in the 20 s before SIGKILL), and once dead it cannot be asked; its stubs still name their regions."""
        assert self._proc is not None
        try:
            os.killpg(self._proc.pid, signal.SIGSTOP)
        except (ProcessLookupError, PermissionError):
            return
        self._shm |= shm_regions_of(self._proc.pid)
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> TritonServer:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
