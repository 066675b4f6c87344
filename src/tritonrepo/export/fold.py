"""Fold sentence-transformers pooling and normalisation into an exported ONNX encoder graph.

An embedding pipeline then needs no postprocessing step: the core model answers ``embedding`` itself (one Python
hop fewer per request, and ``last_hidden_state`` — ``[batch, seq, hidden]`` float32 — never leaves the graph).

The added nodes compute exactly what sentence-transformers computes (``sentence_transformers/models/Pooling.py``
and ``Normalize.py``), in float32 like it:

* ``mean``: ``sum(h * mask, axis=1) / max(sum(mask, axis=1), 1e-9)``;
* ``cls``: ``h[:, 0]``;
* ``max``: ``max(where(mask, h, -1e9), axis=1)``;
* normalise: ``e / max(||e||_2, 1e-12)`` (``torch.nn.functional.normalize``).

Source ops: ONNX ``ReduceSum``/``Unsqueeze`` with ``axes`` as an input (opset >= 13); ``ReduceMax``/``ReduceL2``
take ``axes`` as an input from opset 18 and as an attribute before.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tritonrepo.errors import TritonRepoError

POOLINGS = ("mean", "cls", "max")
EMBEDDING = "embedding"


def _opset(model) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def fold_pooling(
    src: str | Path,
    dst: str | Path,
    *,
    pooling: str = "mean",
    normalize: bool = False,
    hidden: str = "last_hidden_state",
    mask: str = "attention_mask",
    output: str = EMBEDDING,
    keep_hidden: bool = False,
) -> None:
    """Write ``dst``: the graph ``src`` with an output ``output`` ``[batch, hidden_size]`` float32 added.

    Args:
        src: an encoder graph with the output ``hidden`` ``[batch, seq, hidden_size]`` (float32) and the input
            ``mask`` ``[batch, seq]`` (int64 or int32; 1 = real token).
        dst: where to write (may equal ``src``); weights stay inside the file (< 2 GB models).
        pooling: ``mean``, ``cls`` or ``max`` (sentence-transformers' ``1_Pooling`` modes).
        normalize: L2-normalise the pooled vector (sentence-transformers' ``Normalize`` module).
        keep_hidden: keep ``hidden`` as a graph output too (default: ``output`` is the only output).

    Raises:
        TritonRepoError: an unknown pooling, an opset below 13, or a graph without ``hidden`` / ``mask``.
    """
    import onnx  # noqa: PLC0415
    from onnx import TensorProto, helper, numpy_helper  # noqa: PLC0415

    if pooling not in POOLINGS:
        raise TritonRepoError(f"unknown pooling {pooling!r}", f"use one of: {', '.join(POOLINGS)}")
    model = onnx.load(str(src))
    opset = _opset(model)
    if opset < 13:
        raise TritonRepoError(f"{src}: opset {opset} is below 13", "export with --opset 13 or later")
    g = model.graph
    if hidden not in {o.name for o in g.output}:
        raise TritonRepoError(f"{src}: no graph output '{hidden}' to pool")
    if mask not in {i.name for i in g.input}:
        raise TritonRepoError(f"{src}: no graph input '{mask}' for the pooling mask")
    hidden_size = next(o for o in g.output if o.name == hidden).type.tensor_type.shape.dim[-1]

    def const(name: str, value) -> str:
        g.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def reduce(op: str, x: str, out: str, axis: int, keepdims: int) -> None:
        if op == "ReduceSum" or opset >= 18:
            g.node.append(helper.make_node(op, [x, const(f"fold/{out}/axes", np.array([axis], np.int64))], [out],
                                           keepdims=keepdims, name=f"fold/{out}"))
        else:
            g.node.append(helper.make_node(op, [x], [out], axes=[axis], keepdims=keepdims, name=f"fold/{out}"))

    def node(op: str, inputs: list[str], out: str, **attrs) -> str:
        g.node.append(helper.make_node(op, inputs, [out], name=f"fold/{out}", **attrs))
        return out

    pooled = output if not normalize else "fold/pooled"
    if pooling == "cls":
        node("Gather", [hidden, const("fold/zero", np.array(0, np.int64))], pooled, axis=1)
    else:
        m = node("Cast", [mask], "fold/mask_f", to=TensorProto.FLOAT)
        m3 = node("Unsqueeze", [m, const("fold/minus1", np.array([-1], np.int64))], "fold/mask3")
        if pooling == "mean":
            node("Mul", [hidden, m3], "fold/masked")
            reduce("ReduceSum", "fold/masked", "fold/sum", 1, 0)
            reduce("ReduceSum", m3, "fold/count", 1, 0)
            node("Max", ["fold/count", const("fold/eps9", np.array(1e-9, np.float32))], "fold/count_c")
            node("Div", ["fold/sum", "fold/count_c"], pooled)
        else:
            keep = node("Greater", [m3, const("fold/zero_f", np.array(0.0, np.float32))], "fold/keep")
            node("Where", [keep, hidden, const("fold/neg", np.array(-1e9, np.float32))], "fold/filled")
            reduce("ReduceMax", "fold/filled", pooled, 1, 0)
    if normalize:
        reduce("ReduceL2", pooled, "fold/norm", 1, 1)
        node("Max", ["fold/norm", const("fold/eps12", np.array(1e-12, np.float32))], "fold/norm_c")
        node("Div", [pooled, "fold/norm_c"], output)

    batch = next(o for o in g.output if o.name == hidden).type.tensor_type.shape.dim[0]
    out_info = helper.make_tensor_value_info(output, TensorProto.FLOAT, [None, None])
    out_info.type.tensor_type.shape.dim[0].CopyFrom(batch)
    out_info.type.tensor_type.shape.dim[1].CopyFrom(hidden_size)
    if not keep_hidden:
        kept = [o for o in g.output if o.name != hidden]
        del g.output[:]
        g.output.extend(kept)
    g.output.append(out_info)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def fold_embedding_step(
    model_path: str | Path,
    parameters: dict[str, str],
    inputs: dict[str, np.ndarray],
    outputs: dict[str, np.ndarray],
    *,
    atol: float = 1e-5,
) -> dict[str, np.ndarray] | None:
    """Fold the embedding pipeline's post step into the core graph ``model_path`` (in place) when that is exact.

    The registry's ``post_fold`` for sentence embeddings (``tritonrepo.tasks.text``): the post step
    (:mod:`tritonrepo.triton_models.postprocess`, kind ``embedding``) pools ``last_hidden_state`` with
    ``attention_mask`` and L2-normalises; :func:`fold_pooling` adds the same computation to the graph, whose only
    output ``last_hidden_state`` is replaced by ``embedding`` ``[batch, hidden_size]`` float32.

    Exactness is checked, not assumed: the graph before and after folding runs on ``inputs`` (onnxruntime, CPU) and
    the folded ``embedding`` must equal the post step's own NumPy code applied to the unfolded graph's hidden states
    within ``atol`` (max abs difference at every element); otherwise the graph is left as it was.

    Args:
        model_path: the exported core graph (weights inside the file).
        parameters: the post step's config parameters (``pooling``: mean/cls/max, ``normalize``: true/false).
        inputs: sample core inputs ``{name: int64 [batch, seq]}`` (the core's golden inputs).
        outputs: the core's golden outputs for ``inputs`` (``last_hidden_state`` ``[batch, seq, hidden]``).
        atol: the largest accepted difference between folded graph and post step.

    Returns:
        The folded graph's golden outputs for ``inputs`` (``{"embedding": [batch, hidden]}``, the post step's
        computation applied to ``outputs``), or ``None`` when nothing was folded (no ``last_hidden_state`` /
        ``attention_mask``, opset below 13, external weights, or a difference above ``atol``).
    """
    import onnx  # noqa: PLC0415
    import onnxruntime as ort  # noqa: PLC0415

    from tritonrepo.triton_models.postprocess import pool  # noqa: PLC0415 - the post step's own code

    path = Path(model_path)
    hidden, mask = "last_hidden_state", "attention_mask"
    pooling, normalize = parameters.get("pooling", "mean"), parameters.get("normalize", "false") == "true"
    if hidden not in outputs or mask not in inputs or pooling not in POOLINGS:
        return None
    if any(path.parent.glob("*.onnx_data")) or path.with_name(path.name + "_data").exists():
        return None
    proto = onnx.load(str(path), load_external_data=False)
    if _opset(proto) < 13 or [o.name for o in proto.graph.output] != [hidden]:
        return None
    del proto
    tmp = path.with_name(path.name + ".folded")
    try:
        fold_pooling(path, tmp, pooling=pooling, normalize=normalize, hidden=hidden, mask=mask)
        so = ort.SessionOptions()
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")

        def run(p: Path, name: str) -> np.ndarray:
            sess = ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])
            wanted = {i.name for i in sess.get_inputs()}
            return sess.run([name], {k: v for k, v in inputs.items() if k in wanted})[0]

        want = pool(run(path, hidden), inputs[mask], pooling, normalize)
        got = run(tmp, EMBEDDING)
        if got.shape != want.shape or not float(np.max(np.abs(got.astype(np.float64) - want))) <= atol:
            return None
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return {EMBEDDING: np.asarray(pool(outputs[hidden], inputs[mask], pooling, normalize), dtype=np.float32)}
