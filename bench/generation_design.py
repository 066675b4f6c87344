"""Why the generation loop runs the ONNX graph in-module: the product against a BLS loop, measured on tritonserver.

    python bench/generation_design.py [--sizes small,tiny] [--tokens 32] [--rounds 3]

Served side by side by ONE tritonserver (the nvidia-pytriton wheel's 2.51, 1 intra-op thread everywhere):

* (a) **product**: ``add-hf --backend onnx`` (``triton_models/generate.py``: optimum's ``model.onnx`` in an
  onnxruntime session inside the decoupled generation module);
* (b) **BLS**: ``bench/bls_generate/model.py``, a fixed non-decoupled Python-backend loop that calls the SAME
  ``model.onnx``, served as a Triton model of its own (``backend: "onnxruntime"``: here tritonrepo's Python-based
  onnxruntime backend, a second Python stub; in production Triton's native C++ backend), once per token with
  ``pb_utils.InferenceRequest(...).exec()``, the KV cache sent and returned as tensors at every step.

Models: the randomly initialised GPT-2-small-sized model of ``bench/generation.py`` (124M: 12 layers, 12 heads,
head 64) and its tiny one (2 layers, 2 heads, head 32); EOS disabled, so every request makes ``--tokens`` tokens.
The two designs must give the same greedy text (checked).

Printed per size: tokens/s and time per token at c1 (``/generate``, one request at a time; (a) and (b) measured in
alternating windows, ``--rounds`` each, order swapped every round, so the machine's load hits both alike; median of
the windows) with the BLS loop's own step and ``exec()`` times; c8 for the product (the BLS loop does not batch: 8
concurrent requests are served one after the other, measured on the tiny model only). Then one decode step by KV
length (prompt + ``--tokens``, 128, 256, 512, 1000 within the model's positions), measured inside one stub
(``bls_probe``), call by call and alternately: a BLS ``exec()`` to the decoder model, and the same step in an
onnxruntime session opened in that stub (what the product's module does, 1 thread); a BLS round trip to an
identity ONNX model (``kv.N`` -> ``kv_out.N``, same backend) with the same KV tensors, and with 1-token tensors
(the fixed cost of a call); the KV bytes, and one NumPy copy of them in this process. The load average range is
printed with the results. ~3.5 min at load average 5-8 on 2 cores (the 124M export included).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import generation  # noqa: E402  (bench/generation.py: checkpoint builders, PROMPT)

HERE = Path(__file__).parent


def load() -> float:
    return os.getloadavg()[0]


def write_config(path: Path, name: str, backend: str, inputs, outputs, params: dict[str, str],
                 optional: tuple[str, ...] = ()) -> None:
    """A non-batching config (``max_batch_size: 0``, one CPU instance) as a protobuf, written with text_format."""
    from tritonrepo.config import mc
    from tritonrepo.config import write_config as write

    cfg = mc.ModelConfig(name=name, backend=backend, max_batch_size=0)
    for n, t, dims in inputs:
        cfg.input.add(name=n, data_type=mc.DataType.Value(t), dims=dims, optional=n in optional)
    for n, t, dims in outputs:
        cfg.output.add(name=n, data_type=mc.DataType.Value(t), dims=dims)
    cfg.instance_group.add(kind=mc.ModelInstanceGroup.KIND_CPU, count=1)
    for k, v in params.items():
        cfg.parameters[k].string_value = v
    path.mkdir(parents=True, exist_ok=True)
    write(cfg, path / "config.pbtxt")


def echo_graph(path: Path, n: int, heads: int, head_dim: int) -> None:
    """An identity ONNX graph: ``kv.i`` -> ``kv_out.i`` (float32 ``[-1, heads, -1, head_dim]``), i < n."""
    import onnx
    from onnx import TensorProto, helper

    shape = ["b", heads, "t", head_dim]
    graph = helper.make_graph(
        [helper.make_node("Identity", [f"kv.{i}"], [f"kv_out.{i}"]) for i in range(n)], "echo",
        [helper.make_tensor_value_info(f"kv.{i}", TensorProto.FLOAT, shape) for i in range(n)],
        [helper.make_tensor_value_info(f"kv_out.{i}", TensorProto.FLOAT, shape) for i in range(n)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def build_bls(repo: Path, size: str, product: Path) -> dict:
    """``dec_SIZE`` (the product's model.onnx as a Triton onnxruntime model), ``bls_SIZE`` (the loop) and
    ``echo_SIZE`` (identity graph, KV-shaped); returns the KV geometry."""
    from tritonrepo.export.onnx import graph_io

    onnx_file = product / "1" / "onnx" / "model.onnx"
    ins, outs = graph_io(onnx_file)
    dec = repo / f"dec_{size}"
    (dec / "1").mkdir(parents=True)
    os.symlink(onnx_file, dec / "1" / "model.onnx")
    for extra in onnx_file.parent.glob("model.onnx_data"):
        os.symlink(extra, dec / "1" / extra.name)
    write_config(dec, dec.name, "onnxruntime", [(k, t, s) for k, (t, s) in ins.items()],
                 [(k, t, s) for k, (t, s) in outs.items()], {"intra_op_thread_count": "1",
                                                              "inter_op_thread_count": "1"})
    past = [k for k in ins if k.startswith("past_key_values.")]
    heads, head_dim = ins[past[0]][1][1], ins[past[0]][1][3]
    geo = {"layers": len(past) // 2, "kv_heads": heads, "head_dim": head_dim, "vocab": outs["logits"][1][-1],
           "positions": json.loads((product / "1" / "hf_model" / "config.json").read_text())["n_positions"]}
    loop = repo / f"bls_{size}"
    (loop / "1").mkdir(parents=True)
    shutil.copy2(HERE / "bls_generate" / "model.py", loop / "1" / "model.py")
    write_config(loop, loop.name, "python",
                 [("text_input", "TYPE_STRING", [1]), ("max_tokens", "TYPE_INT32", [1]),
                  ("exclude_input_in_output", "TYPE_BOOL", [1]), ("stream", "TYPE_BOOL", [1])],
                 [("text_output", "TYPE_STRING", [-1]), ("exec_seconds", "TYPE_FP64", [-1]),
                  ("step_seconds", "TYPE_FP64", [-1])],
                 {"decoder": dec.name, "tokenizer_dir": str(product / "1" / "hf_model"),
                  "layers": str(geo["layers"]), "kv_heads": str(heads), "head_dim": str(head_dim),
                  "position_ids": "true" if "position_ids" in ins else "false"},
                 optional=("max_tokens", "exclude_input_in_output", "stream"))
    echo = repo / f"echo_{size}"
    n = len(past)
    echo_graph(echo / "1" / "model.onnx", n, heads, head_dim)
    shape = [-1, heads, -1, head_dim]
    write_config(echo, echo.name, "onnxruntime", [(f"kv.{i}", "TYPE_FP32", shape) for i in range(n)],
                 [(f"kv_out.{i}", "TYPE_FP32", shape) for i in range(n)], {"intra_op_thread_count": "1"})
    return geo


def build_probe(repo: Path) -> None:
    probe = repo / "bls_probe"
    (probe / "1").mkdir(parents=True)
    shutil.copy2(HERE / "bls_generate" / "model.py", probe / "1" / "model.py")
    write_config(probe, probe.name, "python",
                 [("target", "TYPE_STRING", [1]), ("kv_shape", "TYPE_INT64", [4]), ("tensors", "TYPE_INT32", [1]),
                  ("repeat", "TYPE_INT32", [1]), ("onnx_path", "TYPE_STRING", [1])],
                 [("seconds", "TYPE_FP64", [-1]), ("local_seconds", "TYPE_FP64", [-1])], {"mode": "probe"},
                 optional=("onnx_path",))


def post(url: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"http://{url}{path}", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read())


def c1_window(url: str, model: str, tokens: int, requests: int) -> tuple[float, str, dict]:
    """Seconds per request (median of ``requests``), the text, and the BLS loop's own timings (last request)."""
    times, answer = [], {}
    for _ in range(requests):
        t = time.perf_counter()
        answer = post(url, f"/v2/models/{model}/generate",
                      {"text_input": generation.PROMPT, "max_tokens": tokens, "exclude_input_in_output": True,
                       "stream": False})
        times.append(time.perf_counter() - t)
    return statistics.median(times), answer["text_output"], answer


def c8_burst(url: str, model: str, tokens: int) -> float:
    """Total tokens / wall time of 8 concurrent requests."""
    errors: list[Exception] = []

    def one():
        try:
            post(url, f"/v2/models/{model}/generate", {"text_input": generation.PROMPT, "max_tokens": tokens,
                                                       "exclude_input_in_output": True, "stream": False})
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    if errors:
        raise errors[0]
    return 8 * tokens / wall


def probe(url: str, target: str, shape: list[int], n: int, repeat: int, onnx_path: str = "") -> tuple[float, float]:
    """Medians (seconds) measured inside the probe's stub: a BLS call to ``target`` with n tensors of ``shape``, and
    (``onnx_path``: ``target`` is the decoder, one decode step) the same step in an in-stub onnxruntime session."""
    inputs = [{"name": "target", "datatype": "BYTES", "shape": [1], "data": [target]},
              {"name": "kv_shape", "datatype": "INT64", "shape": [4], "data": shape},
              {"name": "tensors", "datatype": "INT32", "shape": [1], "data": [n]},
              {"name": "repeat", "datatype": "INT32", "shape": [1], "data": [repeat + 1]}]
    if onnx_path:
        inputs.append({"name": "onnx_path", "datatype": "BYTES", "shape": [1], "data": [onnx_path]})
    out = {o["name"]: o["data"] for o in post(url, "/v2/models/bls_probe/infer", {"inputs": inputs})["outputs"]}
    return statistics.median(out["seconds"][1:]), statistics.median(out["local_seconds"][1:] or [0.0])


def copy_time(nbytes: int, n: int) -> float:
    """Seconds for NumPy to copy ``nbytes`` held in ``n`` arrays once (median of 5)."""
    import numpy as np

    src = [np.random.default_rng(i).random(nbytes // 4 // n, dtype=np.float32) for i in range(n)]
    dst = [np.empty_like(a) for a in src]
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for a, b in zip(src, dst):
            np.copyto(b, a)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="small,tiny")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3, help="alternating (a)/(b) windows per size")
    ap.add_argument("--requests", type=int, default=2, help="c1 requests per window")
    ap.add_argument("--repeat", type=int, default=5, help="calls per probe and KV length")
    args = ap.parse_args(argv)
    sizes = [s for s in args.sizes.split(",") if s]

    from transformers import AutoTokenizer

    from tritonrepo.add import AddOptions, add_hf
    from tritonrepo.config import ModelSettings
    from tritonrepo.server import TritonServer

    start = time.perf_counter()
    loads = [load()]
    with tempfile.TemporaryDirectory(prefix="gen-design-") as tmp:
        repo = Path(tmp) / "repo"
        geo = {}
        for size in sizes:
            ckpt = generation.build_checkpoint(Path(tmp) / f"gpt2-{size}", size)
            t = time.perf_counter()
            add_hf(str(ckpt), AddOptions(repo=repo, name=f"gpt2_{size}", backend="onnx", settings=ModelSettings(
                max_batch_size=8, parameters={"torch_threads": "1"})))
            print(f"add-hf gpt2 {size} --backend onnx: {time.perf_counter() - t:.1f}s")
            geo[size] = build_bls(repo, size, repo / f"gpt2_{size}")
        build_probe(repo)
        tok = AutoTokenizer.from_pretrained(repo / f"gpt2_{sizes[0]}" / "1" / "hf_model")
        prompt_ids = tok(generation.PROMPT).input_ids
        kv_len = len(prompt_ids) + args.tokens
        lengths = {s: [kv_len, *(n for n in (128, 256, 512, 1000) if n < geo[s]["positions"] and n > kv_len)]
                   for s in sizes}
        t = time.perf_counter()
        results: dict[str, dict] = {s: {"a": [], "b": [], "exec": [], "step": []} for s in sizes}
        steps: dict[tuple, list] = {}  # (size, kind, length) -> [seconds, ...]
        with TritonServer(repo) as server:
            print(f"server up with {len(list(repo.iterdir()))} models: {time.perf_counter() - t:.1f}s")
            url = server.http_url
            for size in sizes:  # warm up, and the two designs must agree
                _, text_a, _ = c1_window(url, f"gpt2_{size}", args.tokens, 1)
                _, text_b, _ = c1_window(url, f"bls_{size}", args.tokens, 1)
                assert text_a == text_b, f"{size}: product {text_a!r} != BLS {text_b!r}"
            for r in range(args.rounds):
                for size in sizes:
                    g, res = geo[size], results[size]
                    for design in (("a", "b") if r % 2 == 0 else ("b", "a")):
                        model = f"gpt2_{size}" if design == "a" else f"bls_{size}"
                        sec, _, answer = c1_window(url, model, args.tokens, args.requests)
                        res[design].append(sec)
                        loads.append(load())
                        if design == "b":
                            res["exec"].append(statistics.median(answer["exec_seconds"][1:]))
                            res["step"].append(statistics.median(answer["step_seconds"][1:]))
                    n = 2 * g["layers"]
                    onnx_file = str(repo / f"gpt2_{size}" / "1" / "onnx" / "model.onnx")
                    order = [1, *lengths[size]]  # reversed every other round: no length is always measured first
                    for length in (order if r % 2 == 0 else order[::-1]):
                        shape = [1, g["kv_heads"], length, g["head_dim"]]
                        steps.setdefault((size, "echo", length), []).append(
                            probe(url, f"echo_{size}", shape, n, args.repeat)[0])
                        if length > 1:
                            bls, local = probe(url, f"dec_{size}", shape, n, args.repeat, onnx_file)
                            steps.setdefault((size, "bls", length), []).append(bls)
                            steps.setdefault((size, "local", length), []).append(local)
                    loads.append(load())
                print(f"round {r + 1}/{args.rounds} done, load average {load():.1f}")
            c8 = {s: c8_burst(url, f"gpt2_{s}", args.tokens) for s in sizes}
            c8_bls = {"tiny": c8_burst(url, "bls_tiny", args.tokens)} if "tiny" in sizes else {}
            loads.append(load())

    print(f"\nGPT-2 greedy, prompt {len(prompt_ids)} tokens, {args.tokens} new tokens, 1 thread, {args.rounds} "
          f"alternating windows of {args.requests} requests per design (median); load average "
          f"{min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores")
    print(f"{'size':5} {'design':34} {'c1 tok/s':>8} {'ms/token':>8} {'c8 tok/s':>8}")
    for size in sizes:
        res = results[size]
        a, b = statistics.median(res["a"]), statistics.median(res["b"])
        print(f"{size:5} {'(a) product: ORT in the module':34} {args.tokens / a:8.1f} {a / args.tokens * 1e3:8.1f} "
              f"{c8[size]:8.1f}")
        c8b = f"{c8_bls[size]:8.1f}" if size in c8_bls else f"{'serial':>8}"
        print(f"{size:5} {'(b) BLS loop -> onnxruntime model':34} {args.tokens / b:8.1f} {b / args.tokens * 1e3:8.1f} "
              f"{c8b}   ({b / a:.2f}x the product's time per token)")
        print(f"{'':5} {'(b) its decode step / of which exec()':34} {statistics.median(res['step']) * 1e3:7.2f}ms "
              f"{statistics.median(res['exec']) * 1e3:7.2f}ms")

    print(f"\none decode step, measured in one stub, the two designs call by call ({args.repeat} calls x "
          f"{args.rounds} rounds, median); KV = past keys+values sent (present returned: one token more), "
          f"logits {geo[sizes[0]]['vocab'] * 4 / 1e3:.0f} kB back")
    print(f"{'size':5} {'KV len':>6} {'KV MB':>7} {'in-stub ORT':>11} {'BLS exec()':>10} {'BLS/ORT':>7} "
          f"{'BLS-ORT':>8} {'echo RT':>8} {'copy x1':>8}")
    med = {k: statistics.median(v) * 1e3 for k, v in steps.items()}
    for size in sizes:
        g = geo[size]
        print(f"{size:5} {1:6} {2 * g['layers'] * g['kv_heads'] * g['head_dim'] * 4 / 1e6:7.3f} {'':>11} {'':>10} "
              f"{'':>7} {'':>8} {med[(size, 'echo', 1)]:6.2f}ms")
        for length in lengths[size]:
            nbytes = 2 * g["layers"] * g["kv_heads"] * length * g["head_dim"] * 4
            local, bls = med[(size, "local", length)], med[(size, "bls", length)]
            print(f"{size:5} {length:6} {nbytes / 1e6:7.2f} {local:9.2f}ms {bls:8.2f}ms {bls / local:7.2f} "
                  f"{bls - local:6.2f}ms {med[(size, 'echo', length)]:6.2f}ms "
                  f"{copy_time(nbytes, 2 * g['layers']) * 1e3:6.3f}ms")
    print(f"\ntotal run time {time.perf_counter() - start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
