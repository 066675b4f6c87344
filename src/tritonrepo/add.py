"""``add-hf``: a Hugging Face checkpoint becomes one model (one version) in a model repository.

Everything is built in a staging folder beside the repository and renamed into place, model files before
the config: an interrupted or failed run leaves the repository exactly as it was, and a repository (or parent
folders) that ``add-hf`` would create exists only once something is committed into it. An existing version
folder, or a config that would change, is only replaced with ``force``.

What to build for the checkpoint comes from its task registry entry (:mod:`tritonrepo.tasks`), resolved from
``config.json`` before any heavy import: an unsupported architecture/task is refused in well under 2 s.
Entries of kind ``generate`` are built by their own stage function (``TaskSpec.builder``).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from tritonrepo import __version__
from tritonrepo.checkpoint import Checkpoint, resolve_checkpoint
from tritonrepo.config import CONFIG_FILENAME, ModelSettings, build_config, write_config
from tritonrepo.errors import TritonRepoError
from tritonrepo.export.common import ExportResult
from tritonrepo.manifest import (
    MANIFEST_FILENAME,
    GoldenSample,
    Manifest,
    VersionRecord,
    array_to_tensor,
    hash_files,
    now_iso,
    read_manifest,
    write_manifest,
)
from tritonrepo.repository import (
    check_version_free,
    commit_model,
    free_version,
    init_repository,
    staging_dir,
    validate_model_name,
)
from tritonrepo.tasks import TaskSpec, detect_spec, resolve_spec

BACKENDS = ("onnx", "python")
_PACKAGES = ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "huggingface-hub")


@dataclass
class AddOptions:
    """Options of :func:`add_hf` (the CLI flags of ``tritonrepo add-hf``).

    Attributes:
        repo: the model repository (created when missing).
        name: model name (default: derived from the checkpoint's name).
        task: optimum task (default: from ``config.json`` ``architectures``).
        backend: ``"onnx"`` (export, served by the ``onnxruntime`` backend) or ``"python"`` (PyTorch).
        revision: hub revision.
        version: version number (default: next free).
        settings: max_batch_size, dynamic batching, instances, device.
        opset: ONNX opset (ONNX only).
        atol: parity tolerance, max abs difference (ONNX only).
        force: replace an existing version folder and config.
        token: hub token.
        optimize: ``O1``..``O4`` graph optimisation (ONNX only; :mod:`tritonrepo.export.optimize`).
        quantize: ``int8``, ``int8-dynamic``, ``int8-static`` or ``fp16`` (ONNX only), behind the quality gate
            ``min_cosine`` (embeddings) / ``min_agreement`` (classifications) vs the fp32 PyTorch model.
    """

    repo: Path = Path("model_repository")
    name: str | None = None
    task: str | None = None
    backend: str = "onnx"
    revision: str | None = None
    version: int | None = None
    settings: ModelSettings = field(default_factory=ModelSettings)
    opset: int | None = None
    atol: float = 1e-4
    force: bool = False
    token: str | None = None
    optimize: str | None = None
    quantize: str | None = None
    min_cosine: float = 0.99
    min_agreement: float = 0.99


@dataclass
class AddResult:
    """What :func:`add_hf` wrote.

    Attributes:
        model_dir: ``<repo>/<name>``.
        version: the version number written.
        config: the model configuration written.
        export: specs, samples and parity figure from the exporter.
        checkpoint: where the weights came from.
        task: the task used.
        notes: things the user should know (e.g. batching turned off because the graph does not batch).
        spec: the task registry entry used.
        staged: other models the stage function put beside ``model_dir`` in the staging folder, as
            ``(name, version)`` in commit order (e.g. a generation builder's helper models); committed first.
    """

    model_dir: Path
    version: int
    config: mc.ModelConfig
    export: ExportResult
    checkpoint: Checkpoint
    task: str
    notes: list[str] = field(default_factory=list)
    spec: TaskSpec | None = None
    staged: list[tuple[str, int]] = field(default_factory=list)


def default_model_name(checkpoint: Checkpoint) -> str:
    """A model name from the checkpoint: ``sentence-transformers/all-MiniLM-L6-v2`` -> ``all-MiniLM-L6-v2``."""
    base = checkpoint.source.rstrip("/").split("/")[-1] if checkpoint.kind == "hub" else checkpoint.path.name
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", base).lstrip(".-") or "model"
    return name


def add_hf(model: str, options: AddOptions, prepared: tuple[Path, Checkpoint, TaskSpec] | None = None) -> AddResult:
    """Add ``model`` (hub id or local folder) to ``options.repo`` as a new model version.

    Args:
        model: hub id or local checkpoint folder.
        options: the CLI flags.
        prepared: what :func:`prepare` returned for the same arguments (the CLI checks first, before heavy imports).

    Raises:
        TritonRepoError: bad input, a clash with existing files without ``force``, an export failure.
        ParityError: the ONNX export differs from PyTorch by more than ``options.atol``.
    """
    repo, checkpoint, spec = prepared or prepare(model, options)
    name = validate_model_name(options.name or default_model_name(checkpoint))
    with repository_transaction(repo), staging_dir(repo, name) as tmp:
        result = stage_hf_model(checkpoint, spec, name, options, tmp)
        staged = [*result.staged, (name, result.version)]
        precheck_commits(tmp, repo, staged, force=options.force)
        for step, ver in staged:
            commit_model(tmp / step, repo / step, ver, force=options.force)
    return result


def prepare(model: str, options: AddOptions) -> tuple[Path, Checkpoint, TaskSpec]:
    """Check the options and the repository path, resolve the checkpoint and its task registry entry.

    Nothing is written: the repository is created only when a model is committed into it
    (:func:`precheck_commits`). Only ``config.json`` is read (no torch/transformers/optimum import).

    Raises:
        TritonRepoError: a bad option, a repository path that is a file, an unresolvable checkpoint, or an
            unsupported architecture/task (for a hub id: refused from its config.json, before the weights download).
    """
    if options.backend not in BACKENDS:
        raise TritonRepoError(f"unknown backend {options.backend!r}", "use onnx or python")
    if options.name is not None:
        validate_model_name(options.name)
    if options.version is not None and options.version < 0:
        raise TritonRepoError(f"version must be >= 0, got {options.version}")
    repo = Path(options.repo)
    if repo.exists() and not repo.is_dir():
        raise TritonRepoError(f"{repo}: not a directory")
    hub_config = _hub_config(model, options.revision, options.token)
    if hub_config is not None:  # refuse an unsupported hub model before downloading its weights
        resolve_spec(hub_config, options.task, f"{model}/config.json")
    checkpoint = resolve_checkpoint(model, options.revision, options.token)
    return repo, checkpoint, detect_spec(checkpoint, options.task)


def _hub_config(model: str, revision: str | None, token: str | None) -> dict | None:
    """``config.json`` of a hub id fetched alone (``None`` for a local folder or when it cannot be fetched:
    :func:`resolve_checkpoint` then reports the problem)."""
    if Path(model).expanduser().exists() or model.count("/") > 1:
        return None
    try:
        from huggingface_hub import hf_hub_download  # noqa: PLC0415

        return json.loads(Path(hf_hub_download(model, "config.json", revision=revision, token=token)).read_text())
    except Exception:  # noqa: BLE001 - any failure is reported by the full download with its own message
        return None


@contextmanager
def repository_transaction(repo: Path) -> Iterator[Path]:
    """Make ``repo``'s parent folders exist for staging; on failure remove every folder this run created.

    A missing repository is created (``init``) by the first :func:`commit_model` into it: call
    :func:`ensure_repository` right before committing. If the body raises (including ``KeyboardInterrupt``), the
    outermost folder that did not exist on entry is removed, so the file system is as it was.
    """
    repo = Path(repo)
    missing = []
    p = repo.absolute()
    while not p.exists():
        missing.append(p)
        p = p.parent
    try:
        repo.absolute().parent.mkdir(parents=True, exist_ok=True)
        yield repo
    except BaseException:
        if missing:
            shutil.rmtree(missing[-1], ignore_errors=True)
        raise


def ensure_repository(repo: Path) -> None:
    """Create the repository (``tritonrepo init``) if it does not exist yet; an existing folder is left untouched."""
    if not Path(repo).exists():
        init_repository(repo)


def precheck_commits(tmp: Path, repo: Path, staged: list[tuple[str, int]], *, force: bool) -> None:
    """Check that every staged model can be committed (as :func:`commit_model` will) before committing any.

    Then creates the repository if needed. So a clash on the third model of a pipeline leaves the first two
    uncommitted: all or nothing.

    Raises:
        TritonRepoError: a version exists, or a config would change, and ``force`` is false (same messages as
            :func:`tritonrepo.repository.commit_model`).
    """
    from tritonrepo.config import read_config  # noqa: PLC0415

    for step, ver in staged:
        model_dir = repo / step
        if not model_dir.exists():
            continue
        check_version_free(model_dir, ver, force=force)
        existing = model_dir / CONFIG_FILENAME
        if existing.is_file() and not force and read_config(existing) != read_config(tmp / step):
            raise TritonRepoError(
                f"{existing}: the new version needs a different model configuration",
                "pass --force to replace it, or use another --name",
            )
    ensure_repository(repo)


def stage_hf_model(checkpoint: Checkpoint, spec, name: str, options: AddOptions, tmp: Path) -> AddResult:
    """Build model ``name`` into ``tmp/name`` (files, config, manifest); :func:`commit_model` moves it into place.

    ``spec`` is the task registry entry (a task name is resolved against the checkpoint). Entries of kind
    ``generate`` are built by their ``builder`` (same signature and contract as this function).

    Raises:
        TritonRepoError: the version exists (without ``force``), the export fails, or the config would change.
    """
    if isinstance(spec, str):
        spec = detect_spec(checkpoint, spec)
    if spec.kind == "generate":
        return spec.load("builder")(checkpoint, spec, name, options, tmp)
    task = spec.task
    model_dir = Path(options.repo) / name
    ver = free_version(model_dir, options.version, force=options.force)
    stage = tmp / name
    vdir = stage / str(ver)
    batching = options.settings.max_batch_size > 0 and spec.batching
    if options.backend == "onnx":
        from tritonrepo.export.onnx import export_onnx  # noqa: PLC0415

        result = export_onnx(checkpoint, spec, vdir, opset=options.opset, atol=options.atol, batching=batching,
                             optimize=options.optimize, quantize=options.quantize, device=options.settings.device,
                             min_cosine=options.min_cosine, min_agreement=options.min_agreement)
        backend, platform = "onnxruntime", "onnxruntime_onnx"
    else:
        if options.optimize or options.quantize:
            raise TritonRepoError("--optimize/--quantize apply to ONNX exports", "drop them or use --backend onnx")
        from tritonrepo.export.python import package_python  # noqa: PLC0415

        result = package_python(checkpoint, spec, vdir, batching=batching)
        backend, platform = "python", ""
    notes = []
    settings = replace(options.settings, parameters={**result.parameters, **options.settings.parameters})
    pad_id = checkpoint.config.get("pad_token_id")
    if settings.pad_token_id is None and isinstance(pad_id, int):
        settings.pad_token_id = pad_id  # for padding-aware batching (config.py, triton_models/runtime.py)
    if options.settings.max_batch_size > 0 and not spec.batching:
        settings.max_batch_size = 0
        notes.append(f"task {task!r} takes lists of independent lengths (no shared batch dim): max_batch_size set to 0")
    elif batching and not result.batching:
        settings.max_batch_size = 0
        notes.append("the model's tensors have no variable batch dimension: max_batch_size set to 0")
    cfg = build_config(
        name, backend=backend, platform=platform, inputs=result.inputs, outputs=result.outputs, settings=settings
    )
    record = _record(checkpoint, task, options, backend, ver, result, hash_files(vdir, relative_to=stage))
    write_staged_model(stage, model_dir, cfg, record)
    return AddResult(model_dir, ver, cfg, result, checkpoint, task, notes, spec)


def write_staged_model(stage: Path, model_dir: Path, cfg: mc.ModelConfig, record: VersionRecord) -> None:
    """Write ``config.pbtxt`` and the manifest (the existing one plus ``record``) into a staged model folder."""
    manifest = (read_manifest(model_dir) if model_dir.is_dir() else None) or Manifest(model_name=cfg.name)
    kept = [r for r in manifest.versions if r.version != record.version]
    del manifest.versions[:]
    manifest.versions.extend(sorted([*kept, record], key=lambda r: r.version))
    stage.mkdir(parents=True, exist_ok=True)
    write_config(cfg, stage / CONFIG_FILENAME)
    write_manifest(manifest, stage / MANIFEST_FILENAME)


def _record(checkpoint, task, options, backend, ver, result: ExportResult, files) -> VersionRecord:
    versions = {"tritonrepo": __version__}
    for dist in _PACKAGES:
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            pass
    inputs, outputs = result.samples
    sample = GoldenSample(
        name="trial-0",
        inputs=[array_to_tensor(k, v) for k, v in inputs.items()],
        outputs=[array_to_tensor(k, v) for k, v in outputs.items()],
        atol=options.atol,
    )
    if "attention_mask" in inputs:
        sample.valid.CopyFrom(array_to_tensor("attention_mask", inputs["attention_mask"]))
    return VersionRecord(
        version=ver,
        source=checkpoint.source,
        source_kind=checkpoint.kind,
        revision=checkpoint.revision or "",
        task=task,
        library="transformers",
        backend=backend,
        exporter=result.exporter,
        package_versions=versions,
        opset=result.opset,
        parity_max_abs_diff=result.parity_max_abs_diff,
        atol=options.atol,
        files=files,
        samples=[sample],
        created_at=now_iso(),
        replay_atol=result.tolerance or 0.0,
    )
