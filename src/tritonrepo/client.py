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


# -- generation (Triton's generate extension and decoupled gRPC streaming) -----------------------------------------


def generate_request(
    text: str,
    *,
    max_tokens: int | None = None,
    sampling: dict | None = None,
    exclude_input_in_output: bool | None = True,
    chat: bool = False,
    extra: dict | None = None,
) -> dict:
    """The JSON body of a generate request for a tritonrepo generation model (vLLM backend's input names).

    Args:
        text: the prompt (``text_input``).
        max_tokens: new tokens at most (``max_tokens``; the model's default when ``None``).
        sampling: ``sampling_parameters`` (``temperature``, ``top_p``, ``top_k``, ``seed``, ``stop``,
            ``repetition_penalty``), sent as a JSON string.
        exclude_input_in_output: ``False`` to get the prompt in front of a non-streamed answer.
        chat: set ``apply_chat_template``.
        extra: more top-level fields (raw inputs), e.g. to send a bad value on purpose.
    """
    import json  # noqa: PLC0415

    body: dict = {"text_input": text}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if sampling:
        body["sampling_parameters"] = json.dumps(sampling)
    if exclude_input_in_output is not None:
        body["exclude_input_in_output"] = exclude_input_in_output
    if chat:
        body["apply_chat_template"] = True
    body.update(extra or {})
    return body


def _post(url: str, path: str, body: dict, timeout: float):
    import json  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    req = urllib.request.Request(
        f"http://{url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - the user's Triton URL


def _http_error(model: str, exc) -> TritonRepoError:
    import json  # noqa: PLC0415

    try:
        raw = exc.read().decode().strip()
        message = json.loads(raw[5:] if raw.startswith("data:") else raw).get("error", str(exc))
    except (ValueError, AttributeError):
        message = str(exc)
    return TritonRepoError(f"{model}: the server refused the request: {message}", exit_code=1)


def generate(url: str, model: str, body: dict, *, timeout: float = 300.0) -> str:
    """``POST /v2/models/MODEL/generate`` (Triton's generate extension): the whole ``text_output``.

    Raises:
        TritonRepoError: the server answered with an error (its message) or could not be reached.
    """
    import json  # noqa: PLC0415
    import urllib.error  # noqa: PLC0415

    try:
        with _post(url, f"/v2/models/{model}/generate", {**body, "stream": False}, timeout) as resp:
            return json.loads(resp.read().decode())["text_output"]
    except urllib.error.HTTPError as exc:
        raise _http_error(model, exc) from None
    except (urllib.error.URLError, ConnectionError, OSError) as exc:
        raise TritonRepoError(f"cannot reach Triton at {url} (http): {exc}", "is the server running?") from None


def generate_stream(url: str, model: str, body: dict, *, timeout: float = 300.0):
    """``POST /v2/models/MODEL/generate_stream`` (server-sent events): yields each ``text_output`` piece.

    Raises:
        TritonRepoError: the server refused the request, an event carries an error, or no connection.
    """
    import json  # noqa: PLC0415
    import urllib.error  # noqa: PLC0415

    try:
        with _post(url, f"/v2/models/{model}/generate_stream", {**body, "stream": True}, timeout) as resp:
            for raw in resp:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:].strip())
                if "error" in event:
                    raise TritonRepoError(f"{model}: the server refused the request: {event['error']}", exit_code=1)
                yield event.get("text_output", "")
    except urllib.error.HTTPError as exc:
        raise _http_error(model, exc) from None
    except (urllib.error.URLError, ConnectionError, OSError) as exc:
        raise TritonRepoError(f"cannot reach Triton at {url} (http): {exc}", "is the server running?") from None


def generate_grpc_stream(url: str, model: str, body: dict, *, stream: bool = True, timeout: float = 300.0):
    """The same request over gRPC's bidirectional stream (``ModelStreamInfer``): yields each ``text_output`` piece
    until the response flagged final.

    Raises:
        TritonRepoError: the server answered with an error or timed out.
    """
    import queue as _queue  # noqa: PLC0415

    import tritonclient.grpc as grpcclient  # noqa: PLC0415

    inputs = []
    for name, value in {**body, "stream": stream}.items():
        if isinstance(value, bool):
            arr, wire = np.array([value], dtype=bool), "BOOL"
        elif isinstance(value, int):
            arr, wire = np.array([value], dtype=np.int32), "INT32"
        elif isinstance(value, bytes):
            arr, wire = np.array([value], dtype=object), "BYTES"
        else:
            arr, wire = np.array([str(value).encode()], dtype=object), "BYTES"
        inp = grpcclient.InferInput(name, [1], wire)
        inp.set_data_from_numpy(arr)
        inputs.append(inp)
    results: _queue.Queue = _queue.Queue()
    client = grpcclient.InferenceServerClient(url)
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    answered = False  # the final response (or an error) came: close the stream, don't cancel it
    try:
        client.async_stream_infer(model, inputs, enable_empty_final_response=True)
        while True:
            try:
                result, error = results.get(timeout=timeout)
            except _queue.Empty:
                raise TritonRepoError(f"{model}: no response within {timeout:.0f}s", exit_code=1) from None
            if error is not None:
                answered = True
                raise TritonRepoError(f"{model}: the server refused the request: {error.message()}", exit_code=1)
            response = result.get_response()
            final = response.parameters.get("triton_final_response")
            answered = final is not None and final.bool_param
            if any(o.name == "text_output" for o in response.outputs):
                yield "".join(x.decode("utf-8") for x in result.as_numpy("text_output").reshape(-1))
            if answered:
                return
    finally:
        # cancel only a stream left mid-answer (timeout, consumer gone): a cancelled stream whose request was
        # already answered stays referenced in tritonserver 2.51's gRPC frontend, and its model then never
        # unloads at shutdown (``Found 1 live models`` until the server is killed)
        client.stop_stream(cancel_requests=not answered)
        client.close()
