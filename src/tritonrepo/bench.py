"""Measure a served model: throughput, latency percentiles and Triton's server-side split, like perf_analyzer.

:func:`run_bench` drives a running Triton server with ``tritonclient`` (HTTP or gRPC) at each load level:

* **concurrency** (closed loop, perf_analyzer's ``--concurrency-range``): ``N`` workers, each sending its next
  request as soon as the previous one is answered;
* **request rate** (open loop, perf_analyzer's ``--request-rate-range`` with a constant schedule): requests
  sent every ``1/rate`` seconds whether or not earlier ones came back.

Each level runs a warm-up (discarded) and then a measurement window of ``duration`` seconds; only requests sent
and answered inside the window count. Triton's statistics extension (``/v2/models/<m>/stats``) is read at both ends
of the window; the deltas give the server-side queue / compute split per request and the average executed batch
size (sum of ``batch_size * compute_infer.count`` over ``batch_stats`` divided by the execution count). For an
ensemble the split is the sum over its composing models (Triton keeps no queue/compute of its own for an ensemble;
perf_analyzer sums them the same way), and each step's figures are kept in :attr:`LevelResult.steps`.

Metric names are perf_analyzer's CSV columns (``Inferences/Second``, ``p99 latency``, ``Server Queue``, ...; times in
microseconds) and, for generation models (decoupled, ``text_input`` -> streamed ``text_output``), genai-perf's
(``Time To First Token``, ``Inter Token Latency``, ``Output Token Throughput``; milliseconds and tokens/s; one
streamed response counts as one token, as with a backend that streams token by token). Sources:
perf_analyzer ``docs/measurements_metrics.md`` and ``inference_profiler.cc``; genai-perf ``docs/metrics``.
"""

from __future__ import annotations

import csv
import io
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from tritonrepo import dtypes
from tritonrepo.errors import TritonRepoError

#: perf_analyzer's CSV columns (``-f FILE``) that bench fills, in its order. Times in microseconds.
PA_COLUMNS = [
    "Concurrency", "Request Rate", "Inferences/Second", "Client Send", "Network+Server Send/Recv", "Server Queue",
    "Server Compute Input", "Server Compute Infer", "Server Compute Output", "Client Recv",
    "p50 latency", "p90 latency", "p95 latency", "p99 latency", "Avg latency",
]
#: genai-perf's metrics for streaming generation models (milliseconds; tokens per second).
GENAI_COLUMNS = ["Time To First Token", "Inter Token Latency", "Output Token Throughput", "Output Sequence Length"]
#: bench's own additions.
EXTRA_COLUMNS = ["Avg Batch Size", "Requests", "Errors"]


@dataclass
class BenchOptions:
    """What to measure.

    Attributes:
        url: ``host:port`` of the HTTP or gRPC endpoint.
        protocol: ``"http"`` or ``"grpc"`` (generation models need ``"grpc"``: streaming).
        concurrency: closed-loop levels (workers), e.g. ``[1, 4, 16]``; ignored when ``request_rate`` is given.
        request_rate: open-loop levels in requests/second.
        duration: measurement window per level, seconds.
        warmup: warm-up per level before the window, seconds (requests sent then are not counted).
        version: model version ("" = the server's choice).
        timeout: per-request timeout, seconds.
    """

    url: str
    protocol: str = "grpc"
    concurrency: list[int] = field(default_factory=lambda: [1])
    request_rate: list[float] = field(default_factory=list)
    duration: float = 5.0
    warmup: float = 1.0
    version: str = ""
    timeout: float = 60.0


@dataclass
class StepStats:
    """Server-side figures of one model over a window (statistics-extension deltas; times in microseconds)."""

    model: str
    requests: int = 0
    executions: int = 0
    queue_us: float = 0.0
    compute_input_us: float = 0.0
    compute_infer_us: float = 0.0
    compute_output_us: float = 0.0
    avg_batch: float = 0.0


@dataclass
class LevelResult:
    """One load level's measurements (names as perf_analyzer / genai-perf print them, see :meth:`row`)."""

    concurrency: int | None
    request_rate: float | None
    throughput: float  # requests answered per second inside the window (perf_analyzer "Inferences/Second" / batch)
    inferences_per_second: float
    latency_us: dict[str, float]  # p50, p90, p95, p99, avg
    requests: int
    errors: int
    server: StepStats
    steps: list[StepStats] = field(default_factory=list)
    ttft_ms: float | None = None
    itl_ms: float | None = None
    tokens_per_second: float | None = None
    output_tokens: float | None = None
    first_error: str = ""

    def row(self) -> dict[str, float | int | str | None]:
        """The level as ``{column: value}`` with perf_analyzer / genai-perf column names."""
        s = self.server
        client_side = max(0.0, self.latency_us["avg"] - s.queue_us - s.compute_input_us - s.compute_infer_us
                          - s.compute_output_us)
        out: dict[str, float | int | str | None] = {
            "Concurrency": self.concurrency, "Request Rate": self.request_rate,
            "Inferences/Second": round(self.inferences_per_second, 2),
            "Client Send": None, "Network+Server Send/Recv": round(client_side, 1),
            "Server Queue": round(s.queue_us, 1), "Server Compute Input": round(s.compute_input_us, 1),
            "Server Compute Infer": round(s.compute_infer_us, 1), "Server Compute Output": round(s.compute_output_us, 1),
            "Client Recv": None,
            **{f"{k} latency": round(self.latency_us[k], 1) for k in ("p50", "p90", "p95", "p99")},
            "Avg latency": round(self.latency_us["avg"], 1),
        }
        if self.ttft_ms is not None:
            out.update({"Time To First Token": round(self.ttft_ms, 3), "Inter Token Latency": round(self.itl_ms or 0, 3),
                        "Output Token Throughput": round(self.tokens_per_second or 0, 2),
                        "Output Sequence Length": round(self.output_tokens or 0, 2)})
        out.update({"Avg Batch Size": round(s.avg_batch, 3), "Requests": self.requests, "Errors": self.errors})
        return out


@dataclass
class BenchResult:
    """All levels of one run, with what was measured."""

    model: str
    protocol: str
    url: str
    generation: bool
    batch_size: int
    duration: float
    warmup: float
    levels: list[LevelResult]

    def rows(self) -> list[dict]:
        """One ``{column: value}`` per level."""
        return [lv.row() for lv in self.levels]

    def to_json(self) -> dict:
        """A JSON-ready document: settings, rows (perf_analyzer names) and per-step server figures."""
        return {
            "model": self.model, "protocol": self.protocol, "url": self.url, "generation": self.generation,
            "batch_size": self.batch_size, "duration_s": self.duration, "warmup_s": self.warmup,
            "levels": [{**lv.row(), "steps": [asdict(s) for s in lv.steps], "first_error": lv.first_error}
                       for lv in self.levels],
        }

    def to_csv(self) -> str:
        """CSV with perf_analyzer's header (plus genai-perf's columns for generation models and bench's extras)."""
        cols = PA_COLUMNS + (GENAI_COLUMNS if self.generation else []) + EXTRA_COLUMNS
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in self.rows():
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
        return buf.getvalue()


# --- talking to the server ---------------------------------------------------------------------------------------

def _module(protocol: str):
    if protocol == "http":
        import tritonclient.http as tc  # noqa: PLC0415
    elif protocol == "grpc":
        import tritonclient.grpc as tc  # noqa: PLC0415
    else:
        raise TritonRepoError(f"unknown protocol {protocol!r}", "use http or grpc")
    return tc


def _client(opts: BenchOptions):
    tc = _module(opts.protocol)
    if opts.protocol == "http":
        return tc.InferenceServerClient(opts.url, connection_timeout=opts.timeout, network_timeout=opts.timeout)
    return tc.InferenceServerClient(opts.url)


def _infer_inputs(tc, arrays: dict[str, np.ndarray]) -> list:
    out = []
    for name, arr in arrays.items():
        wire = dtypes.wire_name(dtypes.from_numpy(arr.dtype))
        arr = np.ascontiguousarray(arr, dtype=object if wire == "BYTES" else arr.dtype)
        inp = tc.InferInput(name, list(arr.shape), wire)
        inp.set_data_from_numpy(arr)
        out.append(inp)
    return out


def model_config(opts: BenchOptions, model: str) -> dict:
    """The served model's config as JSON (``GET /v2/models/<m>/config``). Raises :class:`TritonRepoError`."""
    from tritonclient.utils import InferenceServerException  # noqa: PLC0415

    try:
        cfg = _client(opts).get_model_config(model, model_version=opts.version, **({"as_json": True} if opts.protocol == "grpc" else {}))
    except InferenceServerException as exc:
        raise TritonRepoError(f"{model}: {exc.message()}", "is the model loaded? (tritonrepo serve)", exit_code=1) from None
    except (ConnectionError, OSError) as exc:
        raise TritonRepoError(f"cannot reach Triton at {opts.url} ({opts.protocol}): {exc}", "is the server running?") from None
    return cfg.get("config", cfg)


def is_generation(cfg: dict) -> bool:
    """A streaming generation model: decoupled transaction policy with ``text_input`` and ``text_output``."""
    decoupled = bool(cfg.get("model_transaction_policy", {}).get("decoupled"))
    return decoupled and {"text_input"} <= {t["name"] for t in cfg.get("input", [])} and \
        {"text_output"} <= {t["name"] for t in cfg.get("output", [])}


def _stats(client, protocol: str, names: Sequence[str]) -> dict[str, dict]:
    kw = {"as_json": True} if protocol == "grpc" else {}
    stats = client.get_inference_statistics("", **kw)
    return {s["name"]: s for s in stats.get("model_stats", []) if s["name"] in names}


def _delta(before: dict, after: dict, model: str) -> StepStats:
    def num(d: dict, *path: str) -> int:
        for p in path:
            d = d.get(p, {}) if isinstance(d, dict) else {}
        return int(d or 0)

    b, a = before.get(model, {}), after.get(model, {})
    st = StepStats(model=model)
    st.requests = num(a, "inference_stats", "success", "count") - num(b, "inference_stats", "success", "count")
    st.executions = num(a, "execution_count") - num(b, "execution_count")
    if st.requests > 0:
        for attr, key in (("queue_us", "queue"), ("compute_input_us", "compute_input"),
                          ("compute_infer_us", "compute_infer"), ("compute_output_us", "compute_output")):
            ns = num(a, "inference_stats", key, "ns") - num(b, "inference_stats", key, "ns")
            setattr(st, attr, ns / st.requests / 1000.0)
    batches_b = {int(x["batch_size"]): num(x, "compute_infer", "count") for x in b.get("batch_stats", [])}
    done = items = 0
    for x in a.get("batch_stats", []):
        bs = int(x["batch_size"])
        n = num(x, "compute_infer", "count") - batches_b.get(bs, 0)
        done, items = done + n, items + n * bs
    st.avg_batch = items / done if done else 0.0
    return st


def _steps(cfg: dict) -> list[str]:
    return [s["model_name"] for s in cfg.get("ensemble_scheduling", {}).get("step", [])]


# --- load generation ----------------------------------------------------------------------------------------------

@dataclass
class _Record:
    sent: float
    done: float
    ok: bool
    tokens: list[float] = field(default_factory=list)  # arrival times of streamed responses


def _one_request(client, tc, model: str, opts: BenchOptions, arrays, generation: bool, stream_q) -> _Record:
    inputs = _infer_inputs(tc, arrays)
    sent = time.perf_counter()
    if not generation:
        if opts.protocol == "grpc":
            client.infer(model, inputs, model_version=opts.version, client_timeout=opts.timeout)
        else:
            client.infer(model, inputs, model_version=opts.version)
        return _Record(sent, time.perf_counter(), True)
    client.async_stream_infer(model, inputs, model_version=opts.version, enable_empty_final_response=True)
    rec = _Record(sent, 0.0, True)
    while True:
        result, error = stream_q.get(timeout=opts.timeout)
        now = time.perf_counter()
        if error is not None:
            raise error
        resp = result.get_response()
        final = resp.parameters.get("triton_final_response")
        has_text = any(o.name == "text_output" for o in resp.outputs)
        if has_text:
            rec.tokens.append(now)
        if final is not None and final.bool_param:
            rec.done = now
            return rec


class _Worker:
    """One client connection (and stream, for generation) sending requests in turn."""

    def __init__(self, model, opts, requests, generation, index):
        self.model, self.opts, self.requests, self.generation = model, opts, requests, generation
        self.tc = _module(opts.protocol)
        self.client = _client(opts)
        self.index = index
        self.stream_q: queue.Queue | None = None
        if generation:
            self.stream_q = queue.Queue()
            self.client.start_stream(callback=lambda result, error: self.stream_q.put((result, error)))

    def send(self, k: int) -> tuple[_Record, str]:
        arrays = self.requests[(self.index + k) % len(self.requests)]
        sent = time.perf_counter()
        try:
            return _one_request(self.client, self.tc, self.model, self.opts, arrays, self.generation, self.stream_q), ""
        except Exception as exc:  # noqa: BLE001 - counted as an error of this level, the run goes on
            msg = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
            return _Record(sent, time.perf_counter(), False), msg or type(exc).__name__

    def close(self) -> None:
        try:
            if self.generation:
                self.client.stop_stream()
            self.client.close()
        except Exception:  # noqa: BLE001, S110 - closing a client that already failed
            pass


def _run_level(model, opts, requests, generation, names, concurrency: int | None, rate: float | None) -> LevelResult:
    records: list[_Record] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    n_workers = concurrency or max(1, min(64, int((rate or 1) * 0.5) + 4))
    workers = [_Worker(model, opts, requests, generation, i) for i in range(n_workers)]
    stats_client = _client(opts)

    def keep(rec: _Record, err: str) -> None:
        with lock:
            records.append(rec)
            if err:
                errors.append(err)

    def closed_loop(w: _Worker) -> None:
        k = 0
        while not stop.is_set():
            keep(*w.send(k))
            k += 1

    free: queue.Queue = queue.Queue()
    for w in workers:
        free.put(w)

    def open_send(k: int) -> None:
        w = free.get()
        try:
            keep(*w.send(k))
        finally:
            free.put(w)

    threads: list[threading.Thread] = []
    pool = None
    start_all = time.perf_counter()
    if concurrency:
        threads = [threading.Thread(target=closed_loop, args=(w,), daemon=True) for w in workers]
        for t in threads:
            t.start()
    else:
        pool = ThreadPoolExecutor(max_workers=n_workers)

        def schedule() -> None:
            k, interval = 0, 1.0 / float(rate)
            while not stop.is_set():
                target = start_all + k * interval
                delay = target - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(open_send, k)
                k += 1

        threads = [threading.Thread(target=schedule, daemon=True)]
        threads[0].start()
    try:
        time.sleep(opts.warmup)
        before = _stats(stats_client, opts.protocol, names)
        t0 = time.perf_counter()
        time.sleep(opts.duration)
        t1 = time.perf_counter()
        after = _stats(stats_client, opts.protocol, names)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=opts.timeout)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)  # requests still queued behind a slow server are dropped
        for w in workers:
            w.close()
        stats_client.close()

    window = [r for r in records if r.sent >= t0 and r.done <= t1]
    ok = [r for r in window if r.ok]
    lat = np.array([(r.done - r.sent) * 1e6 for r in ok]) if ok else np.zeros(1)
    span = t1 - t0
    steps = [_delta(before, after, n) for n in names]
    if len(names) > 1:  # an ensemble: sum the composing models' split, average batch of the heaviest step
        server = StepStats(model=model, requests=steps[0].requests)
        for s in steps[1:]:
            server.queue_us += s.queue_us
            server.compute_input_us += s.compute_input_us
            server.compute_infer_us += s.compute_infer_us
            server.compute_output_us += s.compute_output_us
        core = max(steps[1:], key=lambda s: s.compute_infer_us)
        server.avg_batch, server.executions = core.avg_batch, core.executions
    else:
        server = steps[0]
    batch = max(1, _batch_of(requests[0]))
    res = LevelResult(
        concurrency=concurrency, request_rate=rate, throughput=len(ok) / span, inferences_per_second=len(ok) * batch / span,
        latency_us={"p50": float(np.percentile(lat, 50)), "p90": float(np.percentile(lat, 90)),
                    "p95": float(np.percentile(lat, 95)), "p99": float(np.percentile(lat, 99)), "avg": float(lat.mean())},
        requests=len(ok), errors=len(window) - len(ok), server=server, steps=steps[1:] if len(names) > 1 else [],
        first_error=errors[0] if errors else "",
    )
    if generation and ok:
        ttft = [(r.tokens[0] - r.sent) * 1e3 for r in ok if r.tokens]
        itl = [float(np.mean(np.diff(r.tokens))) * 1e3 for r in ok if len(r.tokens) > 1]
        res.ttft_ms = float(np.mean(ttft)) if ttft else 0.0
        res.itl_ms = float(np.mean(itl)) if itl else 0.0
        res.tokens_per_second = sum(len(r.tokens) for r in ok) / span
        res.output_tokens = float(np.mean([len(r.tokens) for r in ok]))
    return res


def _batch_of(arrays: dict[str, np.ndarray]) -> int:
    return int(next(iter(arrays.values())).shape[0]) if arrays else 1


def run_bench(model: str, requests: list[dict[str, np.ndarray]], opts: BenchOptions,
              progress: Callable[[str], None] | None = None) -> BenchResult:
    """Measure ``model`` at every load level of ``opts`` with ``requests`` sent in turn.

    Args:
        model: the served model's name.
        requests: the request payloads, ``{input name: array}`` each (:func:`split_rows`, :func:`texts_payloads`);
            worker ``i`` starts at payload ``i`` so that concurrent requests differ (lengths, texts).
        opts: URL, protocol, levels, warm-up and window.
        progress: called with a short line before each level.

    Returns:
        A :class:`BenchResult` with one :class:`LevelResult` per level.

    Raises:
        TritonRepoError: the server cannot be reached, the model is not loaded, a generation model over HTTP, or
            every request of a level failed (the server's first error message; exit 1).
    """
    if not requests:
        raise TritonRepoError("no request payloads to send", "give --text, --input or use the golden sample")
    if opts.duration <= 0 or opts.warmup < 0:
        raise TritonRepoError("--duration must be > 0 and --warmup >= 0")
    cfg = model_config(opts, model)
    generation = is_generation(cfg)
    if generation and opts.protocol != "grpc":
        raise TritonRepoError(f"{model} streams its answer (decoupled)", "use --protocol grpc", exit_code=2)
    if cfg.get("model_transaction_policy", {}).get("decoupled") and not generation:
        raise TritonRepoError(f"{model} is decoupled without text_input/text_output", "bench measures such models only "
                              "when they stream text (text_input -> text_output)")
    names = [model, *_steps(cfg)]
    levels: list[tuple[int | None, float | None]] = (
        [(None, r) for r in opts.request_rate] if opts.request_rate else [(c, None) for c in opts.concurrency]
    )
    for c, r in levels:
        if (c is not None and c < 1) or (r is not None and r <= 0):
            raise TritonRepoError("concurrency must be >= 1 and request rate > 0")
    results = []
    for c, r in levels:
        if progress:
            progress(f"concurrency {c}" if c else f"request rate {r:g}/s")
        lv = _run_level(model, opts, requests, generation, names, c, r)
        if lv.requests == 0 and lv.first_error:
            raise TritonRepoError(f"{model}: every request failed: {lv.first_error}", exit_code=1)
        results.append(lv)
    return BenchResult(model=model, protocol=opts.protocol, url=opts.url, generation=generation,
                       batch_size=_batch_of(requests[0]), duration=opts.duration, warmup=opts.warmup, levels=results)


# --- request payloads ---------------------------------------------------------------------------------------------

def split_rows(arrays: dict[str, np.ndarray], batch_size: int = 1, trim_padding: bool = True) -> list[dict[str, np.ndarray]]:
    """Cut a batched sample (``[B, ...]`` arrays) into requests of ``batch_size`` rows.

    With ``trim_padding`` and a 2-D ``attention_mask``, a batch-1 request keeps only its real tokens: every input
    whose shape is ``[B, seq]`` like the mask is cut to that row's length, so requests have their own lengths
    (as clients send them) instead of the sample's common padded length.
    """
    n = _batch_of(arrays)
    mask = arrays.get("attention_mask")
    out = []
    for start in range(0, n, batch_size):
        rows = {k: v[start:start + batch_size] for k, v in arrays.items()}
        if trim_padding and batch_size == 1 and mask is not None and mask.ndim == 2:
            length = max(1, int(np.nonzero(mask[start])[0].max()) + 1) if mask[start].any() else 1
            rows = {k: (v[:, :length] if v.ndim == 2 and arrays[k].shape == mask.shape else v) for k, v in rows.items()}
        out.append(rows)
    return out


def texts_payloads(input_name: str, texts: Sequence[str], batch_size: int = 1, batching: bool = True) -> list[dict]:
    """Requests of ``batch_size`` texts each (``BYTES [batch, 1]``, or ``[1]`` when the model does not batch)."""
    enc = [t.encode("utf-8") for t in texts]
    out = []
    for start in range(0, len(enc), batch_size):
        chunk = enc[start:start + batch_size]
        arr = np.array([[t] for t in chunk], dtype=object) if batching else np.array(chunk[:1], dtype=object)
        out.append({input_name: arr})
    return out
