"""Which task a checkpoint is exported for, from the task registry (:mod:`tritonrepo.tasks.registry`).

Importing this package registers the family modules' entries (text, vision, ...) and imports no torch,
transformers or optimum, so ``add-hf`` can refuse an unsupported architecture/task before any heavy import.
The task for a local folder comes from ``config.json``'s ``architectures[0]`` and ``model_type`` through the
registry's own tables.
"""

from __future__ import annotations

from tritonrepo.errors import TritonRepoError
from tritonrepo.tasks import text, vision  # noqa: F401 - register the families' entries
from tritonrepo.tasks.registry import (
    PipelineSpec,
    TaskSpec,
    TensorDecl,
    all_specs,
    get_spec,
    normalize_task,
    register,
    resolve_spec,
    spec_for,
    spec_for_architecture,
    task_names,
    tasks_for_model_type,
)


def _register_families() -> None:
    """Import every family module of this package (any module but the machinery), so a new family file
    registers its entries without editing this file. Family modules must stay light (no torch/transformers)."""
    import importlib  # noqa: PLC0415
    import pkgutil  # noqa: PLC0415

    machinery = {"registry", "matrix", "listing", "reference", "processors"}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name not in machinery and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_register_families()

__all__ = [
    "SUPPORTED_TASKS", "PipelineSpec", "TaskSpec", "TensorDecl", "all_specs", "detect_spec", "detect_task",
    "get_spec", "model_class_for_task", "normalize_task", "register", "resolve_spec", "spec_for",
    "spec_for_architecture", "task_for_architecture", "task_names", "tasks_for_model_type",
]

#: Tasks tritonrepo generates and tests end to end (derived from the registry at import).
SUPPORTED_TASKS = task_names()


def detect_spec(checkpoint, task: str | None = None) -> TaskSpec:
    """The registry entry for ``checkpoint`` (a :class:`~tritonrepo.checkpoint.Checkpoint`) and ``--task``.

    Raises:
        TritonRepoError: see :func:`tritonrepo.tasks.registry.resolve_spec` (one line, listing the tasks the
            model type supports).
    """
    return resolve_spec(checkpoint.config, task, str(checkpoint.path / "config.json"))


def detect_task(checkpoint, task: str | None = None) -> str:
    """The task name for ``checkpoint`` (``--task`` normalised, or inferred from ``architectures[0]``).

    Raises:
        TritonRepoError: an unknown task, a task the model type does not support, or no ``architectures``.
    """
    return detect_spec(checkpoint, task).task


def task_for_architecture(arch: str, model_type: str | None = None) -> str:
    """``"BertForSequenceClassification"`` -> ``"text-classification"`` from the registry's architecture table.

    Raises:
        TritonRepoError: no registered task for this architecture.
    """
    spec = spec_for_architecture(arch, model_type)
    if spec is None:
        raise TritonRepoError(f"cannot infer a task for architecture {arch!r}", "pass --task")
    return spec.task


def model_class_for_task(task: str, model_type: str | None = None) -> str:
    """The transformers auto class ``transformers.pipeline`` uses for ``task`` (for ``model_type`` when given).

    Raises:
        TritonRepoError: the task (for that model type) is not in the registry.
    """
    task = normalize_task(task)
    specs = [s for s in all_specs() if s.task == task and (model_type is None or model_type in s.model_types)]
    if not specs:
        raise TritonRepoError(f"unknown task {task!r}", f"use one of: {', '.join(task_names())}")
    return specs[0].auto_class
