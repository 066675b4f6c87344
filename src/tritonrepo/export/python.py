"""Package a checkpoint for Triton's Python backend (the seeds' "approach 1"): PyTorch inside Triton.

The version folder receives the checkpoint files (``hf_model/``), tritonrepo's fixed
:mod:`tritonrepo.triton_models.hf_transformers` module as ``model.py`` and its runtime helper. The tensor
contract is the one the ONNX export would have (names from optimum's ONNX config for the entry's export task),
so clients and golden samples are the same for both backends; the model class is the registry entry's
``auto_class`` (what ``transformers.pipeline`` loads), and fixed dims come from the entry, checked on two
trial runs in PyTorch.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from tritonrepo.checkpoint import Checkpoint
from tritonrepo.errors import TritonRepoError
from tritonrepo.export.common import (
    ExportResult,
    batch_dim_varies,
    load_torch_model,
    resolve,
    specs_from_trials,
    torch_outputs,
)
from tritonrepo.samples import sample_inputs

SUBFOLDER = "hf_model"
_SKIP = {".git", ".cache", ".gitattributes", "onnx", "openvino"}
_WEIGHTS_SKIP = (".h5", ".msgpack", ".ot", ".onnx", ".tflite")


def package_python(checkpoint: Checkpoint, spec, version_dir: Path, *, batching: bool = True) -> ExportResult:
    """Fill ``version_dir`` with ``model.py``, ``tritonrepo_runtime.py`` and ``hf_model/``.

    ``spec`` is the task registry entry (:class:`~tritonrepo.tasks.TaskSpec`; a task name is resolved).

    Raises:
        TritonRepoError: the checkpoint cannot be loaded or optimum has no I/O description for the task.
    """
    import optimum.exporters.onnx.model_configs  # noqa: F401, PLC0415 - registers the ONNX configs
    from optimum.exporters.tasks import TasksManager  # noqa: PLC0415

    spec = resolve(checkpoint, spec)
    model = load_torch_model(checkpoint, spec)
    try:
        ctor = TasksManager.get_exporter_config_constructor(
            "onnx", model=model, task=spec.export_task, library_name="transformers"
        )
        io_config = ctor(model.config)
    except (KeyError, ValueError) as exc:
        raise TritonRepoError(f"no input/output description for task {spec.task!r}: {exc}", "pass another --task") from None
    in_names, out_names = list(io_config.inputs), list(io_config.outputs)

    trials_in = [sample_inputs(checkpoint, spec, in_names, trial) for trial in (0, 1)]
    trials_out = [torch_outputs(model, t, out_names) for t in trials_in]
    merged = [{**i, **o} for i, o in zip(trials_in, trials_out)]
    batching = batching and batch_dim_varies(in_names + out_names, merged)

    version_dir.mkdir(parents=True, exist_ok=True)
    _copy_checkpoint(checkpoint.path, version_dir / SUBFOLDER)
    pkg = resources.files("tritonrepo") / "triton_models"
    (version_dir / "model.py").write_bytes((pkg / "hf_transformers.py").read_bytes())
    (version_dir / "tritonrepo_runtime.py").write_bytes((pkg / "runtime.py").read_bytes())
    return ExportResult(
        inputs=specs_from_trials(in_names, merged, batching=batching, spec=spec, config=model.config),
        outputs=specs_from_trials(out_names, merged, batching=batching, spec=spec, config=model.config),
        batching=batching,
        samples=(trials_in[0], trials_out[0]),
        exporter="none (PyTorch in the Python backend)",
        parameters={"task": spec.task, "auto_class": spec.auto_class, "model_subfolder": SUBFOLDER},
    )


def _copy_checkpoint(src: Path, dst: Path) -> None:
    """Copy the checkpoint (following hub-cache symlinks), without VCS folders and other frameworks' weights."""

    def ignore(_dir: str, names: list[str]) -> set[str]:
        return {n for n in names if n in _SKIP or n.endswith(_WEIGHTS_SKIP)}

    shutil.copytree(src, dst, symlinks=False, ignore=ignore)
