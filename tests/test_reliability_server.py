"""Interruptions and start-up failures with the real tritonserver: nothing left behind (issue 13 items 4, 5, 10)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corpus.cases import MODEL_PY, Case
from tritonrepo.cli import app
from tritonrepo.errors import TritonRepoError
from tritonrepo.repository import clean_stale_temp_dirs, staging_dir
from tritonrepo.server import TritonServer

runner = CliRunner()
SRC = Path(__file__).resolve().parent.parent / "src"


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=f"{SRC}:{os.environ.get('PYTHONPATH', '')}".rstrip(":"))
    env.pop("TRITONREPO_REPO", None)
    return env


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _wait(cond, timeout: float, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(step)
    return None


# --- item 4: SIGTERM / SIGINT while serve starts -----------------------------------------------------------------


@pytest.mark.server
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_serve_startup_leaves_no_server_stub_or_shm(tmp_path, sig):
    slow = MODEL_PY.replace("    def initialize(self, args):\n        pass",
                            "    def initialize(self, args):\n        import time\n        time.sleep(120)")
    assert slow != MODEL_PY
    repo = Case("slow", set(), files={"m/1/model.py": slow}).build(tmp_path / "repo")
    proc = subprocess.Popen([sys.executable, "-m", "tritonrepo", "serve", str(repo), "--http-port", "0",
                             "--grpc-port", "0", "--metrics-port", "0"], env=_env(), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        server = _wait(lambda: [c for c in _children(proc.pid) if "tritonserver" in " ".join(_cmdline(c))], 60)
        assert server, "tritonserver did not start"
        server = server[0]
        def stubs():
            found = [c for c in _children(server) if "triton_python_backend_stub" in " ".join(_cmdline(c))]
            found += [g for c in found for g in _children(c)]  # the stub may still be the bash -c launching it
            # (pid, shm region) once the exec'd stub shows its whole command line: read once, since a stub
            # caught between bash's exec and its own start shows a short or empty one
            out = []
            for c in found:
                cmd = _cmdline(c)
                if (len(cmd) > 2 and cmd[0].endswith("triton_python_backend_stub")
                        and cmd[2].startswith("triton_python_backend_shm_region_")
                        and Path("/dev/shm", cmd[2]).exists()):
                    out.append((c, cmd[2]))
            return out

        found = _wait(stubs, 60)
        assert found, "no Python stub started"
        stub, region = [found[0][0]], found[0][1]
        os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + sig, err.decode()
    assert f"interrupted ({signal.Signals(sig).name})" in err.decode()
    assert not _alive(server) and not _alive(stub[0])
    assert not Path("/dev/shm", region).exists()
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob(f"tritonrepo-server-*/backends/python/{region}"))


# --- item 5: SIGTERM during add-hf, stale staging folders -------------------------------------------------------


@pytest.mark.slow
def test_sigterm_during_add_hf_leaves_no_staging_folder(tmp_path, bert_dir):
    repo = tmp_path / "repo"
    proc = subprocess.Popen([sys.executable, "-m", "tritonrepo", "add-hf", str(bert_dir), "--repo", str(repo),
                             "--backend", "python"], env=_env(), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        staged = _wait(lambda: list(tmp_path.glob(".tritonrepo-staging-*")), 120, step=0.005)
        assert staged, "add-hf never staged anything"
        assert staged[0].name.startswith(f".tritonrepo-staging-{proc.pid}-")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err.decode()
    assert not list(tmp_path.glob(".tritonrepo-*")), list(tmp_path.iterdir())
    assert not [p for p in repo.glob("*") if p.is_dir()]


def test_stale_staging_folders_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "30"])
    try:
        stale = tmp_path / f".tritonrepo-staging-{dead.pid}-bert-abc123"
        stale_pull = tmp_path / f".tritonrepo-pull-{dead.pid}-xyz"
        busy = tmp_path / f".tritonrepo-staging-{live.pid}-bert-def456"
        foreign = tmp_path / ".tritonrepo-staging-notapid"
        for d in (stale, stale_pull, busy, foreign):
            (d / "1").mkdir(parents=True)
        with staging_dir(tmp_path / "repo", "m") as tmp:
            assert tmp.name.startswith(f".tritonrepo-staging-{os.getpid()}-m-")
            assert not stale.exists() and not stale_pull.exists()
            assert busy.exists() and foreign.exists()
        assert clean_stale_temp_dirs(tmp_path) == []
    finally:
        live.kill()
        live.wait()
    assert clean_stale_temp_dirs(tmp_path) == [busy]


# --- item 10: taken port, failure messages, log paths -------------------------------------------------------------


def test_taken_port_is_reported_before_anything_loads(tmp_path):
    repo = Case("base", set()).build(tmp_path / "repo")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        t0 = time.monotonic()
        result = runner.invoke(app, ["serve", str(repo), "--http-port", str(port), "--grpc-port", "0",
                                     "--metrics-port", "0"])
        took = time.monotonic() - t0
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (f"error: port {port} (HTTP) is already in use on 127.0.0.1 (fix: stop what "
                                     "listens there, or pass --http-port 0 to pick a free port)")
    assert took < 4  # before any model loads (it used to wait for them: 6 s for one small model)


@pytest.mark.server
def test_failed_start_reports_the_model_error_first_and_keeps_the_log(tmp_path):
    repo = Case("broken", set(), files={"m/1/model.py": "import no_such_module_xyz\n"}).build(tmp_path / "repo")
    with pytest.raises(TritonRepoError) as err:
        TritonServer(repo).start(timeout=60)
    assert err.value.hint == "set TRITONREPO_KEEP_SERVER_DIR=1 to keep the server log"  # nothing left behind
    with pytest.raises(TritonRepoError) as err:
        TritonServer(repo).start(timeout=60, keep_log=True)  # what serve does: the log it names exists
    msg = err.value.message
    assert msg.startswith("tritonserver exited with status 1: failed to load 'm' version 1: Internal: "
                          "ModuleNotFoundError: No module named 'no_such_module_xyz'"), msg
    assert "Cuda" not in msg and "CUDA" not in msg and "At:" not in msg and "frozen importlib" not in msg
    log = Path(err.value.hint.removeprefix("see the server log "))
    try:
        assert log.is_file() and "no_such_module_xyz" in log.read_text()
    finally:
        log.unlink(missing_ok=True)


# --- item 10: --format json keeps stdout for JSON, even when C++ code prints -------------------------------------


@pytest.mark.slow
def test_add_hf_format_json_prints_only_json_when_the_exporter_fails(tmp_path, bert_dir):
    out = subprocess.run([sys.executable, "-m", "tritonrepo", "add-hf", str(bert_dir), "--repo", str(tmp_path / "r"),
                          "--opset", "999", "--format", "json"], env=_env(), cwd=tmp_path, capture_output=True,
                         timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    data = json.loads(out.stdout)  # torch's IR dump (52 KB) went to stderr
    assert data["error"].startswith("optimum could not export") and "999" in data["error"]
    assert data["exit_code"] == 2
    assert out.stderr.decode().rstrip().splitlines()[-1].startswith("error: optimum could not export")
    assert not list(tmp_path.glob(".tritonrepo-*"))


@pytest.mark.server
def test_not_ready_names_the_models_still_loading(tmp_path):
    slow = MODEL_PY.replace("    def initialize(self, args):\n        pass",
                            "    def initialize(self, args):\n        import time\n        time.sleep(60)")
    repo = Case("slow", set(), files={"m/1/model.py": slow}).build(tmp_path / "repo")
    with pytest.raises(TritonRepoError) as err:
        TritonServer(repo).start(timeout=4)
    assert err.value.message == "tritonserver not ready after 4s: still loading m"


def _orphan_regions(names: set[str]) -> set[str]:
    """Those of the ``/dev/shm`` region ``names`` that still exist and that no live process maps."""
    mapped: set[str] = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            mapped |= {ln.rsplit("/", 1)[-1] for ln in maps.read_text(errors="replace").splitlines() if "shm_region" in ln}
        except OSError:
            continue
    return {n for n in names if Path("/dev/shm", n).exists() and n not in mapped}


def test_a_server_that_hangs_on_a_model_leaves_no_shm_region(tmp_path):
    """A model the 2.51 server hangs on (a version folder '1abc' beside '1' without model.py): its stub dies and
    stays a zombie without a command line, so only the server's own mappings name its region; stop removes it."""
    repo = Case("version-1abc", {"TR106"}, {"m/1/model.py": None, "m/1abc/model.py": MODEL_PY}).build(tmp_path / "r")
    before = {p.name for p in Path("/dev/shm").glob("triton_*_shm_region_*")}
    with pytest.raises(TritonRepoError, match="not ready after 5s"):
        TritonServer(repo).start(timeout=5)
    new = {p.name for p in Path("/dev/shm").glob("triton_*_shm_region_*")} - before
    assert _orphan_regions(new) == set()
