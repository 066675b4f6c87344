"""TR5xx: ONNX models against the graph, mirroring the native ONNX Runtime backend (ort_checks)."""

from __future__ import annotations

from tritonrepo.validate.model import ModelContext, Severity, rule
from tritonrepo.validate.onnx_graph import read_graph  # reads the signature only: no weights, no onnx import
from tritonrepo.validate.rules.layout import model_files


def _last_graph(ctx: ModelContext):
    """``(path, signature)`` of the ``model.onnx`` of ``ctx``'s last version (the one the checks below judge), or
    ``None`` when it is missing or unreadable (TR501 reports unreadable graphs)."""
    files = model_files(ctx, "model.onnx")
    if not files or not files[-1][1].is_file():
        return None
    try:
        return files[-1][1], read_graph(files[-1][1])
    except Exception:  # noqa: BLE001 - TR501 reports unreadable graphs
        return None


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
    from google.protobuf import json_format  # noqa: PLC0415 - only for ONNX models

    from tritonrepo.backends.onnxruntime.ort_checks import check_config  # noqa: PLC0415

    # every field printed, as the server's JSON of the config (absent names are "", not missing keys)
    as_dict = json_format.MessageToDict(cfg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    for _, path in model_files(ctx, "model.onnx"):
        if not path.is_file():
            continue
        try:
            graph = read_graph(path)
        except Exception as exc:  # noqa: BLE001 - a broken file is this model's error
            yield ("@", path), f"cannot read the ONNX graph: {exc}"
            continue
        if _non_tensor(graph) is not None or _control_error(ctx, graph) is not None:
            continue  # TR506 / TR507: the backend stops there
        # sequence controls and implicit states are graph inputs the backend adds to the expected input count
        extra = {name for name, _ in _controls(cfg)} | {st.input_name for st in cfg.sequence_batching.state}
        ins = {n: v for n, v in graph.inputs.items() if n not in extra}
        outs = graph.outputs
        # the backend returns at its first error (ValidateInputs, then ValidateOutputs): one message, as the server
        for message in check_config(ctx.model_name, as_dict, ins, outs)[:1]:
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
    found = _last_graph(ctx)
    if found is None:
        return
    ins, outs = found[1].inputs, found[1].outputs
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
    found = _last_graph(ctx)
    if found is None:
        return
    _, graph = found
    if _non_tensor(graph) is None and not _batchable(graph.inputs, graph.outputs):
        yield ("max_batch_size",), (f"autofill failed for model '{ctx.model_name}': model does not support batching "
                                    "while non-zero max_batch_size is specified")


_TRT_PARAMS = {
    "precision_mode", "max_workspace_size_bytes", "trt_max_partition_iterations", "trt_min_subgraph_size",
    "int8_calibration_table_name", "int8_use_native_calibration_table", "trt_dla_enable", "trt_dla_core",
    "trt_engine_cache_enable", "trt_engine_cache_path", "trt_engine_cache_prefix", "trt_dump_subgraphs",
    "trt_force_sequential_engine_build", "trt_context_memory_sharing_enable", "trt_layer_norm_fp32_fallback",
    "trt_timing_cache_enable", "trt_timing_cache_path", "trt_force_timing_cache", "trt_detailed_build_log",
    "trt_build_heuristics_enable", "trt_sparsity_enable", "trt_builder_optimization_level", "trt_auxiliary_streams",
    "trt_tactic_sources", "trt_extra_plugin_lib_paths", "trt_profile_min_shapes", "trt_profile_max_shapes",
    "trt_profile_opt_shapes", "trt_cuda_graph_enable", "trt_dump_ep_context_model", "trt_ep_context_file_path",
    "trt_ep_context_embed_mode",
}


@rule("TR504", "onnx-session-options", Severity.error,
      summary="ONNX Runtime options the backend refuses: execution_mode not 0/1; on GPU instances an unknown GPU "
              "execution accelerator, TensorRT precision_mode or TensorRT parameter.",
      why="The ONNX Runtime backend reads these when it creates the session; a bad value fails the load.",
      fix="use execution_mode 0 (sequential) or 1 (parallel); GPU accelerators 'tensorrt' or 'cuda'; precision_mode FP32, FP16 or INT8",
      source="onnxruntime_backend/src/onnxruntime.cc ModelState::ModelState (execution_mode), ModelState::LoadModel (accelerators); ORT-18",
      example='parameters { key: "execution_mode" value { string_value: "2" } }')
def onnx_session_options(ctx: ModelContext):
    cfg = ctx.config
    if cfg is None or ctx.backend != "onnxruntime":
        return
    if "execution_mode" in cfg.parameters:
        value = cfg.parameters["execution_mode"].string_value.strip()
        if value.lstrip("-").isdigit() and int(value) not in (0, 1):
            yield ("parameters",), ("Invalid configuration value provided. Expected values for  execution_mode are 0 or 1 "
                                    f"but got {int(value)} .")
            return
    from tritonrepo._proto.model_config import model_config_pb2 as mc  # noqa: PLC0415

    if not any(g.kind == mc.ModelInstanceGroup.KIND_GPU for g in cfg.instance_group):
        return  # GPU accelerators are read for GPU instances only
    for ea in cfg.optimization.execution_accelerators.gpu_execution_accelerator:
        if ea.name not in ("tensorrt", "cuda"):
            yield ("optimization",), f"unknown Execution Accelerator '{ea.name}' is requested"
            return
        if ea.name == "tensorrt":
            for key, value in ea.parameters.items():
                if key == "precision_mode" and value not in ("FP32", "FP16", "INT8"):
                    yield ("optimization",), f"unsupported precision mode '{value}' is requested"
                    return
                if key not in _TRT_PARAMS:
                    yield ("optimization",), f"unknown parameter '{key}' is provided for TensorRT Execution Accelerator"
                    return


@rule("TR505", "onnx-ragged-input", Severity.error,
      summary="An allow_ragged_batch input is optional, or its graph input is not exactly [-1].",
      why="The ONNX Runtime backend passes a ragged batch as one flat tensor: the graph input must be 1-D of any "
          "length, and an optional input cannot be ragged.",
      fix="export the input flattened to shape [-1] (and concatenate requests yourself), or drop allow_ragged_batch",
      source="onnxruntime_backend/src/onnxruntime.cc ModelState::ValidateInputs; ORT-10/11",
      example='input { name: "x" data_type: TYPE_FP32 dims: [ -1 ] allow_ragged_batch: true } for a graph input [-1, 4]')
def onnx_ragged(ctx: ModelContext):
    cfg = ctx.config
    if cfg is None or ctx.backend != "onnxruntime" or not any(i.allow_ragged_batch for i in cfg.input):
        return
    found = _last_graph(ctx)
    if found is None:
        return
    ins = found[1].inputs
    for i, io in enumerate(cfg.input):
        if not io.allow_ragged_batch or io.name not in ins:
            continue
        shape = ins[io.name][1]
        if io.optional:
            yield ("input", i), (f"unable to load model '{ctx.model_name}', configuration expects model provides input "
                                 f"with shape [-1] for ragged input '{io.name}', which is not supported for optional input")
            return
        if list(shape) != [-1]:
            yield ("input", i), (f"unable to load model '{ctx.model_name}', configuration expects model provides input "
                                 f"with shape [-1]  for ragged input '{io.name}', model provides "
                                 "[" + ",".join(str(d) for d in shape) + "]")
            return


#: ONNX TypeProto kind -> ONNX Runtime's ONNXType name (onnxruntime_c_api.h), as the backend prints it.
_ORT_TYPE_NAMES = {"sequence": "ONNX_TYPE_SEQUENCE", "map": "ONNX_TYPE_MAP", "opaque": "ONNX_TYPE_OPAQUE",
                   "sparse_tensor": "ONNX_TYPE_SPARSETENSOR", "optional": "ONNX_TYPE_OPTIONAL"}


def _non_tensor(graph) -> tuple[str, str] | None:
    """``(name, ONNXType name)`` of the first graph input, else output, that is not a tensor (session order)."""
    for name in [*graph.inputs, *graph.outputs]:
        kind = graph.kinds.get(name, "")
        if kind in _ORT_TYPE_NAMES:
            return name, _ORT_TYPE_NAMES[kind]
    return None


@rule("TR506", "onnx-non-tensor-io", Severity.error,
      summary="An ONNX graph input or output is not a tensor (a sequence, map, sparse tensor, optional or opaque value).",
      why="The ONNX Runtime backend exchanges only tensors with Triton and refuses any other ONNX type when it reads "
          "the session's inputs and outputs (auto-complete and validation alike), e.g. a scikit-learn classifier's "
          "ZipMap output (a sequence of maps).",
      fix="export the graph with tensor outputs only (skl2onnx: options={'zipmap': False}), or post-process in a "
          "Python model",
      source="onnxruntime_backend/src/onnxruntime_utils.cc InputOutputInfos (r24.10 l.204): 'Unsupported ONNX Type "
             "'<type>' for I/O '<name>', expected 'ONNX_TYPE_TENSOR'.'; ORT-17",
      example="output_probability: sequence<map<int64, float>>")
def onnx_non_tensor(ctx: ModelContext):
    if ctx.backend != "onnxruntime":
        return
    found = _last_graph(ctx)
    if found is None:
        return
    path, graph = found
    bad = _non_tensor(graph)
    if bad is not None:
        yield ("@", path), f"Unsupported ONNX Type '{bad[1]}' for I/O '{bad[0]}', expected 'ONNX_TYPE_TENSOR'."


#: ONNX TensorProto element type -> OnnxDataTypeName (onnxruntime_backend/src/onnxruntime_utils.cc).
_ONNX_TYPE_NAMES = {1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64", 8: "STRING",
                    9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64",
                    15: "COMPLEX128", 16: "BFLOAT16"}
#: Triton data type -> ONNX element type (ModelConfigDataTypeToOnnxDataType).
_TRITON_TO_ONNX = {"TYPE_FP32": 1, "TYPE_UINT8": 2, "TYPE_INT8": 3, "TYPE_UINT16": 4, "TYPE_INT16": 5,
                   "TYPE_INT32": 6, "TYPE_INT64": 7, "TYPE_STRING": 8, "TYPE_BOOL": 9, "TYPE_FP16": 10,
                   "TYPE_FP64": 11, "TYPE_UINT32": 12, "TYPE_UINT64": 13, "TYPE_BF16": 16}


def _controls(cfg) -> list[tuple[str, str]]:
    """``[(tensor name, Triton data type)]`` of the sequence controls the backend checks, in its order: START, END,
    READY (boolean controls: the type of the false/true list), then CORRID (its data_type)."""
    from tritonrepo._proto.model_config import model_config_pb2 as mc  # noqa: PLC0415

    kinds = mc.ModelSequenceBatching.Control
    if not cfg.HasField("sequence_batching"):
        return []
    out = []
    for kind in (kinds.CONTROL_SEQUENCE_START, kinds.CONTROL_SEQUENCE_END, kinds.CONTROL_SEQUENCE_READY,
                 kinds.CONTROL_SEQUENCE_CORRID):
        for ci in cfg.sequence_batching.control_input:
            control = next((c for c in ci.control if c.kind == kind), None)
            if control is None or not ci.name:
                continue
            if kind == kinds.CONTROL_SEQUENCE_CORRID:
                dtype = mc.DataType.Name(control.data_type) if control.data_type in mc.DataType.values() else ""
            elif len(control.fp32_false_true):
                dtype = "TYPE_FP32"
            elif len(control.bool_false_true):
                dtype = "TYPE_BOOL"
            else:
                dtype = "TYPE_INT32"
            out.append((ci.name, dtype))
            break
    return out


def _control_error(ctx: ModelContext, graph) -> str | None:
    """The backend's error for the first sequence control the graph does not provide as a [1] input of its type."""
    mbs = ctx.config.max_batch_size
    for name, dtype in _controls(ctx.config):
        if name not in graph.inputs:
            return f"configuration specified sequence control '{name}', but model does not provide that input"
        shape = graph.inputs[name][1]
        debatched = shape[1:] if mbs > 0 else shape
        if debatched != [1]:
            return (f"unable to load model '{ctx.model_name}', sequence control '{name}' in model has dims "
                    "[" + ",".join(str(d) for d in debatched) + "] but dims [1] is expected")
        elem = graph.elem_types.get(name, 0)
        if _TRITON_TO_ONNX.get(dtype) != elem:
            return (f"unable to load model '{ctx.model_name}', sequence control '{name}', the model expects data-type "
                    f"{_ONNX_TYPE_NAMES.get(elem, 'UNDEFINED')} but the model configuration specifies data-type {dtype}")
    return None


@rule("TR507", "onnx-sequence-control", Severity.error,
      summary="A sequence batching control (START, END, READY, CORRID) is not a graph input of shape [1] (without "
              "the batch dim) and of the control's data type.",
      why="The ONNX Runtime backend feeds each control tensor to the graph: it checks, before the other inputs, that "
          "the graph has an input of that name, shape and type (and then counts the controls and implicit states "
          "among the expected inputs).",
      fix="name the control after the graph input that takes it, of shape [1] (plus the batch dim) and the type "
          "of its int32_false_true / fp32_false_true / bool_false_true list (CORRID: its data_type)",
      source="onnxruntime_backend/src/onnxruntime.cc ModelInstanceState::ValidateBooleanSequenceControl / "
             "ValidateTypedSequenceControl (r24.10); ORT-15",
      example='control_input { name: "START" control { kind: CONTROL_SEQUENCE_START int32_false_true: [0, 1] } } '
              "for a graph without a START input")
def onnx_sequence_control(ctx: ModelContext):
    cfg = ctx.config
    if cfg is None or ctx.backend != "onnxruntime" or not cfg.HasField("sequence_batching"):
        return
    found = _last_graph(ctx)
    if found is None:
        return
    _, graph = found
    if _non_tensor(graph) is not None:
        return
    message = _control_error(ctx, graph)
    if message is not None:
        yield ("sequence_batching",), message


def state_output_error(model: str, cfg, graph_outputs: dict) -> str | None:
    """What is wrong with the first implicit state whose ``output_name`` is a graph output of another data type than
    the state's (or whose data type has no ONNX equivalent, TYPE_BF16), or ``None`` (ORT-16).

    ``cfg`` is the ``ModelConfig``; ``graph_outputs`` ``{name: (Triton type name, shape)}`` as :func:`read_graph`
    gives them. A state output the graph lacks is not judged here.
    """
    from tritonrepo._proto.model_config import model_config_pb2 as mc  # noqa: PLC0415

    for state in cfg.sequence_batching.state:
        if state.output_name not in graph_outputs:
            continue
        dtype = mc.DataType.Name(state.data_type) if state.data_type in mc.DataType.values() else "TYPE_INVALID"
        if dtype not in _TRITON_TO_ONNX or dtype == "TYPE_BF16":
            return (f"implicit state '{state.output_name}' of model '{model}' has data type {dtype}, which ONNX "
                    "Runtime does not support")
        model_type = graph_outputs[state.output_name][0]
        if dtype != model_type:
            return (f"implicit state '{state.output_name}' of model '{model}' is {dtype} but the graph output "
                    f"'{state.output_name}' is {model_type}")
    return None


@rule("TR508", "onnx-state-output", Severity.warning,
      summary="An implicit state's output_name is a graph output of another data type than the state's (or the "
              "state's data type has no ONNX equivalent, TYPE_BF16): the model loads, its sequences will not run.",
      why="The ONNX Runtime backend reads each implicit state's next value from the graph output named output_name. "
          "Its load-time check of that output's type (ValidateOutputs, ORT-16) never runs: it is guarded by "
          "'if (sequence_batching.MemberAsArray(\"state\", &states))', true only when that call FAILS, i.e. when "
          "there are no states; so the server loads the model and the mismatch shows only when a sequence runs.",
      fix="give the state the data_type of the graph output named by output_name (and of its input_name)",
      source="onnxruntime_backend/src/onnxruntime.cc ModelInstanceState::ValidateOutputs (stored source, commit "
             "9fc8293): the state block with 'unable to load model '<m>', configuration expects datatype <T> for "
             "output state '<s>', model provides TYPE_<X>' is unreachable; ORT-16",
      example='state { input_name: "past_in" output_name: "past_out" data_type: TYPE_FP16 dims: [ -1 ] } for a '
              "graph whose past_out is float")
def onnx_state_output(ctx: ModelContext):
    cfg = ctx.config
    if cfg is None or ctx.backend != "onnxruntime" or not len(cfg.sequence_batching.state):
        return
    if not (len(cfg.input) and len(cfg.output)):
        return  # auto-complete fills the config first; TR502/TR503 speak for it
    found = _last_graph(ctx)
    if found is None:
        return
    _, graph = found
    if _non_tensor(graph) is not None or _control_error(ctx, graph) is not None:
        return  # TR506 / TR507: the backend refuses the model before
    if any(True for _ in onnx_mismatch(ctx)):
        return  # TR501: refused on its inputs and outputs
    message = state_output_error(ctx.model_name, cfg, graph.outputs)
    if message is not None:
        yield ("sequence_batching",), message
