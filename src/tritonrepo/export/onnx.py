"""ONNX export with optimum-onnx, then config specs read from the real graph, then a hard parity check.

Steps (all into a staging folder; the caller moves the result into the repository):

1. export the registry entry's auto class (the model ``transformers.pipeline`` loads for the task) with
   optimum's ``onnx_export_from_model`` for the entry's ``export_task`` (dynamic batch and sequence axes);
2. read the graph's inputs/outputs (names, element types) with ``onnx`` without loading weights;
3. run the graph in onnxruntime on two trials (batch 2 and 3, different lengths/sizes); the dims the task
   registry entry fixes from config values (hidden size, ``num_labels``, the image token count, image
   channels/size) are fixed, every other dim is variable (``-1``; never pinned from a trial's input size),
   and the graph's declared shapes are pinned to match, because the native ONNX Runtime backend compares output dims exactly (onnxruntime_backend
   ``CompareDimsSupported``, rule ORT-12);
4. compare with PyTorch on the same inputs and fail when the max abs difference exceeds ``atol``
   (optimum's own validation only warns). Outputs with a sequence axis are compared at real tokens
   (``attention_mask == 1``): hidden states at padding positions carry no meaning and differ between runtimes
   (all-MiniLM-L6-v2: 3e-6 at real tokens, 1.4e-4 at padding).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tritonrepo import dtypes
from tritonrepo.checkpoint import Checkpoint
from tritonrepo.client import max_abs_diff
from tritonrepo.config import TensorSpec
from tritonrepo.errors import ParityError, TritonRepoError
from tritonrepo.export.common import (
    ExportResult,
    batch_dim_varies,
    load_torch_model,
    resolve,
    specs_from_trials,
    torch_outputs,
)
from tritonrepo.samples import sample_inputs

MODEL_FILENAME = "model.onnx"


def export_onnx(
    checkpoint: Checkpoint,
    spec,
    version_dir: Path,
    *,
    opset: int | None = None,
    atol: float = 1e-4,
    batching: bool = True,
    optimize: str | None = None,
    quantize: str | None = None,
    device: str = "cpu",
    min_cosine: float = 0.99,
    min_agreement: float = 0.99,
) -> ExportResult:
    """Export ``checkpoint`` for ``task`` to ``version_dir/model.onnx`` and check it against PyTorch.

    Args:
        checkpoint: the resolved checkpoint.
        spec: the task registry entry (:class:`~tritonrepo.tasks.TaskSpec`; a task name is resolved).
        version_dir: an empty staging folder that becomes the version folder.
        opset: ONNX opset (default: optimum's default for the architecture).
        atol: the largest max-abs difference accepted between onnxruntime and PyTorch outputs.
        batching: make dim 0 the Triton batch dim (``max_batch_size > 0``).
        optimize, quantize, device, min_cosine, min_agreement: after the parity check, optimise / quantise the
            graph behind a quality gate (:func:`tritonrepo.export.optimize.optimize_exported`); the golden sample
            then holds the optimised graph's answers.

    Returns:
        Specs from the graph, golden samples, the measured parity figure and the opset.

    Raises:
        ParityError: onnxruntime and PyTorch differ by more than ``atol`` (exit code 1).
        TritonRepoError: the export fails.
    """
    import onnx  # noqa: PLC0415
    import onnxruntime as ort  # noqa: PLC0415
    from optimum.exporters.onnx import onnx_export_from_model  # noqa: PLC0415

    spec = resolve(checkpoint, spec)
    model = load_torch_model(checkpoint, spec)
    out_dir = version_dir.parent / (version_dir.name + ".optimum")
    try:
        with _no_preprocessor_copies():
            onnx_export_from_model(
                model, out_dir, opset=opset, task=spec.export_task, do_validation=False, library_name="transformers"
            )
    except Exception as exc:  # noqa: BLE001 - optimum raises many types; report one line
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TritonRepoError(f"optimum could not export {checkpoint.source} for task {spec.task!r}: {msg}") from None
    version_dir.mkdir(parents=True, exist_ok=True)
    for p in out_dir.iterdir():  # the graph and its external data; tokenizer/config copies stay behind
        if p.name == MODEL_FILENAME or p.name.startswith(MODEL_FILENAME + "_") or p.suffix == ".onnx_data":
            os.replace(p, version_dir / p.name)
    shutil.rmtree(out_dir, ignore_errors=True)
    model_path = version_dir / MODEL_FILENAME

    # Only the graph's interface is kept: the weights (inline below 2 GB) are freed before ONNX Runtime and
    # PyTorch run, and the graph is loaded again only when its declared shapes must change (_pin_dims).
    proto = onnx.load(str(model_path), load_external_data=False)
    graph = onnx.GraphProto()
    graph.input.extend(proto.graph.input)
    graph.output.extend(proto.graph.output)
    initializers = {i.name for i in proto.graph.initializer}
    in_names = [i.name for i in graph.input if i.name not in initializers]
    out_names = [o.name for o in graph.output]
    opset_used = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    del proto

    trials_in = [sample_inputs(checkpoint, spec, in_names, trial) for trial in (0, 1)]  # one tokenizer load
    session = ort.InferenceSession(str(model_path), _session_options(ort), providers=["CPUExecutionProvider"])
    trials_ort = [dict(zip(out_names, session.run(out_names, t))) for t in trials_in]
    del session
    trials_pt = [torch_outputs(model, t, out_names) for t in trials_in]

    diff = max(max_abs_diff(o, p, t.get("attention_mask")) for o, p, t in zip(trials_ort, trials_pt, trials_in))
    if not diff <= atol:  # also catches NaN
        raise ParityError(
            f"ONNX export of {checkpoint.source} differs from PyTorch: max abs difference {diff:.3g} > atol {atol:g}",
            "raise --atol if this is acceptable, try another --opset, or use --backend python",
        )

    merged = [{**i, **o} for i, o in zip(trials_in, trials_ort)]
    batching = batching and batch_dim_varies(in_names + out_names, merged)
    inputs = specs_from_trials(in_names, merged, batching=batching, spec=spec, config=model.config)
    outputs = specs_from_trials(out_names, merged, batching=batching, spec=spec, config=model.config)
    _check_types(graph, inputs + outputs)
    if _pin_dims(graph, inputs + outputs, batching):  # the declared shapes change: rewrite the graph once
        proto = onnx.load(str(model_path), load_external_data=False)
        _pin_dims(proto.graph, inputs + outputs, batching)
        onnx.save(proto, str(model_path))
        del proto
    exporter, golden, tolerance = f"optimum-onnx {_version('optimum-onnx')}", trials_pt[0], None
    if optimize or quantize:  # perf hook: faster graph behind a quality gate vs PyTorch (raises, nothing written)
        from tritonrepo.export.optimize import optimize_exported  # noqa: PLC0415

        report = optimize_exported(model_path, checkpoint, spec.task, optimize=optimize, quantize=quantize, device=device,
                                   min_cosine=min_cosine, min_agreement=min_agreement)
        exporter += f"; {' + '.join(x for x in (optimize, report.method if quantize else None) if x)}: {report.quality.describe()}"
        tolerance = report.quality.replay_tolerance()
        if quantize != "fp16":
            session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
            golden = dict(zip(out_names, session.run(out_names, trials_in[0])))
    return ExportResult(
        inputs=inputs,
        outputs=outputs,
        batching=batching,
        samples=(trials_in[0], golden),
        parity_max_abs_diff=diff,
        opset=opset_used,
        exporter=exporter,
        tolerance=tolerance,
    )


@contextmanager
def _no_preprocessor_copies() -> Iterator[None]:
    """While exporting, optimum does not load and copy the checkpoint's tokenizer/processors into its output.

    ``onnx_export_from_model`` always calls ``maybe_save_preprocessors`` (optimum/exporters/onnx/convert.py),
    which loads the tokenizer, the processor, the feature extractor and the image processor (the tokenizer two
    or three times) only to save copies beside the graph; the version folder keeps only the graph, so those loads
    are pure cost. When optimum no longer has that function, nothing is changed.
    """
    from optimum.exporters.onnx import convert  # noqa: PLC0415

    real = getattr(convert, "maybe_save_preprocessors", None)
    if real is None:
        yield
        return
    convert.maybe_save_preprocessors = lambda *args, **kwargs: None
    try:
        yield
    finally:
        convert.maybe_save_preprocessors = real


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def graph_io(model_path: Path) -> tuple[dict, dict]:
    """``({name: (TYPE_NAME, shape)}, {...})`` for a graph's inputs and outputs, ``-1`` for symbolic dims."""
    import onnx  # noqa: PLC0415

    graph = onnx.load(str(model_path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}

    def describe(v):
        tt = v.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
        return dtypes.triton_type_name(dtypes.ONNX_TO_TRITON.get(tt.elem_type, 0)), shape

    return (
        {i.name: describe(i) for i in graph.input if i.name not in initializers},
        {o.name: describe(o) for o in graph.output},
    )


def _check_types(graph, specs: list[TensorSpec]) -> None:
    """The config's data types are the graph's element types (integer inputs stay int64)."""
    by_name = {v.name: v for v in list(graph.input) + list(graph.output)}
    for spec in specs:
        elem = by_name[spec.name].type.tensor_type.elem_type
        if dtypes.ONNX_TO_TRITON.get(elem) != spec.data_type:
            raise TritonRepoError(
                f"tensor '{spec.name}': onnxruntime returned {dtypes.triton_type_name(spec.data_type)} but the graph "
                f"declares ONNX type {elem}"
            )


def _pin_dims(graph, specs: list[TensorSpec], batching: bool) -> bool:
    """Rewrite the graph's declared input/output shapes so that they equal the config (fixed dims as values).

    A dim the config keeps variable but the graph declares as a value is renamed symbolic: shape inference
    at export time records the dummy input's size for outputs the graph computes dynamically (DINOv2's token
    count after position-embedding interpolation: declared 17, 31 at run time), and the ONNX Runtime backend
    would refuse the config's ``-1`` against it.

    ``graph`` is an ``onnx.GraphProto`` (only its ``input``/``output`` are read and changed). Returns whether
    any dim changed (the model file needs rewriting only then).
    """
    changed = False
    by_name = {v.name: v for v in list(graph.input) + list(graph.output)}
    for spec in specs:
        full = (-1, *spec.dims) if batching else spec.dims
        dims = by_name[spec.name].type.tensor_type.shape.dim
        for i, (d, value) in enumerate(zip(dims, full)):
            if value != -1 and not d.HasField("dim_value"):
                d.dim_value = value  # clears dim_param (oneof)
                changed = True
            elif value == -1 and d.HasField("dim_value"):
                d.dim_param = f"{spec.name}_dim{i}"  # clears dim_value (oneof)
                changed = True
    return changed


def _session_options(ort):
    """ONNX Runtime session options for the parity runs: no CPU memory arena (the few trial runs do not need
    its pooled, never-returned buffers; the peak RSS of ``add-hf`` stays close to ``optimum-cli``'s) and no
    spin-waiting of the intra-op threads between runs (CPU burnt for nothing on a shared machine). Neither
    changes the numbers computed."""
    so = ort.SessionOptions()
    so.enable_cpu_mem_arena = False
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so

