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
