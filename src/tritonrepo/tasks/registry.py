"""The task registry: one :class:`TaskSpec` per (task, family) that every part of tritonrepo reads.

``add-hf`` (which model class to load, which optimum task to export, how to build sample inputs, which dims
are fixed), ``--pipeline`` / ``ensemble --pipeline-for`` (the preprocessing and postprocessing steps, the
ensemble's raw inputs and outputs), the golden samples (raw inputs and the reference computed with
``transformers.pipeline``), ``add-hf --list-tasks`` and docs/support-matrix.md all come from here. Nothing
else in tritonrepo names a task.

This module (and the whole :mod:`tritonrepo.tasks` package) imports no torch, transformers or optimum:
functions an entry needs at export time are named by dotted path (``"module:function"``) and imported only
when called (:func:`load_object`). That is what lets ``add-hf`` refuse an unsupported architecture/task in
well under 2 s.

How to register an entry (a family module, e.g. ``tasks/vision.py``)
--------------------------------------------------------------------
::

    from tritonrepo.tasks.registry import PipelineSpec, TaskSpec, TensorDecl, register

    register(TaskSpec(
        task="image-classification",          # the name users pass to --task (optimum's name when it has one)
        family="image",                       # text | image | audio | multimodal | generation | ...
        model_types=("vit", "convnext"),      # config.json model_type values this entry supports (tested)
        architectures=("ForImageClassification",),  # class names or suffixes of config.json architectures[0]
        auto_class="AutoModelForImageClassification",  # what transformers.pipeline loads for this task
        sample_inputs="tritonrepo.samples:image_inputs",
        fixed_dims={"pixel_values": ("num_channels", "image_size", "image_size"),
                    "logits": ("num_labels",)},
        pipeline=PipelineSpec(
            pre_kind="image",
            pre_setup="tritonrepo.tasks.processors:save_image_processor",
            raw_inputs=(TensorDecl("image", "TYPE_STRING", (1,)),),
            post_kind="classification",
            post_inputs=("core.logits",),
            post_outputs=(TensorDecl("label", "TYPE_STRING", (1,)), TensorDecl("score", "TYPE_FP32", (1,))),
            post_files=("labels",),
            outputs=("post.label", "post.score"),
            golden_inputs="tritonrepo.tasks.reference:golden_image_inputs",
            reference="tritonrepo.tasks.reference:classification",
        ),
    ))

in a module of the :mod:`tritonrepo.tasks` package: ``tasks/__init__.py`` imports every module of the package
(except the machinery: registry, matrix, listing, reference, processors), so the entries register on import.
Keep family modules light (no torch/transformers/optimum at import: helpers import them inside functions).
Registering the same ``(task, family)`` twice is an error; two entries for one task must not share a model
type (that is how the entry for a checkpoint is chosen). Add a test that exports a tiny checkpoint for the
entry and compares with PyTorch / transformers' pipeline, and record it with the ``matrix_record`` fixture.

Fields of :class:`TaskSpec`
---------------------------
* ``task`` — user-facing task name (``--task``), also what the manifest records.
* ``family`` — with ``task`` the key of the entry (feature-extraction is a different entry for text, images
  and CLIP); also used to group docs.
* ``model_types`` — ``config.json`` ``model_type`` values the entry supports; a checkpoint's entry is the one
  for its task whose ``model_types`` contains its ``model_type``.
* ``architectures`` — what ``config.json`` ``architectures[0]`` maps to this task: full class names
  (``"CLIPModel"``) or suffixes (``"ForSequenceClassification"``, ``"Model"``); an exact name wins over a
  suffix, a longer suffix over a shorter one, and among equals the entry whose ``model_types`` holds the
  checkpoint's model type. Empty: the entry is reached with ``--task`` only (summarization and translation
  share T5's class with text2text-generation).
* ``export_task`` — optimum's task name for ``onnx_export_from_model`` (default: ``task``).
* ``auto_class`` — the transformers class ``transformers.pipeline`` loads for the task (NOT the first of
  optimum's loaders: for semantic segmentation that was the wrong head, a false success). The Python-backend
  model loads it too (config parameter ``auto_class``).
* ``sample_inputs`` — dotted path of ``fn(checkpoint, spec, trial) -> {name: np.ndarray}`` (batch first,
  trial 0 and trial 1 differ in batch size and input size); must cover the core model's inputs.
* ``fixed_dims`` — ``{tensor: (rule, ...)}`` for the dims after the batch dim. A rule is ``None`` (variable,
  ``-1``), an int, or an expression over the transformers config object: names are config attributes
  (``hidden_size``, ``num_labels``, ``text_config.projection_dim``), ``+ - * // **``, ``x[i]`` subscripts, and
  ``a | b`` = the first alternative that resolves. Pinned dims come ONLY from here, never from a trial run's
  input size; a tensor not listed has every dim variable. A declared value the model contradicts is an error.
* ``model_fixed_dims`` — ``{model_type: {tensor: (rule, ...)}}``: per model type, overrides ``fixed_dims``
  tensor by tensor (a fully convolutional model does not pin the image size a ViT pins).
* ``hf_pipeline`` — the ``transformers.pipeline`` task whose model classes must include ``auto_class``
  (``""``: same as ``task``; ``None``: transformers has no pipeline for it). Checked by tests/test_tasks.py.
* ``kind`` — ``"forward"`` (one forward pass; the default) or ``"generate"`` (see ``builder``).
* ``builder`` — for ``kind="generate"``: dotted path of the stage function (same contract as
  :func:`tritonrepo.add.stage_hf_model`: ``fn(checkpoint, spec, name, options, tmp) -> AddResult``, staging
  model ``name`` into ``tmp/name``); imported lazily.
* ``pipeline`` — a :class:`PipelineSpec` or ``None`` (no ``--pipeline`` for the task).
* ``notes`` — one line shown by ``add-hf --list-tasks`` and in the docs.
* ``batching`` — ``False`` for models whose dim 0 is not one batch shared by every tensor (CLIP: a list of
  images and a list of texts of independent lengths); ``add-hf`` then writes ``max_batch_size: 0`` and the
  pipeline steps follow.

Fields of :class:`PipelineSpec` (``NAME_preprocess -> NAME_model -> NAME_postprocess``)
--------------------------------------------------------------------------------------
* ``pre_kind`` — the ``kind`` parameter of :mod:`tritonrepo.triton_models.preprocess` (``text``,
  ``text-pair``, ``image``) or of another fixed module (``pre_module``); the pre step's outputs are the core
  model's config inputs.
* ``pre_module`` — file in ``triton_models/`` used as the pre step's ``model.py`` (default ``preprocess.py``).
* ``pre_setup`` — dotted path of ``fn(checkpoint, spec, dst) -> {param: value}`` that saves the
  tokenizer/processor into ``dst`` (the step's ``processor`` folder) and returns the step's parameters
  (default ``tritonrepo.tasks.processors:save_tokenizer``; images: ``...:save_image_processor``). Also used
  for the post step's ``"processor"`` file.
* ``raw_inputs`` — the ensemble's inputs (= the pre step's inputs), :class:`TensorDecl` each; ``optional=True``
  declares a per-request knob (the post step reads it through a ``"raw.<name>?"`` post input).
* ``pre_extra_outputs`` — outputs the pre step produces besides the core model's inputs, for the post step
  (e.g. token ``offsets``, the original ``image_size``), :class:`TensorDecl` each; the pre module must fill them.
* ``post_kind`` / ``post_module`` — the ``kind`` parameter of the postprocessing module (default
  ``postprocess.py``); ``None``: no post step, the core outputs are the answer.
* ``post_inputs`` — ``"core.<output>"`` / ``"pre.<output>"`` / ``"raw.<ensemble input>"`` references, in order;
  a trailing ``?`` makes one optional (used when the producer has it). ``raw.`` inputs are wired from the
  ensemble's input of that name (e.g. the texts, for entity words).
* ``post_outputs`` — :class:`TensorDecl` each; a dim may be ``"<post input>[<i>]"`` (copy dim ``i`` of that
  input's config dims, e.g. ``"last_hidden_state[-1]"``).
* ``post_files`` — what the post step's version folder gets: ``"labels"`` (the checkpoint's config.json,
  parameter ``labels_file``), ``"processor"`` (tokenizer/processor, parameter ``processor_subfolder``).
* ``post_parameters`` — fixed extra config parameters (``{"max_answer_tokens": "30"}``); ``{core_model}`` in a
  value becomes the core model's name (a post step that calls the core model through BLS, e.g. ``per_image_model``).
* ``post_setup`` — dotted path of ``fn(checkpoint, spec) -> {param: value}`` for parameters read from the
  checkpoint (e.g. sentence-transformers pooling).
* ``outputs`` — the ensemble outputs, ``"post.<name>"`` / ``"core.<name>"``; ``("core.*",)`` = all core outputs.
* ``post_fold`` — dotted path of ``fn(model_path, post_parameters, inputs, outputs) -> {output: array} | None``
  that rewrites an ONNX core graph so that it answers the post step's outputs itself, when that is exact
  (checked by the function), and returns the folded graph's golden outputs for the core's golden
  ``inputs``/``outputs`` (``None``: nothing folded). ``add-hf --pipeline`` then builds pre -> core only: the
  ``post.<name>`` ensemble outputs come from the core (e.g. ``tritonrepo.export.fold:fold_embedding_step``).
* ``max_batch_size`` — ``None``: the steps batch as the core model does (``--max-batch-size``); ``0``: the
  whole pipeline (core model included) does not batch and dims are full shapes — for pipelines whose steps
  change the number of rows (zero-shot classification runs ``texts × labels`` pairs through the core model).
* ``golden_inputs`` — dotted path of ``fn(checkpoint, spec) -> {raw input: [values]}`` (str or bytes).
* ``reference`` — dotted path of ``fn(checkpoint, spec, raw, max_length) -> (outputs, valid)``: the expected
  ensemble outputs for the golden inputs, computed with ``transformers.pipeline`` (or PyTorch where the
  pipeline has no equivalent), and a mask of meaningful positions or ``None``.
"""

from __future__ import annotations

import ast
import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tritonrepo.errors import TritonRepoError

#: optimum/transformers synonyms accepted by ``--task`` (optimum ``TasksManager._SYNONYM_TASK_MAP``).
TASK_SYNONYMS = {
    "sequence-classification": "text-classification",
    "masked-lm": "fill-mask",
    "default": "feature-extraction",
    "causal-lm": "text-generation",
    "seq2seq-lm": "text2text-generation",
    "vision2seq-lm": "image-to-text",
    "ner": "token-classification",
    "sentiment-analysis": "text-classification",
    "image-feature-extraction": "feature-extraction",
}


@dataclass(frozen=True)
class TensorDecl:
    """One tensor of a pipeline: ``name``, Triton ``dtype`` name (``"TYPE_STRING"``), ``dims`` (no batch dim).

    ``dims`` entries are ints (``-1`` variable) or, for post-step outputs, ``"<post input>[<i>]"`` references.
    ``optional`` (raw inputs only): a per-request knob (``threshold``, ``top_k``, ``hypothesis_template``) that
    clients may leave out; the ensemble input and every step input fed from it get ``optional: true``
    (Triton's ``ModelInput.optional``; 2.51 passes an optional ensemble input through to a step, and omits it
    from the step's request when the client did), and the step falls back to its config parameter.
    """

    name: str
    dtype: str
    dims: tuple[int | str, ...] = (1,)
    optional: bool = False


@dataclass(frozen=True)
class PipelineSpec:
    """How ``--pipeline`` wraps the core model (see the module docstring for each field)."""

    pre_kind: str
    raw_inputs: tuple[TensorDecl, ...]
    outputs: tuple[str, ...]
    golden_inputs: str
    reference: str
    post_kind: str | None = None
    post_inputs: tuple[str, ...] = ()
    post_outputs: tuple[TensorDecl, ...] = ()
    post_files: tuple[str, ...] = ()
    post_parameters: Mapping[str, str] = field(default_factory=dict)
    post_setup: str | None = None
    pre_module: str = "preprocess.py"
    post_module: str = "postprocess.py"
    pre_setup: str = "tritonrepo.tasks.processors:save_tokenizer"
    max_batch_size: int | None = None
    pre_extra_outputs: tuple[TensorDecl, ...] = ()
    post_fold: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "post_parameters", MappingProxyType(dict(self.post_parameters)))


@dataclass(frozen=True)
class TaskSpec:
    """One task of one family (see the module docstring for each field)."""

    task: str
    family: str
    model_types: tuple[str, ...]
    architectures: tuple[str, ...]
    auto_class: str
    sample_inputs: str
    export_task: str = ""
    fixed_dims: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    model_fixed_dims: Mapping[str, Mapping[str, tuple[Any, ...]]] = field(default_factory=dict)
    hf_pipeline: str | None = ""
    kind: str = "forward"
    builder: str | None = None
    pipeline: PipelineSpec | None = None
    notes: str = ""
    batching: bool = True

    def __post_init__(self) -> None:
        if not self.export_task:
            object.__setattr__(self, "export_task", self.task)
        object.__setattr__(self, "fixed_dims", MappingProxyType({k: tuple(v) for k, v in self.fixed_dims.items()}))
        object.__setattr__(self, "model_fixed_dims", MappingProxyType({
            mt: MappingProxyType({k: tuple(v) for k, v in d.items()}) for mt, d in self.model_fixed_dims.items()}))
        object.__setattr__(self, "model_types", tuple(self.model_types))
        object.__setattr__(self, "architectures", tuple(self.architectures))
        if self.kind not in ("forward", "generate"):
            raise ValueError(f"{self.key}: kind must be 'forward' or 'generate', got {self.kind!r}")
        if self.kind == "generate" and not self.builder:
            raise ValueError(f"{self.key}: a 'generate' entry needs a builder ('module:function')")

    @property
    def key(self) -> tuple[str, str]:
        """``(task, family)``: the registry key."""
        return (self.task, self.family)

    def load(self, attr: str):
        """The function named by field ``attr`` (``"sample_inputs"``, ``"builder"``), imported now."""
        return load_object(getattr(self, attr))

    def pipeline_load(self, attr: str):
        """The function named by ``pipeline.<attr>`` (``"golden_inputs"``, ``"reference"``, ...), imported now."""
        return load_object(getattr(self.pipeline, attr))

    def dims_for(self, tensor: str, config: Any, rank: int) -> tuple[int, ...] | None:
        """Pinned dims (after the batch dim) of ``tensor`` evaluated on a transformers config; ``-1`` = variable.

        ``model_fixed_dims[config.model_type][tensor]`` wins over ``fixed_dims[tensor]``. Returns ``None`` when
        the entry declares nothing for ``tensor`` (every dim variable).

        Raises:
            TritonRepoError: the declaration has another rank than the tensor, or a config value is missing.
        """
        model_type = config.get("model_type") if isinstance(config, Mapping) else getattr(config, "model_type", None)
        rules = self.model_fixed_dims.get(model_type or "", {}).get(tensor, self.fixed_dims.get(tensor))
        if rules is None:
            return None
        if len(rules) != rank:
            raise TritonRepoError(
                f"task registry entry {self.task}/{self.family}: tensor '{tensor}' declares {len(rules)} dims, "
                f"the model has {rank} (after the batch dim)",
                "fix fixed_dims in the registry entry",
            )
        return tuple(-1 if r is None else eval_dim(r, config) for r in rules)


_REGISTRY: dict[tuple[str, str], TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    """Add ``spec`` to the registry (at import of its family module) and return it.

    Raises:
        ValueError: the key is taken, or another entry of the same task already claims one of its model types.
    """
    if spec.key in _REGISTRY:
        raise ValueError(f"task registry: {spec.key} registered twice")
    for path in (spec.sample_inputs, spec.builder or "x:y"):
        if ":" not in path:
            raise ValueError(f"task registry: {spec.key}: {path!r} is not a 'module:function' path")
    p = spec.pipeline
    if p is not None:
        bad = [r for r in p.post_inputs if r.rstrip("?").partition(".")[0] not in ("core", "pre", "raw")]
        bad += [r for r in p.outputs if r.partition(".")[0] not in ("core", "post")]
        bad += [r for r in p.outputs if r.startswith("post.") and not p.post_kind]
        if bad:
            raise ValueError(f"task registry: {spec.key}: bad pipeline references {bad} "
                             "(post_inputs: core./pre./raw.<name>; outputs: core./post.<name>, post only with post_kind)")
        for decl in (*p.raw_inputs, *p.post_outputs, *p.pre_extra_outputs):
            if not decl.dtype.startswith("TYPE_"):
                raise ValueError(f"task registry: {spec.key}: tensor {decl.name!r} dtype must be a Triton type name "
                                 f"such as TYPE_FP32, got {decl.dtype!r}")
    for other in _REGISTRY.values():
        if other.task == spec.task and set(other.model_types) & set(spec.model_types):
            shared = sorted(set(other.model_types) & set(spec.model_types))
            raise ValueError(f"task registry: {spec.key} and {other.key} both claim model types {shared}")
    _REGISTRY[spec.key] = spec
    return spec


def unregister(key: tuple[str, str]) -> TaskSpec:
    """Remove and return the entry ``(task, family)`` (for tests that register a temporary entry). Raises ``KeyError``."""
    return _REGISTRY.pop(key)


def all_specs() -> list[TaskSpec]:
    """Every registered entry, in registration order."""
    return list(_REGISTRY.values())


def get_spec(task: str, family: str) -> TaskSpec:
    """The entry for ``(task, family)``. Raises ``KeyError``."""
    return _REGISTRY[(task, family)]


def task_names() -> tuple[str, ...]:
    """Every registered task name (sorted, no duplicates)."""
    return tuple(sorted({s.task for s in _REGISTRY.values()}))


def normalize_task(task: str) -> str:
    """``--task`` value with synonyms mapped (``sequence-classification`` -> ``text-classification``)."""
    return TASK_SYNONYMS.get(task, task)


def tasks_for_model_type(model_type: str) -> list[str]:
    """Registered tasks whose entries support ``model_type`` (sorted)."""
    return sorted({s.task for s in _REGISTRY.values() if model_type in s.model_types})


def supported_model_types() -> list[str]:
    """Every model type some entry supports (sorted)."""
    return sorted({m for s in _REGISTRY.values() for m in s.model_types})


def spec_for(task: str, model_type: str) -> TaskSpec | None:
    """The entry for ``task`` that supports ``model_type``, or ``None``."""
    for s in _REGISTRY.values():
        if s.task == task and model_type in s.model_types:
            return s
    return None


def spec_for_architecture(arch: str, model_type: str | None = None) -> TaskSpec | None:
    """The entry ``config.json`` ``architectures[0]`` maps to (see ``TaskSpec.architectures``), or ``None``."""
    best: tuple[tuple[int, int, int], TaskSpec] | None = None
    for order, s in enumerate(_REGISTRY.values()):
        for pattern in s.architectures:
            if arch == pattern:
                score = 1_000_000
            elif arch.endswith(pattern) and arch != pattern:
                score = len(pattern)
            else:
                continue
            rank = (score, int(model_type is not None and model_type in s.model_types), -order)
            if best is None or rank > best[0]:
                best = (rank, s)
    return best[1] if best else None


def read_config(checkpoint_path: Path) -> dict:
    """``config.json`` of a checkpoint folder as a dict (no transformers import)."""
    try:
        return json.loads((Path(checkpoint_path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TritonRepoError(f"{Path(checkpoint_path) / 'config.json'}: cannot read: {exc}") from None


def resolve_spec(config: dict, task: str | None = None, where: str = "config.json") -> TaskSpec:
    """The registry entry for a checkpoint's ``config.json`` and an optional ``--task`` (no heavy imports).

    Args:
        config: the parsed ``config.json`` (``model_type``, ``architectures``).
        task: ``--task`` (synonyms accepted) or ``None`` to infer it from ``architectures[0]``.
        where: the config's path, for messages.

    Raises:
        TritonRepoError: an unknown task, a task not supported for the model type, no ``architectures`` and no
            task, or an architecture without a registered task; each message lists the tasks supported for
            the model type.
    """
    model_type = str(config.get("model_type", ""))
    supported = tasks_for_model_type(model_type)
    listing = ", ".join(supported) if supported else "none"
    fix = (f"tasks supported for model type {model_type!r}: {listing}" if supported
           else f"no task is supported for model type {model_type!r}; supported model types: "
                f"{', '.join(supported_model_types())}")
    if task:
        task = normalize_task(task)
        if task not in task_names():
            raise TritonRepoError(f"unknown task {task!r}", f"use one of: {', '.join(task_names())}")
        spec = spec_for(task, model_type)
        if spec is None:
            raise TritonRepoError(f"task {task!r} is not supported for model type {model_type!r}", fix)
        return spec
    archs = config.get("architectures") or []
    if not archs:
        raise TritonRepoError(
            f"{where}: no 'architectures' to infer the task from",
            f"pass --task ({fix})" if supported else f"pass --task (one of: {', '.join(task_names())})",
        )
    arch = str(archs[0])
    guess = spec_for_architecture(arch, model_type)
    if guess is None:
        raise TritonRepoError(f"architecture {arch!r} ({where}) has no supported task", fix)
    spec = spec_for(guess.task, model_type)
    if spec is None:
        raise TritonRepoError(
            f"architecture {arch!r}: task {guess.task!r} is not supported for model type {model_type!r}", fix
        )
    return spec


# --- dotted paths and dim expressions -------------------------------------------------------------------------


def load_object(path: str):
    """Import ``"package.module:attribute"`` and return the attribute."""
    module, _, attr = path.partition(":")
    if not attr:
        raise ValueError(f"not a 'module:attribute' path: {path!r}")
    return getattr(importlib.import_module(module), attr)


_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.FloorDiv: lambda a, b: a // b, ast.Pow: lambda a, b: a**b}


def eval_dim(rule: int | str, config: Any) -> int:
    """Evaluate one ``fixed_dims`` rule on a config (a transformers ``PretrainedConfig`` or a plain dict).

    Raises:
        TritonRepoError: a name the config does not have (in every ``|`` alternative) or a non-integer result.
    """
    if isinstance(rule, int):
        return rule
    errors = []
    for alt in str(rule).split("|"):
        try:
            value = _eval(ast.parse(alt.strip(), mode="eval").body, config)
        except (KeyError, AttributeError, IndexError, TypeError) as exc:
            errors.append(f"{alt.strip()}: {exc}")
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise TritonRepoError(f"dim rule {rule!r} gives {value!r}, not an integer", "fix the registry entry")
        return value
    raise TritonRepoError(f"dim rule {rule!r}: the model config has no such value ({'; '.join(errors)})",
                          "fix fixed_dims in the registry entry")


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        if name == "num_labels" and name not in obj:
            return len(obj.get("id2label") or {}) or 2
        return obj[name]
    value = getattr(obj, name)
    if value is None:
        raise AttributeError(f"{name} is None")
    return value


def _eval(node: ast.AST, config: Any) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Name):
        return _get(config, node.id)
    if isinstance(node, ast.Attribute):
        return _get(_eval(node.value, config), node.attr)
    if isinstance(node, ast.Subscript):
        return _eval(node.value, config)[_eval(node.slice, config)]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand, config)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_eval(node.left, config), _eval(node.right, config))
    raise TypeError(f"unsupported expression {ast.dump(node)}")
