"""``tritonrepo tune``: search a model's serving settings by measuring them on the real server.

Like Model Analyzer's *quick* search (a coordinate search instead of the full grid): starting from the model's
current config, one setting at a time — instance count, threads per instance, ``max_queue_delay_microseconds``,
``max_batch_size``, preferred batch sizes — each value is loaded into a running ``tritonserver`` (explicit model
control, ``load`` with a config override: repository extension, no file is touched) and measured with
:func:`tritonrepo.bench.run_bench` at one concurrency; the best value is kept before the next setting is tried.
"Best" is the highest throughput among the trials whose p99 latency meets the budget (``p99_ms``); without a
budget, the highest throughput. The winner is written as a new version (a copy of the newest version's files, by
hard link when possible) with the tuned ``config.pbtxt``.
"""

from __future__ import annotations

import difflib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2 as mc

from tritonrepo.config import config_to_text, machine_cores, read_config
from tritonrepo.errors import TritonRepoError


@dataclass(frozen=True)
class Candidate:
    """One point of the search space."""

    instance_count: int
    threads: int
    max_queue_delay_us: int
    max_batch_size: int
    preferred: tuple[int, ...] = ()


@dataclass
class Trial:
    """A measured candidate (throughput in inferences/s, latency in ms)."""

    candidate: Candidate
    throughput: float = 0.0
    p99_ms: float = float("inf")
    p50_ms: float = float("inf")
    avg_batch: float = 0.0
    error: str = ""

    def meets(self, p99_ms: float | None) -> bool:
        """Measured without errors and within the latency budget."""
        return not self.error and (p99_ms is None or self.p99_ms <= p99_ms)


@dataclass
class TuneResult:
    """The search: every trial in order, the baseline (the current config) and the winner."""

    model: str
    base: Trial
    best: Trial
    trials: list[Trial] = field(default_factory=list)
    base_config: mc.ModelConfig | None = None
    best_config: mc.ModelConfig | None = None
    budget_met: bool = True

    def diff(self) -> str:
        """Unified diff of ``config.pbtxt``, current -> tuned."""
        a = config_to_text(self.base_config).splitlines(keepends=True)
        b = config_to_text(self.best_config).splitlines(keepends=True)
        return "".join(difflib.unified_diff(a, b, "config.pbtxt (current)", "config.pbtxt (tuned)"))


def _threads_of(cfg: mc.ModelConfig) -> int:
    for key in ("intra_op_thread_count", "torch_threads"):
        if key in cfg.parameters and cfg.parameters[key].string_value.isdigit():
            return int(cfg.parameters[key].string_value)
    return 0


def current(cfg: mc.ModelConfig) -> Candidate:
    """The candidate a config already is."""
    count = sum(g.count for g in cfg.instance_group) or 1
    db = cfg.dynamic_batching
    return Candidate(count, _threads_of(cfg), int(db.max_queue_delay_microseconds), cfg.max_batch_size,
                     tuple(db.preferred_batch_size))


def apply(cfg: mc.ModelConfig, c: Candidate) -> mc.ModelConfig:
    """``cfg`` with the candidate's settings (threads as the backend's parameter; Python pre/post models: none)."""
    out = mc.ModelConfig()
    out.CopyFrom(cfg)
    if not out.instance_group:
        out.instance_group.add(kind=mc.ModelInstanceGroup.KIND_CPU)
    for g in out.instance_group:
        g.count = c.instance_count
    if c.threads:
        if out.backend == "onnxruntime":
            out.parameters["intra_op_thread_count"].string_value = str(c.threads)
            out.parameters["inter_op_thread_count"].string_value = "1"
        elif "auto_class" in out.parameters:
            out.parameters["torch_threads"].string_value = str(c.threads)
    if out.max_batch_size > 0:
        out.max_batch_size = c.max_batch_size
        out.dynamic_batching.max_queue_delay_microseconds = c.max_queue_delay_us
        del out.dynamic_batching.preferred_batch_size[:]
        out.dynamic_batching.preferred_batch_size.extend(p for p in c.preferred if p <= c.max_batch_size)
    return out


def search_space(base: Candidate, cores: int | None = None) -> list[tuple[str, list]]:
    """The values tried per setting, in search order (Model Analyzer's defaults scaled to this machine)."""
    cores = cores or machine_cores()
    space: list[tuple[str, list]] = [
        ("instance_count", sorted({1, 2, base.instance_count})),
        ("threads", sorted({max(1, cores // 2), cores, base.threads or cores})),
    ]
    if base.max_batch_size > 0:
        space += [
            ("max_queue_delay_us", sorted({0, 100, 1000, base.max_queue_delay_us})),
            ("max_batch_size", sorted({base.max_batch_size, min(64, base.max_batch_size * 2)})),
            ("preferred", [(), (base.max_batch_size,)]),
        ]
    return space


def tune(
    repo: Path,
    model: str,
    *,
    p99_ms: float | None = None,
    concurrency: int = 8,
    duration: float = 3.0,
    warmup: float = 1.0,
    protocol: str = "grpc",
    payloads: list[dict] | None = None,
    space: list[tuple[str, list]] | None = None,
    engine=None,
    progress: Callable[[str], None] | None = None,
) -> TuneResult:
    """Measure the current config and the quick-search candidates of ``model`` on a server this call starts.

    Args:
        repo: the model repository.
        model: a non-ensemble model of ``repo`` (tune an ensemble's steps one by one).
        p99_ms: latency budget for the p99 latency, milliseconds (``None``: highest throughput wins).
        concurrency: closed-loop concurrency of every measurement.
        duration, warmup: measurement window and warm-up per trial, seconds.
        payloads: request payloads (default: the golden sample's rows, else random inputs from the config).
        space: ``[(setting, values)]`` to search (default: :func:`search_space`).
        engine: the ``tritonserver`` to use (default: :func:`tritonrepo.server.find_engine`).

    Raises:
        TritonRepoError: the model is missing or an ensemble, the server does not start, or the current
            config cannot be measured.
    """
    from tritonrepo.bench import BenchOptions, run_bench, split_rows  # noqa: PLC0415
    from tritonrepo.server import TritonServer  # noqa: PLC0415

    model_dir = Path(repo) / model
    if not (model_dir / "config.pbtxt").is_file():
        raise TritonRepoError(f"model '{model}' is not in {repo}", "give a model of the repository")
    cfg = read_config(model_dir)
    if cfg.platform == "ensemble":
        raise TritonRepoError(f"'{model}' is an ensemble", "tune its steps (e.g. the core model) one by one")
    if payloads is None:
        payloads = _payloads(model_dir, cfg, split_rows)
    base = current(cfg)
    space = space if space is not None else search_space(base)

    with TritonServer(repo, engine=engine, model_control="explicit", load=[model]) as server:
        import tritonclient.grpc as grpcclient  # noqa: PLC0415

        client = grpcclient.InferenceServerClient(server.grpc_url)
        url = server.grpc_url if protocol == "grpc" else server.http_url
        opts = BenchOptions(url=url, protocol=protocol, concurrency=[concurrency], duration=duration, warmup=warmup)
        measured: dict[Candidate, Trial] = {}

        def measure(c: Candidate) -> Trial:
            if c in measured:
                return measured[c]
            trial = Trial(c)
            if progress:
                progress(f"trial {len(measured) + 1}: {_describe(c)}")
            try:
                client.load_model(model, config=json_format.MessageToJson(apply(cfg, c), preserving_proto_field_name=True))
                lv = run_bench(model, payloads, opts).levels[0]
                trial.throughput, trial.avg_batch = lv.inferences_per_second, lv.server.avg_batch
                trial.p99_ms, trial.p50_ms = lv.latency_us["p99"] / 1000, lv.latency_us["p50"] / 1000
            except Exception as exc:  # noqa: BLE001 - a candidate the model refuses is a failed trial, not the end
                trial.error = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
            measured[c] = trial
            return trial

        base_trial = measure(base)
        if base_trial.error:
            raise TritonRepoError(f"{model}: the current config cannot be measured: {base_trial.error}", exit_code=1)
        best = base_trial
        for setting, values in space:
            for v in values:
                t = measure(replace(best.candidate, **{setting: v}))
                if _better(t, best, p99_ms):
                    best = t
        client.load_model(model)  # back to the files' config
    return TuneResult(model, base_trial, best, list(measured.values()), cfg, apply(cfg, best.candidate),
                      best.meets(p99_ms))


def _better(a: Trial, b: Trial, budget: float | None) -> bool:
    if a.error:
        return False
    if a.meets(budget) != b.meets(budget):
        return a.meets(budget)
    if not a.meets(budget):  # neither meets the budget: the lower p99 is closer to it
        return a.p99_ms < b.p99_ms
    return a.throughput > b.throughput * 1.02  # 2 %: below that a change is measurement noise


def _describe(c: Candidate) -> str:
    pref = ",".join(map(str, c.preferred)) or "-"
    return (f"instances {c.instance_count}, threads {c.threads or 'backend'}, queue delay {c.max_queue_delay_us} us, "
            f"max batch {c.max_batch_size}, preferred {pref}")


def _payloads(model_dir: Path, cfg: mc.ModelConfig, split_rows) -> list[dict]:
    from tritonrepo.client import golden_sample, random_inputs  # noqa: PLC0415

    try:
        g = golden_sample(model_dir)
        return split_rows(g.inputs) if cfg.max_batch_size > 0 else [g.inputs]
    except TritonRepoError:
        return [random_inputs(cfg, 1, seed) for seed in range(4)]


def write_tuned(repo: Path, result: TuneResult, *, force: bool = False) -> int:
    """Write the tuned config with a new version (hard-linked copy of the newest version). Returns the version.

    Raises:
        TritonRepoError: the config would change and ``force`` is false (the repository's rule: configs are
            never replaced silently), or the model has no version folder.
    """
    from tritonrepo.config import write_config  # noqa: PLC0415
    from tritonrepo.repository import commit_model, existing_versions, staging_dir  # noqa: PLC0415

    model_dir = Path(repo) / result.model
    versions = existing_versions(model_dir)
    if not versions:
        raise TritonRepoError(f"{model_dir}: no version folder to copy")
    new = max(versions) + 1
    with staging_dir(Path(repo), result.model) as tmp:
        stage = tmp / result.model
        shutil.copytree(model_dir / str(max(versions)), stage / str(new), copy_function=_link_or_copy)
        for p in model_dir.iterdir():
            if p.is_file() and p.name != "config.pbtxt":
                shutil.copy2(p, stage / p.name)
        write_config(result.best_config, stage)
        commit_model(stage, model_dir, new, force=force)
    return new


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def to_json(result: TuneResult) -> dict:
    """The search as a JSON-ready document."""
    def row(t: Trial) -> dict:
        return {**t.candidate.__dict__, "preferred": list(t.candidate.preferred), "throughput": round(t.throughput, 2),
                "p50_ms": round(t.p50_ms, 3), "p99_ms": round(t.p99_ms, 3), "avg_batch": round(t.avg_batch, 3),
                "error": t.error}

    return {"model": result.model, "base": row(result.base), "best": row(result.best),
            "budget_met": result.budget_met, "trials": [row(t) for t in result.trials], "diff": result.diff()}


__all__ = ["Candidate", "Trial", "TuneResult", "apply", "current", "search_space", "to_json", "tune", "write_tuned"]
