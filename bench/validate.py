"""Benchmark for `tritonrepo validate`: speed against the real server, memory, big inputs; optionally agreement.

    python bench/validate.py [--models 1000] [--side-by-side 1 40] [--agreement]

1. Side by side: the `tritonrepo validate` command (a fresh process, as in CI: the console script, interpreter start,
   imports from compiled bytecode as after `pip install`, checks)
   against the real server's start + load of the same repository of Python-backend models (config + model.py
   each), for each --side-by-side size. Prints both times, the ratio, and the command's peak RSS.
2. Scale: validate_repository in-process on --models models (per 100 models).
3. Big inputs: a 16 MB config.pbtxt of parameters, and the signature of an ONNX model with a 2 GiB initializer.
4. --agreement: every corpus repository (tests/corpus) judged offline and by the real server (slow: minutes).

Goals (issue 11): >= 20x the server on 1 model, >= 200x on 40 models, peak RSS < 150 MB, 16 MB config < 2 s.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from corpus.cases import BROKEN, CONFIG, MODEL_PY, VALID  # noqa: E402

from tritonrepo.validate import ServerOptions, validate_repository  # noqa: E402
from tritonrepo.validate.live import server_verdict  # noqa: E402


def make_repo(root: Path, n: int) -> Path:
    for i in range(n):
        name = f"model_{i:04d}"
        (root / name / "1").mkdir(parents=True)
        (root / name / "config.pbtxt").write_text(CONFIG.replace('name: "m"', f'name: "{name}"'))
        (root / name / "1" / "model.py").write_text(MODEL_PY)
    return root


#: bytecode of this run's sources, as an installed package has it (pip compiles .pyc at install; this machine's
#: environment sets PYTHONDONTWRITEBYTECODE, which would make every run compile tritonrepo's modules again)
_WORK = Path(tempfile.mkdtemp(prefix="bench-validate-"))  # every repository and file of this run, removed at exit
atexit.register(shutil.rmtree, _WORK, True)
_PYCACHE = str(_WORK / "pycache")


def _command(repo: Path) -> list[str]:
    """``tritonrepo validate repo`` as CI runs it: the console script when installed, else ``python -m``."""
    script = Path(sys.executable).parent / "tritonrepo"
    head = [sys.executable, str(script)] if script.is_file() else [sys.executable, "-m", "tritonrepo"]
    return [*head, "validate", str(repo)]


#: Runs argv[1:] once and prints "wall_seconds maxrss_kb cpu_seconds status". A small process of its own starts the
#: measured command: a process created by this (big) benchmark would count the benchmark's resident pages in its
#: peak RSS (the kernel keeps the pre-exec memory's high-water mark, even after vfork), this launcher's are ~8 MB.
_LAUNCHER = """
import os, sys, time
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - t, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status))
"""


def cli_run(repo: Path) -> tuple[float, int, float]:
    """Wall time, peak RSS (bytes) and CPU time (user + system) of one `tritonrepo validate repo` process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONPYCACHEPREFIX": _PYCACHE}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", _LAUNCHER, *_command(repo)], env=env,
                          capture_output=True, text=True, check=True)
    elapsed, maxrss_kb, cpu, status = proc.stdout.split()
    if int(status) != 0:
        raise SystemExit(f"validate failed on {repo}: {proc.stderr[-500:]}")
    return float(elapsed), int(maxrss_kb) * 1024, float(cpu)


def side_by_side(n: int, repeat: int) -> None:
    repo = make_repo(Path(tempfile.mkdtemp(prefix=f"bench-{n}-", dir=_WORK)), n)
    cli_run(repo)  # writes the bytecode (see _PYCACHE)
    runs = [cli_run(repo) for _ in range(repeat)]
    t_cli = min(t for t, _, _ in runs)
    cpu_cli = min(c for _, _, c in runs)
    rss = max(r for _, r, _ in runs)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    loads, message = server_verdict(repo, timeout=600)
    t_server = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_server = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert loads, message
    print(f"side by side, {n} model(s): tritonrepo validate {t_cli:.3f}s wall / {cpu_cli:.3f}s CPU (best of {repeat}, "
          f"peak RSS {rss / 2**20:.0f} MB), tritonserver start + load {t_server:.2f}s wall / {cpu_server:.2f}s CPU "
          f"-> validate is {t_server / t_cli:.0f}x faster (wall), {cpu_server / cpu_cli:.0f}x less CPU")


def scale(n: int) -> None:
    repo = make_repo(Path(tempfile.mkdtemp(prefix="bench-big-", dir=_WORK)), n)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        report = validate_repository(repo)
        best = min(best, time.perf_counter() - t)
        assert report.loads(), report.errors[:3]
    print(f"validate_repository, {n} models (in-process): {best:.3f}s = {100 * best / n:.3f}s per 100 models")


def big_inputs() -> None:
    from tritonrepo.validate.onnx_graph import read_graph  # noqa: PLC0415

    repo = make_repo(Path(tempfile.mkdtemp(prefix="bench-16mb-", dir=_WORK)), 1)
    entry = 'parameters { key: "k%d" value { string_value: "' + "v" * 200 + '" } }\n'
    cfg = repo / "model_0000" / "config.pbtxt"
    cfg.write_text(cfg.read_text() + "".join(entry % i for i in range(16 * 2**20 // 240)))
    t = time.perf_counter()
    validate_repository(repo, options=ServerOptions(exec_model_py=False))
    print(f"16 MB config.pbtxt ({cfg.stat().st_size / 2**20:.1f} MiB of parameters): {time.perf_counter() - t:.2f}s")
    sys.path.insert(0, str(ROOT / "tests"))
    from test_validate_speed import test_onnx_signature_of_a_2gb_model_is_read_without_the_weights as sig  # noqa: PLC0415

    tmp = Path(tempfile.mkdtemp(prefix="bench-onnx-", dir=_WORK))
    t = time.perf_counter()
    sig(tmp)  # writes a sparse 2 GiB model and reads its signature
    print(f"ONNX model with a 2 GiB initializer: written (sparse) and signature read in {time.perf_counter() - t:.3f}s "
          f"(read_graph alone: {_time(lambda: read_graph(tmp / 'model.onnx')) * 1000:.2f} ms)")
    (tmp / "model.onnx").unlink()


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def agreement() -> None:
    cases = BROKEN + VALID
    root = Path(tempfile.mkdtemp(prefix="bench-corpus-", dir=_WORK))

    def run(case):
        repo = case.build(root / case.id)
        loads, _ = server_verdict(repo, timeout=15 if case.hangs else 90)
        return loads == validate_repository(repo).loads()

    t = time.perf_counter()
    with ThreadPoolExecutor(3) as pool:
        agree = sum(pool.map(run, cases))
    print(f"agreement with the real server: {agree}/{len(cases)} = {100 * agree / len(cases):.1f}% "
          f"({len(BROKEN)} broken, {len(VALID)} valid; {time.perf_counter() - t:.0f}s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--side-by-side", type=int, nargs="*", default=[1, 40])
    ap.add_argument("--repeat", type=int, default=5, help="validate runs per size (the best is kept)")
    ap.add_argument("--agreement", action="store_true")
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for n in args.side_by_side:
        side_by_side(n, args.repeat)
    scale(args.models)
    big_inputs()
    if args.agreement:
        agreement()


if __name__ == "__main__":
    main()
