"""Which task a checkpoint is exported for (optimum task names, e.g. ``text-classification``).

optimum infers a task for hub ids only; for a local folder tritonrepo maps ``config.json``'s
``architectures[0]`` through optimum's ``TasksManager`` (the same tables optimum uses for model classes).
"""

from __future__ import annotations

from tritonrepo.checkpoint import Checkpoint
from tritonrepo.errors import TritonRepoError

#: Tasks tritonrepo generates and tests end to end (others may export, but are not promised).
SUPPORTED_TASKS = (
    "feature-extraction",
    "text-classification",
    "token-classification",
    "question-answering",
    "fill-mask",
    "multiple-choice",
    "image-classification",
)


def detect_task(checkpoint: Checkpoint, task: str | None = None) -> str:
    """The optimum task for ``checkpoint``.

    Args:
        checkpoint: the resolved checkpoint.
        task: an explicit task (``--task``); synonyms such as ``sequence-classification`` are normalised.

    Returns:
        An optimum task name supported by the ONNX exporter for this model type.

    Raises:
        TritonRepoError: an unknown task, a task the model type does not support, or no ``architectures``.
    """
    import optimum.exporters.onnx.model_configs  # noqa: F401, PLC0415 - registers the ONNX export configs
    from optimum.exporters.tasks import TasksManager  # noqa: PLC0415

    config = checkpoint.config
    model_type = config.get("model_type", "")
    if task:
        try:
            task = TasksManager.map_from_synonym(task)
        except Exception:  # noqa: BLE001
            pass
        if task not in TasksManager.get_all_tasks():
            raise TritonRepoError(f"unknown task {task!r}", f"use one of: {', '.join(SUPPORTED_TASKS)}")
    else:
        archs = config.get("architectures") or []
        if not archs:
            raise TritonRepoError(
                f"{checkpoint.path / 'config.json'}: no 'architectures' to infer the task from",
                f"pass --task (one of: {', '.join(SUPPORTED_TASKS)})",
            )
        task = task_for_architecture(archs[0])
    try:
        supported = TasksManager.get_supported_tasks_for_model_type(model_type, "onnx", library_name="transformers")
    except (KeyError, ValueError):
        raise TritonRepoError(
            f"model type {model_type!r} is not supported by the optimum ONNX exporter",
            "use --backend python to serve it with PyTorch",
        ) from None
    if task not in supported:
        raise TritonRepoError(
            f"task {task!r} is not supported for model type {model_type!r}",
            f"use one of: {', '.join(sorted(supported))}",
        )
    return task


def task_for_architecture(arch: str) -> str:
    """``"BertForSequenceClassification"`` -> ``"text-classification"`` via optimum's TasksManager tables.

    Raises:
        TritonRepoError: the class is not a transformers class optimum knows.
    """
    import transformers  # noqa: PLC0415
    from optimum.exporters.tasks import TasksManager  # noqa: PLC0415

    model_class = getattr(transformers, arch, None)
    if model_class is None:
        raise TritonRepoError(f"unknown architecture {arch!r} in config.json", "pass --task")
    try:
        return TasksManager._infer_task_from_model_or_model_class(model_class=model_class)  # noqa: SLF001
    except ValueError:
        raise TritonRepoError(f"cannot infer a task for architecture {arch!r}", "pass --task") from None


def model_class_for_task(task: str) -> str:
    """The transformers auto class optimum loads for ``task`` (first of several), e.g. ``AutoModelForSequenceClassification``."""
    from optimum.exporters.tasks import TasksManager  # noqa: PLC0415

    loaders = TasksManager._TRANSFORMERS_TASKS_TO_MODEL_LOADERS[task]  # noqa: SLF001
    return loaders if isinstance(loaders, str) else loaders[0]
