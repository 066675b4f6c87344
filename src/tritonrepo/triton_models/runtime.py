"""Request handling shared by tritonrepo's Python-backend models (copied as ``tritonrepo_runtime.py``).

Runs inside Triton's Python-backend stub. :func:`execute_batched` turns a list of requests into responses:

* inputs are read by the config's input names; output dtypes come from the config
  (``pb_utils.get_output_config_by_name``), never hard-coded;
* requests whose inputs have the same non-batch shapes and dtypes are concatenated along dim 0 and run
  in one call when the model batches (``max_batch_size > 0``), then split back by each request's batch size;
* a request that fails (a missing input, values the model rejects) gets an error response of its own and
  the other requests in the same ``execute`` call still get their answers; the model keeps serving.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

try:  # only inside Triton's stub
    import triton_python_backend_utils as pb_utils
except ImportError:  # pragma: no cover - imported for docs/tests outside Triton
    pb_utils = None


class RequestError(Exception):
    """A problem with one request; becomes that request's error response."""


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


def _error(message: str, exc: Exception | None = None):
    code = pb_utils.TritonError.INVALID_ARG if isinstance(exc, RequestError) else pb_utils.TritonError.INTERNAL
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message, code))


def _signature(arrays: dict[str, np.ndarray]) -> tuple:
    return tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(arrays.items()))


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
    groups: dict[tuple, list[tuple[int, dict[str, np.ndarray]]]] = {}
    for i, request in enumerate(requests):
        try:
            arrays = io.read(request)
        except RequestError as exc:
            responses[i] = _error(str(exc), exc)
            continue
        key = _signature(arrays) if stack and io.max_batch_size > 0 else ("single", i)
        groups.setdefault(key, []).append((i, arrays))

    for members in groups.values():
        if len(members) > 1:
            try:
                stacked = {k: np.concatenate([m[1][k] for m in members]) for k in members[0][1]}
                out = run(stacked)
                start = 0
                for i, arrays in members:
                    n = next(iter(arrays.values())).shape[0] if arrays else 1
                    responses[i] = io.respond({k: v[start:start + n] for k, v in out.items()})
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
