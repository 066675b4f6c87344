"""Make an exported ONNX graph faster — graph optimisation, int8 / fp16 — behind a hard quality gate.

``add-hf --optimize O1|O2|O3|O4`` runs optimum's ``ORTOptimizer`` (onnxruntime.transformers fusions chosen from the
checkpoint's ``model_type``: attention, LayerNorm, GELU, embeddings; O4 adds fp16 and is for GPUs). ``--quantize``:

* ``int8`` (default choice, CPU): for text encoders first SmoothQuant (:func:`smooth_activations`: activation
  outliers moved into the weights, scales calibrated on :data:`CALIBRATION_TEXTS`) then onnxruntime's dynamic int8
  (``MatMulInteger``, per-channel weights, per-tensor activations) — fast at batch 1 *and* 8 (MiniLM: min cosine
  0.9914, 2.4x/2.7x fp32 measured once on this CPU with AVX-512 VNNI); alpha 0.6, then 4 sensitive MatMuls kept
  in fp32 when the gate fails; then int8 weights in blocks of 128 along the input dim (``MatMulNBits``, 8 bits,
  symmetric, ``accuracy_level`` 4: activations quantised per block too), smaller blocks (64, 32) — accurate
  (MiniLM 0.994) but only about 1.2-1.3x at batch 8 on this CPU.
* ``int8-dynamic``: onnxruntime's dynamic quantisation (per-channel int8 weights, uint8 activations per tensor);
  the MatMuls whose int8 error is largest (measured on the sample activations) are kept in fp32, more of them each
  round, until the gate passes.
* ``int8-static``: QDQ with per-channel weights and activation ranges calibrated on :data:`CALIBRATION_TEXTS`
  (percentile 99.999), sensitive MatMuls kept in fp32 the same way (accurate, but no faster than fp32 here).

The gate's figures also give the replay tolerance of the golden answers derived from the graph
(:meth:`Quality.replay_tolerance`: ``add-hf --pipeline`` stores it as the ensemble golden sample's ``atol``).
* ``fp16`` (GPU targets): onnxruntime.transformers' float16 conversion, inputs/outputs kept in their types.

The gate compares the candidate with the fp32 **PyTorch** model on a sample set (:data:`GATE_TEXTS`, or sample
images): embeddings (``feature-extraction``: pooled hidden states) by cosine — min over the set ``>= min_cosine``;
classifications (``logits``, start/end logits, token logits at real tokens) by argmax agreement ``>= min_agreement``,
and the max softmax-score difference is reported. Below a threshold nothing is written (:class:`QualityError`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tritonrepo.errors import TritonRepoError

LEVELS = ("O1", "O2", "O3", "O4")
QUANTIZE = ("int8", "int8-dynamic", "int8-static", "fp16")

#: Sample set of the quality gate (and calibration for ``int8-static``): short and long, several domains.
GATE_TEXTS = [
    "A man is eating food.", "A man is riding a white horse on an enclosed ground.", "The girl is carrying a baby.",
    "A woman is playing violin.", "Two men pushed carts through the woods.", "A monkey is playing drums.",
    "Triton serves models from a repository.", "How do I quantize a transformer without losing accuracy?",
    "The quick brown fox jumps over the lazy dog.", "Paris is the capital of France and its largest city.",
    "Short.", "ok", "I love this movie, it was fantastic and moving!", "Terrible service, I will never come back.",
    "The stock market fell sharply after the announcement of new tariffs on imported goods.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Please reset my password, I can no longer log into my account.",
    "What time does the train to Berlin leave tomorrow morning?",
    "The patient was given 5 mg of the drug twice a day for two weeks.", "¿Dónde está la estación de tren?",
]


#: Calibration set (SmoothQuant scales, ``int8-static`` ranges): other texts than the gate's, so that the gate
#: judges a quantisation on texts it was not fitted to.
CALIBRATION_TEXTS = [
    "The committee approved the budget after a long debate.", "My cat sleeps on the keyboard every afternoon.",
    "Can you recommend a good book about the history of Rome?", "Heavy rain is expected across the region tonight.",
    "The new phone has a faster processor and a better camera.", "She finished the marathon in under four hours.",
    "Add two cups of flour and stir until the dough is smooth.", "Where is the nearest pharmacy?",
    "The server returned an error code 503 during deployment.", "Thanks!",
    "Quantum computers use qubits that can exist in superposition.", "This restaurant is overpriced and the food was cold.",
    "The museum opens at nine and closes at six on weekdays.", "He plays guitar in a jazz band on Friday nights.",
    "Our quarterly revenue grew by twelve percent year over year.", "The river flows north through the valley.",
    "Please send the signed contract by Monday.", "Le chat est sur la table.", "Good morning, everyone.",
    "Neural networks learn representations from large amounts of data.",
]


class QualityError(TritonRepoError):
    """The optimised model is below the quality gate; nothing was written (exit code 1)."""


@dataclass
class Quality:
    """Gate figures of a candidate graph vs the fp32 PyTorch model (``None``: not applicable to the outputs)."""

    samples: int
    min_cosine: float | None = None
    mean_cosine: float | None = None
    agreement: float | None = None
    max_score_diff: float | None = None
    max_abs_diff: float | None = None

    def replay_tolerance(self, margin: float = 2.0) -> float:
        """The tolerance (max abs difference) for replaying a golden answer computed by the fp32 reference on answers
        derived from the candidate: ``margin`` × the largest difference the gate measured (embeddings as the pipeline
        answers them, or softmax scores). The gate's set is not the golden sample's, hence the margin."""
        figures = [x for x in (self.max_abs_diff, self.max_score_diff) if x is not None and np.isfinite(x)]
        return margin * max(figures, default=0.0)

    def passes(self, min_cosine: float, min_agreement: float) -> bool:
        """True when every applicable figure meets its threshold (NaN fails)."""
        ok = True
        if self.min_cosine is not None:
            ok &= bool(self.min_cosine >= min_cosine)
        if self.agreement is not None:
            ok &= bool(self.agreement >= min_agreement)
        return ok

    def describe(self) -> str:
        """``min cosine 0.9943 (mean 0.9987), argmax agreement 100.0%, ...`` over N samples."""
        parts = []
        if self.min_cosine is not None:
            parts.append(f"min cosine {self.min_cosine:.4f} (mean {self.mean_cosine:.4f})")
        if self.agreement is not None:
            parts.append(f"argmax agreement {100 * self.agreement:.1f}%")
        if self.max_score_diff is not None:
            parts.append(f"max score difference {self.max_score_diff:.3g}")
        elif self.max_abs_diff is not None:
            parts.append(f"max abs difference {self.max_abs_diff:.3g}")
        return ", ".join(parts) + f" over {self.samples} samples"


@dataclass
class OptimizeReport:
    """What :func:`optimize_exported` did."""

    optimize: str | None
    quantize: str | None
    quality: Quality
    method: str = ""
    kept_fp32: list[str] = field(default_factory=list)


# --- the gate ---------------------------------------------------------------------------------------------------

def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / np.clip(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-30, None)


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def pool(hidden: np.ndarray, mask: np.ndarray | None, pooling: str = "mean") -> np.ndarray:
    """``[batch, seq, hidden]`` -> ``[batch, hidden]`` as sentence-transformers pools (mean over real tokens, cls, max)."""
    if pooling == "cls" or mask is None:
        return hidden[:, 0]
    m = mask.astype(np.float64)[..., None]
    if pooling == "max":
        return np.where(m > 0, hidden, -1e9).max(1)
    return (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)


def compare(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray], mask: np.ndarray | None,
            *, embedding: bool, pooling: str = "mean", normalize: bool = False) -> Quality:
    """Gate figures for ``candidate`` outputs vs ``reference`` (both ``{name: [batch, ...]}``).

    ``embedding``: ``last_hidden_state`` is pooled (``pooling``) and ``embedding`` / 2-D float outputs compared by
    cosine per sample, and by max abs difference of the embeddings as the pipeline answers them (L2-normalised when
    ``normalize``). Otherwise every float output is a score: argmax agreement over samples (and over real tokens
    for ``[batch, seq, ...]`` / ``[batch, seq]`` outputs) and the max softmax-probability difference.
    """
    batch = next(iter(reference.values())).shape[0]
    q = Quality(samples=batch)
    cos, agree, diffs, absdiff = [], [], [], []
    for name, ref in reference.items():
        got = candidate[name].astype(np.float64)
        ref = ref.astype(np.float64)
        if embedding:
            if ref.ndim == 3:
                ref, got = pool(ref, mask, pooling), pool(got, mask, pooling)
                if normalize:
                    ref, got = (x / np.clip(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12, None) for x in (ref, got))
            cos.append(_cosine(ref.reshape(batch, -1), got.reshape(batch, -1)))
            absdiff.append(float(np.nan_to_num(np.abs(ref - got).max(), nan=np.inf)))
            continue
        seq_level = mask is not None and ref.ndim >= 2 and ref.shape[:2] == mask.shape
        if seq_level and ref.ndim == 2:  # start/end logits [batch, seq]: one choice per sample over real tokens
            r = np.where(mask > 0, ref, -np.inf)
            g = np.where(mask > 0, got, -np.inf)
            agree.append(r.argmax(-1) == g.argmax(-1))
            diffs.append(np.abs(_softmax(r) - _softmax(g)).max())
        else:
            same = ref.argmax(-1) == got.argmax(-1)
            agree.append(same[mask > 0] if seq_level else same.reshape(-1))
            diffs.append(np.abs(_softmax(ref) - _softmax(got)).max())
    if cos:
        c = np.concatenate(cos)
        q.min_cosine, q.mean_cosine = float(np.nan_to_num(c.min(), nan=-1)), float(np.nan_to_num(c.mean(), nan=-1))
        q.max_abs_diff = max(absdiff)
    if agree:
        q.agreement = float(np.concatenate([a.reshape(-1) for a in agree]).mean())
        q.max_score_diff = float(max(diffs))
    return q


def gate_inputs(checkpoint, task: str, input_names: list[str], texts: list[str] | None = None) -> dict[str, np.ndarray]:
    """The gate's sample inputs: :data:`GATE_TEXTS` (or ``texts``) through the checkpoint's tokenizer, or the
    sample images."""
    from tritonrepo.samples import load_tokenizer, sample_inputs  # noqa: PLC0415

    if "pixel_values" in input_names or "input_values" in input_names:  # images / audio: the entry's samples
        trials = [sample_inputs(checkpoint, task, input_names, t) for t in ((2, 3) if texts else (0, 1))]
        return {k: np.concatenate([t[k] for t in trials]) for k in input_names}
    texts = texts or GATE_TEXTS
    tok = load_tokenizer(checkpoint)
    limit = min(128, int(tok.model_max_length or 128), int(checkpoint.config.get("max_position_embeddings") or 128))
    if task == "question-answering":
        half = len(texts) // 2
        enc = tok(texts[:half], texts[half:2 * half], padding=True, truncation="only_second", max_length=limit,
                  return_tensors="np")
    else:
        enc = tok(texts, padding=True, truncation=True, max_length=limit, return_tensors="np")
    missing = [n for n in input_names if n not in enc]
    if missing:
        raise TritonRepoError(f"the tokenizer gives no {', '.join(missing)} for the quality gate")
    return {n: np.asarray(enc[n], dtype=np.int64) for n in input_names}


def _run(path: Path, feeds: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    import onnxruntime as ort  # noqa: PLC0415

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = {i.name: i.type for i in sess.get_inputs()}
    cast = {k: (v.astype(np.int32) if wanted.get(k) == "tensor(int32)" else v) for k, v in feeds.items() if k in wanted}
    return dict(zip(names, sess.run(names, cast)))


# --- transformations --------------------------------------------------------------------------------------------

def _graph_optimize(src: Path, dst: Path, level: str, checkpoint, device: str) -> None:
    """optimum's ORTOptimizer at ``level`` (fusions for the checkpoint's architecture)."""
    from optimum.onnxruntime import ORTOptimizer  # noqa: PLC0415
    from optimum.onnxruntime.configuration import AutoOptimizationConfig  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="tritonrepo-opt-") as tmp:
        work = Path(tmp)
        os.symlink(src.resolve(), work / "model.onnx")
        shutil.copy2(checkpoint.path / "config.json", work / "config.json")
        try:
            optimizer = ORTOptimizer.from_pretrained(str(work), file_names=["model.onnx"])
            config = AutoOptimizationConfig.with_optimization_level(level, for_gpu=device == "gpu")
            optimizer.optimize(save_dir=str(work / "out"), optimization_config=config)
        except Exception as exc:  # noqa: BLE001 - optimum/onnxruntime raise many types; one line for the user
            raise TritonRepoError(f"--optimize {level}: optimum's ORTOptimizer failed: {exc}",
                                  "try a lower level (O1) or no --optimize") from None
        produced = next((work / "out").glob("*.onnx"))
        shutil.move(str(produced), dst)


def _weight_int8(src: Path, dst: Path, block_size: int, bits: int = 8) -> None:
    import onnx  # noqa: PLC0415
    from onnxruntime.quantization.matmul_nbits_quantizer import (  # noqa: PLC0415
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    model = onnx.load(str(src))
    cfg = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, accuracy_level=4, bits=bits)
    q = MatMulNBitsQuantizer(model, bits=bits, block_size=block_size, is_symmetric=True, accuracy_level=4,
                             algo_config=cfg)
    q.process()
    q.model.save_model_to_file(str(dst), False)


def matmul_sensitivity(src: Path, feeds: dict[str, np.ndarray]) -> list[tuple[float, str]]:
    """``(relative error, node name)`` of every MatMul with a constant weight, largest first.

    The error is that of int8 emulated on the sample activations (per-tensor uint8 activations, per-channel int8
    weights): ``||Xq Wq - X W|| / ||X W||``; the MatMuls that suffer most are the ones to keep in fp32.
    """
    import onnx  # noqa: PLC0415
    import onnxruntime as ort  # noqa: PLC0415
    from onnx import numpy_helper  # noqa: PLC0415

    model = onnx.load(str(src))
    inits = {i.name: i for i in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type == "MatMul" and len(n.input) == 2 and n.input[1] in inits]
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for n in nodes:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(n.input[0], onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    acts = sess.run([n.input[0] for n in nodes], {k: v for k, v in feeds.items() if k in names})
    out = []
    for n, x in zip(nodes, acts):
        w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
        x = x.reshape(-1, x.shape[-1]).astype(np.float32)
        lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
        scale = (hi - lo) / 255 or 1.0
        zp = np.round(-lo / scale)
        xq = (np.clip(np.round(x / scale) + zp, 0, 255) - zp) * scale
        ws = np.abs(w).max(0) / 127
        ws[ws == 0] = 1.0
        wq = np.round(w / ws) * ws
        y = x @ w
        out.append((float(np.linalg.norm(xq @ wq - y) / max(np.linalg.norm(y), 1e-30)), n.name))
    return sorted(out, reverse=True)


class _Reader:
    """Calibration data for ``quantize_static``: the gate's inputs, one sample at a time."""

    def __init__(self, feeds: dict[str, np.ndarray]) -> None:
        n = next(iter(feeds.values())).shape[0]
        self._it = iter([{k: v[i:i + 1] for k, v in feeds.items()} for i in range(n)])

    def get_next(self):
        return next(self._it, None)


def _int8_classic(src: Path, dst: Path, mode: str, exclude: list[str], feeds: dict[str, np.ndarray]) -> None:
    from onnxruntime.quantization import (  # noqa: PLC0415
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    common = dict(per_channel=True, op_types_to_quantize=["MatMul"], nodes_to_exclude=exclude,
                  extra_options={"DefaultTensorType": 1})
    if mode == "int8-dynamic":
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, **common)
    else:
        import onnx  # noqa: PLC0415

        names = {i.name for i in onnx.load(str(src), load_external_data=False).graph.input}
        quantize_static(str(src), str(dst), _Reader({k: v for k, v in feeds.items() if k in names}),
                        quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile,
                        **{**common, "extra_options": {**common["extra_options"], "CalibPercentile": 99.999}})


def smooth_activations(src: Path, dst: Path, feeds: dict[str, np.ndarray], alpha: float = 0.7) -> int:
    """SmoothQuant (Xiao et al. 2023, arXiv:2211.10438): move activation outliers into the weights.

    For every MatMul with a constant weight ``W`` ``[K, N]``, per input channel ``j``:
    ``s_j = max|X_j| ** alpha / max|W_j| ** (1 - alpha)`` (``X`` the MatMul's input on ``feeds``; MatMuls sharing an
    input — query, key, value — share one ``s`` from their joint weight maxima); the graph computes
    ``(X / s) @ (diag(s) W)``, equal to ``X @ W`` in exact arithmetic: one ``Mul`` by ``1/s`` per activation tensor
    and the weights scaled in place. Per-tensor int8 activations then lose far less: MiniLM's few outlier channels
    no longer set the scale of all the others. Returns the number of MatMuls smoothed.
    """
    import onnx  # noqa: PLC0415
    import onnxruntime as ort  # noqa: PLC0415
    from onnx import helper, numpy_helper  # noqa: PLC0415

    model = onnx.load(str(src))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    nodes = [n for n in g.node if n.op_type == "MatMul" and len(n.input) == 2 and n.input[1] in inits
             and len(inits[n.input[1]].dims) == 2]
    shared: dict[str, list] = {}
    for n in nodes:
        shared.setdefault(n.input[0], []).append(n)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in shared:
        probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    del probe
    wanted = {i.name for i in sess.get_inputs()}
    acts = dict(zip(shared, sess.run(list(shared), {k: v for k, v in feeds.items() if k in wanted})))
    del sess
    order = {id(n): i for i, n in enumerate(g.node)}
    for name, consumers in shared.items():
        x = acts[name]
        xmax = np.abs(x.reshape(-1, x.shape[-1])).max(0).astype(np.float64)
        weights = [numpy_helper.to_array(inits[n.input[1]]).astype(np.float32) for n in consumers]
        wmax = np.max([np.abs(w).max(1) for w in weights], axis=0).astype(np.float64)
        scale = np.clip(xmax, 1e-5, None) ** alpha / np.clip(wmax, 1e-5, None) ** (1 - alpha)
        scale = np.clip(scale, 1e-4, 1e4).astype(np.float32)
        inv, out = f"smooth/{name}/inv_scale", f"smooth/{name}/x"
        g.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), inv))
        first = min(order[id(n)] for n in consumers)
        g.node.insert(first, helper.make_node("Mul", [name, inv], [out], name=f"smooth/{name}/mul"))
        order = {id(n): i for i, n in enumerate(g.node)}
        for n, w in zip(consumers, weights):
            inits[n.input[1]].CopyFrom(numpy_helper.from_array(scale[:, None] * w, n.input[1]))
            n.input[0] = out
    onnx.save(model, str(dst))
    return len(nodes)


def _smooth_int8(src: Path, dst: Path, feeds: dict[str, np.ndarray], alpha: float, keep: int = 0) -> list[str]:
    """SmoothQuant (:func:`smooth_activations`) then onnxruntime's dynamic int8 quantisation of the MatMuls
    (QOperator ``MatMulInteger``: per-channel int8 weights, uint8 activations per tensor computed at run time), the
    ``keep`` most sensitive ones (:func:`matmul_sensitivity` after smoothing) left in fp32. Embedding tables
    (``Gather``) stay fp32: quantising them cost MiniLM 0.002 of min cosine for no speed. Returns the kept nodes."""
    from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: PLC0415

    smoothed = dst.with_name(dst.stem + "_smoothed.onnx")
    smooth_activations(src, smoothed, feeds, alpha)
    try:
        kept = [name for _, name in matmul_sensitivity(smoothed, feeds)][:keep] if keep else []
        quantize_dynamic(str(smoothed), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=kept,
                         extra_options={"DefaultTensorType": 1})
    finally:
        smoothed.unlink(missing_ok=True)
    return kept


def _fp16(src: Path, dst: Path) -> None:
    import onnx  # noqa: PLC0415
    from onnxruntime.transformers.float16 import convert_float_to_float16  # noqa: PLC0415

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))


# --- entry point --------------------------------------------------------------------------------------------------

def optimize_exported(
    model_path: Path,
    checkpoint,
    task: str,
    *,
    optimize: str | None = None,
    quantize: str | None = None,
    device: str = "cpu",
    min_cosine: float = 0.99,
    min_agreement: float = 0.99,
    pooling: str | None = None,
) -> OptimizeReport:
    """Optimise/quantise ``model_path`` in place when the result passes the gate vs the fp32 PyTorch model.

    Args:
        model_path: the exported fp32 graph (``model.onnx``, replaced only on success).
        checkpoint: the resolved checkpoint (tokenizer, ``config.json`` and the PyTorch reference).
        task: the optimum task; ``feature-extraction`` is gated by embedding cosine, others by argmax agreement.
        optimize: ``O1``..``O4`` or ``None``.
        quantize: one of :data:`QUANTIZE` or ``None``.
        device: ``cpu`` or ``gpu`` (``O4`` and ``fp16`` are for GPU targets).
        min_cosine: lowest accepted per-sample cosine (embeddings).
        min_agreement: lowest accepted argmax agreement (fraction, classifications).
        pooling: how embeddings are pooled for the gate (default: the sentence-transformers config, else mean).

    Returns:
        What was done and the gate figures.

    Raises:
        QualityError: the best candidate is below the gate (message with the figures; nothing written; exit 1).
        TritonRepoError: an unknown level/mode, ``O4``/``fp16`` for a CPU target, a failing optimiser.
    """
    if optimize is None and quantize is None:
        raise TritonRepoError("nothing to do: give --optimize and/or --quantize")
    if optimize is not None and optimize not in LEVELS:
        raise TritonRepoError(f"--optimize {optimize!r}: unknown level", f"use one of: {', '.join(LEVELS)}")
    if quantize is not None and quantize not in QUANTIZE:
        raise TritonRepoError(f"--quantize {quantize!r}: unknown mode", f"use one of: {', '.join(QUANTIZE)}")
    if device != "gpu" and (optimize == "O4" or quantize == "fp16"):
        raise TritonRepoError(f"{'--optimize O4' if optimize == 'O4' else '--quantize fp16'} is for GPU targets "
                              "(fp16 is slower than fp32 on CPUs)", "add --device gpu, or use O3 / --quantize int8")
    if model_path.with_name(model_path.name + "_data").exists() or any(model_path.parent.glob("*.onnx_data")):
        raise TritonRepoError(f"{model_path}: weights in external data (> 2 GB) cannot be optimised here")
    import onnx  # noqa: PLC0415

    from tritonrepo.export.common import load_torch_model, torch_outputs  # noqa: PLC0415

    graph = onnx.load(str(model_path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    in_names = [i.name for i in graph.input if i.name not in inits]
    out_names = [o.name for o in graph.output]
    feeds = gate_inputs(checkpoint, task, in_names)
    reference = torch_outputs(load_torch_model(checkpoint, task), feeds, out_names)
    embedding = task == "feature-extraction"
    normalize = False
    if embedding and "last_hidden_state" in out_names:
        from tritonrepo.tasks.text import pooling_parameters  # noqa: PLC0415

        params = pooling_parameters(checkpoint, None)
        pooling, normalize = pooling or params["pooling"], params["normalize"] == "true"
    mask = feeds.get("attention_mask")

    def judge(path: Path) -> Quality:
        return compare(reference, _run(path, feeds, out_names), mask, embedding=embedding, pooling=pooling or "mean",
                       normalize=normalize)

    with tempfile.TemporaryDirectory(prefix="tritonrepo-quant-", dir=model_path.parent.parent) as tmp:
        work = Path(tmp)
        base = model_path
        if optimize:
            base = work / "optimized.onnx"
            _graph_optimize(model_path, base, optimize, checkpoint, device)
        report = OptimizeReport(optimize, quantize, Quality(samples=0))
        calibration = gate_inputs(checkpoint, task, in_names, CALIBRATION_TEXTS) if quantize else feeds
        candidates = _candidates(quantize, base, work, calibration)
        best: tuple[Quality, Path, str, list[str]] | None = None
        for path, method, kept in candidates:
            q = judge(path)
            if best is None or _better(q, best[0]):
                best = (q, path, method, kept)
            if q.passes(min_cosine, min_agreement):
                break
        assert best is not None
        report.quality, report.method, report.kept_fp32 = best[0], best[2], best[3]
        if not best[0].passes(min_cosine, min_agreement):
            what = " + ".join(x for x in (optimize, quantize and f"{quantize} ({best[2]})") if x)
            raise QualityError(
                f"{what} is below the quality gate vs the fp32 PyTorch model: {best[0].describe()} "
                f"(need min cosine >= {min_cosine:g}, argmax agreement >= {min_agreement:g}); nothing was written",
                "try another --quantize mode, --optimize alone, or lower --min-cosine / --min-agreement knowingly",
                exit_code=1,
            )
        os.replace(best[1], model_path)
    return report


def _better(a: Quality, b: Quality) -> bool:
    key = lambda q: (q.min_cosine if q.min_cosine is not None else 1.0, q.agreement if q.agreement is not None else 1.0)  # noqa: E731
    return key(a) > key(b)


#: ``(SmoothQuant alpha, MatMuls kept in fp32)`` tried in turn by ``--quantize int8`` before the slower block-wise
#: weight-only int8 (MiniLM, calibrated on :data:`CALIBRATION_TEXTS`: alpha 0.7 and none kept gives min cosine 0.9914
#: on the gate's texts; 0.6: 0.9876; 0.8: 0.984).
SMOOTH_TRIALS = ((0.7, 0), (0.6, 0), (0.7, 4))


def _candidates(quantize: str | None, base: Path, work: Path, feeds: dict[str, np.ndarray]):
    """Candidate graphs, best speed first: ``(path, method, nodes kept in fp32)``; made lazily. ``feeds``: the
    calibration inputs (:data:`CALIBRATION_TEXTS`)."""
    if quantize is None:
        yield base, "fp32", []
        return
    if quantize == "fp16":
        _fp16(base, work / "fp16.onnx")
        yield work / "fp16.onnx", "fp16", []
        return
    if quantize == "int8":
        if "input_ids" in feeds:  # text encoders: SmoothQuant + dynamic int8 (fast at every batch size) first
            for alpha, keep in SMOOTH_TRIALS:
                dst = work / f"int8_smooth{alpha}_{keep}.onnx"
                kept = _smooth_int8(base, dst, feeds, alpha, keep)
                yield dst, f"int8 dynamic per-channel after SmoothQuant (alpha {alpha}, {keep} MatMuls kept in fp32)", kept
        for block in (128, 64, 32):
            dst = work / f"int8_b{block}.onnx"
            _weight_int8(base, dst, block)
            yield dst, f"int8 weights in blocks of {block}, int8 compute", []
        return
    ranked = [name for _, name in matmul_sensitivity(base, feeds)]
    for k in sorted({0, 1, 2, 4, 8, len(ranked) // 4, len(ranked) // 2}):
        dst = work / f"{quantize}_{k}.onnx"
        _int8_classic(base, dst, quantize, ranked[:k], feeds)
        yield dst, f"{quantize}, per-channel, {k} of {len(ranked)} MatMuls kept in fp32", ranked[:k]
