"""Send requests to a served model with ``tritonclient`` (HTTP or gRPC)."""

from __future__ import annotations

import json

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

from tritonrepo import dtypes
from tritonrepo.errors import TritonRepoError
from tritonrepo.manifest import read_manifest, tensor_to_array

PROTOCOLS = ("http", "grpc")


def infer(
    url: str,
    model: str,
    inputs: dict[str, np.ndarray],
    *,
    protocol: str = "http",
    datatypes: dict[str, str] | None = None,
    version: str = "",
    timeout: float = 60.0,
) -> dict[str, np.ndarray]:
    """One inference request; returns every output the server sends, as NumPy arrays.

    Args:
        url: ``host:port`` of the HTTP or gRPC endpoint.
        model: model name.
        inputs: ``{name: array}``; object/bytes arrays are sent as ``BYTES``.
        protocol: ``"http"`` or ``"grpc"``.
        datatypes: wire data types to use instead of the arrays' own (``{"input_ids": "INT64"}``).
        version: model version ("" = the server's choice under the version policy).

    Raises:
        TritonRepoError: the server answered with an error (its message) or could not be reached.
    """
    if protocol not in PROTOCOLS:
        raise TritonRepoError(f"unknown protocol {protocol!r}", "use http or grpc")
    if protocol == "http":
        import tritonclient.http as tc  # noqa: PLC0415
    else:
        import tritonclient.grpc as tc  # noqa: PLC0415
    from tritonclient.utils import InferenceServerException  # noqa: PLC0415

    datatypes = datatypes or {}
    try:
        client = tc.InferenceServerClient(url) if protocol == "grpc" else tc.InferenceServerClient(
            url, connection_timeout=timeout, network_timeout=timeout
        )
        reqs = []
        for name, arr in inputs.items():
            wire = datatypes.get(name) or dtypes.wire_name(dtypes.from_numpy(arr.dtype))
            arr = np.ascontiguousarray(arr, dtype=object if wire == "BYTES" else arr.dtype)
            inp = tc.InferInput(name, list(arr.shape), wire)
            inp.set_data_from_numpy(arr)
            reqs.append(inp)
        result = client.infer(model, reqs, model_version=version)
        response = result.get_response()
        names = [o["name"] for o in response["outputs"]] if protocol == "http" else [o.name for o in response.outputs]
        return {n: result.as_numpy(n) for n in names}
    except InferenceServerException as exc:
        raise TritonRepoError(f"{model}: the server refused the request: {exc.message()}", exit_code=1) from None
    except (ConnectionError, OSError) as exc:
        raise TritonRepoError(f"cannot reach Triton at {url} ({protocol}): {exc}", "is the server running?") from None


@dataclass
class Golden:
    """A golden sample: inputs, reference outputs, tolerance and the real-token mask (or ``None``)."""

    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    atol: float
    valid: np.ndarray | None = None


def golden_sample(model_dir: Path, version: int | None = None) -> Golden:
    """The first golden sample of a version (default: the newest) from the model's manifest.

    Raises:
        TritonRepoError: the model has no manifest or no sample.
    """
    manifest = read_manifest(model_dir)
    if manifest is None or not manifest.versions:
        raise TritonRepoError(f"{model_dir}: no tritonrepo manifest with golden samples", "pass --input name=file.npy")
    records = [r for r in manifest.versions if version is None or r.version == version]
    if not records or not records[-1].samples:
        raise TritonRepoError(f"{model_dir}: no golden sample for version {version}")
    sample = records[-1].samples[0]
    return Golden(
        inputs={t.name: tensor_to_array(t) for t in sample.inputs},
        outputs={t.name: tensor_to_array(t) for t in sample.outputs},
        atol=sample.atol,
        valid=tensor_to_array(sample.valid) if sample.HasField("valid") else None,
    )


def random_inputs(cfg: mc.ModelConfig, batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs shaped by the config (``-1`` dims become 8; integers 0 or 1, valid ids for any embedding table; strings ``b"text"``)."""
    rng = np.random.default_rng(seed)
    out = {}
    for t in cfg.input:
        shape = [8 if d == -1 else d for d in t.dims]
        if cfg.max_batch_size > 0:
            shape = [batch, *shape]
        if t.data_type == mc.TYPE_STRING:
            out[t.name] = np.full(shape, b"text", dtype=object)
        elif t.data_type == mc.TYPE_BOOL:
            out[t.name] = rng.integers(0, 2, shape).astype(bool)
        else:
            dt = dtypes.numpy_dtype(t.data_type)
            out[t.name] = (rng.integers(0, 2, shape) if dt.kind in "iu" else rng.standard_normal(shape)).astype(dt)
    return out


def max_abs_diff(got: dict[str, np.ndarray], want: dict[str, np.ndarray], valid: np.ndarray | None = None) -> float:
    """Max abs difference over the outputs in ``want``.

    ``inf`` when an output is missing, its shape differs, or a string output (labels, answers) is not equal.
    With ``valid`` (``[batch, seq]``, 1 = real token), outputs whose first two dims are ``[batch, seq]`` are
    compared at real-token positions only: hidden states at padding positions carry no meaning.
    """
    worst = 0.0
    for name, ref in want.items():
        if name not in got or got[name].shape != ref.shape:
            return float("inf")
        if ref.dtype == object or got[name].dtype == object:
            for g, r in zip(got[name].reshape(-1), ref.reshape(-1)):
                if bytes(g) != bytes(r):
                    worst = max(worst, _json_diff(bytes(g), bytes(r)))
        elif ref.size:
            diff = np.abs(got[name].astype(np.float64) - ref.astype(np.float64))
            if valid is not None and ref.ndim >= 2 and ref.shape[:2] == valid.shape:
                diff = diff[valid.astype(bool)]
            if diff.size:
                worst = max(worst, float(np.max(diff)))
    return worst


def _json_diff(got: bytes, want: bytes) -> float:
    """Max abs difference of two JSON documents of the same structure (strings, ints, bools equal; floats within);
    ``inf`` when either is not JSON or they differ otherwise (e.g. entity lists of token classification)."""
    try:
        g, w = json.loads(got), json.loads(want)
    except ValueError:
        return float("inf")

    def diff(a, b) -> float:
        if isinstance(b, dict):
            return max((diff(a[k], b[k]) for k in b), default=0.0) if isinstance(a, dict) and a.keys() == b.keys() else float("inf")
        if isinstance(b, list):
            return max((diff(x, y) for x, y in zip(a, b)), default=0.0) if isinstance(a, list) and len(a) == len(b) else float("inf")
        if isinstance(b, float) and isinstance(a, (int, float)) and not isinstance(a, bool):
            return abs(a - b)
        return 0.0 if a == b else float("inf")

    return diff(g, w)
