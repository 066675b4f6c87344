"""A causal LM served with Triton's generate API: greedy text, token streaming (SSE and gRPC), seeded sampling.

    python examples/generate_text.py CHECKPOINT [REPO_DIR] [--backend python|onnx]

CHECKPOINT is any local folder (or hub id) of a decoder-only model (GPT-2, Llama, Qwen2, ...) with its
tokenizer. The example runs ``tritonrepo add-hf CHECKPOINT``, serves the repository with the real Triton
server and checks that ``/v2/models/generator/generate`` returns transformers' greedy text, that the
concatenated ``/generate_stream`` events and the gRPC stream equal it, and that sampling with a seed repeats.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from common import report, tritonrepo

PROMPTS = ["hello world", "The quick brown fox jumps over the lazy dog and"]
MAX_TOKENS = 16


def reference(checkpoint: str, prompt: str) -> str:
    """transformers: ``generate(do_sample=False)``, new tokens decoded with ``skip_special_tokens=True``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint).eval()
    ids = tok(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=MAX_TOKENS,
                             pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def main(checkpoint: str, repo: Path = Path("generate_repository"), backend: str = "python") -> int:
    from tritonrepo.client import generate, generate_grpc_stream, generate_request, generate_stream
    from tritonrepo.server import TritonServer

    shutil.rmtree(repo, ignore_errors=True)
    tritonrepo("add-hf", checkpoint, "--repo", str(repo), "--name", "generator", "--backend", backend)
    rows = []
    with TritonServer(repo) as server:
        for prompt in PROMPTS:
            want = reference(checkpoint, prompt)
            body = generate_request(prompt, max_tokens=MAX_TOKENS)
            text = generate(server.http_url, "generator", body)
            pieces = list(generate_stream(server.http_url, "generator", body))
            grpc = "".join(generate_grpc_stream(server.grpc_url, "generator", body))
            print(f"{prompt!r} -> {text!r}  ({len(pieces)} streamed pieces)")
            rows.append((f"greedy text equals transformers ({len(prompt)} chars)", f"{len(text)} chars", text == want))
            rows.append(("SSE stream concatenated equals /generate", f"{len(pieces)} events", "".join(pieces) == text))
            rows.append(("gRPC stream concatenated equals /generate", "", grpc == text))
        seeded = generate_request(PROMPTS[0], max_tokens=MAX_TOKENS, sampling={"temperature": 0.8, "seed": 42})
        a, b = (generate(server.http_url, "generator", seeded) for _ in range(2))
        rows.append(("sampling with a seed repeats", f"{a[:20]!r}", a == b))
    return report(rows)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("repo", nargs="?", type=Path, default=Path("generate_repository"))
    ap.add_argument("--backend", choices=("python", "onnx"), default="python")
    a = ap.parse_args()
    sys.exit(main(a.checkpoint, a.repo, a.backend))
