"""``add-hf --pipeline``: preprocessing -> core model -> postprocessing as one ensemble clients call with raw input.

Naming scheme (for a pipeline called ``NAME``):

* ``NAME`` — the ensemble clients call (raw inputs: ``text`` / ``image`` / ``question`` + ``context`` ...);
* ``NAME_preprocess`` — tokenizer or image processor (Python backend, :mod:`tritonrepo.triton_models.preprocess`);
* ``NAME_model`` — the core model (ONNX or Python backend, as ``add-hf`` makes it);
* ``NAME_postprocess`` — labels/scores, pooled embeddings, answer spans ... (Python backend,
  :mod:`tritonrepo.triton_models.postprocess`); absent when the entry declares no post step.

Every step is built from the task registry entry's :class:`~tritonrepo.tasks.registry.PipelineSpec` (raw
inputs, pre/post kinds and modules, post inputs/outputs/files/parameters, ensemble outputs, golden inputs and
reference); nothing here names a task, so a family adds a pipeline with an entry (and, for a new kind, code
in the fixed post/pre module) without editing this file.

The preprocessing outputs are generated from the core model's *config inputs* (names, dtypes, dims), so a graph
without ``token_type_ids`` (DistilBERT, RoBERTa) gets a tokenizer step without it; the ensemble is wired by
name and checked edge by edge (:mod:`tritonrepo.ensemble`). The ensemble's manifest holds golden raw inputs and
the reference outputs (``transformers.pipeline`` where it has the task, else PyTorch).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

from tritonrepo.add import (
    AddOptions,
    AddResult,
    default_model_name,
    precheck_commits,
    prepare,
    repository_transaction,
    stage_hf_model,
    write_staged_model,
)
from tritonrepo.checkpoint import Checkpoint
from tritonrepo.config import ModelSettings, TensorSpec, build_config
from tritonrepo.ensemble import ENSEMBLE_INPUT, plan_ensemble
from tritonrepo.errors import TritonRepoError
from tritonrepo.manifest import GoldenSample, VersionRecord, array_to_tensor, hash_files, now_iso
from tritonrepo.repository import commit_model, free_version, staging_dir, validate_model_name
from tritonrepo.tasks import TaskSpec, all_specs
from tritonrepo.tasks.reference import golden_images  # noqa: F401 - re-exported for clients and examples

PROCESSOR_DIR = "processor"
S = mc.TYPE_STRING


@dataclass
class PipelineResult:
    """What :func:`add_pipeline` wrote: the ensemble and its steps (names in call order)."""

    ensemble: str
    steps: list[str]
    core: AddResult | None  # None when the core model was already in the repository
    config: mc.ModelConfig
    notes: list[str] = field(default_factory=list)


def pipeline_names(name: str) -> tuple[str, str, str]:
    """``(preprocess, core, postprocess)`` model names for ensemble ``name``."""
    return f"{name}_preprocess", f"{name}_model", f"{name}_postprocess"


def add_pipeline(model: str, options: AddOptions, prepared=None) -> PipelineResult:
    """Add ``model`` as an ensemble (pre -> core -> post) that takes raw text or image bytes.

    All models are staged first and committed only when every one of them can be (all or nothing); a failure
    leaves the repository exactly as it was.

    ``prepared`` is what :func:`tritonrepo.add.prepare` returned (optional, see :func:`tritonrepo.add.add_hf`).

    Raises:
        TritonRepoError: as :func:`tritonrepo.add.add_hf`, plus a task without a pipeline.
    """
    repo, checkpoint, spec = prepared or prepare(model, options)
    name = validate_model_name(options.name or default_model_name(checkpoint))
    check_pipeline(spec)
    if spec.pipeline.max_batch_size is not None:  # e.g. zero-shot: the steps change the number of rows
        options = replace(options, settings=replace(options.settings, max_batch_size=spec.pipeline.max_batch_size,
                                                    dynamic_batching=False))
    core_name = pipeline_names(name)[1]
    with repository_transaction(repo), staging_dir(repo, name) as tmp:
        core = stage_hf_model(checkpoint, spec, core_name, replace(options, name=core_name), tmp)
        core = fold_post_step(checkpoint, spec, core, tmp / core_name)
        staged, steps, ens_cfg = _stage_around(repo, tmp, name, checkpoint, spec, core_name, core.config, options,
                                               tolerance=core.export.tolerance)
        staged = [(core_name, core.version), *staged]  # the core, its pre/post steps, the ensemble last
        precheck_commits(tmp, repo, staged, force=options.force)
        for step, ver in staged:
            commit_model(tmp / step, repo / step, ver, force=options.force)
    return PipelineResult(name, steps, core, ens_cfg, core.notes)


def pipeline_source(repo: Path, core_name: str, options: AddOptions, checkpoint_ref: str | None = None):
    """``(checkpoint, spec, core config)`` for wrapping model ``core_name`` (no heavy import).

    The checkpoint is ``checkpoint_ref`` or the source recorded in the core model's manifest; the task is
    ``options.task`` or the one recorded there.

    Raises:
        TritonRepoError: the core model is missing, has no manifest and no checkpoint was given, its task has
            no pipeline, or it batches while the task's pipeline must not (``PipelineSpec.max_batch_size``).
    """
    from tritonrepo.checkpoint import resolve_checkpoint  # noqa: PLC0415
    from tritonrepo.config import read_config  # noqa: PLC0415
    from tritonrepo.manifest import read_manifest  # noqa: PLC0415
    from tritonrepo.tasks import detect_spec  # noqa: PLC0415

    core_dir = repo / core_name
    if not (core_dir / "config.pbtxt").is_file():
        raise TritonRepoError(f"model '{core_name}' is not in {repo}", "add it first: tritonrepo add-hf ...")
    manifest = read_manifest(core_dir)
    record = manifest.versions[-1] if manifest and manifest.versions else None
    ref = checkpoint_ref or (record.source if record else None)
    if not ref:
        raise TritonRepoError(f"{core_dir}: no tritonrepo manifest says where the model came from", "pass --checkpoint")
    checkpoint = resolve_checkpoint(ref, (record.revision or None) if record and not checkpoint_ref else None, options.token)
    spec = detect_spec(checkpoint, options.task or (record.task if record else None))
    check_pipeline(spec)
    core_cfg = read_config(core_dir)
    want = spec.pipeline.max_batch_size
    if want is not None and core_cfg.max_batch_size != want:
        raise TritonRepoError(
            f"the {spec.task} pipeline needs a core model with max_batch_size {want}; '{core_name}' has "
            f"{core_cfg.max_batch_size}",
            f"add the core model again with --max-batch-size {want}, or use add-hf --pipeline",
        )
    return checkpoint, spec, core_cfg


def pipeline_for_model(repo: Path, name: str, core_name: str, options: AddOptions, checkpoint_ref: str | None = None,
                       source=None) -> PipelineResult:
    """Wrap a model already in ``repo`` (added by ``add-hf``) in pre/post-processing and an ensemble ``name``.

    ``source`` is what :func:`pipeline_source` returned (the CLI checks before heavy imports), else it is
    computed here. All steps are committed or none. Around an optimised/quantised core the ensemble's golden sample
    (the fp32 reference's answers) gets the core's recorded replay tolerance (:func:`core_replay_tolerance`) as
    ``add-hf --pipeline --quantize`` gives it, not the fp32 parity ``atol``.

    Raises:
        TritonRepoError: as :func:`pipeline_source`, or a clash with existing models without ``force``.
    """
    validate_model_name(name)
    checkpoint, spec, core_cfg = source or pipeline_source(repo, core_name, options, checkpoint_ref)
    with staging_dir(repo, name) as tmp:
        staged, steps, ens_cfg = _stage_around(repo, tmp, name, checkpoint, spec, core_name, core_cfg, options,
                                               tolerance=core_replay_tolerance(repo / core_name))
        precheck_commits(tmp, repo, staged, force=options.force)
        for step, ver in staged:
            commit_model(tmp / step, repo / step, ver, force=options.force)
    return PipelineResult(name, steps, None, ens_cfg)


def core_replay_tolerance(core_dir: Path) -> float | None:
    """The replay tolerance recorded for the latest version of the model in ``core_dir`` (``VersionRecord.replay_atol``:
    the quality gate's figure × 2 for a graph made by ``add-hf --optimize/--quantize``), ``None`` when there is none
    (an fp32 graph, or no manifest): the golden sample of an ensemble around it then uses the parity ``atol``."""
    from tritonrepo.manifest import read_manifest  # noqa: PLC0415

    manifest = read_manifest(core_dir)
    record = manifest.versions[-1] if manifest and manifest.versions else None
    return record.replay_atol if record is not None and record.replay_atol > 0 else None


def pipeline_tasks() -> list[str]:
    """Tasks with a pipeline in the registry (sorted)."""
    return sorted({s.task for s in all_specs() if s.pipeline is not None})


def check_pipeline(spec: TaskSpec) -> None:
    """Raise :class:`TritonRepoError` (listing the tasks that have one) when the entry has no pipeline."""
    if spec.pipeline is None:
        raise TritonRepoError(
            f"no pipeline for task {spec.task!r} ({spec.family})", f"use one of: {', '.join(pipeline_tasks())}"
        )


def post_folded(spec: TaskSpec, core_cfg) -> bool:
    """True when the core model answers the post step's outputs itself (:func:`fold_post_step` was applied)."""
    pipe = spec.pipeline
    names = {t.name for t in core_cfg.output}
    return bool(pipe.post_kind and pipe.post_outputs) and all(t.name in names for t in pipe.post_outputs)


def post_parameters(checkpoint, spec: TaskSpec) -> dict[str, str]:
    """The post step's kind-specific parameters: the entry's ``post_parameters`` and its ``post_setup``'s."""
    pipe = spec.pipeline
    params = dict(pipe.post_parameters)
    if pipe.post_setup:
        params.update(spec.pipeline_load("post_setup")(checkpoint, spec))
    return params


def fold_post_step(checkpoint, spec: TaskSpec, core: AddResult, stage: Path) -> AddResult:
    """Fold the post step into the staged ONNX core model when the entry can (``PipelineSpec.post_fold``).

    The entry's fold function rewrites ``stage/<version>/model.onnx`` (it checks that the result is exact, else
    leaves it); the core's config then declares the post step's outputs (dims as the entry declares them) in place
    of the graph outputs the fold consumed, and its manifest record gets the new file hashes, golden outputs and
    a note in ``exporter``. The pipeline is then pre -> core (one Python hop and one copy of the hidden states
    fewer per request).

    Returns:
        ``core`` with the new config, or ``core`` unchanged when nothing was folded (Python backend, no
        ``post_fold``, or the fold function declined).
    """
    from tritonrepo.config import write_config  # noqa: PLC0415
    from tritonrepo.manifest import MANIFEST_FILENAME, read_manifest, write_manifest  # noqa: PLC0415

    pipe = spec.pipeline
    if not pipe.post_fold or core.config.backend != "onnxruntime" or not core.export.samples:
        return core
    vdir = stage / str(core.version)
    params = post_parameters(checkpoint, spec)
    inputs, outputs = core.export.samples
    manifest = read_manifest(stage)
    record = next((r for r in manifest.versions if r.version == core.version), None) if manifest else None
    if record is not None and record.samples:  # the golden the record holds (an optimised graph's own answers)
        from tritonrepo.manifest import tensor_to_array  # noqa: PLC0415

        outputs = {t.name: tensor_to_array(t) for t in record.samples[0].outputs}
    folded = spec.pipeline_load("post_fold")(vdir / (core.config.default_model_filename or "model.onnx"),
                                             params, inputs, outputs)
    if folded is None:
        return core
    pre_like = type(core.config)()  # the pre step's outputs are the core's inputs
    for t in core.config.input:
        pre_like.output.add(name=t.name, data_type=t.data_type, dims=t.dims)
    post_inputs = post_step_inputs(spec, core.config, pre_like)
    consumed = {ref.rstrip("?").partition(".")[2] for ref in pipe.post_inputs if ref.startswith("core.")}
    cfg = type(core.config)()
    cfg.CopyFrom(core.config)
    kept = [t for t in core.config.output if t.name not in consumed]
    del cfg.output[:]
    cfg.output.extend(kept)
    for decl in pipe.post_outputs:
        cfg.output.add(name=decl.name, data_type=mc.DataType.Value(decl.dtype), dims=_post_dims(decl, post_inputs))
    write_config(cfg, stage / "config.pbtxt")
    summary = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    if record is not None:
        del record.files[:]
        record.files.extend(hash_files(vdir, relative_to=stage))
        record.exporter += f"; post step folded into the graph ({summary})"
        if record.samples:
            sample = record.samples[0]
            keep = [t for t in sample.outputs if t.name not in consumed]
            del sample.outputs[:]
            sample.outputs.extend([*keep, *(array_to_tensor(k, v) for k, v in folded.items())])
        write_manifest(manifest, stage / MANIFEST_FILENAME)
    return replace(core, config=cfg, notes=[*core.notes, f"post step folded into {core.config.name} ({summary})"])


def _stage_around(repo, tmp, name, checkpoint, spec: TaskSpec, core_name, core_cfg, options, tolerance=None):
    """Stage pre/post steps and the ensemble around ``core_cfg``; returns ``([(model, version)], steps, config)``.

    When the core answers the post step's outputs itself (:func:`post_folded`) there is no post step.
    ``tolerance``: the replay tolerance the core's quality gate measured (optimised/quantised cores,
    ``ExportResult.tolerance``); the golden sample's ``atol`` is the larger of it and ``options.atol``, because the
    golden answers are the fp32 reference's.
    """
    pre_name, _, post_name = pipeline_names(name)
    pipe = spec.pipeline
    configs = {core_name: core_cfg}
    pre_cfg, pre_version = _stage_pre(checkpoint, spec, core_cfg, pre_name, options, tmp, repo)
    configs[pre_name] = pre_cfg
    staged = [(pre_name, pre_version)]
    steps = [pre_name, core_name]
    folded = post_folded(spec, core_cfg)
    if pipe.post_kind and not folded:
        post_cfg, post_version = _stage_post(checkpoint, spec, core_cfg, pre_cfg, post_name, options, tmp, repo,
                                             core_name)
        configs[post_name] = post_cfg
        staged.append((post_name, post_version))
        steps.append(post_name)
    plan = plan_ensemble(name, steps, configs, maps={} if folded else ensemble_maps(spec, post_name),
                         outputs=ensemble_outputs(spec, core_name, core_name if folded else post_name, core_cfg))
    ens_cfg = plan.to_config()
    ens_version = free_version(repo / name, options.version, force=options.force)
    (tmp / name / str(ens_version)).mkdir(parents=True)
    sample = _golden(checkpoint, spec, pre_cfg, max(options.atol, tolerance or 0.0))
    record = VersionRecord(
        version=ens_version, source=checkpoint.source, source_kind=checkpoint.kind,
        revision=checkpoint.revision or "", task=spec.task, library="transformers", backend="ensemble",
        exporter=f"tritonrepo pipeline: {' -> '.join(steps)}", atol=options.atol, samples=[sample],
        created_at=now_iso(),
    )
    write_staged_model(tmp / name, repo / name, ens_cfg, record)
    staged.append((name, ens_version))
    return staged, steps, ens_cfg


def _settings(core_cfg: mc.ModelConfig, options: AddOptions, parameters: dict[str, str]) -> ModelSettings:
    return ModelSettings(
        max_batch_size=core_cfg.max_batch_size, dynamic_batching=options.settings.dynamic_batching,
        instance_count=1, device="cpu", parameters=parameters,
    )


def _copy_module(vdir: Path, module: str) -> None:
    pkg = resources.files("tritonrepo") / "triton_models"
    vdir.mkdir(parents=True, exist_ok=True)
    (vdir / "model.py").write_bytes((pkg / module).read_bytes())
    (vdir / "tritonrepo_runtime.py").write_bytes((pkg / "runtime.py").read_bytes())
    (vdir / "tritonrepo_limits.py").write_bytes((pkg / "limits.py").read_bytes())


def _decl(t, dims=None) -> TensorSpec:
    return TensorSpec(t.name, mc.DataType.Value(t.dtype), tuple(t.dims if dims is None else dims))


def _stage_pre(checkpoint, spec: TaskSpec, core_cfg, name, options, tmp, repo) -> tuple[mc.ModelConfig, int]:
    """The preprocess step: raw inputs from the entry, outputs = the core model's config inputs."""
    pipe = spec.pipeline
    ver = free_version(repo / name, options.version, force=options.force)
    vdir = tmp / name / str(ver)
    _copy_module(vdir, pipe.pre_module)
    params = {"kind": pipe.pre_kind, "processor_subfolder": PROCESSOR_DIR}
    params.update(spec.pipeline_load("pre_setup")(checkpoint, spec, vdir / PROCESSOR_DIR))
    if pipe.pre_module == "preprocess.py" and "max_length" in params and core_cfg.backend == "onnxruntime" \
            and core_cfg.max_batch_size > 0 and core_cfg.HasField("dynamic_batching"):
        # the ONNX Runtime backend batches equal shapes only: pad to length buckets (docs/performance.md)
        params["length_buckets"] = ",".join(str(b) for b in length_buckets(int(params["max_length"])))
    inputs = [_decl(t) for t in pipe.raw_inputs]
    outputs = [TensorSpec(t.name, t.data_type, tuple(t.dims)) for t in core_cfg.input]
    outputs += [_decl(t) for t in pipe.pre_extra_outputs]
    cfg = build_config(name, backend="python", inputs=inputs, outputs=outputs, settings=_settings(core_cfg, options, params))
    _mark_optional(cfg, {t.name for t in pipe.raw_inputs if t.optional})
    _write_step(tmp / name, repo / name, cfg, checkpoint, spec.task, ver)
    return cfg, ver


def length_buckets(max_length: int, smallest: int = 16) -> list[int]:
    """Sequence lengths the tokenizer step pads to for an ONNX core: powers of two from ``smallest`` below
    ``max_length``, then ``max_length`` (256 -> ``[16, 32, 64, 128, 256]``; 384 -> ``[16, ..., 256, 384]``)."""
    out, b = [], smallest
    while b < max_length:
        out.append(b)
        b *= 2
    return [*out, max_length]


def _mark_optional(cfg: mc.ModelConfig, names: set[str]) -> None:
    """``optional: true`` on the inputs ``names`` (per-request knobs, see ``TensorDecl.optional``)."""
    for t in cfg.input:
        if t.name in names:
            t.optional = True


def post_step_inputs(spec: TaskSpec, core_cfg, pre_cfg) -> list[TensorSpec]:
    """The post step's inputs: the entry's ``post_inputs`` references resolved on the core and pre configs.

    Raises:
        TritonRepoError: a required reference names a tensor the producer does not have.
    """
    producers = {"core": {t.name: t for t in core_cfg.output}, "pre": {t.name: t for t in pre_cfg.output},
                 "raw": {t.name: t for t in pre_cfg.input}}
    out = []
    for ref in spec.pipeline.post_inputs:
        optional = ref.endswith("?")
        step, _, tensor = ref.rstrip("?").partition(".")
        t = producers[step].get(tensor)
        if t is None:
            if optional:
                continue
            raise TritonRepoError(
                f"task {spec.task!r}: the pipeline's post step needs '{tensor}' from the {step} model, which has "
                f"{sorted(producers[step])}",
                "the core model does not match the task (check --task)",
            )
        out.append(TensorSpec(t.name, t.data_type, tuple(t.dims)))
    return out


def _post_dims(decl, inputs: list[TensorSpec]) -> tuple[int, ...]:
    by_name = {t.name: t for t in inputs}
    dims = []
    for d in decl.dims:
        if isinstance(d, str):
            tensor, _, idx = d.partition("[")
            dims.append(int(by_name[tensor].dims[int(idx.rstrip("]"))]))
        else:
            dims.append(int(d))
    return tuple(dims)


def _stage_post(checkpoint, spec: TaskSpec, core_cfg, pre_cfg, name, options, tmp, repo,
                core_name: str = "") -> tuple[mc.ModelConfig, int]:
    """The postprocess step: inputs, outputs, files and parameters as the entry declares them (``{core_model}`` in
    a parameter value becomes the core model's name, for steps that call it through BLS)."""
    pipe = spec.pipeline
    ver = free_version(repo / name, options.version, force=options.force)
    vdir = tmp / name / str(ver)
    _copy_module(vdir, pipe.post_module)
    params = {"kind": pipe.post_kind}
    if "labels" in pipe.post_files:
        shutil.copy2(checkpoint.path / "config.json", vdir / "config.json")
        params["labels_file"] = "config.json"
    if "processor" in pipe.post_files:
        spec.pipeline_load("pre_setup")(checkpoint, spec, vdir / PROCESSOR_DIR)
        params["processor_subfolder"] = PROCESSOR_DIR
    params.update({k: v.replace("{core_model}", core_name) for k, v in post_parameters(checkpoint, spec).items()})
    inputs = post_step_inputs(spec, core_cfg, pre_cfg)
    outputs = [_decl(t, _post_dims(t, inputs)) for t in pipe.post_outputs]
    cfg = build_config(name, backend="python", inputs=inputs, outputs=outputs, settings=_settings(core_cfg, options, params))
    _mark_optional(cfg, {t.name for t in pre_cfg.input if t.optional})
    _write_step(tmp / name, repo / name, cfg, checkpoint, f"postprocess:{pipe.post_kind}", ver)
    return cfg, ver


def _write_step(stage: Path, model_dir: Path, cfg, checkpoint, task, ver) -> None:
    record = VersionRecord(
        version=ver, source=checkpoint.source, source_kind=checkpoint.kind, revision=checkpoint.revision or "",
        task=task, library="transformers", backend="python", exporter="tritonrepo fixed module",
        files=hash_files(stage / str(ver), relative_to=stage), created_at=now_iso(),
    )
    write_staged_model(stage, model_dir, cfg, record)


def ensemble_maps(spec: TaskSpec, post: str) -> dict[tuple[str, str], tuple[str, str]]:
    """Explicit ensemble wiring: each ``raw.<input>`` post input comes from the ensemble input of that name."""
    if not spec.pipeline.post_kind:
        return {}
    names = [ref.rstrip("?").partition(".")[2] for ref in spec.pipeline.post_inputs if ref.startswith("raw.")]
    return {(post, n): (ENSEMBLE_INPUT, n) for n in names}


def ensemble_outputs(spec: TaskSpec, core: str, post: str, core_cfg) -> list[str]:
    """The ensemble's outputs as ``STEP.OUTPUT`` from the entry's ``outputs`` (``core.*``: every core output)."""
    out = []
    for ref in spec.pipeline.outputs:
        step, _, tensor = ref.partition(".")
        model = core if step == "core" else post
        if tensor == "*":
            out.extend(f"{model}.{t.name}" for t in core_cfg.output)
        else:
            out.append(f"{model}.{tensor}")
    return out


def _golden(checkpoint: Checkpoint, spec: TaskSpec, pre_cfg, atol) -> GoldenSample:
    """Golden raw inputs (the entry's ``golden_inputs``) and the reference outputs (its ``reference``)."""
    raw = spec.pipeline_load("golden_inputs")(checkpoint, spec)
    max_len = int(pre_cfg.parameters["max_length"].string_value) if "max_length" in pre_cfg.parameters else None
    ref, valid = spec.pipeline_load("reference")(checkpoint, spec, raw, max_len)
    inputs = [array_to_tensor(k, golden_array(vals, spec, k, pre_cfg.max_batch_size)) for k, vals in raw.items()]
    sample = GoldenSample(name="raw", inputs=inputs, outputs=[array_to_tensor(k, v) for k, v in ref.items()], atol=atol)
    if valid is not None:
        sample.valid.CopyFrom(array_to_tensor("attention_mask", valid))
    return sample


def golden_array(values, spec: TaskSpec, name: str, max_batch_size: int) -> np.ndarray:
    """Raw golden values (str/bytes, numbers, or lists of them) as the array the ensemble input ``name`` takes.

    Shaped by the entry's declaration: ``[batch, *dims]`` when the pipeline batches, ``dims`` otherwise (a
    value list ``[n]`` for ``dims == (1,)`` becomes ``[n, 1]``; a list of lists ``[n, k]`` stays as it is).
    Strings are UTF-8 encoded (``TYPE_STRING``); numeric inputs (e.g. LayoutLM boxes) take the declared dtype
    with the values' own nesting.
    """
    if isinstance(values, np.ndarray):
        return values
    decl = next((t for t in spec.pipeline.raw_inputs if t.name == name), None)
    if decl is not None and decl.dtype != "TYPE_STRING":
        from tritonrepo import dtypes  # noqa: PLC0415

        return np.array(values, dtype=dtypes.numpy_dtype(mc.DataType.Value(decl.dtype)))

    def enc(v):
        return [enc(x) for x in v] if isinstance(v, (list, tuple)) else (v.encode() if isinstance(v, str) else v)

    arr = np.array(enc(list(values)), dtype=object)
    rank = (len(decl.dims) if decl else 1) + (1 if max_batch_size > 0 else 0)
    while arr.ndim < rank:
        arr = arr[..., None]
    return arr
