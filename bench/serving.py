"""Benchmark: the served MiniLM embedding pipeline and its ONNX core vs the same work in one process, and memory.

    python bench/serving.py [--duration 6] [--rounds 3] [--concurrency 1,4,16] [--backend onnx|python]
                            [--instance-count N --threads T] [--in-process-spinning 0|1]

Builds ``add-hf --pipeline`` of the real all-MiniLM-L6-v2 in a temporary repository (ONNX core: tokenizer -> one
ONNX graph with pooling and normalisation folded in; the tokenizer step pads to length buckets), serves it with the
real tritonserver and measures with ``tritonrepo.bench`` over gRPC (one text per request, the 20 texts of the quality
gate in turn: 3 to 24 tokens). In process: the same tokenizer, an onnxruntime session of the same graph with the same
thread count as the served model (``intra_op_thread_count``; for a pipeline whose core still answers
``last_hidden_state``, plus mean pooling + normalisation), driven by the same number of threads, one text per call.
Served and in-process windows alternate (``--rounds``) so that the load of the shared machine hits both alike.
Prints throughput per level, the ratio served / in-process and the load average (1 min) next to each figure: the
machine is shared, so figures are noisy.

Memory: the resident set (RSS, MiB) of tritonserver and every process under it (stubs) after the run, against the
peak resident set (VmHWM) of a fresh Python process that loads the same tokenizer and session and answers the
20 texts (:func:`in_process_rss`); and the same with the proportional set size (PSS: a page shared by n processes,
such as a library, counts 1/n in each, so the sum over the server's processes does not count it n times).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

# As the CLI (cli/_cli_utils.py) and the tokenizer stub do: one text per call is tokenised on the calling thread. With
# the default, every `Tokenizer.encode` hands its work to a rayon pool (one thread per core) whose threads spin
# between jobs; on 2 vCPUs they fought the ONNX Runtime session's spinning intra-op worker, and the in-process
# pipeline at concurrency 1 (the only level where encode and run alternate on one thread with nothing else to do)
# measured 33.8 calls/s against 385 for the same session fed pre-tokenised inputs.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import tiny_models  # noqa: E402

from tritonrepo.add import AddOptions  # noqa: E402
from tritonrepo.bench import BenchOptions, run_bench, split_rows, texts_payloads  # noqa: E402
from tritonrepo.config import ModelSettings, read_config  # noqa: E402
from tritonrepo.export.optimize import GATE_TEXTS  # noqa: E402
from tritonrepo.pipeline import add_pipeline  # noqa: E402
from tritonrepo.server import TritonServer  # noqa: E402


def _load1() -> float:
    return os.getloadavg()[0]


#: ``session.intra_op.allow_spinning`` of the in-process session ("1": ONNX Runtime's default; the served stand-in
#: backend uses "0"); ``--in-process-spinning``.
SPINNING = {"value": "1"}


def _session(model_onnx: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.add_session_config_entry("session.intra_op.allow_spinning", SPINNING["value"])
    return ort.InferenceSession(str(model_onnx), so, providers=["CPUExecutionProvider"])


def _tokenizer(tok_dir: Path):
    """The ``tokenizers`` library on ``tokenizer.json`` (no torch/transformers), truncating at 256 as the step does."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    tok.enable_truncation(256)
    return tok


def _encode(tok, text: str, names: list[str]) -> dict[str, np.ndarray]:
    e = tok.encode(text)
    arrays = {"input_ids": e.ids, "attention_mask": e.attention_mask, "token_type_ids": e.type_ids}
    return {k: np.asarray([arrays[k]], dtype=np.int64) for k in names}


class InProcess:
    """Tokenizer + onnxruntime session (+ pooling when the graph answers hidden states) in this process: the limit
    the served pipeline is compared with."""

    def __init__(self, model_onnx: Path, tok_dir: Path, threads: int) -> None:
        self.sess = _session(model_onnx, threads)
        self.tok = _tokenizer(tok_dir)
        self.names = [i.name for i in self.sess.get_inputs()]
        self.output = self.sess.get_outputs()[0].name
        self.pre = [_encode(self.tok, t, self.names) for t in GATE_TEXTS]
        for i in range(5):
            self.one(i, False)

    def one(self, i: int, core_only: bool) -> None:
        if core_only:
            self.sess.run([self.output], self.pre[i % len(self.pre)])
            return
        enc = _encode(self.tok, GATE_TEXTS[i % len(GATE_TEXTS)], self.names)
        h = self.sess.run([self.output], enc)[0]
        if self.output == "last_hidden_state":
            m = enc["attention_mask"][..., None].astype(np.float32)
            e = (h * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
            e / np.linalg.norm(e, axis=1, keepdims=True)

    def rate(self, concurrency: int, duration: float, core_only: bool) -> float:
        """Requests per second with ``concurrency`` threads, each calling :meth:`one` in a closed loop."""
        count = [0] * concurrency
        stop = time.perf_counter() + duration

        def worker(w: int) -> None:
            i = w
            while time.perf_counter() < stop:
                self.one(i, core_only)
                count[w] += 1
                i += concurrency

        ts = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return sum(count) / duration


_RSS_SCRIPT = """
import sys, numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
so = ort.SessionOptions(); so.intra_op_num_threads = int(sys.argv[3]); so.inter_op_num_threads = 1
sess = ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
tok = Tokenizer.from_file(sys.argv[2] + "/tokenizer.json")
names = [i.name for i in sess.get_inputs()]
for t in sys.argv[4:]:
    e = tok.encode(t)
    arrays = {"input_ids": e.ids, "attention_mask": e.attention_mask, "token_type_ids": e.type_ids}
    sess.run(None, {k: np.asarray([arrays[k]], dtype=np.int64) for k in names})
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024,
      next(int(l.split()[1]) for l in open("/proc/self/smaps_rollup") if l.startswith("Pss:")) / 1024)
"""


def in_process_rss(model_onnx: Path, tok_dir: Path, threads: int) -> tuple[float, float]:
    """``(peak RSS, PSS at the end)`` (MiB) of a fresh process holding the tokenizer and the session, after answering
    the gate texts."""
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(model_onnx), str(tok_dir), str(threads), *GATE_TEXTS],
                         capture_output=True, text=True, check=True)
    peak, pss = out.stdout.strip().splitlines()[-1].split()
    return float(peak), float(pss)


def _rollup(pid: int | str) -> dict[str, float]:
    """``/proc/PID/smaps_rollup`` in MiB (``Rss``, ``Pss``, ``Anonymous``, ...)."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1].isdigit():
            out[parts[0].rstrip(":")] = int(parts[1]) / 1024
    return out


def server_rss(pid: int, key: str = "Rss") -> dict[str, float]:
    """Resident memory (MiB) of ``pid`` and of every process under it, by command (``tritonserver``, stubs by model).

    ``key``: ``Rss`` (pages shared between the processes, e.g. libraries, count in each) or ``Pss`` (a shared page
    counts 1/n in each of the n processes mapping it: the sum is what the group really holds)."""
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            ppid = next(int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith("PPid:"))
        except (OSError, StopIteration):
            continue
        children.setdefault(ppid, []).append(int(status.parent.name))
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
            rss = _rollup(p)[key]
        except (OSError, KeyError):
            continue
        found = [m.group(1) for c in cmd for m in [re.search(r"/repo/([^/]+)", c.decode(errors="replace"))] if m]
        label = "tritonserver" if p == pid else f"stub {found[0] if found else p}"
        out[label if label not in out else f"{label} ({p})"] = rss
    return out


def _split(lv) -> dict[str, float]:
    """Average client latency and, per model step, server queue and compute (input + infer + output), in ms."""
    steps = lv.steps or [lv.server]
    out = {"client": lv.latency_us["avg"] / 1000}
    for st in steps:
        short = st.model.rsplit("_", 1)[-1] if "_" in st.model else st.model
        out[f"{short} queue"] = st.queue_us / 1000
        out[f"{short} compute"] = (st.compute_input_us + st.compute_infer_us + st.compute_output_us) / 1000
    out["rest"] = out["client"] - sum(v for k, v in out.items() if k != "client")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=4.0, help="seconds per level, served and in process each")
    ap.add_argument("--rounds", type=int, default=3, help="served and in-process windows alternate this many times")
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--instance-count", type=int, default=None, help="core instances (default: the machine rule)")
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads per core instance")
    ap.add_argument("--in-process-spinning", choices=["0", "1"], default="1",
                    help="ONNX Runtime's allow_spinning for the in-process session (1: its default; the served "
                         "stand-in backend does not spin)")
    args = ap.parse_args()
    SPINNING["value"] = args.in_process_spinning
    levels = [int(x) for x in args.concurrency.split(",")]
    window = args.duration / args.rounds
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        repo = Path(tmp) / "repo"
        t0 = time.perf_counter()
        settings = ModelSettings(instance_count=args.instance_count, threads=args.threads)
        result = add_pipeline(str(tiny_models.minilm_path()),
                              AddOptions(repo=repo, name="minilm", backend=args.backend, settings=settings))
        print(f"add-hf --pipeline: {time.perf_counter() - t0:.1f}s; steps: {' -> '.join(result.steps)}")
        core_cfg = read_config(repo / "minilm_model")
        threads = int(core_cfg.parameters["intra_op_thread_count"].string_value) if "intra_op_thread_count" in core_cfg.parameters else 1
        model_onnx = repo / "minilm_model" / "1" / "model.onnx"
        tok_dir = repo / "minilm_preprocess" / "1" / "processor"
        local = InProcess(model_onnx, tok_dir, threads) if model_onnx.is_file() else None  # python: no ONNX graph
        rows, splits = [], []
        with TritonServer(repo) as server:
            tok = _tokenizer(tok_dir)
            core_inputs = [t.name for t in core_cfg.input]
            core_reqs = [r for t in GATE_TEXTS for r in split_rows(_encode(tok, t, core_inputs))]
            for what, model, reqs in (("pipeline", "minilm", texts_payloads("text", GATE_TEXTS)),
                                      ("core", "minilm_model", core_reqs)):
                for level in levels:
                    # served and in-process windows alternate, so that the shared machine's load hits both alike
                    served, local_rates, p99, batch, load, split = [], [], [], [], [], []
                    for _ in range(args.rounds):
                        opts = BenchOptions(url=server.grpc_url, protocol="grpc", concurrency=[level], duration=window,
                                            warmup=0.5)
                        lv = run_bench(model, reqs, opts).levels[0]
                        served.append(lv.throughput)
                        p99.append(lv.latency_us["p99"] / 1000)
                        batch.append(lv.server.avg_batch)
                        split.append(_split(lv))
                        local_rates.append(local.rate(level, window, what == "core") if local else float("nan"))
                        load.append(_load1())
                    rows.append((what, level, np.mean(served), np.mean(local_rates), np.median(p99), np.mean(batch),
                                 min(load), max(load)))
                    splits.append((what, level, {k: float(np.mean([d[k] for d in split])) for k in split[0]}))
            rss, pss = server_rss(server._proc.pid), server_rss(server._proc.pid, "Pss")
        cpu = open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t")
        count = core_cfg.instance_group[0].count if core_cfg.instance_group else 1
        print(f"\n{cpu}, {os.cpu_count()} CPUs (shared); {count} core instance(s) x {threads} intra-op thread(s); gRPC; {args.rounds} alternating "
              f"windows of {window:.2g}s per side and level; in-process session spinning {SPINNING['value']}")
        print(f"{'what':9s} {'conc':>4s} {'served/s':>9s} {'in-proc/s':>10s} {'ratio':>6s} {'p99 ms':>7s} "
              f"{'avg batch':>9s} {'load1':>11s}")
        for what, level, srv, loc, p, b, lo, hi in rows:
            print(f"{what:9s} {level:4d} {srv:9.1f} {loc:10.1f} {srv / loc:6.2f} {p:7.1f} {b:9.2f} {lo:5.1f}-{hi:<5.1f}")
        print("\nwhere a request's time goes (ms, mean over the windows; server figures per request from the statistics"
              " extension: queue / compute input+infer+output per step; 'rest' = client latency - the steps: gRPC,"
              " the ensemble's hops between steps)")
        for what, level, d in splits:
            print(f"{what:9s} {level:4d} " + "  ".join(f"{k} {v:.2f}" for k, v in d.items()))
        if local is None:
            return
        del local
        proc_rss, proc_pss = in_process_rss(model_onnx, tok_dir, threads)
        total, total_pss = sum(rss.values()), sum(pss.values())
        print("\nserving RSS (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(rss.items())))
        print("serving PSS (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(pss.items())))
        print(f"pipeline serving RSS {total:.0f} MiB vs in process {proc_rss:.0f} MiB (peak): ratio {total / proc_rss:.2f}")
        print(f"pipeline serving PSS {total_pss:.0f} MiB vs in process {proc_pss:.0f} MiB: ratio {total_pss / proc_pss:.2f}"
              f" (load1 {_load1():.2f})")


if __name__ == "__main__":
    main()
