"""Benchmark for `tritonrepo validate`: verdict agreement with the real server, and speed. Prints ratios.

    python bench/validate_bench.py [--models 1000] [--side-by-side 40] [--no-agreement]

1. Agreement: every corpus repository (tests/corpus) judged offline and by the real server (loads / not).
2. Speed: validate on a generated repository of --models Python-backend models (config + model.py each).
3. Side by side: validate vs the real server's start + load on the same repository of --side-by-side models
   (the server starts one Python stub process per model, so 1,000 of them do not fit this machine's memory).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from corpus.cases import BROKEN, CONFIG, MODEL_PY, VALID  # noqa: E402

from tritonrepo.validate import validate_repository  # noqa: E402
from tritonrepo.validate.live import server_verdict  # noqa: E402


def make_repo(root: Path, n: int) -> Path:
    for i in range(n):
        name = f"model_{i:04d}"
        (root / name / "1").mkdir(parents=True)
        (root / name / "config.pbtxt").write_text(CONFIG.replace('name: "m"', f'name: "{name}"'))
        (root / name / "1" / "model.py").write_text(MODEL_PY)
    return root


def agreement() -> None:
    cases = BROKEN + VALID
    root = Path(tempfile.mkdtemp(prefix="bench-corpus-"))

    def run(case):
        repo = case.build(root / case.id)
        loads, _ = server_verdict(repo, timeout=15 if case.hangs else 90)
        return loads == validate_repository(repo).loads()

    t = time.perf_counter()
    with ThreadPoolExecutor(3) as pool:
        agree = sum(pool.map(run, cases))
    print(f"agreement with the real server: {agree}/{len(cases)} = {100 * agree / len(cases):.1f}% "
          f"({len(BROKEN)} broken, {len(VALID)} valid; {time.perf_counter() - t:.0f}s)")


def timed_validate(repo: Path, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        report = validate_repository(repo)
        best = min(best, time.perf_counter() - t)
        assert report.loads(), report.errors[:3]
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--side-by-side", type=int, default=40)
    ap.add_argument("--no-agreement", action="store_true")
    args = ap.parse_args()
    if not args.no_agreement:
        agreement()
    big = make_repo(Path(tempfile.mkdtemp(prefix="bench-big-")), args.models)
    t_big = timed_validate(big)
    print(f"validate, {args.models} models: {t_big:.3f}s = {100 * t_big / args.models:.3f}s per 100 models")
    small = make_repo(Path(tempfile.mkdtemp(prefix="bench-small-")), args.side_by_side)
    t_small = timed_validate(small)
    t = time.perf_counter()
    loads, message = server_verdict(small, timeout=600)
    t_server = time.perf_counter() - t
    assert loads, message
    print(f"side by side, {args.side_by_side} models: validate {t_small:.3f}s, tritonserver start + load {t_server:.1f}s "
          f"-> validate is {t_server / t_small:.0f}x faster")


if __name__ == "__main__":
    main()
