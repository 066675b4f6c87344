"""Benchmark: ``tritonrepo add-hf`` (ONNX) vs a bare ``optimum-cli export onnx`` on the same model and task.

    PYTHONPATH=$PWD/src .venv/bin/python bench/add_overhead.py [--model minilm|tiny|PATH ...] [--repeats 3]

Each side runs as its own process (cold interpreter, same task ``feature-extraction``), alternately
``--repeats`` times; wall time and the peak RSS of the process tree (sum over the process and its children,
polled every 20 ms with psutil) are recorded and the medians printed with the ratios add-hf / optimum-cli
(goal: <= 1.10). CPU time (user + sys) is printed too: on a loaded machine it is the steadier figure.
``optimum-cli`` validates its export with ONNX Runtime by default, as add-hf's parity check does, so both sides
load PyTorch and ONNX Runtime. ``--src`` runs another copy of the sources (e.g. a snapshot of an older commit).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
PY = sys.executable
OPTIMUM_CLI = str(Path(PY).parent / "optimum-cli")


def run_measured(cmd: list[str], env: dict) -> tuple[float, float, float]:
    """``(wall s, CPU s user+sys, peak RSS MiB of the process tree)`` of ``cmd``; exits when it fails.

    CPU time (from ``wait4``, the process and its waited-for children) is much less sensitive than wall time to
    the other jobs of a loaded machine; on an idle machine wall ~ CPU for these single-threaded-dominated runs.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps = psutil.Process(proc.pid)
    peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, peak / 2**20


def model_path(which: str, tmp: Path) -> Path:
    import tiny_models

    if which == "minilm":
        return tiny_models.minilm_path()
    if which == "tiny":
        return tiny_models.make_bert_classifier(tmp / "tiny-bert")
    return Path(which)


def bench(which: str, repeats: int, tmp: Path, src: Path = ROOT / "src") -> dict:
    path = model_path(which, tmp)
    env = {**os.environ, "PYTHONPATH": str(src), "TOKENIZERS_PARALLELISM": "false"}
    sides = {
        "optimum-cli": lambda out: [OPTIMUM_CLI, "export", "onnx", "--model", str(path), "--task",
                                    "feature-extraction", str(out)],
        "add-hf": lambda out: [PY, "-m", "tritonrepo", "add-hf", str(path), "--repo", str(out), "--name", "m",
                               "--task", "feature-extraction"],
    }
    figures: dict[str, list[tuple[float, float, float]]] = {k: [] for k in sides}
    for i in range(repeats):
        for side, cmd in sides.items():
            out = tmp / f"{side}-{i}"
            wall, cpu, rss = run_measured(cmd(out), env)
            shutil.rmtree(out, ignore_errors=True)
            figures[side].append((wall, cpu, rss))
            print(f"  {which} run {i + 1} {side:12s} wall {wall:6.1f} s  cpu {cpu:6.1f} s  peak RSS {rss:6.0f} MiB",
                  flush=True)
    med = {s: tuple(statistics.median(f[k] for f in runs) for k in range(3)) for s, runs in figures.items()}
    (ow, oc, orss), (aw, ac, arss) = med["optimum-cli"], med["add-hf"]
    print(f"{which}: medians of {repeats} alternate runs: optimum-cli wall {ow:.1f} s cpu {oc:.1f} s {orss:.0f} MiB"
          f" | add-hf wall {aw:.1f} s cpu {ac:.1f} s {arss:.0f} MiB | add-hf/optimum-cli: wall {aw / ow:.2f}, "
          f"cpu {ac / oc:.2f}, peak RSS {arss / orss:.2f} (goal <= 1.10)", flush=True)
    return {"model": which, "optimum": med["optimum-cli"], "add_hf": med["add-hf"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="minilm, tiny or a checkpoint folder (repeatable)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--src", type=Path, default=ROOT / "src", help="tritonrepo sources to run (e.g. a snapshot)")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-add-") as tmp:
        for which in args.model or ["tiny", "minilm"]:
            bench(which, args.repeats, Path(tmp), args.src)


if __name__ == "__main__":
    main()
