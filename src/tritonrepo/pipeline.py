"""``add-hf --pipeline``: preprocessing -> core model -> postprocessing as one ensemble clients call with raw input.

Naming scheme (for a pipeline called ``NAME``):

* ``NAME`` — the ensemble clients call (``text`` / ``image`` / ``question`` + ``context`` in);
* ``NAME_preprocess`` — tokenizer or image processor (Python backend, :mod:`tritonrepo.triton_models.preprocess`);
* ``NAME_model`` — the core model (ONNX or Python backend, as ``add-hf`` makes it);
* ``NAME_postprocess`` — labels/scores, pooled embeddings or answer spans (Python backend,
  :mod:`tritonrepo.triton_models.postprocess`); absent for image feature extraction, whose hidden states are the answer.

The preprocessing outputs are generated from the core model's *config inputs* (names, dtypes, dims), so a graph
without ``token_type_ids`` (DistilBERT, RoBERTa) gets a tokenizer step without it; the ensemble is wired by
name and checked edge by edge (:mod:`tritonrepo.ensemble`). The ensemble's manifest holds golden raw inputs and
the outputs of the PyTorch pipeline (transformers, and sentence-transformers for sentence-embedding folders).
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

from tritonrepo.add import AddOptions, AddResult, default_model_name, prepare, stage_hf_model, write_staged_model
from tritonrepo.checkpoint import Checkpoint
from tritonrepo.config import ModelSettings, TensorSpec, build_config
from tritonrepo.ensemble import plan_ensemble
from tritonrepo.errors import TritonRepoError
from tritonrepo.manifest import GoldenSample, VersionRecord, array_to_tensor, hash_files, now_iso
from tritonrepo.repository import commit_model, free_version, staging_dir, validate_model_name
from tritonrepo.samples import TEXTS, is_vision

PROCESSOR_DIR = "processor"
S = mc.TYPE_STRING
#: Raw golden inputs: texts of different lengths; QA pairs.
GOLDEN_TEXTS = [*TEXTS[0], *TEXTS[1]]
GOLDEN_QA = [("Who serves models?", "Triton serves models from a repository."), ("What pads?", "Short texts pad.")]

_POST_KIND = {
    "text-classification": "classification",
    "image-classification": "classification",
    "token-classification": "token-classification",
    "feature-extraction": "embedding",
    "question-answering": "question-answering",
}


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


def add_pipeline(model: str, options: AddOptions) -> PipelineResult:
    """Add ``model`` as an ensemble (pre -> core -> post) that takes raw text or image bytes.

    Raises:
        TritonRepoError: as :func:`tritonrepo.add.add_hf`, plus a task without a pipeline.
    """
    repo, checkpoint, task = prepare(model, options)
    name = validate_model_name(options.name or default_model_name(checkpoint))
    _check_task(task)
    core_name = pipeline_names(name)[1]
    with staging_dir(repo, name) as tmp:
        core = stage_hf_model(checkpoint, task, core_name, replace(options, name=core_name), tmp)
        staged, steps, ens_cfg = _stage_around(repo, tmp, name, checkpoint, task, core_name, core.config, options)
        for step, ver in [(core_name, core.version), *staged]:  # the core, its pre/post steps, the ensemble last
            commit_model(tmp / step, repo / step, ver, force=options.force)
    return PipelineResult(name, steps, core, ens_cfg, core.notes)


def pipeline_for_model(repo: Path, name: str, core_name: str, options: AddOptions, checkpoint_ref: str | None = None) -> PipelineResult:
    """Wrap a model already in ``repo`` (added by ``add-hf``) in pre/post-processing and an ensemble ``name``.

    The checkpoint (for the tokenizer/processor, labels and reference outputs) is ``checkpoint_ref`` or the source
    recorded in the core model's manifest; the task is the one recorded there.

    Raises:
        TritonRepoError: the core model is missing, has no manifest and no checkpoint was given, or its task has
            no pipeline.
    """
    from tritonrepo.checkpoint import resolve_checkpoint  # noqa: PLC0415
    from tritonrepo.config import read_config  # noqa: PLC0415
    from tritonrepo.manifest import read_manifest  # noqa: PLC0415
    from tritonrepo.tasks import detect_task  # noqa: PLC0415

    validate_model_name(name)
    core_dir = repo / core_name
    if not (core_dir / "config.pbtxt").is_file():
        raise TritonRepoError(f"model '{core_name}' is not in {repo}", "add it first: tritonrepo add-hf ...")
    manifest = read_manifest(core_dir)
    record = manifest.versions[-1] if manifest and manifest.versions else None
    ref = checkpoint_ref or (record.source if record else None)
    if not ref:
        raise TritonRepoError(f"{core_dir}: no tritonrepo manifest says where the model came from", "pass --checkpoint")
    checkpoint = resolve_checkpoint(ref, (record.revision or None) if record and not checkpoint_ref else None, options.token)
    task = record.task if record and not options.task else detect_task(checkpoint, options.task)
    _check_task(task)
    core_cfg = read_config(core_dir)
    with staging_dir(repo, name) as tmp:
        staged, steps, ens_cfg = _stage_around(repo, tmp, name, checkpoint, task, core_name, core_cfg, options)
        for step, ver in staged:
            commit_model(tmp / step, repo / step, ver, force=options.force)
    return PipelineResult(name, steps, None, ens_cfg)


def _check_task(task: str) -> None:
    if task not in _POST_KIND:
        raise TritonRepoError(f"no pipeline for task {task!r}", f"use one of: {', '.join(_POST_KIND)}")


def _stage_around(repo, tmp, name, checkpoint, task, core_name, core_cfg, options):
    """Stage pre/post steps and the ensemble around ``core_cfg``; returns ``([(model, version)], steps, config)``."""
    pre_name, _, post_name = pipeline_names(name)
    vision = is_vision(checkpoint)
    post_kind = None if (vision and task == "feature-extraction") else _POST_KIND[task]
    configs = {core_name: core_cfg}
    pre_cfg, pre_version = _stage_pre(checkpoint, task, vision, core_cfg, pre_name, options, tmp, repo)
    configs[pre_name] = pre_cfg
    staged = [(pre_name, pre_version)]
    steps = [pre_name, core_name]
    if post_kind:
        post_cfg, post_version = _stage_post(checkpoint, post_kind, core_cfg, pre_cfg, post_name, options, tmp, repo)
        configs[post_name] = post_cfg
        staged.append((post_name, post_version))
        steps.append(post_name)
    plan = plan_ensemble(name, steps, configs, outputs=_ensemble_outputs(post_kind, core_name, post_name, core_cfg))
    ens_cfg = plan.to_config()
    ens_version = free_version(repo / name, options.version, force=options.force)
    (tmp / name / str(ens_version)).mkdir(parents=True)
    sample = _golden(checkpoint, task, vision, post_kind, ens_cfg, pre_cfg, options.atol)
    record = VersionRecord(
        version=ens_version, source=checkpoint.source, source_kind=checkpoint.kind,
        revision=checkpoint.revision or "", task=task, library="transformers", backend="ensemble",
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


def _save_processor(checkpoint: Checkpoint, vision: bool, dst: Path) -> None:
    if vision:
        from transformers import AutoImageProcessor  # noqa: PLC0415

        AutoImageProcessor.from_pretrained(str(checkpoint.path)).save_pretrained(dst)
    else:
        from transformers import AutoTokenizer  # noqa: PLC0415

        AutoTokenizer.from_pretrained(str(checkpoint.path)).save_pretrained(dst)


def max_length(checkpoint: Checkpoint) -> int:
    """Token limit: sentence-transformers' ``max_seq_length`` when present, else the tokenizer's and position limit."""
    st = checkpoint.path / "sentence_bert_config.json"
    if st.is_file():
        value = json.loads(st.read_text()).get("max_seq_length")
        if value:
            return int(value)
    from transformers import AutoTokenizer  # noqa: PLC0415

    tok_max = int(getattr(AutoTokenizer.from_pretrained(str(checkpoint.path)), "model_max_length", 512) or 512)
    pos_max = int(checkpoint.config.get("max_position_embeddings") or tok_max)
    return min(tok_max, pos_max, 4096)


def _stage_pre(checkpoint, task, vision, core_cfg, name, options, tmp, repo) -> tuple[mc.ModelConfig, int]:
    ver = free_version(repo / name, options.version, force=options.force)
    vdir = tmp / name / str(ver)
    _copy_module(vdir, "preprocess.py")
    _save_processor(checkpoint, vision, vdir / PROCESSOR_DIR)
    if vision:
        kind, inputs = "image", [TensorSpec("image", S, (1,))]
    elif task == "question-answering":
        kind, inputs = "text-pair", [TensorSpec("question", S, (1,)), TensorSpec("context", S, (1,))]
    else:
        kind, inputs = "text", [TensorSpec("text", S, (1,))]
    params = {"kind": kind, "processor_subfolder": PROCESSOR_DIR}
    if not vision:
        params["max_length"] = str(max_length(checkpoint))
    outputs = [TensorSpec(t.name, t.data_type, tuple(t.dims)) for t in core_cfg.input]
    cfg = build_config(name, backend="python", inputs=inputs, outputs=outputs, settings=_settings(core_cfg, options, params))
    _write_step(tmp / name, repo / name, cfg, checkpoint, task, ver)
    return cfg, ver


def _stage_post(checkpoint, kind, core_cfg, pre_cfg, name, options, tmp, repo) -> tuple[mc.ModelConfig, int]:
    ver = free_version(repo / name, options.version, force=options.force)
    vdir = tmp / name / str(ver)
    _copy_module(vdir, "postprocess.py")
    core_out = {t.name: t for t in core_cfg.output}
    pre_out = {t.name: t for t in pre_cfg.output}

    def spec(t) -> TensorSpec:
        return TensorSpec(t.name, t.data_type, tuple(t.dims))

    params = {"kind": kind}
    if kind == "classification":
        shutil.copy2(checkpoint.path / "config.json", vdir / "config.json")
        params["labels_file"] = "config.json"
        inputs = [spec(core_out["logits"])]
        outputs = [TensorSpec("label", S, (1,)), TensorSpec("score", mc.TYPE_FP32, (1,))]
    elif kind == "token-classification":
        shutil.copy2(checkpoint.path / "config.json", vdir / "config.json")
        params["labels_file"] = "config.json"
        inputs = [spec(core_out["logits"]), spec(pre_out["attention_mask"])]
        outputs = [TensorSpec("labels", S, (-1,)), TensorSpec("scores", mc.TYPE_FP32, (-1,))]
    elif kind == "embedding":
        pooling, normalize = sentence_pooling(checkpoint)
        params.update(pooling=pooling, normalize="true" if normalize else "false")
        hidden = core_out["last_hidden_state"]
        inputs = [spec(hidden), spec(pre_out["attention_mask"])]
        outputs = [TensorSpec("embedding", mc.TYPE_FP32, (hidden.dims[-1],))]
    else:  # question-answering
        _save_processor(checkpoint, False, vdir / PROCESSOR_DIR)
        params["processor_subfolder"] = PROCESSOR_DIR
        inputs = [spec(core_out["start_logits"]), spec(core_out["end_logits"]), spec(pre_out["input_ids"])]
        if "token_type_ids" in pre_out:
            inputs.append(spec(pre_out["token_type_ids"]))
        outputs = [TensorSpec("answer", S, (1,))]
    cfg = build_config(name, backend="python", inputs=inputs, outputs=outputs, settings=_settings(core_cfg, options, params))
    _write_step(tmp / name, repo / name, cfg, checkpoint, f"postprocess:{kind}", ver)
    return cfg, ver


def _write_step(stage: Path, model_dir: Path, cfg, checkpoint, task, ver) -> None:
    record = VersionRecord(
        version=ver, source=checkpoint.source, source_kind=checkpoint.kind, revision=checkpoint.revision or "",
        task=task, library="transformers", backend="python", exporter="tritonrepo fixed module",
        files=hash_files(stage / str(ver), relative_to=stage), created_at=now_iso(),
    )
    write_staged_model(stage, model_dir, cfg, record)


def sentence_pooling(checkpoint: Checkpoint) -> tuple[str, bool]:
    """``(pooling, normalize)`` from a sentence-transformers folder (``1_Pooling/config.json``, ``modules.json``).

    Defaults for other checkpoints: mean pooling, not normalised.
    """
    pooling, normalize = "mean", False
    modules = checkpoint.path / "modules.json"
    if modules.is_file():
        entries = json.loads(modules.read_text())
        normalize = any(m.get("type", "").endswith(".Normalize") for m in entries)
        for m in entries:
            if m.get("type", "").endswith(".Pooling"):
                cfg_path = checkpoint.path / m.get("path", "1_Pooling") / "config.json"
                if cfg_path.is_file():
                    cfg = json.loads(cfg_path.read_text())
                    if cfg.get("pooling_mode_cls_token"):
                        pooling = "cls"
                    elif cfg.get("pooling_mode_max_tokens"):
                        pooling = "max"
                    elif cfg.get("pooling_mode_mean_tokens"):
                        pooling = "mean"
                    else:
                        raise TritonRepoError(f"{cfg_path}: unsupported pooling mode", "use mean, cls or max pooling")
    return pooling, normalize


def _ensemble_outputs(post_kind, core, post, core_cfg) -> list[str]:
    if post_kind is None:
        return [f"{core}.{t.name}" for t in core_cfg.output]
    if post_kind == "embedding":
        return [f"{core}.last_hidden_state", f"{post}.embedding"]
    return {
        "classification": [f"{post}.label", f"{post}.score"],
        "token-classification": [f"{post}.labels", f"{post}.scores"],
        "question-answering": [f"{post}.answer"],
    }[post_kind]


def golden_images(n: int = 3, seed: int = 0) -> list[bytes]:
    """``n`` deterministic random images of different sizes, PNG-encoded."""
    from PIL import Image  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    out = []
    for h, w in [(48, 64), (30, 30), (80, 40)][:n]:
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def reference_outputs(
    checkpoint: Checkpoint, task: str, raw: dict[str, list], post_kind: str | None, max_len: int | None
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The PyTorch pipeline's answer for raw inputs (transformers; sentence-transformers for embedding folders).

    Returns:
        ``(outputs, valid)``: outputs by ensemble output name, and the tokenizer's ``attention_mask``
        ``[batch, seq]`` (``None`` for images) marking the positions where hidden states are meaningful.
    """
    import torch  # noqa: PLC0415

    from tritonrepo.export.common import load_torch_model  # noqa: PLC0415

    model = load_torch_model(checkpoint, task)
    if "image" in raw:
        from PIL import Image  # noqa: PLC0415
        from transformers import AutoImageProcessor  # noqa: PLC0415

        images = [Image.open(io.BytesIO(b)).convert("RGB") for b in raw["image"]]
        enc = dict(AutoImageProcessor.from_pretrained(str(checkpoint.path))(images=images, return_tensors="pt"))
    else:
        from transformers import AutoTokenizer  # noqa: PLC0415

        tok = AutoTokenizer.from_pretrained(str(checkpoint.path))
        args = (raw["question"], raw["context"]) if "question" in raw else (raw["text"],)
        trunc = "only_second" if "question" in raw else True
        enc = dict(tok(*args, padding=True, truncation=trunc, max_length=max_len, return_tensors="pt"))
    with torch.no_grad():
        out = model(**enc, return_dict=True)
    valid = enc["attention_mask"].numpy() if "attention_mask" in enc else None
    return _reference_from(out, enc, model, raw, post_kind, checkpoint), valid


def _reference_from(out, enc, model, raw, post_kind, checkpoint) -> dict[str, np.ndarray]:
    import torch  # noqa: PLC0415

    if post_kind in ("classification", "token-classification"):
        probs = torch.softmax(out["logits"].double(), -1)
        best = probs.argmax(-1)
        id2label = model.config.id2label
        if post_kind == "classification":
            labels = np.array([[id2label[int(i)].encode()] for i in best], dtype=object)
            return {"label": labels, "score": probs.max(-1).values[:, None].numpy().astype(np.float32)}
        mask = enc["attention_mask"].numpy() > 0
        labels = np.array([[id2label[int(i)].encode() if m else b"" for i, m in zip(r, mr)] for r, mr in zip(best, mask)],
                          dtype=object)
        return {"labels": labels, "scores": np.where(mask, probs.max(-1).values.numpy(), 0).astype(np.float32)}
    if post_kind == "embedding":
        hidden = out["last_hidden_state"].numpy()
        if checkpoint.is_sentence_transformers:
            from sentence_transformers import SentenceTransformer  # noqa: PLC0415

            emb = SentenceTransformer(str(checkpoint.path), device="cpu").encode(raw["text"], convert_to_numpy=True)
        else:
            mask = enc["attention_mask"].numpy()[..., None].astype(np.float32)
            emb = (hidden * mask).sum(1) / mask.sum(1)
        return {"last_hidden_state": hidden, "embedding": emb.astype(np.float32)}
    if post_kind == "question-answering":
        return {}  # the span search is ours; no independent reference (served answers are checked in tests)
    return {k: out[k].numpy() for k in out.keys() if k == "last_hidden_state"}


def _golden(checkpoint, task, vision, post_kind, ens_cfg, pre_cfg, atol) -> GoldenSample:
    if vision:
        raw = {"image": golden_images()}
    elif task == "question-answering":
        q, c = zip(*GOLDEN_QA)
        raw = {"question": list(q), "context": list(c)}
    else:
        raw = {"text": GOLDEN_TEXTS}
    max_len = int(pre_cfg.parameters["max_length"].string_value) if "max_length" in pre_cfg.parameters else None
    ref, valid = reference_outputs(checkpoint, task, raw, post_kind, max_len)
    inputs = [array_to_tensor(k, np.array([[v.encode() if isinstance(v, str) else v] for v in vals], dtype=object))
              for k, vals in raw.items()]
    sample = GoldenSample(name="raw", inputs=inputs, outputs=[array_to_tensor(k, v) for k, v in ref.items()], atol=atol)
    if valid is not None:
        sample.valid.CopyFrom(array_to_tensor("attention_mask", valid))
    return sample
