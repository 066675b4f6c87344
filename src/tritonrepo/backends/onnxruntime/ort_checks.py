"""The native ONNX Runtime backend's config-vs-model checks, as pure functions.

Mirrors ``ValidateInputs``/``ValidateOutputs`` in onnxruntime_backend ``src/onnxruntime.cc`` and
``CompareDimsSupported`` in ``src/onnxruntime_utils.cc`` (r24.10), with their messages (rules ORT-05, -06,
-07, -09, -12, -14 in shared/triton-load-rules.md). Used by the Python-based backend at load time and by
offline checks; imports nothing but the standard library.

Model tensors are given as ``{name: (TYPE_NAME, shape)}`` with ``-1`` for symbolic dims, e.g.
``{"input_ids": ("TYPE_INT64", [-1, -1])}``.
"""

from __future__ import annotations

#: onnxruntime's ``NodeArg.type`` strings -> model_config type names.
ORT_TYPE_TO_TRITON = {
    "tensor(bool)": "TYPE_BOOL",
    "tensor(uint8)": "TYPE_UINT8",
    "tensor(uint16)": "TYPE_UINT16",
    "tensor(uint32)": "TYPE_UINT32",
    "tensor(uint64)": "TYPE_UINT64",
    "tensor(int8)": "TYPE_INT8",
    "tensor(int16)": "TYPE_INT16",
    "tensor(int32)": "TYPE_INT32",
    "tensor(int64)": "TYPE_INT64",
    "tensor(float16)": "TYPE_FP16",
    "tensor(float)": "TYPE_FP32",
    "tensor(double)": "TYPE_FP64",
    "tensor(string)": "TYPE_STRING",
}


def _shape_str(shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _compare_dims(model: str, tensor: str, model_shape, dims, max_batch_size: int, exact: bool) -> str | None:
    """CompareDimsSupported: ``None`` when compatible, else Triton's message."""
    if max_batch_size > 0:
        if len(model_shape) < 1 or model_shape[0] != -1:
            return (
                f"model '{model}', tensor '{tensor}': for the model to support batching the shape should have at "
                f"least 1 dimension and the first dimension must be -1; but shape expected by the model is "
                f"{_shape_str(model_shape)}"
            )
        full = [-1, *dims]
        if len(full) != len(model_shape) or any(
            (m != c) and not (m == -1 and not exact) for m, c in zip(model_shape, full)
        ):
            return (
                f"model '{model}', tensor '{tensor}': the model expects {len(model_shape)} dimensions (shape "
                f"{_shape_str(model_shape)}) but the model configuration specifies {len(full)} dimensions (an "
                f"initial batch dimension because max_batch_size > 0 followed by the explicit tensor shape, "
                f"making complete shape {_shape_str(full)})"
            )
        return None
    if len(dims) != len(model_shape) or any((m != c) and not (m == -1 and not exact) for m, c in zip(model_shape, dims)):
        return (
            f"model '{model}', tensor '{tensor}': the model expects {len(model_shape)} dimensions (shape "
            f"{_shape_str(model_shape)}) but the model configuration specifies {len(dims)} dimensions (shape "
            f"{_shape_str(dims)})"
        )
    return None


def check_config(model: str, config: dict, model_inputs: dict, model_outputs: dict) -> list[str]:
    """Every reason the native backend would refuse ``config`` for this graph (empty list: it loads).

    Args:
        model: the model name, for messages.
        config: the model config as a dict (JSON form of ``ModelConfig``: ``input``, ``output``,
            ``max_batch_size``, dims as ints or strings).
        model_inputs, model_outputs: ``{name: (TYPE_NAME, shape)}`` of the graph (initializers excluded).
    """
    errors: list[str] = []
    mbs = int(config.get("max_batch_size", 0))
    cfg_inputs = config.get("input", [])
    required = [i for i in cfg_inputs if not i.get("optional")]
    if len(model_inputs) != len(required):
        errors.append(
            f"unable to load model '{model}', configuration expects {len(required)} inputs, "
            f"model provides {len(model_inputs)}"
        )
    for io in cfg_inputs:
        name = io["name"]
        if io.get("optional") and mbs > 0:
            errors.append(
                f"unable to load model '{model}', optional input '{name}' is not supported for models that support batching"
            )
        if name not in model_inputs:
            errors.append(f"unexpected inference input '{name}', allowed inputs are: {', '.join(model_inputs)}")
            continue
        errors.extend(_check_tensor(model, "input", io, model_inputs[name], mbs, exact=False))
    for io in config.get("output", []):
        name = io["name"]
        if name not in model_outputs:
            errors.append(f"unexpected inference output '{name}', allowed outputs are: {', '.join(model_outputs)}")
            continue
        errors.extend(_check_tensor(model, "output", io, model_outputs[name], mbs, exact=True))
    return errors


def _check_tensor(model: str, kind: str, io: dict, model_tensor, mbs: int, exact: bool) -> list[str]:
    name = io["name"]
    cfg_type = io.get("data_type", "TYPE_INVALID")
    model_type, model_shape = model_tensor
    out = []
    if cfg_type == "TYPE_BF16":
        out.append(f"unsupported datatype {cfg_type} for {kind} '{name}' for model '{model}'")
    elif cfg_type != model_type:
        shown = "TYPE_BYTES" if model_type == "TYPE_STRING" else model_type
        out.append(
            f"unable to load model '{model}', configuration expects datatype {cfg_type} for {kind} '{name}', "
            f"model provides {shown}"
        )
    reshape = io.get("reshape")
    dims = [int(d) for d in (reshape.get("shape", []) if reshape is not None else io.get("dims", []))]
    if len(model_shape) == 0:
        if any(d != 1 for d in dims):
            out.append(
                f"unable to load model '{model}', scalar tensor '{name}', should only provide 1 in the model "
                f"configuration when the model doesn't support batching. Model configuration provided: "
                f"{_shape_str(dims)}."
            )
        return out
    msg = _compare_dims(model, name, list(model_shape), dims, mbs, exact)
    if msg:
        out.append(msg)
    return out
