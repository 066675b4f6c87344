"""TR3xx: core semantics, mirroring ValidateModelConfig & co. in core/src/model_config_utils.cc (r24.10)."""

from __future__ import annotations

from tritonrepo._proto.model_config import model_config_pb2 as mc  # not tritonclient.grpc: no grpc import

from tritonrepo.validate import backends as _backends
from tritonrepo.validate.backends import effective_backend  # noqa: F401 - moved to backends.py (no import cycle)
from tritonrepo.validate.model import ModelContext, Severity, rule

E, W = Severity.error, Severity.warning
_NATIVE = {"tensorflow", "tensorrt", "onnxruntime", "pytorch"}
_PLATFORM_BACKEND = _backends._PLATFORM_BACKEND


def _enum_name(enum, value: int) -> str:
    """The enum value's name; its digits when it has none (open enums parse any number; fuzzing found the crash)."""
    try:
        return enum.Name(value)
    except ValueError:
        return str(value)


def _meta(code, name, severity, summary, why, fix, source, example):
    return rule(code, name, severity, summary=summary, why=why, fix=fix, source=source, example=example)


@_meta("TR301", "missing-backend", E, "Neither backend nor platform (nor a model file) says how to run the model.",
       "Triton needs a backend for every model that is not an ensemble.", "set backend, e.g. backend: \"python\"",
       "core/src/model_config_utils.cc ValidateModelConfig; CORE-PLAT-01", 'platform: "custom_thing" with no backend')
def missing_backend(ctx):
    cfg = ctx.config
    if cfg is not None and cfg.platform != "ensemble" and (cfg.backend or cfg.platform) and not ctx.backend:
        yield ("platform",), f"unexpected platform type '{cfg.platform}' for {ctx.model_name}"


@_meta("TR302", "platform-backend-mismatch", E, "platform and backend name different runtimes.",
       "For the tensorflow/tensorrt/onnxruntime/pytorch backends the platform must match.",
       "drop platform, or make it match the backend (onnxruntime <-> onnxruntime_onnx)",
       "core/src/model_config_utils.cc ValidateModelConfig; CORE-PLAT-02", 'platform: "tensorrt_plan" backend: "onnxruntime"')
def platform_mismatch(ctx):
    cfg = ctx.config
    if cfg is None or not cfg.platform or not cfg.backend or cfg.backend not in _NATIVE:
        return
    if _PLATFORM_BACKEND.get(cfg.platform) != cfg.backend:
        yield ("platform",), f"unexpected 'platform' and 'backend' pair, got:{cfg.platform}, {cfg.backend}"


@_meta("TR303", "ensemble-with-backend", E, "An ensemble names a backend.",
       "Ensembles are run by Triton's scheduler, not by a backend.", "remove backend from the ensemble",
       "core/src/model_config_utils.cc ValidateModelConfig; CORE-ENS-01", 'platform: "ensemble" backend: "python"')
def ensemble_backend(ctx):
    cfg = ctx.config
    if cfg is not None and cfg.platform == "ensemble" and cfg.backend:
        yield ("backend",), (f"Ensemble model '{ctx.model_name}' must have platform type 'ensemble' and empty backend type")


@_meta("TR304", "negative-max-batch-size", E, "max_batch_size is negative.",
       "0 means no batching; a positive value is the largest batch.", "use 0 or a positive max_batch_size",
       "core/src/model_config_utils.cc ValidateModelConfig; CORE-MBS-01", "max_batch_size: -1")
def negative_mbs(ctx):
    cfg = ctx.config
    if cfg is not None and cfg.max_batch_size < 0:
        yield ("max_batch_size",), f"'max_batch_size' must be non-negative value for {ctx.model_name}"


@_meta("TR305", "preferred-batch-size-not-positive", E, "A dynamic_batching preferred_batch_size is <= 0.",
       "Preferred sizes are batch sizes the batcher aims for.", "use positive preferred_batch_size values",
       "core/src/model_config_utils.cc ValidateModelConfig; CORE-DYN-01", "dynamic_batching { preferred_batch_size: 0 }")
def preferred_positive(ctx):
    cfg = ctx.config
    if cfg is not None and cfg.HasField("dynamic_batching"):
        if any(p <= 0 for p in cfg.dynamic_batching.preferred_batch_size):
            yield ("dynamic_batching", 0, "preferred_batch_size"), (
                f"dynamic batching preferred size must be positive for {ctx.model_name}")


@_meta("TR306", "preferred-batch-size-too-large", E, "A preferred_batch_size exceeds max_batch_size.",
       "The batcher cannot form a batch larger than max_batch_size (any preferred size fails when it is 0).",
       "lower preferred_batch_size or raise max_batch_size",
       "core/src/model_config_utils.cc ValidateModelConfig; CORE-DYN-02", "max_batch_size: 4 dynamic_batching { preferred_batch_size: 8 }")
def preferred_too_large(ctx):
    cfg = ctx.config
    if cfg is not None and cfg.HasField("dynamic_batching"):
        if any(p > cfg.max_batch_size for p in cfg.dynamic_batching.preferred_batch_size if p > 0):
            yield ("dynamic_batching", 0, "preferred_batch_size"), (
                f"dynamic batching preferred size must be <= max batch size for {ctx.model_name}")


@_meta("TR307", "default-priority-out-of-range", E, "default_priority_level is outside [1, priority_levels].",
       "With priority levels, requests without a priority get the default level.", "set 1 <= default_priority_level <= priority_levels",
       "core/src/model_config_utils.cc ValidateModelConfig; CORE-DYN-03", "dynamic_batching { priority_levels: 2 default_priority_level: 3 }")
def default_priority(ctx):
    cfg = ctx.config
    if cfg is not None and cfg.HasField("dynamic_batching"):
        d = cfg.dynamic_batching
        if d.priority_levels != 0 and not (1 <= d.default_priority_level <= d.priority_levels):
            yield ("dynamic_batching", 0, "default_priority_level"), (
                f"default priority level must be in range [1, {d.priority_levels}] for {ctx.model_name}")


@_meta("TR308", "priority-queue-policy-out-of-range", E, "A priority_queue_policy key is outside [1, priority_levels].",
       "Queue policies are per priority level.", "use keys between 1 and priority_levels",
       "core/src/model_config_utils.cc ValidateModelConfig; CORE-DYN-04", "priority_queue_policy { key: 5 value { } }")
def queue_policy_range(ctx):
    cfg = ctx.config
    if cfg is not None and cfg.HasField("dynamic_batching"):
        d = cfg.dynamic_batching
        if d.priority_levels != 0 and any(not 1 <= k <= d.priority_levels for k in d.priority_queue_policy):
            yield ("dynamic_batching", 0, "priority_queue_policy"), (
                f"priority queue policy must have priority level in range [1, {d.priority_levels}] for {ctx.model_name}")


@_meta("TR309", "preserve-ordering-with-priorities", E, "preserve_ordering is set with more than one priority level.",
       "Responses cannot keep request order across priority queues.", "drop preserve_ordering or use one priority level",
       "core/src/model_config_utils.cc ValidateModelConfig; CORE-DYN-05", "dynamic_batching { preserve_ordering: true priority_levels: 2 default_priority_level: 1 }")
def preserve_ordering(ctx):
    cfg = ctx.config
    if cfg is not None and cfg.HasField("dynamic_batching"):
        d = cfg.dynamic_batching
        if d.preserve_ordering and d.priority_levels > 1:
            yield ("dynamic_batching", 0, "preserve_ordering"), (
                f"Only one priority level is allowed when 'preserve_ordering' is true for {ctx.model_name}")


@_meta("TR310", "preserve-ordering-with-delay", E, "preserve_ordering is set with a DELAY timeout action.",
       "Delayed requests would have to overtake others.", "use REJECT, or drop preserve_ordering",
       "core/src/model_config_utils.cc ValidateModelConfig; CORE-DYN-06",
       "dynamic_batching { preserve_ordering: true default_queue_policy { timeout_action: DELAY default_timeout_microseconds: 100 } }")
def preserve_delay(ctx):
    cfg = ctx.config
    if cfg is None or not cfg.HasField("dynamic_batching") or not cfg.dynamic_batching.preserve_ordering:
        return
    d = cfg.dynamic_batching
    policies = [d.default_queue_policy, *d.priority_queue_policy.values()]
    if any(p.timeout_action == mc.ModelQueuePolicy.DELAY and p.default_timeout_microseconds != 0 for p in policies):
        yield ("dynamic_batching", 0, "preserve_ordering"), (
            f"Queue policy can not have DELAY as timeout action when 'preserve_ordering' is true for {ctx.model_name}")


_KINDS = mc.ModelSequenceBatching.Control


def _controls(cfg):
    for i, ci in enumerate(cfg.sequence_batching.control_input):
        for c in ci.control:
            yield i, ci, c


@_meta("TR311", "sequence-control-without-name", E, "A sequence_batching control_input has no name.",
       "Control tensors are model inputs the scheduler fills in.", "name the control input",
       "core/src/model_config_utils.cc Get*SequenceControlProperties; CORE-SEQ-01", "control_input { control { kind: CONTROL_SEQUENCE_START int32_false_true: [0, 1] } }")
def seq_name(ctx):
    cfg = ctx.config
    if cfg is not None and cfg.HasField("sequence_batching"):
        for i, ci, _ in _controls(cfg):
            if not ci.name:
                yield ("sequence_batching", 0, "control_input", i), (
                    f"sequence batching control tensor must have a name for {ctx.model_name}")
                return


@_meta("TR312", "sequence-control-repeated-kind", E, "A sequence control kind (START, END, READY, CORRID) appears twice.",
       "Each control kind maps to one tensor.", "keep one control of each kind",
       "core/src/model_config_utils.cc Get*SequenceControlProperties; CORE-SEQ-03", "two control_input entries with kind CONTROL_SEQUENCE_START")
def seq_repeated(ctx):
    cfg = ctx.config
    if cfg is None or not cfg.HasField("sequence_batching"):
        return
    seen = {}
    for i, ci, c in _controls(cfg):
        if c.kind in seen and ci.name:
            kind = _enum_name(_KINDS.Kind, c.kind).replace("CONTROL_SEQUENCE_", "")
            yield ("sequence_batching", 0, "control_input", i), (
                f"sequence batching specifies multiple CONTROL_SEQUENCE_{kind} tensors for {ctx.model_name}")
            return
        seen[c.kind] = i


@_meta("TR313", "sequence-control-values", E, "A START/END/READY control has no or several false/true value lists, or not exactly 2 values.",
       "The scheduler writes the false/true values into the control tensor.",
       "give exactly one of int32_false_true, fp32_false_true, bool_false_true with 2 values",
       "core/src/model_config_utils.cc GetBooleanSequenceControlProperties; CORE-SEQ-04/05/06",
       "control { kind: CONTROL_SEQUENCE_START int32_false_true: [1] }")
def seq_values(ctx):
    cfg = ctx.config
    if cfg is None or not cfg.HasField("sequence_batching"):
        return
    for i, ci, c in _controls(cfg):
        if not ci.name or c.kind == _KINDS.CONTROL_SEQUENCE_CORRID:
            continue
        kind = _enum_name(_KINDS.Kind, c.kind)
        lists = [(n, getattr(c, n)) for n in ("int32_false_true", "fp32_false_true", "bool_false_true") if len(getattr(c, n))]
        where = ("sequence_batching", 0, "control_input", i)
        if not lists:
            yield where, (f"sequence batching must specify either 'int32_false_true', 'fp32_false_true' or "
                          f"'bool_false_true' for {kind} for {ctx.model_name}")
        elif len(lists) > 1:
            yield where, (f"sequence batching specifies more than one from 'int32_false_true', 'fp32_false_true' and "
                          f"'bool_false_true' for {kind} for {ctx.model_name}")
        elif len(lists[0][1]) != 2:
            yield where, f"sequence batching control '{lists[0][0]}' must have exactly 2 entries for {kind} for {ctx.model_name}"


@_meta("TR314", "sequence-corrid-type", E, "The CORRID control has false/true values or a data type other than (U)INT32/64 or STRING.",
       "The correlation id is copied into the tensor as is.", "use data_type TYPE_UINT64, TYPE_INT64, TYPE_UINT32, TYPE_INT32 or TYPE_STRING",
       "core/src/model_config_utils.cc ValidateModelConfig / GetTypedSequenceControlProperties; CORE-SEQ-07/08",
       "control { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_FP32 }")
def seq_corrid(ctx):
    cfg = ctx.config
    if cfg is None or not cfg.HasField("sequence_batching"):
        return
    allowed = {mc.TYPE_UINT64, mc.TYPE_INT64, mc.TYPE_UINT32, mc.TYPE_INT32, mc.TYPE_STRING}
    for i, ci, c in _controls(cfg):
        if not ci.name or c.kind != _KINDS.CONTROL_SEQUENCE_CORRID:
            continue
        where = ("sequence_batching", 0, "control_input", i)
        if len(c.int32_false_true) or len(c.fp32_false_true) or len(c.bool_false_true):
            yield where, ("sequence batching must not specify either 'int32_false_true', 'fp32_false_true' or "
                          f"'bool_false_true' for CONTROL_SEQUENCE_CORRID for {ctx.model_name}")
        elif c.data_type not in allowed:
            yield where, (f"unexpected data type for control CONTROL_SEQUENCE_CORRID for {ctx.model_name}. Allowed data "
                          "types are TYPE_UINT64, TYPE_INT64, TYPE_UINT32, TYPE_INT32 and TYPE_STRING")


@_meta("TR315", "sequence-oldest-preferred-batch-size", E, "sequence_batching.oldest preferred_batch_size is <= 0 or > max_batch_size.",
       "As for dynamic batching, preferred sizes must be reachable.", "use 1 <= preferred_batch_size <= max_batch_size",
       "core/src/model_config_utils.cc ValidateModelConfig; CORE-SEQ-09/10", "sequence_batching { oldest { preferred_batch_size: 16 } } with max_batch_size: 4")
def seq_oldest(ctx):
    cfg = ctx.config
    if cfg is None or not cfg.HasField("sequence_batching") or not cfg.sequence_batching.HasField("oldest"):
        return
    for p in cfg.sequence_batching.oldest.preferred_batch_size:
        if p <= 0:
            yield ("sequence_batching",), f"sequence batching preferred batch size must be positive for {ctx.model_name}"
            return
        if p > cfg.max_batch_size:
            yield ("sequence_batching",), f"sequence batching preferred batch size must be <= max batch size for {ctx.model_name}"
            return


@_meta("TR316", "sequence-slot-utilization", E, "sequence_batching.direct.minimum_slot_utilization is outside [0, 1].",
       "It is a fraction of the batch slots.", "use a value between 0.0 and 1.0",
       "core/src/model_config_utils.cc ValidateModelConfig; CORE-SEQ-11", "sequence_batching { direct { minimum_slot_utilization: 1.5 } }")
def seq_slot(ctx):
    cfg = ctx.config
    if cfg is not None and cfg.HasField("sequence_batching") and cfg.sequence_batching.HasField("direct"):
        u = cfg.sequence_batching.direct.minimum_slot_utilization
        if u < 0.0 or u > 1.0:
            yield ("sequence_batching",), f"sequence batching minimum slot utilization must be in range (0.0, 1.0] for {ctx.model_name}"


@_meta("TR317", "response-cache-unsupported", E, "The response cache is enabled with sequence batching or a decoupled model.",
       "Triton cannot cache responses of stateful or decoupled models.", "disable response_cache",
       "core/src/model_config_utils.cc ValidateModelConfig; CORE-CACHE-01/02", "response_cache { enable: true } with sequence_batching { }")
def cache(ctx):
    cfg = ctx.config
    if cfg is None or not cfg.response_cache.enable:
        return
    if cfg.HasField("sequence_batching"):
        yield ("response_cache",), (f"Response Cache does not currently support model {ctx.model_name} with sequence "
                                    "batching scheduler. Please disable the response cache.")
    elif cfg.model_transaction_policy.decoupled:
        yield ("response_cache",), (f"Response Cache does not currently support model {ctx.model_name} with 'decoupled' "
                                    "transaction policy. Please disable the response cache.")


def _ios(cfg):
    for kind in ("input", "output"):
        for i, io in enumerate(getattr(cfg, kind)):
            yield kind, i, io


def _count(dims) -> int | None:
    n = 1
    for d in dims:
        if d == -1:
            return None
        n *= d
    return n


def _segments(dims: list[int]) -> list[int]:
    """Element counts of the runs between ``-1`` dims (ValidateIOShape compares them one by one)."""
    out, n = [], 1
    for d in dims:
        if d == -1:
            out.append(n)
            n = 1
        else:
            n *= d
    return [*out, n]


@_meta("TR320", "io-shape", E, "An input/output lacks a name, a data_type or dims, or has a dim that is 0 or < -1.",
       "Every tensor needs a name, a type and a shape (-1 for a variable dim); checked when the model loads.",
       "give name, data_type and dims (each >= 1 or -1)",
       "core/src/model_config_utils.cc ValidateIOShape; CORE-IO-01..04", 'input { name: "x" data_type: TYPE_FP32 dims: [ 0 ] }')
def io_shape(ctx):
    cfg = ctx.config
    if cfg is None or cfg.platform == "ensemble":
        return
    for kind, i, io in _ios(cfg):
        where = (kind, i)
        if not io.name:
            yield where, f"model {kind} must specify 'name' for {ctx.model_name}"
        elif io.data_type == mc.TYPE_INVALID:
            yield where, f"model {kind} '{io.name}' must specify 'data_type' for {ctx.model_name}"
        elif not len(io.dims):
            yield where, f"model {kind} '{io.name}' must specify 'dims' for {ctx.model_name}"
        elif any(d < -1 or d == 0 for d in io.dims):
            yield (kind, i, "dims"), (f"model {kind} '{io.name}' dimension must be integer >= 1, or -1 to indicate a "
                                      f"variable-size dimension for {ctx.model_name}")


@_meta("TR321", "io-reshape", E, "A reshape does not fit the dims: empty reshape without batching, bad reshape dims, different element count.",
       "reshape must describe the same elements as dims.", "make the element counts of dims and reshape equal",
       "core/src/model_config_utils.cc ValidateIOShape; CORE-IO-05..09", 'input { name: "x" dims: [ 4 ] reshape { shape: [ 3 ] } }')
def io_reshape(ctx):
    cfg = ctx.config
    if cfg is None or cfg.platform == "ensemble":
        return
    for kind, i, io in _ios(cfg):
        if not io.HasField("reshape") or not io.name or not len(io.dims) or any(d < -1 or d == 0 for d in io.dims):
            continue
        where, shape = (kind, i, "reshape"), list(io.reshape.shape)
        if not shape:
            if cfg.max_batch_size == 0:
                yield where, (f"model {kind} '{io.name}' cannot have empty reshape for non-batching model as scalar "
                              f"tensors are not supported for {ctx.model_name}")
            elif _count(io.dims) != 1:
                yield where, f"model {kind} '{io.name}' has different size for dims and reshape for {ctx.model_name}"
        elif any(d < -1 or d == 0 for d in shape):
            yield where, (f"model {kind} '{io.name}' reshape dimensions must be integer >= 1, or -1 to indicate a "
                          f"variable-size dimension for {ctx.model_name}")
        elif (_count(io.dims) is None) != (_count(shape) is None):
            yield where, f"model {kind} '{io.name}' has different size for dims and reshape for {ctx.model_name}"
        elif _count(io.dims) is None:
            if list(io.dims).count(-1) != shape.count(-1):
                yield where, (f"model {kind} '{io.name}' has different number of variable-size dimensions for dims "
                              f"and reshape for {ctx.model_name}")
            elif _segments(list(io.dims)) != _segments(shape):
                yield where, f"model {kind} '{io.name}' has different size for dims and reshape for {ctx.model_name}"
        elif _count(io.dims) != _count(shape):
            yield where, f"model {kind} '{io.name}' has different size for dims and reshape for {ctx.model_name}"


@_meta("TR322", "io-format-dims", E, "An input with format FORMAT_NHWC/FORMAT_NCHW does not have exactly 3 dims.",
       "Image formats describe channel, height and width.", "give 3 dims or drop format",
       "core/src/model_config_utils.cc ValidateModelInput; CORE-IO-10", 'input { name: "img" format: FORMAT_NCHW dims: [ 224, 224 ] }')
def io_format(ctx):
    cfg = ctx.config
    if cfg is None:
        return
    for i, io in enumerate(cfg.input):
        if io.format in (mc.ModelInput.FORMAT_NHWC, mc.ModelInput.FORMAT_NCHW) and len(io.dims) != 3 and io.name and io.data_type and len(io.dims):
            yield ("input", i, "format"), f"model input NHWC/NCHW require 3 dims for {ctx.model_name}"


@_meta("TR323", "shape-tensor-not-tensorrt", E, "is_shape_tensor or is_non_linear_format_io on a model that is not TensorRT, or a TensorRT non-linear IO without 3 dims.",
       "Only TensorRT has shape tensors and non-linear IO formats.", "remove the flag",
       "core/src/model_config_utils.cc ValidateModelInput/Output, ValidateNonLinearFormatIO; CORE-IO-11/12", 'input { name: "x" is_shape_tensor: true ... }')
def shape_tensor(ctx):
    cfg = ctx.config
    if cfg is None:
        return
    if cfg.platform == "tensorrt_plan" or ctx.backend == "tensorrt":
        for kind, i, io in _ios(cfg):  # ValidateNonLinearFormatIO: TensorRT's non-linear formats are CHW-like
            if io.is_non_linear_format_io and io.name and io.data_type and len(io.dims) and len(io.dims) != 3:
                yield (kind, i, "is_non_linear_format_io"), f"Non-linear IO format {kind} requires 3 dims for {ctx.model_name}"
                return
        return
    for kind, i, io in _ios(cfg):
        if io.is_shape_tensor and io.name and io.data_type and len(io.dims) and all(d >= 1 or d == -1 for d in io.dims):
            yield (kind, i, "is_shape_tensor"), f"shape tensors are only supported for TensorRT platform for {ctx.model_name}"
            return
        if io.is_non_linear_format_io and io.name and io.data_type and len(io.dims):
            yield (kind, i, "is_non_linear_format_io"), f"Non-linear IO format is only supported for the TensorRT platform for {ctx.model_name}"
            return


@_meta("TR330", "batch-input", E, "A batch_input has not exactly one source_input, a type other than INT32/FP32, or an unknown source.",
       "Batch inputs are computed by Triton from a model input.", "give one source_input naming a model input; use TYPE_INT32 or TYPE_FP32",
       "core/src/model_config_utils.cc ValidateBatchIO; CORE-BIO-01..03", 'batch_input { kind: BATCH_ELEMENT_COUNT target_name: "n" data_type: TYPE_INT32 }')
def batch_input(ctx):
    cfg = ctx.config
    if cfg is None:
        return
    inputs = {t.name for t in cfg.input}
    for i, b in enumerate(cfg.batch_input):
        where = ("batch_input", i)
        kind = _enum_name(mc.BatchInput.Kind, b.kind)
        if len(b.source_input) != 1:
            yield where, f"batch input kind '{kind}' expects 1 source input, got {len(b.source_input)} for {ctx.model_name}"
            continue
        if b.data_type not in (mc.TYPE_INT32, mc.TYPE_FP32):
            yield where, f"batch input data type must be TYPE_INT32 or TYPE_FP32 for {ctx.model_name}"
        elif b.source_input[0] not in inputs:
            yield where, f"unknown source input name '{b.source_input[0]}' for {ctx.model_name}"


@_meta("TR331", "batch-output", E, "A batch_output names an unknown target output, an unknown source, or a target twice.",
       "Batch outputs scatter a model output back to requests.", "name existing outputs and inputs, each target once",
       "core/src/model_config_utils.cc ValidateBatchIO; CORE-BIO-03..06", 'batch_output { target_name: "nope" kind: BATCH_SCATTER_WITH_INPUT_SHAPE source_input: "x" }')
def batch_output(ctx):
    cfg = ctx.config
    if cfg is None:
        return
    outputs, inputs, seen = {t.name for t in cfg.output}, {t.name for t in cfg.input}, set()
    for i, b in enumerate(cfg.batch_output):
        where = ("batch_output", i)
        if len(b.source_input) != 1:
            yield where, (f"batch output kind 'BATCH_SCATTER_WITH_INPUT_SHAPE' expects 1 source input, got "
                          f"{len(b.source_input)} for {ctx.model_name}")
            continue
        if b.source_input[0] not in inputs:
            yield where, f"unknown source input name '{b.source_input[0]}' for {ctx.model_name}"
            continue
        for t in b.target_name:
            if t not in outputs:
                yield where, f"unknown target output name '{t}' for {ctx.model_name}"
            elif t in seen:
                yield where, f"target output name '{t}' can only be specified once for {ctx.model_name}"
            seen.add(t)


@_meta("TR340", "instance-group-gpus-on-cpu", E, "An instance group of kind KIND_CPU or KIND_MODEL (or KIND_AUTO with a negative id) lists GPUs.",
       "GPU ids only make sense for KIND_GPU.", "drop gpus, or use kind: KIND_GPU",
       "core/src/model_config_utils.cc ValidateInstanceGroup; CORE-IG-01/02", "instance_group { kind: KIND_CPU gpus: [ 0 ] }")
def ig_gpus(ctx):
    cfg = ctx.config
    if cfg is None:
        return
    for i, g in enumerate(cfg.instance_group):
        # KIND_AUTO with a GPU id no host has (negative) becomes KIND_CPU (NormalizeInstanceGroup), then is refused
        auto_cpu = g.kind == mc.ModelInstanceGroup.KIND_AUTO and any(gpu < 0 for gpu in g.gpus)
        if len(g.gpus) and (g.kind in (mc.ModelInstanceGroup.KIND_CPU, mc.ModelInstanceGroup.KIND_MODEL) or auto_cpu):
            kind = "KIND_CPU" if auto_cpu else _enum_name(mc.ModelInstanceGroup.Kind, g.kind)
            gname = g.name or f"{ctx.model_name}_{i}"
            yield ("instance_group", i, "gpus"), (f"instance group {gname} of model {ctx.model_name} has kind {kind} but "
                                                  "specifies one or more GPUs")


@_meta("TR344", "instance-group-kind-invalid", E, "An instance group's kind is a number that names no kind (KIND_AUTO 0, KIND_GPU 1, KIND_CPU 2, KIND_MODEL 3).",
       "The text format accepts any number for an enum of model_config.proto (an open proto3 enum); the number does not "
       "survive the server's JSON round trip of the configuration and the instance group is refused when the instances "
       "are created (observed on tritonserver 2.51: 'unexpected kind KIND_AUTO').",
       "use kind: KIND_CPU, KIND_GPU, KIND_MODEL or KIND_AUTO",
       "core/src/backend_model_instance.cc TritonModelInstance::CreateInstances ('has unexpected kind'); corpus case "
       "instance-kind-invalid-number", "instance_group { kind: 7 }")
def ig_kind_invalid(ctx):
    cfg = ctx.config
    if cfg is None or cfg.platform == "ensemble":
        return
    for i, g in enumerate(cfg.instance_group):
        if g.kind not in mc.ModelInstanceGroup.Kind.values():
            gname = g.name or f"{ctx.model_name}_{i}"
            yield ("instance_group", i, "kind"), f"instance group {gname} of model {ctx.model_name} has unexpected kind KIND_AUTO"
            return


@_meta("TR341", "instance-group-needs-gpu", W, "An instance group of kind KIND_GPU (or KIND_AUTO listing GPUs): the model loads only where those GPUs are visible.",
       "On a CPU-only host (CI, laptops) Triton refuses the model.", "use --device cpu for CPU hosts, or deploy on GPU nodes",
       "core/src/model_config_utils.cc ValidateInstanceGroup; CORE-IG-03", "instance_group { kind: KIND_GPU }")
def ig_gpu(ctx):
    cfg = ctx.config
    if cfg is None:
        return
    for i, g in enumerate(cfg.instance_group):
        if g.kind == mc.ModelInstanceGroup.KIND_GPU:
            yield ("instance_group", i, "kind"), f"instance group of model {ctx.model_name} needs a GPU at load time"
        elif g.kind == mc.ModelInstanceGroup.KIND_AUTO and len(g.gpus) and all(gpu >= 0 for gpu in g.gpus):
            yield ("instance_group", i, "gpus"), (
                f"instance group of model {ctx.model_name} lists GPUs: on a host without them Triton makes it KIND_CPU "
                "and refuses the GPU list")


@_meta("TR342", "instance-group-profile", E, "An instance group sets profile on a model that is not TensorRT, or a TensorRT profile that is not a non-negative integer.",
       "Optimization profiles exist only in TensorRT engines.", "remove profile",
       "core/src/model_config_utils.cc ValidateInstanceGroup (l.1722/1733); CORE-IG-05/06", 'instance_group { profile: "0" }')
def ig_profile(ctx):
    cfg = ctx.config
    if cfg is None:
        return
    if cfg.platform == "tensorrt_plan":
        for i, g in enumerate(cfg.instance_group):
            for p in g.profile:
                if not p.isdigit():  # ValidateInstanceGroup: std::stoi and >= 0, the whole string a number
                    gname = g.name or f"{ctx.model_name}_{i}"
                    yield ("instance_group", i, "profile"), (
                        f"instance group {gname} of model {ctx.model_name} and platform {cfg.platform} specifies invalid "
                        f"profile {p}. The field should contain the string representation of a non-negative integer.")
                    return
        return
    for i, g in enumerate(cfg.instance_group):
        if len(g.profile) and g.kind != mc.ModelInstanceGroup.KIND_GPU:
            gname = g.name or f"{ctx.model_name}_{i}"
            yield ("instance_group", i, "profile"), (f"instance group {gname} of model {ctx.model_name} and platform "
                                                     f"{cfg.platform}specifies profile field which is only supported for TensorRT models")


@_meta("TR350", "label-file", E, "An output's label_filename does not exist in the model directory, or two outputs of one name carry label files.",
       "Triton reads label files when the model loads.", "add the file or remove label_filename",
       "core/src/model.cc Model::Init -> label_provider.cc LabelProvider::AddLabels; CORE-LABEL-01/02", 'output { name: "logits" label_filename: "labels.txt" }')
def label_file(ctx):
    cfg = ctx.config
    if cfg is None:
        return
    labelled: set[str] = set()
    for i, o in enumerate(cfg.output):
        if not o.label_filename:
            continue
        if not (ctx.dir / o.label_filename).is_file():
            yield ("output", i, "label_filename"), (f"failed to open text file for read {ctx.dir / o.label_filename}: "
                                                    "No such file or directory")
            return
        if o.name in labelled:  # LabelProvider::AddLabels: one label file per output name
            yield ("output", i, "label_filename"), f"multiple label files for '{o.name}'"
            return
        labelled.add(o.name)


@_meta("TR351", "warmup-data", E, "A model_warmup input has a -1 dim, no data source, or a data file that is missing or too small.",
       "Triton generates the warmup data when the model loads; if it cannot, the load fails.",
       "give fixed dims and zero_data/random_data, or an input_data_file under <model>/warmup/ with enough bytes",
       "core/src/backend_model_instance.cc GenerateWarmupData (l.375-493); CORE-WARM-01..04",
       'model_warmup { name: "w" batch_size: 1 inputs { key: "x" value { data_type: TYPE_FP32 dims: [ -1 ] zero_data: true } } }')
def warmup(ctx):
    cfg = ctx.config
    if cfg is None or cfg.platform == "ensemble":
        return
    for i, w in enumerate(cfg.model_warmup):
        where = ("model_warmup", i)
        if w.batch_size == 0:
            continue
        for name, inp in w.inputs.items():
            if any(d == -1 for d in inp.dims):
                yield where, f"warmup setting expects all variable-size dimensions are specified for input '{name}'"
            elif inp.WhichOneof("input_data_type") is None:
                yield where, f"[request id: <id_unknown>] warmup setting expects input '{name}' to have input_data_type set"
            elif inp.HasField("input_data_file"):
                path = ctx.dir / "warmup" / inp.input_data_file
                if not path.is_file():
                    yield where, f"failed to open text file for read {path}: No such file or directory"
                elif inp.data_type != mc.TYPE_STRING:
                    need = (_count(inp.dims) or 0) * _DTYPE_SIZE.get(inp.data_type, 0)
                    if path.stat().st_size < need:
                        yield where, (f"[request id: <id_unknown>] warmup setting expects {need} bytes, but the data "
                                      f"provided from {inp.input_data_file}only has {path.stat().st_size} bytes")
            else:
                continue
            return


def _dtype_str(t: int) -> str:
    """TRITONSERVER_DataTypeString: TYPE_FP32 -> FP32, TYPE_STRING -> BYTES, a number naming no type -> <invalid>
    (core/src/tritonserver.cc; an invalid data_type is also TR320's finding)."""
    if t == mc.TYPE_STRING:
        return "BYTES"
    return mc.DataType.Name(t).removeprefix("TYPE_") if t in mc.DataType.values() else "<invalid>"


def _shape_str(dims) -> str:
    return "[" + ",".join(str(d) for d in dims) + "]"


@_meta("TR352", "warmup-request", E, "A model_warmup request would be refused: a required input missing, a wrong data type or shape, a batch over max_batch_size.",
       "Warmup samples run as inference requests when the model loads; a refused request fails the load. The 2.51 "
       "server here sometimes crashes instead (SIGSEGV just after 'failed to run warmup sample', about one load in "
       "four on a busy machine), taking every other model down with it.",
       "give every non-optional input with the config's data_type and dims, and batch_size <= max_batch_size",
       "core/src/infer_request.cc ValidateRequestInputs / Normalize; core/src/backend_model_instance.cc WarmUp; python_backend/src/python_be.cc (l.124); CORE-WARM-05, PY-07",
       'model_warmup { name: "w" batch_size: 1 }  # no inputs for a model with a required input')
def warmup_request(ctx):
    cfg = ctx.config
    if cfg is None or cfg.platform == "ensemble" or any(True for _ in warmup(ctx)):
        return  # Triton generates every sample's data before it runs any (TR351 first)
    inputs = {t.name: t for t in cfg.input}
    required = [t.name for t in cfg.input if not t.optional]
    mbs = cfg.max_batch_size
    for i, w in enumerate(cfg.model_warmup):
        where = ("model_warmup", i)
        if w.batch_size == 0:
            continue
        given = [n for n in w.inputs if n in inputs]  # warmup inputs the model does not have are not sent
        missing = [n for n in required if n not in w.inputs]
        if missing:
            q = "'"
            got = "[" + ",".join(q + n + q for n in given) + "]"
            miss = "[" + ",".join(q + n + q for n in missing) + "]"
            n_all = len(inputs)
            expected = (f"expected {n_all} inputs" if n_all == len(required)
                        else f"expected number of inputs between {len(required)} and {n_all}")
            yield where, (f"[request id: <id_unknown>] {expected} but got {len(given)} inputs for model "
                          f"'{ctx.model_name}'. Got input(s) {got}, but missing required input(s) {miss}. "
                          "Please provide all required input(s).")
            return
        for name, inp in w.inputs.items():
            io = inputs.get(name)
            if io is None:
                continue
            if inp.data_type != io.data_type:
                yield where, (f"[request id: <id_unknown>] inference input '{name}' data-type is "
                              f"'{_dtype_str(inp.data_type)}', but model '{ctx.model_name}' expects '{_dtype_str(io.data_type)}'")
                return
            want = list(io.dims)
            got_dims = list(inp.dims)
            if len(want) != len(got_dims) or any(a != -1 and a != b for a, b in zip(want, got_dims)):
                full_want = [-1, *want] if mbs > 0 else want
                full_got = [w.batch_size, *got_dims] if mbs > 0 else got_dims
                note = (" NOTE: Setting a non-zero max_batch_size in the model config requires a batch dimension to be "
                        "prepended to each input shape. If you want to specify the full shape including the batch dim "
                        "in your input dims config, try setting max_batch_size to zero. See the model configuration "
                        "docs for more info on max_batch_size.") if mbs > 0 else ""
                yield where, (f"[request id: <id_unknown>] unexpected shape for input '{name}' for model "
                              f"'{ctx.model_name}'. Expected {_shape_str(full_want)}, got {_shape_str(full_got)}.{note}")
                return
        if mbs > 0 and w.batch_size > mbs:
            group = cfg.instance_group[0].name if len(cfg.instance_group) and cfg.instance_group[0].name else f"{ctx.model_name}_0"
            yield where, (f"failed to run warmup sample '{w.name}': batch size {w.batch_size} for '{group}_0', max "
                          f"allowed is {mbs}")
            return


@_meta("TR360", "python-backend-parameters", E, "FORCE_CPU_ONLY_INPUT_TENSORS is not yes/no, or EXECUTION_ENV_PATH does not exist.",
       "The Python backend checks these parameters when the model loads.", "use yes/no; point EXECUTION_ENV_PATH at an existing archive",
       "python_backend/src/python_be.cc ModelState, pb_env.cc; PY-08/09", 'parameters { key: "FORCE_CPU_ONLY_INPUT_TENSORS" value { string_value: "maybe" } }')
def py_params(ctx):
    cfg = ctx.config
    if cfg is None or ctx.backend != "python":
        return
    params = {k: v.string_value for k, v in cfg.parameters.items()}
    value = params.get("FORCE_CPU_ONLY_INPUT_TENSORS")
    if value is not None and value not in ("yes", "no"):
        yield ("parameters",), f"Incorrect value for FORCE_CPU_ONLY_INPUT_TENSORS: {value}'"
    env = params.get("EXECUTION_ENV_PATH")
    if env is not None:
        path = env.replace("$$TRITON_MODEL_DIRECTORY", str(ctx.dir))
        if not __import__("os").path.exists(path):
            yield ("parameters",), f"Failed to get the canonical path for {path}."


#: The custom batching entry points (core/src/backend_model.cc TritonModel::SetBatchingStrategy): all or none.
BATCH_FUNCTIONS = ("TRITONBACKEND_ModelBatchIncludeRequest", "TRITONBACKEND_ModelBatchInitialize",
                   "TRITONBACKEND_ModelBatchFinalize", "TRITONBACKEND_ModelBatcherInitialize",
                   "TRITONBACKEND_ModelBatcherFinalize")


@_meta("TR361", "batch-strategy-path", E, "TRITON_BATCH_STRATEGY_PATH is set with sequence batching, names a missing "
       "file or one that is not a loadable library, or a library defining only some of the 5 custom batching functions.",
       "Custom batching libraries are loaded with the model (dlopen) and must define all of TRITONBACKEND_ModelBatch"
       "IncludeRequest/Initialize/Finalize and TRITONBACKEND_ModelBatcherInitialize/Finalize, or none (then the "
       "default batching is used). tritonserver 2.51 never finishes loading a model whose library defines only some.",
       "remove it, fix the path, or define all five functions",
       "core/src/backend_model.cc TritonModel::Create / SetBatchingStrategy (dlopen; 'If one custom batching function "
       "is defined, all must be'); CORE-BE-05/06",
       'parameters { key: "TRITON_BATCH_STRATEGY_PATH" value { string_value: "/nope.so" } }')
def batch_strategy(ctx):
    cfg = ctx.config
    if cfg is None or "TRITON_BATCH_STRATEGY_PATH" not in cfg.parameters:
        return
    path = cfg.parameters["TRITON_BATCH_STRATEGY_PATH"].string_value
    if cfg.HasField("sequence_batching"):
        yield ("parameters",), "TRITON_BATCH_STRATEGY_PATH cannot be specified with sequence batcher, using default batching strategy"
        return
    if not __import__("os").path.exists(path):
        yield ("parameters",), f"Batching library path not found: {path}"
        return
    from tritonrepo.validate.elf import dlopen_error, dynamic_symbols  # noqa: PLC0415

    error = dlopen_error(path)
    if error is not None:
        yield ("parameters",), f"unable to load shared library: {path}: {error}"
        return
    symbols = dynamic_symbols(path)
    defined = [f for f in BATCH_FUNCTIONS if symbols is not None and f in symbols[0]]
    if defined and len(defined) < len(BATCH_FUNCTIONS):
        yield ("parameters",), f"{path} does not define all required custom batching functions for model {ctx.model_name}"


@_meta("TR318", "sequence-control-reused", E, "One control tensor name is used by two control_input entries.",
       "Each control tensor carries one control kind; the scheduler cannot write two signals into one tensor.",
       "give every control_input its own tensor name",
       "core/src/model_config_utils.cc Get*SequenceControlProperties; CORE-SEQ-02",
       'control_input [ { name: "C" control [ { kind: CONTROL_SEQUENCE_START ... } ] }, { name: "C" control [ { kind: CONTROL_SEQUENCE_END ... } ] } ]')
def seq_reused(ctx):
    cfg = ctx.config
    if cfg is None or not cfg.HasField("sequence_batching"):
        return
    # Triton looks up each kind in order START, END, READY, CORRID and refuses a name already seen for another kind
    seen: dict[str, int] = {}
    for kind in (_KINDS.CONTROL_SEQUENCE_START, _KINDS.CONTROL_SEQUENCE_END, _KINDS.CONTROL_SEQUENCE_READY,
                 _KINDS.CONTROL_SEQUENCE_CORRID):
        for i, ci in enumerate(cfg.sequence_batching.control_input):
            if not ci.name or not any(c.kind == kind for c in ci.control):
                continue
            if ci.name in seen and seen[ci.name] != i:
                yield ("sequence_batching", 0, "control_input", i), (
                    f"sequence batching control tensor '{ci.name}' is specified for multiple control kinds for {ctx.model_name}")
                return
            seen[ci.name] = i


_DTYPE_SIZE = {mc.TYPE_BOOL: 1, mc.TYPE_UINT8: 1, mc.TYPE_UINT16: 2, mc.TYPE_UINT32: 4, mc.TYPE_UINT64: 8,
               mc.TYPE_INT8: 1, mc.TYPE_INT16: 2, mc.TYPE_INT32: 4, mc.TYPE_INT64: 8, mc.TYPE_FP16: 2,
               mc.TYPE_FP32: 4, mc.TYPE_FP64: 8, mc.TYPE_BF16: 2}


@_meta("TR319", "implicit-state", E, "A sequence_batching state's initial_state does not fit the state: data type, rank, dims, name, data.",
       "The sequence batcher builds the initial state tensor when the model loads.",
       "give one initial_state with a name, the state's data_type and dims (no -1), and zero_data or a data_file",
       "core/src/sequence_batch_scheduler/sequence_batch_scheduler.cc Create / GenerateInitialStateData; CORE-STATE-01..03",
       'state [ { input_name: "S" output_name: "S_OUT" data_type: TYPE_FP32 dims: [ 4 ] initial_state { data_type: TYPE_INT32 dims: [ 4 ] zero_data: true name: "s" } } ]')
def implicit_state(ctx):
    cfg = ctx.config
    if cfg is None or not cfg.HasField("sequence_batching"):
        return
    names: set[str] = set()
    for i, st in enumerate(cfg.sequence_batching.state):
        where = ("sequence_batching", 0, "state", i)
        n = st.input_name
        if len(st.initial_state) > 1:
            yield where, (f"initial_state field for state input '{n}' must contain exactly one or zero element. Found "
                          f"'{len(st.initial_state)}' elements.")
            return
        if not len(st.initial_state):
            continue
        init = st.initial_state[0]
        if not init.name:
            yield where, f"Field 'name' must be set when using initial_state for state input '{n}'."
            return
        if n in names:
            yield where, f"State input name '{n}' specified more than once."
            return
        names.add(n)
        if init.data_type != st.data_type:
            yield where, f"The data type used for 'initial_state' field of state '{n}' does not match the state data type."
            return
        if len(init.dims) != len(st.dims):
            yield where, (f"Number of dimensions in 'initial_state' doesn't match the size of 'state' dimensions for "
                          f"state input '{n}'. {len(init.dims)} != {len(st.dims)}")
            return
        for a, b in zip(init.dims, st.dims):
            if a == -1:
                yield where, f"'initial_state' field for state input name '{n}' contains variable dimensions."
                return
            if b != -1 and a != b:
                yield where, f"'initial_state' dim for input name '{n}' doesn't match 'state' dim description. {a} != {b}"
                return
        which = init.WhichOneof("state_data")
        if which is None:
            yield where, f"initial_state setting expects state'{n}' to have state_data set"
            return
        if which == "data_file":
            path = ctx.dir / "initial_state" / init.data_file
            if not path.is_file():
                yield where, f"failed to open text file for read {path}: No such file or directory"
                return
            need = (_count(init.dims) or 0) * _DTYPE_SIZE.get(init.data_type, 0)
            if init.data_type != mc.TYPE_STRING and path.stat().st_size < need:
                yield where, (f"initial_state setting expects {need} bytes, but the data provided from "
                              f"{init.data_file}only has {path.stat().st_size} bytes.")
                return


@_meta("TR343", "instance-group-gpu-id", E, "An instance group lists a negative GPU id.",
       "Triton accepts only the ids of GPUs it can see (never a negative one).", "list existing GPU ids (0, 1, ...)",
       "core/src/model_config_utils.cc ValidateInstanceGroup (l.1693); CORE-IG-04", "instance_group { kind: KIND_GPU gpus: [ -1 ] }")
def ig_gpu_id(ctx):
    cfg = ctx.config
    if cfg is None or cfg.platform == "ensemble":
        return
    for i, g in enumerate(cfg.instance_group):
        if g.kind not in (mc.ModelInstanceGroup.KIND_GPU, mc.ModelInstanceGroup.KIND_AUTO):
            continue
        for gpu in g.gpus:
            if gpu < 0:
                gname = g.name or f"{ctx.model_name}_{i}"
                # the list of usable GPUs that ends the message depends on the host
                yield ("instance_group", i, "gpus"), (
                    f"instance group {gname} of model {ctx.model_name} specifies invalid or unsupported gpu id {gpu}. "
                    "GPUs with at least the minimum required CUDA compute compatibility of 6.000000 are: ")
                return
