"""Seed 002's case (tritoned_bert): a BERT sequence classifier served as text in -> label + score out.

    python examples/text_classifier.py CHECKPOINT [REPO_DIR]

CHECKPOINT is any local folder (or hub id) of a sequence classifier with ``id2label``. The example runs
``tritonrepo add-hf CHECKPOINT --pipeline``, serves the repository with the real Triton server, sends raw texts
and compares labels and scores with ``transformers.pipeline("text-classification")`` in PyTorch.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

from common import report, tritonrepo

TEXTS = ["the movie was good", "bad", "hello world, triton serves the model", "the the the bad movie"]


def main(checkpoint: str, repo: Path = Path("classifier_repository")) -> int:
    from transformers import pipeline

    from tritonrepo.client import infer
    from tritonrepo.server import TritonServer

    shutil.rmtree(repo, ignore_errors=True)
    tritonrepo("add-hf", checkpoint, "--repo", str(repo), "--name", "classifier", "--pipeline")
    reference = pipeline("text-classification", model=checkpoint, device="cpu")(TEXTS)
    with TritonServer(repo) as server:
        got = infer(server.http_url, "classifier", {"text": np.array([[t.encode()] for t in TEXTS], dtype=object)})
    labels = [x.decode() for x in got["label"].reshape(-1)]
    scores = got["score"].reshape(-1)
    diff = max(abs(float(s) - r["score"]) for s, r in zip(scores, reference))
    for t, label, score in zip(TEXTS, labels, scores):
        print(f"{t!r:>40} -> {label} ({score:.4f})")
    return report([
        ("labels equal transformers' pipeline", f"{labels}", labels == [r["label"] for r in reference]),
        ("scores vs transformers' pipeline (max abs)", f"{diff:.3g}", diff <= 1e-4),
    ])


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], Path(sys.argv[2]) if len(sys.argv) > 2 else Path("classifier_repository")))
