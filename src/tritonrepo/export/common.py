"""Shared by both exporters: the PyTorch reference model, its outputs and tensor specs from trial runs.

The model class and the pinned dims come from the task registry entry (:class:`tritonrepo.tasks.TaskSpec`):
the auto class ``transformers.pipeline`` uses for the task, and dims fixed by config values only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np

from tritonrepo import dtypes
from tritonrepo.checkpoint import Checkpoint
from tritonrepo.config import TensorSpec
from tritonrepo.errors import TritonRepoError


@dataclass
class ExportResult:
    """What an exporter produced in a version folder.

    Attributes:
        inputs, outputs: tensor specs for the config, batch dim excluded when ``batching``.
        batching: dim 0 of every tensor is a variable batch dim (so ``max_batch_size > 0`` is allowed).
        samples: golden inputs (trial 0) and the PyTorch reference outputs for them.
        parity_max_abs_diff: max abs difference served model vs PyTorch (0.0 when the backend *is* PyTorch).
        opset: ONNX opset of the exported graph (0 for the Python backend).
        exporter: ``"optimum-onnx 0.1.0"`` or a description.
        parameters: config ``parameters`` the backend needs.
        default_model_filename: when the model file is not the backend's default.
        tolerance: for an optimised/quantised graph, the max abs difference a golden answer of the fp32 reference
            must be replayed with on answers derived from it (``Quality.replay_tolerance``: the quality gate's
            measured figure with a margin); ``None`` for an fp32 graph (the parity ``atol`` applies).
    """

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    batching: bool
    samples: tuple[dict[str, np.ndarray], dict[str, np.ndarray]]
    parity_max_abs_diff: float = 0.0
    opset: int = 0
    exporter: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    default_model_filename: str = ""
    tolerance: float | None = None


def resolve(checkpoint: Checkpoint, spec):
    """``spec`` as a :class:`~tritonrepo.tasks.TaskSpec` (a task name is resolved against the checkpoint)."""
    if isinstance(spec, str):
        from tritonrepo.tasks import detect_spec  # noqa: PLC0415

        return detect_spec(checkpoint, spec)
    return spec


def load_torch_model(checkpoint: Checkpoint, spec):
    """The registry entry's auto class loaded from the checkpoint (eval mode, CPU, float32).

    Args:
        checkpoint: the resolved checkpoint.
        spec: the :class:`~tritonrepo.tasks.TaskSpec` (or a task name).

    The last model loaded is reused while the checkpoint folder's files are unchanged, so the export, the parity
    check, the golden samples and a pipeline's reference outputs of one ``add-hf`` run share one PyTorch load
    (callers must not modify it).

    Raises:
        TritonRepoError: transformers cannot load the checkpoint with that class.
    """
    from tritonrepo.samples import _folder_key  # noqa: PLC0415

    spec = resolve(checkpoint, spec)
    key = (_folder_key(checkpoint.path), spec.auto_class)
    if _MODEL[0] == key:
        return _MODEL[1]
    _MODEL[:] = [None, None]  # free the previous model before loading another
    model = _load_torch_model(checkpoint, spec)
    _MODEL[:] = [key, model]
    return model


#: ``[(folder key, auto class), model]`` of the last PyTorch model loaded (one slot: a run uses one checkpoint).
_MODEL: list = [None, None]


def _load_torch_model(checkpoint: Checkpoint, spec):
    import transformers  # noqa: PLC0415

    auto_class = getattr(transformers, spec.auto_class)
    try:
        model = auto_class.from_pretrained(str(checkpoint.path))
    except (OSError, ValueError, KeyError) as exc:
        raise TritonRepoError(
            f"{checkpoint.path}: cannot load {spec.auto_class} for task {spec.task!r}: {str(exc).splitlines()[0]}"
        ) from None
    model.eval()
    return model


def torch_outputs(model, inputs: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """Run ``model`` on ``inputs`` and return the outputs named ``names`` (``ModelOutput`` keys) as NumPy."""
    import torch  # noqa: PLC0415

    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, return_dict=True)
    missing = [n for n in names if n not in out]
    if missing:
        raise TritonRepoError(f"the PyTorch model has no output(s) {missing}; it has {list(out.keys())}")
    return {n: out[n].detach().cpu().numpy() for n in names}


def specs_from_trials(
    names: list[str], trials: list[dict[str, np.ndarray]], *, batching: bool, spec=None, config=None
) -> list[TensorSpec]:
    """Tensor specs (name, dtype from the trials) whose fixed dims come from the registry entry.

    Args:
        names: tensor names, in order.
        trials: one ``{name: array}`` per trial run (the trials differ in batch size and input size).
        batching: drop dim 0 (the batch) from ``dims``; otherwise keep it as ``-1``.
        spec: the :class:`~tritonrepo.tasks.TaskSpec`; its ``fixed_dims`` (evaluated on ``config``) are the only
            dims pinned, every other dim is ``-1``. Without ``spec``: dims every trial agrees on are fixed
            (legacy behaviour, for callers without an entry).
        config: the transformers config object of the model (for ``fixed_dims`` rules).

    Raises:
        TritonRepoError: a tensor changes rank between trials, has no dims besides the batch, or contradicts a
            pinned dim of the entry (the registry would be wrong, or the trials change a fixed dim).
    """
    specs = []
    for name in names:
        shapes = [t[name].shape for t in trials]
        if len({len(s) for s in shapes}) != 1:
            raise TritonRepoError(f"tensor '{name}' changes rank between runs: {shapes}")
        if spec is None:
            dims = tuple(s0 if all(s[i] == s0 for s in shapes) else -1 for i, s0 in enumerate(shapes[0]))
        else:
            pinned = spec.dims_for(name, config, len(shapes[0]) - 1)
            dims = (-1, *(pinned or (-1,) * (len(shapes[0]) - 1)))
            for i, want in enumerate(dims[1:], start=1):
                got = {s[i] for s in shapes}
                if want != -1 and got != {want}:
                    raise TritonRepoError(
                        f"tensor '{name}' dim {i}: task registry entry {spec.task}/{spec.family} pins it to {want} "
                        f"from the model config, but the model produced {sorted(got)}",
                        "fix fixed_dims in the registry entry (pinned dims must come from config values)",
                    )
        if batching:
            dims = dims[1:]
        if not dims:
            raise TritonRepoError(f"tensor '{name}' has no dims besides the batch", "not supported yet")
        specs.append(TensorSpec(name, dtypes.from_numpy(trials[0][name].dtype), dims))
    return specs


def batch_dim_varies(names: list[str], trials: list[dict[str, np.ndarray]]) -> bool:
    """True when dim 0 of every named tensor follows the batch size across trials."""
    return all(
        all(t[n].ndim >= 1 for t in trials) and len({t[n].shape[0] for t in trials}) == len(trials) for n in names
    )
