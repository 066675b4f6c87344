"""Benchmark: the served MiniLM embedding pipeline and its ONNX core vs the same work in one process.

    python bench/serving.py [--duration 4] [--concurrency 1,4,16] [--backend onnx|python]

Builds ``add-hf --pipeline`` of the real all-MiniLM-L6-v2 in a temporary repository, serves it with the real
tritonserver and measures with ``tritonrepo.bench`` over gRPC (one text per request, the 20 texts of the quality
gate in turn: 3 to 24 tokens). In process: the same tokenizer, an onnxruntime session with the same thread count
as the served model (``intra_op_thread_count``) and the same mean pooling + normalisation, driven by the same
number of threads, one text per call. Prints throughput per level and the ratio served / in-process.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import tiny_models  # noqa: E402

from tritonrepo.add import AddOptions  # noqa: E402
from tritonrepo.bench import BenchOptions, run_bench, split_rows, texts_payloads  # noqa: E402
from tritonrepo.config import read_config  # noqa: E402
from tritonrepo.export.optimize import GATE_TEXTS  # noqa: E402
from tritonrepo.pipeline import add_pipeline  # noqa: E402
from tritonrepo.server import TritonServer  # noqa: E402


def in_process(model_onnx: Path, tok_dir: Path, threads: int, concurrency: int, duration: float, core_only: bool) -> float:
    """Requests per second of tokenizer + session + pooling (or the session alone) at ``concurrency`` threads."""
    import onnxruntime as ort
    from transformers import AutoTokenizer

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(str(model_onnx), so, providers=["CPUExecutionProvider"])
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    names = [i.name for i in sess.get_inputs()]
    pre = [{k: np.asarray(v, dtype=np.int64) for k, v in tok([t], return_tensors="np").items() if k in names}
           for t in GATE_TEXTS]

    def one(i: int) -> None:
        if core_only:
            sess.run(["last_hidden_state"], pre[i % len(pre)])
            return
        enc = tok([GATE_TEXTS[i % len(GATE_TEXTS)]], padding=True, truncation=True, max_length=256, return_tensors="np")
        h = sess.run(["last_hidden_state"], {k: np.asarray(enc[k], dtype=np.int64) for k in names})[0]
        m = enc["attention_mask"][..., None].astype(np.float32)
        e = (h * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        e / np.linalg.norm(e, axis=1, keepdims=True)

    for i in range(5):
        one(i)
    count = [0] * concurrency
    stop = time.perf_counter() + duration

    def worker(w: int) -> None:
        i = w
        while time.perf_counter() < stop:
            one(i)
            count[w] += 1
            i += concurrency

    ts = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(count) / duration


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--backend", default="onnx")
    args = ap.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        repo = Path(tmp) / "repo"
        t0 = time.perf_counter()
        add_pipeline(str(tiny_models.minilm_path()), AddOptions(repo=repo, name="minilm", backend=args.backend))
        print(f"add-hf --pipeline: {time.perf_counter() - t0:.1f}s")
        core_cfg = read_config(repo / "minilm_model")
        threads = int(core_cfg.parameters["intra_op_thread_count"].string_value) if "intra_op_thread_count" in core_cfg.parameters else 1
        model_onnx = repo / "minilm_model" / "1" / "model.onnx"
        tok_dir = repo / "minilm_preprocess" / "1" / "processor"
        with TritonServer(repo) as server:
            opts = BenchOptions(url=server.grpc_url, protocol="grpc", concurrency=levels, duration=args.duration, warmup=1.0)
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(tok_dir))
            core_reqs = []
            for t in GATE_TEXTS:
                enc = tok([t], return_tensors="np")
                core_reqs += split_rows({k: np.asarray(enc[k], dtype=np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")})
            served = {
                "pipeline": run_bench("minilm", texts_payloads("text", GATE_TEXTS), opts),
                "core": run_bench("minilm_model", core_reqs, opts),
            }
        print(f"\nshared 2-core machine (7 other sessions); {threads} intra-op thread(s); {args.duration:g}s per level; gRPC")
        print(f"{'what':9s} {'conc':>4s} {'served/s':>9s} {'in-proc/s':>10s} {'ratio':>6s} {'p99 ms':>7s} {'avg batch':>9s}")
        if model_onnx.is_file():
            for what, res in served.items():
                for lv in res.levels:
                    base = in_process(model_onnx, tok_dir, threads, lv.concurrency, args.duration, what == "core")
                    print(f"{what:9s} {lv.concurrency:4d} {lv.throughput:9.1f} {base:10.1f} {lv.throughput / base:6.2f} "
                          f"{lv.latency_us['p99'] / 1000:7.2f} {lv.server.avg_batch:9.2f}")


if __name__ == "__main__":
    main()
