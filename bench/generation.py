"""Benchmark for served generation: tokens/s at concurrency 1 and 8, time to first token, as ratios against
in-process generation in the same run. Prints a table.

    python bench/generation.py [--tokens 32] [--size small|tiny] [--backends python,onnx] [--models gpt2,t5]

The model is a randomly initialised GPT-2-small-sized model (124M parameters: 12 layers, hidden 768, 12 heads,
vocab 50257, built from a config, no download). EOS is disabled so every request generates exactly
``--tokens`` tokens. References, measured here:

* ``python`` backend vs ``model.generate(do_sample=False)`` in PyTorch, in this process;
* ``onnx`` backend vs optimum's ``ORTModelForCausalLM.generate`` (onnxruntime), in this process.

With ``--models ...,t5`` an encoder-decoder is measured too: a randomly initialised T5-small-sized model (60M: 6+6
layers, d_model 512, 8 heads, vocab 32128), against ``model.generate`` and optimum's ``ORTModelForSeq2SeqLM``.

With ``--models ...,whisper,ved`` speech recognition and image-to-text are measured too (served only: the
module runs transformers' pipeline, whose one-request figure is c1): a randomly initialised Whisper (``small``:
whisper-tiny-sized, d_model 384, 4+4 layers, 6 heads; 30 s windows) on a 4 s clip, and a VisionEncoderDecoder
(``small``: ViT 224x224 patch 16, hidden 384, 6 layers + a GPT-2 decoder of the same size with cross-attention)
on a PNG image; tokenizers and processors are tests/tiny_generative.py's, the end-of-sequence token is suppressed
so every request generates exactly ``--tokens`` tokens. c8 = 8 concurrent requests (gRPC), which the module runs
as one batch.

Served figures: c1 = one request at a time (tokens/s = tokens / request time, via ``/generate``), TTFT =
time to the first SSE event of ``/generate_stream``; c8 = 8 concurrent requests, total tokens / wall time.
Goal: served c1 >= 0.8 x in-process, served c8 > served c1. The reference (in a fresh process) and the served
figures alternate for ``--rounds`` rounds with the server up, so that a shared machine's load hits both alike; the
ratios printed are the medians of each round's ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

PROMPT = "The quick brown fox jumps over the lazy dog and the server streams the answer back"


def build_checkpoint(path: Path, size: str) -> Path:
    """GPT-2 small (124M) or a tiny one, random weights; a byte-level BPE tokenizer padded to the vocab size."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    torch.manual_seed(0)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([PROMPT] * 8, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    if size == "small":
        cfg = GPT2Config(n_positions=1024, n_embd=768, n_layer=12, n_head=12)
    else:
        cfg = GPT2Config(n_positions=256, n_embd=64, n_layer=2, n_head=2)
    fast.add_tokens([f"<t{i}>" for i in range(cfg.vocab_size - len(fast))])
    cfg.bos_token_id = cfg.eos_token_id = None  # no early stop: every request makes exactly --tokens tokens
    model = GPT2LMHeadModel(cfg).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    model.save_pretrained(path)
    fast.save_pretrained(path)
    print(f"model: GPT-2 {size}, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters")
    return path


def build_t5_checkpoint(path: Path, size: str) -> Path:
    """T5-small-sized (60M) or tiny encoder-decoder, random weights, EOS disabled; the GPT-2 bench tokenizer."""
    import torch
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    build_checkpoint(path.parent / (path.name + "-tok"), "tiny")
    fast = PreTrainedTokenizerFast.from_pretrained(path.parent / (path.name + "-tok"))
    torch.manual_seed(0)
    if size == "small":
        cfg = T5Config(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8)
    else:
        cfg = T5Config(vocab_size=32128, d_model=64, d_kv=32, d_ff=128, num_layers=2, num_heads=2)
    fast.add_tokens([f"<u{i}>" for i in range(cfg.vocab_size - len(fast))])
    cfg.pad_token_id = cfg.decoder_start_token_id = 0
    cfg.eos_token_id = None
    model = T5ForConditionalGeneration(cfg).eval()
    model.generation_config.eos_token_id = None
    model.save_pretrained(path)
    fast.save_pretrained(path)
    print(f"model: T5 {size}, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters")
    return path


def build_media_checkpoint(path: Path, family: str, size: str) -> Path:
    """Whisper or VisionEncoderDecoder with random weights: tests/tiny_generative.py's tiny checkpoint (tokenizer,
    processor, generation config), rebuilt at ``small`` size; the end-of-sequence token is suppressed."""
    import torch
    from transformers import (
        AutoConfig,
        GenerationConfig,
        GPT2Config,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
        WhisperForConditionalGeneration,
    )

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import tiny_generative as tg

    if family == "whisper":
        tg.make_whisper(path)
        cfg = AutoConfig.from_pretrained(path)
        if size == "small":
            cfg.update({"d_model": 384, "encoder_layers": 4, "decoder_layers": 4, "encoder_attention_heads": 6,
                        "decoder_attention_heads": 6, "encoder_ffn_dim": 1536, "decoder_ffn_dim": 1536,
                        "max_target_positions": 448, "init_std": 0.02})
        torch.manual_seed(0)
        model = WhisperForConditionalGeneration(cfg).eval()
    else:
        tg.make_vision_encoder_decoder(path)
        old = AutoConfig.from_pretrained(path)
        if size == "small":
            enc = ViTConfig(image_size=224, patch_size=16, hidden_size=384, num_hidden_layers=6, num_attention_heads=6,
                            intermediate_size=1536)
            dec = GPT2Config(vocab_size=old.decoder.vocab_size, n_positions=128, n_embd=384, n_layer=6, n_head=6,
                             bos_token_id=0, eos_token_id=0, add_cross_attention=True, is_decoder=True)
            cfg = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
            cfg.decoder_start_token_id = cfg.pad_token_id = cfg.eos_token_id = 0
            ViTImageProcessor(size={"height": 224, "width": 224}).save_pretrained(path)
        else:
            cfg = old
        torch.manual_seed(0)
        model = VisionEncoderDecoderModel(config=cfg).eval()
    gen = GenerationConfig.from_pretrained(path)
    gen.suppress_tokens = sorted(set(gen.suppress_tokens or []) | {0})  # id 0: <|endoftext|>, never generated
    gen.max_length = 128 if size == "small" or family == "whisper" else 64
    model.generation_config = gen
    model.save_pretrained(path)
    print(f"model: {family} {size}, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters")
    return path


def media_body(family: str, tokens: int) -> dict:
    """A 4 s noisy tone (WAV) or a 96x128 random PNG, and ``max_tokens``."""
    import io

    import numpy as np

    rng = np.random.default_rng(0)
    if family == "whisper":
        from tritonrepo.triton_models.audio import encode_wav

        t = np.arange(4 * 16000) / 16000
        clip = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(t.size)).astype(np.float32)
        return {"audio": encode_wav(clip, 16000), "max_tokens": tokens}
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(buf, format="PNG")
    return {"image": buf.getvalue(), "max_tokens": tokens}


def served_media(url: str, model: str, body: dict, tokens: int, concurrency: int) -> dict[str, float]:
    """Served tokens/s of ``body`` over gRPC: c1 one request at a time, else ``concurrency`` concurrent ones."""
    from tritonrepo.client import generate_grpc_stream

    def one():
        pieces = list(generate_grpc_stream(url, model, body, stream=False))
        assert pieces and pieces[0], pieces

    one()  # warm up
    if concurrency == 1:
        return {"tok_s": tokens / timed(one)}
    return {"tok_s": burst_tok_s(one, concurrency, tokens)}


def burst_tok_s(call, concurrency: int, tokens: int) -> float:
    """Tokens/s of ``concurrency`` threads each making one ``call`` (``tokens`` tokens) at once: best of 2 bursts.
    Raises the first error a call raised."""
    errors: list[Exception] = []

    def worker():
        try:
            call()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    def burst():
        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    wall = timed(burst)
    if errors:
        raise errors[0]
    return concurrency * tokens / wall


def timed(fn, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def in_process(ckpt: Path, tokens: int, backend: str, threads: int, onnx_dir: str = "") -> dict[str, float]:
    """tokens/s and TTFT of in-process greedy generation (PyTorch ``generate`` or optimum's ORT model loaded from
    the same exported ``model.onnx`` the server uses), with ``threads`` intra-op threads."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from transformers import AutoConfig, AutoModelForSeq2SeqLM

    torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(ckpt)
    ids = tok(PROMPT, return_tensors="pt").input_ids
    seq2seq = AutoConfig.from_pretrained(ckpt).is_encoder_decoder
    if backend == "python":
        model = (AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM).from_pretrained(ckpt).eval()
    else:
        import onnxruntime as ort
        from optimum.onnxruntime import ORTModelForCausalLM, ORTModelForSeq2SeqLM

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        ort_class = ORTModelForSeq2SeqLM if seq2seq else ORTModelForCausalLM
        model = ort_class.from_pretrained(onnx_dir, use_cache=True, session_options=so)

    def run(n):
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                                 min_new_tokens=n, pad_token_id=0)
        assert out.shape[1] - (1 if seq2seq else ids.shape[1]) == n

    run(2)  # warm up
    total = timed(lambda: run(tokens))
    ttft = timed(lambda: run(1))
    return {"tok_s": tokens / total, "ttft": ttft}


def in_fresh_process(ckpt: Path, tokens: int, backend: str, threads: int, onnx_dir: str = "") -> dict[str, float]:
    """:func:`in_process` in a new interpreter (no thread pools left over from the export in this one)."""
    import json
    import subprocess

    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import generation; "
            f"print('RESULT', json.dumps(generation.in_process(__import__('pathlib').Path({str(ckpt)!r}), "
            f"{tokens}, {backend!r}, {threads}, {onnx_dir!r})))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"in-process {backend} reference failed: {run.stderr[-2000:]}")
    out = run.stdout
    return json.loads(next(ln for ln in out.splitlines() if ln.startswith("RESULT"))[7:])


def served(url: str, model: str, tokens: int, concurrency: int) -> dict[str, float]:
    from tritonrepo.client import generate, generate_request, generate_stream

    body = generate_request(PROMPT, max_tokens=tokens)
    generate(url, model, body)  # warm up
    if concurrency == 1:
        total = timed(lambda: generate(url, model, body))

        def first():
            for _ in generate_stream(url, model, body | {"max_tokens": 1}):
                break

        ttft = timed(first)
        return {"tok_s": tokens / total, "ttft": ttft}
    return {"tok_s": burst_tok_s(lambda: generate(url, model, body), concurrency, tokens), "ttft": float("nan")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--size", choices=("small", "tiny"), default="small")
    ap.add_argument("--backends", default="python,onnx")
    ap.add_argument("--models", default="gpt2", help="gpt2, t5 (a T5-small-sized encoder-decoder), whisper, ved "
                    "(speech recognition / image-to-text), comma-separated")
    ap.add_argument("--threads", type=int, default=1,
                    help="intra-op threads for PyTorch/onnxruntime, in-process and served alike (default 1: on a "
                         "busy shared machine 2 OpenMP threads are up to 10x slower than 1)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="text models: rounds of (in-process reference, served c1, served c8), alternating")
    args = ap.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]

    from tritonrepo.add import AddOptions, add_hf
    from tritonrepo.config import ModelSettings
    from tritonrepo.server import TritonServer

    import os

    families = [m for m in args.models.split(",") if m in ("gpt2", "t5")]
    media = [m for m in args.models.split(",") if m in ("whisper", "ved")]
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="gen-bench-") as tmp:
        repo = Path(tmp) / "repo"
        refs = {}
        for fam in media:
            ckpt = build_media_checkpoint(Path(tmp) / fam, fam, args.size)
            for b in backends:
                t = time.perf_counter()
                add_hf(str(ckpt), AddOptions(repo=repo, name=f"{fam}_{b}", backend=b, settings=ModelSettings(
                    parameters={"torch_threads": str(args.threads)})))
                print(f"add-hf {fam} --backend {b}: {time.perf_counter() - t:.1f}s")
        for fam in families:
            ckpt = (build_checkpoint if fam == "gpt2" else build_t5_checkpoint)(Path(tmp) / fam, args.size)
            for b in backends:
                t = time.perf_counter()
                add_hf(str(ckpt), AddOptions(repo=repo, name=f"{fam}_{b}", backend=b, settings=ModelSettings(
                    max_batch_size=8, parameters={"torch_threads": str(args.threads)}),
                    task="text2text-generation" if fam == "t5" else None))
                print(f"add-hf {fam} --backend {b}: {time.perf_counter() - t:.1f}s")
            onnx_dir = ""
            if "onnx" in backends:  # optimum's ORT model on the very graph the server runs (no second export)
                import shutil

                onnx_dir = str(Path(tmp) / f"ort-{fam}")
                shutil.copytree(repo / f"{fam}_onnx" / "1" / "onnx", onnx_dir)
                for f in (repo / f"{fam}_onnx" / "1" / "hf_model").glob("*.json"):
                    shutil.copy2(f, onnx_dir)
            refs[fam] = (ckpt, onnx_dir)
        rows, media_rows = [], []
        with TritonServer(repo) as server:
            for fam in families:
                ckpt, onnx_dir = refs[fam]
                for b in backends:
                    # the in-process reference and the served figures alternate, round by round, so that the load
                    # of a shared machine hits both alike; each round's ratio is taken, then their median
                    rounds = []
                    for _ in range(args.rounds):
                        ref = in_fresh_process(ckpt, args.tokens, b, args.threads, onnx_dir)
                        c1 = served(server.http_url, f"{fam}_{b}", args.tokens, 1)
                        c8 = served(server.http_url, f"{fam}_{b}", args.tokens, 8)
                        rounds.append((ref, c1, c8))
                    rows.append((fam, b, rounds))
            for fam in media:
                body = media_body(fam, args.tokens)
                for b in backends:
                    c1 = served_media(server.grpc_url, f"{fam}_{b}", body, args.tokens, 1)
                    c8 = served_media(server.grpc_url, f"{fam}_{b}", body, args.tokens, 8)
                    media_rows.append((fam, b, c1, c8))
            load.append(os.getloadavg()[0])
    ref_name = {("gpt2", "python"): "model.generate (PyTorch)", ("gpt2", "onnx"): "ORTModelForCausalLM.generate",
                ("t5", "python"): "model.generate (PyTorch)", ("t5", "onnx"): "ORTModelForSeq2SeqLM.generate"}
    print(f"\nmachine load (1-min average, {os.cpu_count()} cores): {load[0]:.1f} at the start, {load[-1]:.1f} at the end")
    if media_rows:
        print(f"\n{args.tokens} new tokens per request (speech / image to text), {args.threads} thread(s)")
        print(f"{'model':8} {'backend':8} {'c1 tok/s':>9} {'c8 tok/s':>9} {'c8/c1':>6}")
        for fam, b, c1, c8 in media_rows:
            print(f"{fam:8} {b:8} {c1['tok_s']:9.1f} {c8['tok_s']:9.1f} {c8['tok_s'] / c1['tok_s']:6.2f}")
    if not rows:
        return 0
    print(f"\n{args.tokens} new tokens per request, prompt of {len(PROMPT.split())} words, {args.threads} thread(s)")
    print(f"{'model':5} {'backend':8} {'in-process reference':30} {'ref tok/s':>9} {'c1 tok/s':>9} {'c1/ref':>7} "
          f"{'c8 tok/s':>9} {'c8/c1':>6} {'ref TTFT':>9} {'TTFT':>8}")
    ok = True
    for fam, b, rounds in rows:
        ratios = [c1["tok_s"] / ref["tok_s"] for ref, c1, _ in rounds]
        scales = [c8["tok_s"] / c1["tok_s"] for _, c1, c8 in rounds]
        ratio, scale = statistics.median(ratios), statistics.median(scales)
        med = {k: statistics.median(r[0][k] for r in rounds) for k in ("tok_s", "ttft")}
        c1 = {k: statistics.median(r[1][k] for r in rounds) for k in ("tok_s", "ttft")}
        c8 = statistics.median(r[2]["tok_s"] for r in rounds)
        ok = ok and ratio >= 0.8 and scale > 1.0
        print(f"{fam:5} {b:8} {ref_name[(fam, b)]:30} {med['tok_s']:9.1f} {c1['tok_s']:9.1f} {ratio:7.2f} "
              f"{c8:9.1f} {scale:6.2f} {med['ttft'] * 1000:7.1f}ms {c1['ttft'] * 1000:6.1f}ms")
        if len(rounds) > 1:
            print(f"{'':15}c1/ref per round: " + " ".join(f"{r:.2f}" for r in ratios)
                  + "; c8/c1 per round: " + " ".join(f"{r:.2f}" for r in scales))
    print(f"(medians over {args.rounds} alternating round(s); ratios are the medians of each round's ratio)")
    print("goal (c1 >= 0.8 x in-process, c8 > c1):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
