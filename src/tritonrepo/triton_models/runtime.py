"""Request handling shared by tritonrepo's Python-backend models (copied as ``tritonrepo_runtime.py``).

Runs inside Triton's Python-backend stub. :func:`execute_batched` turns a list of requests into responses:

* inputs are read by the config's input names; output dtypes come from the config
  (``pb_utils.get_output_config_by_name``), never hard-coded;
* requests whose inputs have the same non-batch shapes and dtypes are concatenated along dim 0 and run
  in one call when the model batches (``max_batch_size > 0``), then split back by each request's batch size;
* with the config parameter ``batch_padding: "true"`` (written by ``config.build_config`` for batching
  Python-backend models that take an ``attention_mask``), requests of *different sequence lengths* are batched
  too: every *sequence input* (config dims starting with ``-1``: ``input_ids``, ``attention_mask``,
  ``token_type_ids``, hidden states, ...) is right-padded to the longest request of the batch — ``input_ids``
  with the ``pad_token_id`` parameter (default 0), everything else with 0, so the attention mask hides the
  padding and the result is the one-by-one result — and every *sequence output* (config dims starting with
  ``-1``) is cut back to each request's own length;
* a request that fails (a missing input, values the model rejects) gets an error response of its own and
  the other requests in the same ``execute`` call still get their answers; the model keeps serving.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import numpy as np

try:  # only inside Triton's stub
    import triton_python_backend_utils as pb_utils
except ImportError:  # pragma: no cover - imported for docs/tests outside Triton
    pb_utils = None


class RequestError(Exception):
    """A problem with one request; becomes that request's error response."""


def decode_strings(array, what: str = "text") -> list[str]:
    """The items of a ``TYPE_STRING`` tensor (any shape, row-major) as ``str``.

    Raises:
        RequestError: an item that is not valid UTF-8 (``"<what> is not valid UTF-8: ..."``).
    """
    out = []
    for item in np.asarray(array, dtype=object).reshape(-1):
        if isinstance(item, bytes):
            try:
                item = item.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RequestError(f"{what} is not valid UTF-8: {exc}") from None
        out.append(str(item))
    return out


class ModelIO:
    """Input names and output names/dtypes of a model, read from its config (``args["model_config"]``).

    Attributes:
        config: the parsed model config (dict).
        max_batch_size: the config's ``max_batch_size`` (0: no batch dimension).
        inputs: input names in config order.
        outputs: ``{output name: numpy dtype}`` in config order.
    """

    def __init__(self, model_config_json: str) -> None:
        self.config = json.loads(model_config_json)
        self.max_batch_size = int(self.config.get("max_batch_size", 0))
        self.inputs = [t["name"] for t in self.config.get("input", [])]
        self.optional = {t["name"] for t in self.config.get("input", []) if t.get("optional")}
        self.outputs = {}
        for t in self.config.get("output", []):
            out_cfg = pb_utils.get_output_config_by_name(self.config, t["name"])
            self.outputs[t["name"]] = pb_utils.triton_string_to_numpy(out_cfg["data_type"])
        #: padding-aware batching (see the module docstring): sequence inputs -> pad value; sequence outputs.
        self.pad_values: dict[str, int] = {}
        self.sequence_outputs: set[str] = set()
        if self.max_batch_size > 0 and self.parameter("batch_padding", "false") == "true":
            pad_id = int(self.parameter("pad_token_id", "0") or 0)
            for t in self.config.get("input", []):
                if _sequence_dims(t):
                    self.pad_values[t["name"]] = pad_id if t["name"] == "input_ids" else 0
            self.sequence_outputs = {t["name"] for t in self.config.get("output", []) if _sequence_dims(t)}

    def parameter(self, key: str, default: str | None = None) -> str:
        """A string ``parameters`` entry of the config. Raises ``KeyError`` when absent without a default."""
        params = self.config.get("parameters", {})
        if key in params:
            return params[key]["string_value"]
        if default is None:
            raise KeyError(f"model config has no parameter '{key}'")
        return default

    def read(self, request) -> dict[str, np.ndarray]:
        """The request's inputs as NumPy arrays. Raises :class:`RequestError` for a missing input."""
        arrays = {}
        for name in self.inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                if name in self.optional:
                    continue
                raise RequestError(f"missing input '{name}'")
            arrays[name] = tensor.as_numpy()
        return arrays

    def respond(self, outputs: dict[str, np.ndarray]):
        """An ``InferenceResponse`` with every configured output cast to its configured dtype."""
        tensors = []
        for name, dtype in self.outputs.items():
            if name not in outputs:
                raise RequestError(f"model produced no output '{name}'")
            tensors.append(pb_utils.Tensor(name, np.ascontiguousarray(outputs[name]).astype(dtype, copy=False)))
        return pb_utils.InferenceResponse(output_tensors=tensors)


def media_step_setup(args: dict) -> tuple[ModelIO, str, dict[str, str]]:
    """``(io, version_dir, parameters)`` of an image/audio/multimodal step from ``initialize``'s ``args``.

    Sets ``USE_TORCH=0`` first (unless set): transformers' processors have a numpy path, and without it they import
    torch (300 MB and seconds per stub). ``parameters`` are the config's ``parameters`` as ``{key: string_value}``.
    """
    os.environ.setdefault("USE_TORCH", "0")
    io = ModelIO(args["model_config"])
    version_dir = os.path.join(args["model_repository"], args["model_version"])
    return io, version_dir, {k: v["string_value"] for k, v in io.config.get("parameters", {}).items()}


def _error(message: str, exc: Exception | None = None):
    code = pb_utils.TritonError.INVALID_ARG if isinstance(exc, RequestError) else pb_utils.TritonError.INTERNAL
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message, code))


def _sequence_dims(tensor: dict) -> bool:
    """A config tensor whose first non-batch dim is variable (``dims: [-1, ...]``): a sequence axis."""
    dims = [int(d) for d in tensor.get("dims", [])]
    return len(dims) >= 1 and dims[0] == -1


def _signature(arrays: dict[str, np.ndarray], padded: dict[str, int] | None = None) -> tuple:
    """Requests with equal signatures are batched: shapes without the batch dim (and, for the ``padded`` sequence
    inputs, without the sequence dim) and dtypes."""
    padded = padded or {}
    return tuple((k, v.shape[2:] if k in padded else v.shape[1:], v.dtype.str) for k, v in sorted(arrays.items()))


def _seq_len(arrays: dict[str, np.ndarray], padded: dict[str, int]) -> int | None:
    """The request's sequence length (dim 1 of its sequence inputs), ``None`` when it has none or they disagree."""
    lengths = {v.shape[1] for k, v in arrays.items() if k in padded and v.ndim >= 2}
    return lengths.pop() if len(lengths) == 1 else None


def pad_batch(members: list[dict[str, np.ndarray]], pad_values: dict[str, int]) -> dict[str, np.ndarray]:
    """Concatenate requests along dim 0, right-padding the ``pad_values`` inputs along dim 1 to the longest.

    Args:
        members: each request's ``{input: array [b_i, L_i, ...]}`` (sequence inputs) / ``[b_i, ...]`` (others).
        pad_values: ``{sequence input name: pad value}`` (``input_ids``: the pad token id; masks, type ids: 0).

    Returns:
        ``{input: array [sum b_i, max L_i, ...]}``.
    """
    out = {}
    for k in members[0]:
        parts = [m[k] for m in members]
        if k in pad_values and parts[0].ndim >= 2:
            longest = max(p.shape[1] for p in parts)
            parts = [
                p if p.shape[1] == longest else np.concatenate(
                    [p, np.full((p.shape[0], longest - p.shape[1], *p.shape[2:]), pad_values[k], dtype=p.dtype)], axis=1)
                for p in parts
            ]
        out[k] = np.concatenate(parts)
    return out


def bucket_length(length: int, buckets: list[int]) -> int:
    """The smallest bucket ``>= length`` (the largest bucket when none is): the length a preprocessing step pads to
    so that requests of similar lengths have equal shapes and the native ONNX Runtime backend, which batches only
    equal shapes, can batch them (config parameter ``length_buckets``, e.g. ``"16,32,64,128"``)."""
    for b in sorted(buckets):
        if length <= b:
            return b
    return max(buckets) if buckets else length


def batch_groups(
    read: list[tuple[int, dict[str, np.ndarray]]], pad_values: dict[str, int], batching: bool = True
) -> dict[tuple, list[tuple[int, dict[str, np.ndarray]]]]:
    """Group requests that run in one call: equal signatures, or (with ``pad_values``) equal but for the sequence
    length, under a key starting with ``"padded"``. Without ``batching`` every request is its own group.

    Args:
        read: ``(request index, {input: array})`` pairs.
        pad_values: the sequence inputs that may be padded (:attr:`ModelIO.pad_values`), ``{}`` for none.
    """
    groups: dict[tuple, list[tuple[int, dict[str, np.ndarray]]]] = {}
    for i, arrays in read:
        if not batching:
            key: tuple = ("single", i)
        elif pad_values and _seq_len(arrays, pad_values) is not None:
            key = ("padded", _signature(arrays, pad_values))
        else:
            key = _signature(arrays)
        groups.setdefault(key, []).append((i, arrays))
    return groups


def execute_batched(
    requests, io: ModelIO, run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]], *, stack: bool = True
):
    """Answer ``requests`` (one response each, in order) by calling ``run`` on stacked inputs.

    Args:
        requests: the ``pb_utils.InferenceRequest`` list given to ``execute``.
        io: the model's I/O from its config.
        stack: concatenate requests with equal shapes (``False``: always one request per call, e.g. when the
            output shape of a request must not depend on other requests, as padding would).
        run: maps ``{input name: array [B, ...]}`` to ``{output name: array [B, ...]}``; when the model does not
            batch (``max_batch_size == 0``) it gets one request's arrays as they are.

    Returns:
        A list of ``pb_utils.InferenceResponse``, errors included (``TritonError`` with the cause).
    """
    responses: list = [None] * len(requests)
    read: list[tuple[int, dict[str, np.ndarray]]] = []
    padded = io.pad_values if stack else {}
    for i, request in enumerate(requests):
        try:
            read.append((i, io.read(request)))
        except RequestError as exc:
            responses[i] = _error(str(exc), exc)
    groups = batch_groups(read, padded, stack and io.max_batch_size > 0)

    for key, members in groups.items():
        if len(members) > 1:
            try:
                pad = key[0] == "padded"
                stacked = pad_batch([m[1] for m in members], padded if pad else {})
                longest = _seq_len(stacked, padded) if pad else None
                out = run(stacked)
                start = 0
                for i, arrays in members:
                    n = next(iter(arrays.values())).shape[0] if arrays else 1
                    own = _seq_len(arrays, padded) if pad else None
                    part = {}
                    for k, v in out.items():
                        v = v[start:start + n]
                        if own is not None and own != longest and k in io.sequence_outputs and v.ndim >= 2 \
                                and v.shape[1] == longest:
                            v = v[:, :own]
                        part[k] = v
                    responses[i] = io.respond(part)
                    start += n
                continue
            except Exception:  # noqa: BLE001 - fall back to one request at a time to isolate the bad one
                pass
        for i, arrays in members:
            try:
                responses[i] = io.respond(run(arrays))
            except Exception as exc:  # noqa: BLE001 - any failure is this request's error, the model keeps serving
                responses[i] = _error(str(exc) if isinstance(exc, RequestError) else f"{type(exc).__name__}: {exc}", exc)
    return responses
