"""Benchmark for `add-hf --optimize/--quantize` on the real all-MiniLM-L6-v2: speed vs the fp32 ONNX graph and the
quality gate's min cosine vs the fp32 PyTorch model. Prints one line per variant and the ratios.

    python bench/optimize.py [--threads 2] [--reps 60] [--variants int8,int8-dynamic,O2,O2+int8]

Speed: onnxruntime CPU sessions with ``--threads`` intra-op threads (inter-op 1), batch 1 (one 15-token text) and
batch 8 (8 texts of 3-18 tokens, padded to 18), the best of ``--reps`` runs after 5 warm-up runs, variants measured
round-robin so that other load on the machine hits them alike (the load average is printed with the figures).
Quality: the gate's figures (20 texts; int8 calibrated on the 20 other ``CALIBRATION_TEXTS``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import tiny_models  # noqa: E402

from tritonrepo.checkpoint import resolve_checkpoint  # noqa: E402
from tritonrepo.export.onnx import export_onnx  # noqa: E402
from tritonrepo.export.optimize import GATE_TEXTS, optimize_exported  # noqa: E402


def _session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=60)
    ap.add_argument("--variants", default="int8,int8-dynamic,O2,O2+int8")
    args = ap.parse_args()
    from transformers import AutoTokenizer

    ckpt = resolve_checkpoint(str(tiny_models.minilm_path()))
    tok = AutoTokenizer.from_pretrained(str(ckpt.path))
    with tempfile.TemporaryDirectory(prefix="bench-optimize-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        export_onnx(ckpt, "feature-extraction", root / "fp32" / "1")
        print(f"fp32 export: {time.perf_counter() - t0:.1f}s")
        paths = {"fp32": root / "fp32" / "1" / "model.onnx"}
        quality = {}
        for v in [x for x in args.variants.split(",") if x]:
            opt, _, quant = v.partition("+") if "+" in v else ((v, "", "") if v.startswith("O") else ("", "", v))
            dst = root / v / "1" / "model.onnx"
            dst.parent.mkdir(parents=True)
            shutil.copy(paths["fp32"], dst)
            t0 = time.perf_counter()
            rep = optimize_exported(dst, ckpt, "feature-extraction", optimize=opt or None, quantize=quant or None)
            quality[v] = rep
            paths[v] = dst
            print(f"{v}: {rep.method}; {rep.quality.describe()} ({time.perf_counter() - t0:.1f}s)")
        sessions = {k: _session(p, args.threads) for k, p in paths.items()}
        feeds = {}
        for batch, texts in ((1, [GATE_TEXTS[7]]), (8, GATE_TEXTS[:8])):
            enc = tok(texts, padding=True, return_tensors="np")
            feeds[batch] = {k: np.asarray(enc[k], dtype=np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        best = {(k, b): float("inf") for k in sessions for b in feeds}
        for b, f in feeds.items():
            for s in sessions.values():
                for _ in range(5):
                    s.run(None, f)
        for _ in range(args.reps):
            for b, f in feeds.items():
                for k, s in sessions.items():
                    t = time.perf_counter()
                    s.run(None, f)
                    best[(k, b)] = min(best[(k, b)], time.perf_counter() - t)
        import os

        print(f"\nthreads {args.threads}, best of {args.reps}; shared 2-core machine (other sessions were running); "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"{'variant':16s} {'b1 ms':>8s} {'b8 ms':>8s} {'speed b1':>9s} {'speed b8':>9s} {'min cos':>8s}")
        for k in sessions:
            b1, b8 = best[(k, 1)] * 1e3, best[(k, 8)] * 1e3
            s1, s8 = best[("fp32", 1)] / best[(k, 1)], best[("fp32", 8)] / best[(k, 8)]
            mc = quality[k].quality.min_cosine if k in quality else 1.0
            print(f"{k:16s} {b1:8.2f} {b8:8.2f} {s1:8.2f}x {s8:8.2f}x {mc:8.4f}")


if __name__ == "__main__":
    main()
