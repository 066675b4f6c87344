"""TR5xx: ONNX models against the graph, mirroring the native ONNX Runtime backend (ort_checks)."""

from __future__ import annotations

from google.protobuf import json_format

from tritonrepo.backends.onnxruntime.ort_checks import check_config
from tritonrepo.validate.model import ModelContext, Severity, rule
from tritonrepo.validate.onnx_graph import graph_io  # reads the signature only: no weights, no onnx import
from tritonrepo.validate.rules.layout import model_files


@rule("TR501", "onnx-config-mismatch", Severity.error,
      summary="The config's inputs/outputs do not match the ONNX graph: count, names, data types, dims, batch dim.",
      why="The ONNX Runtime backend compares the config with the graph when the model loads (outputs exactly).",
      fix="regenerate the config from the graph (tritonrepo add-hf), or fix the named tensor",
      source="onnxruntime_backend/src/onnxruntime.cc ValidateInputs/ValidateOutputs, onnxruntime_utils.cc CompareDimsSupported; ORT-05..14",
      example='input { name: "input_ids" data_type: TYPE_INT32 ... } for a graph whose input_ids is int64')
def onnx_mismatch(ctx: ModelContext):
    cfg = ctx.config
    if cfg is None or ctx.backend != "onnxruntime" or not (len(cfg.input) and len(cfg.output)):
        return
    # every field printed, as the server's JSON of the config (absent names are "", not missing keys)
    as_dict = json_format.MessageToDict(cfg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    for _, path in model_files(ctx, "model.onnx"):
        if not path.is_file():
            continue
        try:
            ins, outs = graph_io(path)
        except Exception as exc:  # noqa: BLE001 - a broken file is this model's error
            yield ("@", path), f"cannot read the ONNX graph: {exc}"
            continue
        for message in check_config(ctx.model_name, as_dict, ins, outs):
            yield ("input",), message


@rule("TR502", "onnx-auto-complete", Severity.warning,
      summary="An ONNX model's config lists no inputs or no outputs: the native backend will auto-complete them.",
      why="Auto-complete fills in tensors and max_batch_size from the graph (default max batch 4, dynamic batching "
          "added); the result is not in the repository, and with auto-complete disabled the model fails.",
      fix="write the tensors into config.pbtxt (tritonrepo add-hf generates them from the graph)",
      source="onnxruntime_backend/src/onnxruntime.cc AutoCompleteConfig / AutoCompleteMaxBatch / AutoCompleteIO; ORT-02..04",
      example='name: "m" backend: "onnxruntime" with no input/output')
def onnx_auto_complete(ctx: ModelContext):
    cfg = ctx.config
    if ctx.backend != "onnxruntime" or (cfg is not None and len(cfg.input) and len(cfg.output)):
        return
    files = model_files(ctx, "model.onnx")
    if not files or not files[-1][1].is_file():
        return
    path = files[-1][1]
    try:
        ins, outs = graph_io(path)
    except Exception:  # noqa: BLE001 - TR501 reports unreadable graphs
        return
    batchable = _batchable(ins, outs)
    mbs = cfg.max_batch_size if cfg is not None else 0
    if not batchable and mbs != 0:
        return  # TR503
    if batchable and mbs == 0:
        mbs = 4
    filled = [f"{n} {t} {shape[1:] if batchable and mbs > 0 else shape}" for n, (t, shape) in [*ins.items(), *outs.items()]]
    yield ("input",), f"the ONNX Runtime backend would auto-complete max_batch_size {mbs} and tensors: {'; '.join(filled)}"


def _batchable(ins: dict, outs: dict) -> bool:
    """AutoCompleteMaxBatch: every graph input and output has rank >= 1 and a -1 first dim."""
    return all(len(shape) >= 1 and shape[0] == -1 for _, shape in [*ins.values(), *outs.values()])


@rule("TR503", "onnx-auto-complete-batching", Severity.error,
      summary="max_batch_size > 0 for an ONNX graph without a batch dimension, in a config the backend auto-completes.",
      why="When the config lacks inputs or outputs the ONNX Runtime backend auto-completes it and refuses a non-zero "
          "max_batch_size if any graph tensor lacks a leading -1 (batch) dimension.",
      fix="set max_batch_size: 0, or export the graph with a dynamic batch axis",
      source="onnxruntime_backend/src/onnxruntime.cc AutoCompleteMaxBatch (l.1137); ORT-03",
      example='max_batch_size: 8 and no input/output, for a graph whose input is [1, 3, 224, 224]')
def onnx_auto_complete_batching(ctx: ModelContext):
    cfg = ctx.config
    if (cfg is None or ctx.backend != "onnxruntime" or cfg.max_batch_size == 0 or (len(cfg.input) and len(cfg.output))
            or not ctx.repo.options.auto_complete):
        return
    files = model_files(ctx, "model.onnx")
    if not files or not files[-1][1].is_file():
        return
    try:
        ins, outs = graph_io(files[-1][1])
    except Exception:  # noqa: BLE001 - TR501 reports unreadable graphs
        return
    if not _batchable(ins, outs):
        yield ("max_batch_size",), (f"autofill failed for model '{ctx.model_name}': model does not support batching "
                                    "while non-zero max_batch_size is specified")
