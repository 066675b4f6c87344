"""TR5xx: ONNX models against the graph, mirroring the native ONNX Runtime backend (ort_checks)."""

from __future__ import annotations

from google.protobuf import json_format

from tritonrepo.backends.onnxruntime.ort_checks import check_config
from tritonrepo.validate.model import ModelContext, Severity, rule
from tritonrepo.validate.rules.layout import version_dirs, versions_to_load


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
    from tritonrepo.export.onnx import graph_io  # noqa: PLC0415

    dirs = version_dirs(ctx)[0]
    as_dict = json_format.MessageToDict(cfg, preserving_proto_field_name=True)
    for v in versions_to_load(ctx):
        path = ctx.dir / dirs[v] / (cfg.default_model_filename or "model.onnx")
        if path.is_dir():
            path = path / "model.onnx"
        if not path.is_file():
            continue
        try:
            ins, outs = graph_io(path)
        except Exception as exc:  # noqa: BLE001 - a broken file is this model's error
            yield ("@", path), f"cannot read the ONNX graph: {exc}"
            continue
        for message in check_config(_name(ctx), as_dict, ins, outs):
            yield ("input",), message


def _name(ctx):
    return ctx.config.name or ctx.name
