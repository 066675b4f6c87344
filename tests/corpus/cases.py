"""The validation corpus: small repositories that each break exactly one rule, and valid edge cases.

Every case is a base repository (one Python-backend identity model ``m``, or an ensemble ``ens`` over it) plus
a mutation. ``expect`` is the set of error codes ``tritonrepo validate`` must report (empty: the repository
loads). tests/test_validate_corpus.py checks the offline verdicts; tests/test_validate_server.py checks that the
real Triton server agrees (loads / does not load). ``hangs`` marks cases where the 2.51 server never finishes
loading (the Python stub dies before its handshake), judged by a timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MODEL_PY = '''import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        pass

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x)]))
        return responses
'''

CONFIG = '''name: "m"
backend: "python"
max_batch_size: 4
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
instance_group [ { kind: KIND_CPU count: 1 } ]
'''

ENSEMBLE = '''name: "ens"
platform: "ensemble"
max_batch_size: 4
input [ { name: "IN" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 4 ] } ]
ensemble_scheduling {
  step [ { model_name: "m" model_version: -1 input_map { key: "INPUT0" value: "IN" } output_map { key: "OUTPUT0" value: "OUT" } } ]
}
'''


@dataclass
class Case:
    """One repository of the corpus."""

    id: str
    expect: set[str]
    files: dict[str, str | bytes | None] = field(default_factory=dict)
    ensemble: bool = False
    hangs: bool = False
    #: judged in an explicit-mode server of its own, with a 60 s load limit: the 2.51 server sometimes crashes on
    #: this load (SIGSEGV just after "failed to run warmup sample", about 1 load in 4 on a busy machine, none in 8 on
    #: a quiet one; before tests/corpus/runner.py watched the process this looked like a load never answered, the
    #: stubs holding the connection). Either way the model is not served: the verdict is compared always, the
    #: message when the server answered.
    own_server: bool = False
    #: the server's own text for the error (in its load answer or log), also the offline finding's message
    message: str = ""
    #: ``tritonserver`` flags the verdict is for
    server_args: tuple[str, ...] = ()
    #: False for checks the server here cannot run (native ONNX Runtime backend, GPUs, TensorRT); ``source`` then
    #: cites the line that emits the message
    runs_here: bool = True
    source: str = ""
    #: the case compiles a small C shared library (``c_library``): skipped where no C compiler is installed
    needs_cc: bool = False
    #: ids of docs/triton-load-rules.md this case exercises beyond those its recorded message shows (rules without a
    #: message, cases judged from the source); tests/corpus/coverage.py maps every rule to its cases
    rules: tuple[str, ...] = ()

    def server_options(self):
        """The :class:`ServerOptions` of ``server_args`` (the offline verdict is for the same server flags)."""
        from tritonrepo.validate import ServerOptions  # noqa: PLC0415

        kwargs = {}
        for arg in self.server_args:
            flag, _, value = arg.partition("=")
            if flag == "--repoagent-directory":
                kwargs["repoagent_directory"] = Path(value)
            elif flag == "--disable-auto-complete-config":
                kwargs["disable_auto_complete_config"] = True
            else:
                raise ValueError(f"{self.id}: no ServerOptions for {arg}")
        return ServerOptions(**kwargs)

    def build(self, root: Path) -> Path:
        """Write the repository under ``root`` (``None`` deletes a base file; a path ending in ``/`` is a folder)."""
        files: dict[str, str | bytes | None] = {"m/config.pbtxt": CONFIG, "m/1/model.py": MODEL_PY}
        if self.ensemble:
            files.update({"ens/config.pbtxt": ENSEMBLE, "ens/1/": ""})
        files.update(self.files)
        for rel, content in files.items():
            path = root / rel
            if content is None:
                continue
            if rel.endswith("/"):
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if callable(content):
                content = content()
            if isinstance(content, str):
                content = content.replace("<REPO>", str(root.resolve()))
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return root


def onnx_identity(shape: list[int]):
    """A builder of a one-node ONNX graph ``OUTPUT0 = Identity(INPUT0)``, FP32 of ``shape`` (-1: a symbolic dim)."""

    def build() -> bytes:
        from onnx import TensorProto, helper  # noqa: PLC0415

        dims = ["batch" if d == -1 else d for d in shape]
        graph = helper.make_graph(
            [helper.make_node("Identity", ["INPUT0"], ["OUTPUT0"])], "g",
            [helper.make_tensor_value_info("INPUT0", TensorProto.FLOAT, dims)],
            [helper.make_tensor_value_info("OUTPUT0", TensorProto.FLOAT, dims)])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()

    return build


_LIBRARIES: dict[str, bytes] = {}


def c_library(source: str):
    """A builder of a shared library compiled from C ``source`` with the system's ``cc`` (built once per run)."""

    def build() -> bytes:
        if source not in _LIBRARIES:
            import shutil  # noqa: PLC0415
            import subprocess  # noqa: PLC0415
            import tempfile  # noqa: PLC0415

            cc = shutil.which("cc") or shutil.which("gcc")
            if cc is None:
                raise RuntimeError("no C compiler (cc) to build this corpus case's library")
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "lib.c").write_text(source)
                subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", f"{tmp}/lib.so", f"{tmp}/lib.c"], check=True,
                               capture_output=True)
                _LIBRARIES[source] = (Path(tmp) / "lib.so").read_bytes()
        return _LIBRARIES[source]

    return build


#: C sources of custom batching libraries (core/src/backend_model.cc SetBatchingStrategy looks up these 5).
_BATCH_FUNCTIONS = {
    "TRITONBACKEND_ModelBatchIncludeRequest": "(void* r, void* u, int* s) { *s = 1; return 0; }",
    "TRITONBACKEND_ModelBatchInitialize": "(void* b, void** u) { return 0; }",
    "TRITONBACKEND_ModelBatchFinalize": "(void* u) { return 0; }",
    "TRITONBACKEND_ModelBatcherInitialize": "(void** b, void* m) { return 0; }",
    "TRITONBACKEND_ModelBatcherFinalize": "(void* b) { return 0; }",
}
BATCH_LIB_ALL = c_library("".join(f"void* {n}{body}\n" for n, body in _BATCH_FUNCTIONS.items()))
BATCH_LIB_FOUR = c_library("".join(f"void* {n}{body}\n" for n, body in list(_BATCH_FUNCTIONS.items())[:4]))
#: a custom backend: only the one required entry point, no auto-complete (never calls TRITONBACKEND_ModelSetConfig)
CUSTOM_BACKEND = c_library("void* TRITONBACKEND_ModelInstanceExecute(void* i, void** r, unsigned int n) { return 0; }\n")
BATCH_PATH = 'parameters { key: "TRITON_BATCH_STRATEGY_PATH" value { string_value: "<REPO>/m/batching.so" } }\n'
CUSTOM_CONFIG = ('name: "c"\nbackend: "custom"\nmax_batch_size: 0\ninput [ { name: "I" data_type: TYPE_FP32 dims: [ 4 ] } ]\n'
                 'output [ { name: "O" data_type: TYPE_FP32 dims: [ 4 ] } ]\n')


def onnx_graph(inputs: list, outputs: list):
    """A builder of an ONNX graph from ``helper.make_*_value_info`` argument lists (non-tensor types allowed)."""

    def build() -> bytes:
        from onnx import TensorProto, helper  # noqa: PLC0415

        def info(spec):
            name, kind = spec[:2]
            if kind == "tensor":  # (name, "tensor"[, TensorProto type, dims])
                elem, dims = spec[2:] if len(spec) > 2 else (TensorProto.FLOAT, ["batch", 4])
                return helper.make_tensor_value_info(name, elem, dims)
            seq = helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, ["batch", 4]))
            return helper.make_value_info(name, seq)

        nodes = [helper.make_node("SequenceConstruct", [inputs[0][0]], [o]) if k == "sequence" else
                 helper.make_node("Identity", [inputs[0][0]], [o]) for o, k in outputs]
        graph = helper.make_graph(nodes, "g", [info(i) for i in inputs], [info(o) for o in outputs])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()

    return build


def cfg(*edits: tuple[str, str], base: str = CONFIG) -> str:
    """The base config with ``(old, new)`` replacements (old must occur)."""
    text = base
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    return text


def add(extra: str, base: str = CONFIG) -> str:
    return base + extra


def ens(*edits, extra: str = "") -> str:
    return cfg(*edits, base=ENSEMBLE) + extra


MBS = ("max_batch_size: 4", "max_batch_size: 0")
#: the base model served by the ONNX Runtime backend (with an ONNX graph in m/1/model.onnx)
ONNX_CONFIG = CONFIG.replace('backend: "python"', 'backend: "onnxruntime"')
_ORT = "onnxruntime_backend/src/onnxruntime.cc "
#: ORT-16 is never applied: the state block of ValidateOutputs runs only when MemberAsArray("state") fails
_STATE_UNCHECKED = (_ORT + "ModelInstanceState::ValidateOutputs (stored source, commit 9fc8293): the implicit-state "
                    "check is guarded by 'if (sequence_batching.MemberAsArray(\"state\", &states))', true only when "
                    "the call fails (no states): a state whose type differs from its graph output loads (TR508 warns)")
#: a sequence-batching state of the base model, ``%s`` for its initial_state
STATE = 'sequence_batching { state [ { input_name: "IN_STATE" output_name: "OUT_STATE" data_type: TYPE_FP32 dims: [ 4 ] %s } ] }\n'
INIT = 'initial_state { data_type: %s dims: [ %s ] %s name: "s" }'
WARM = 'model_warmup [ { name: "w" batch_size: 1 inputs { key: "%s" value { data_type: %s dims: [ %s ] %s } } } ]\n'
#: a decoupled copy of the base model named ``d``
DECOUPLED = CONFIG.replace('name: "m"', 'name: "d"') + "model_transaction_policy { decoupled: true }\n"
#: the base model with a second input, named ``m2``
TWO_INPUTS = CONFIG.replace('name: "m"', 'name: "m2"').replace(
    'input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]',
    'input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] } ]')
#: ensemble: d -> m
CHAIN = ENSEMBLE.replace(
    'step [ { model_name: "m" model_version: -1 input_map { key: "INPUT0" value: "IN" } output_map { key: "OUTPUT0" value: "OUT" } } ]',
    'step [ { model_name: "d" model_version: -1 input_map { key: "INPUT0" value: "IN" } output_map { key: "OUTPUT0" value: "A" } },\n'
    '         { model_name: "m" model_version: -1 input_map { key: "INPUT0" value: "A" } output_map { key: "OUTPUT0" value: "OUT" } } ]')
#: ensemble: d and e side by side, both into m2
JOIN = ENSEMBLE.replace(
    'step [ { model_name: "m" model_version: -1 input_map { key: "INPUT0" value: "IN" } output_map { key: "OUTPUT0" value: "OUT" } } ]',
    'step [ { model_name: "d" model_version: -1 input_map { key: "INPUT0" value: "IN" } output_map { key: "OUTPUT0" value: "A" } },\n'
    '         { model_name: "e" model_version: -1 input_map { key: "INPUT0" value: "IN" } output_map { key: "OUTPUT0" value: "B" } },\n'
    '         { model_name: "m2" model_version: -1 input_map [ { key: "INPUT0" value: "A" }, { key: "INPUT1" value: "B" } ] '
    'output_map { key: "OUTPUT0" value: "OUT" } } ]')
#: two ensembles calling each other: ens -> m -> ens
CYCLE_M = (ENSEMBLE.replace('name: "ens"', 'name: "m"').replace('model_name: "m"', 'model_name: "ens"')
           .replace('name: "IN"', 'name: "INPUT0"').replace('name: "OUT"', 'name: "OUTPUT0"')
           .replace('key: "INPUT0" value: "IN"', 'key: "IN" value: "INPUT0"').replace('key: "OUTPUT0" value: "OUT"', 'key: "OUT" value: "OUTPUT0"'))
SEQ = "sequence_batching {{ {} }}\n"
START = 'control_input [ { name: "START" control [ { kind: CONTROL_SEQUENCE_START %s } ] } ]'

BROKEN: list[Case] = [
    # TR1xx layout
    Case("hidden-dir-at-root", {"TR101"}, {".ipynb_checkpoints/notes.txt": "x"}),
    Case("name-mismatch", {"TR102"}, {"m/config.pbtxt": cfg(('name: "m"', 'name: "other"'))}),
    Case("name-case-mismatch", {"TR102"}, {"m/config.pbtxt": cfg(('name: "m"', 'name: "M"'))}),
    Case("backend-undetermined", {"TR103"}, {"m/config.pbtxt": cfg(('backend: "python"\n', "")), "m/1/model.py": None,
                                            "m/1/weights.bin": "0"}),
    Case("version-1abc", {"TR106"}, {"m/1/model.py": None, "m/1abc/model.py": MODEL_PY}, hangs=True),
    Case("version-plus-2", {"TR106"}, {"m/1/model.py": None, "m/+2/model.py": MODEL_PY}, hangs=True),
    Case("no-version-folder", {"TR107"}, {"m/1/model.py": None}),
    Case("only-leading-zero-version", {"TR107"}, {"m/1/model.py": None, "m/01/model.py": MODEL_PY}),
    Case("only-non-numeric-version", {"TR107"}, {"m/1/model.py": None, "m/v1/model.py": MODEL_PY}),
    Case("specific-version-missing", {"TR107"}, {"m/config.pbtxt": add("version_policy { specific { versions: [ 3 ] } }\n")}),
    Case("latest-zero-versions", {"TR107"}, {"m/config.pbtxt": add("version_policy { latest { num_versions: 0 } }\n")}),
    Case("model-py-missing", {"TR108"}, {"m/1/model.py": None, "m/1/other.py": MODEL_PY}, hangs=True),
    Case("default-model-filename-missing", {"TR108"}, {"m/config.pbtxt": add('default_model_filename: "main.py"\n')}, hangs=True),
    Case("version-minus-1", {"TR106"}, {"m/1/model.py": None, "m/-1/model.py": MODEL_PY}, hangs=True),
    Case("whitespace-in-name", {"TR109"}, {"m/config.pbtxt": None, "m/1/model.py": None,
                                          "my m/config.pbtxt": cfg(('name: "m"', 'name: "my m"')), "my m/1/model.py": MODEL_PY},
         hangs=True),
    # TR2xx syntax
    Case("unknown-field", {"TR201"}, {"m/config.pbtxt": add("max_batch: 4\n")}),
    Case("bad-enum", {"TR201"}, {"m/config.pbtxt": cfg(("TYPE_FP32 dims: [ 4 ] } ]\noutput", "TYPE_FLOAT32 dims: [ 4 ] } ]\noutput"))}),
    Case("repeated-scalar-field", {"TR201"}, {"m/config.pbtxt": add("max_batch_size: 8\n")}),
    Case("two-schedulers", {"TR201"}, {"m/config.pbtxt": add("dynamic_batching { }\nsequence_batching { }\n")}),
    Case("missing-brace", {"TR201"}, {"m/config.pbtxt": cfg(("instance_group [ { kind: KIND_CPU count: 1 } ]", "instance_group [ { kind: KIND_CPU count: 1 ]"))}),
    Case("two-version-policies", {"TR201"}, {"m/config.pbtxt": add("version_policy { latest { num_versions: 1 } all { } }\n")}),
    Case("string-not-quoted", {"TR201"}, {"m/config.pbtxt": cfg(('backend: "python"', "backend: python"))}),
    Case("model-metrics-before-2.52", {"TR201"}, {"m/config.pbtxt": add("model_metrics { }\n")}),
    # TR3xx core
    Case("unknown-platform-no-backend", {"TR301"}, {"m/config.pbtxt": cfg(('backend: "python"', 'platform: "custom_thing"')),
                                                   "m/1/model.py": None, "m/1/weights.bin": "0"}),
    Case("platform-backend-mismatch", {"TR302"}, {"m/config.pbtxt": cfg(('backend: "python"', 'backend: "onnxruntime"\nplatform: "tensorrt_plan"'))}),
    Case("negative-max-batch-size", {"TR304"}, {"m/config.pbtxt": cfg(("max_batch_size: 4", "max_batch_size: -1"))}),
    Case("preferred-zero", {"TR305"}, {"m/config.pbtxt": add("dynamic_batching { preferred_batch_size: [ 0 ] }\n")}),
    Case("preferred-too-large", {"TR306"}, {"m/config.pbtxt": add("dynamic_batching { preferred_batch_size: [ 8 ] }\n")}),
    Case("preferred-without-batching", {"TR306"}, {"m/config.pbtxt": cfg(MBS, ("dims: [ 4 ]", "dims: [ -1, 4 ]")) + "dynamic_batching { preferred_batch_size: [ 1 ] }\n"}),
    Case("default-priority-out-of-range", {"TR307"}, {"m/config.pbtxt": add("dynamic_batching { priority_levels: 2 default_priority_level: 3 }\n")}),
    Case("default-priority-zero", {"TR307"}, {"m/config.pbtxt": add("dynamic_batching { priority_levels: 2 }\n")}),
    Case("queue-policy-level", {"TR308"}, {"m/config.pbtxt": add("dynamic_batching { priority_levels: 2 default_priority_level: 1 priority_queue_policy { key: 5 value { } } }\n")}),
    Case("preserve-ordering-priorities", {"TR309"}, {"m/config.pbtxt": add("dynamic_batching { preserve_ordering: true priority_levels: 2 default_priority_level: 1 }\n")}),
    Case("preserve-ordering-delay", {"TR310"}, {"m/config.pbtxt": add("dynamic_batching { preserve_ordering: true default_queue_policy { timeout_action: DELAY default_timeout_microseconds: 100 } }\n")}),
    Case("seq-control-no-name", {"TR311"}, {"m/config.pbtxt": add(SEQ.format('control_input [ { control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] } ]'))}),
    Case("seq-two-start", {"TR312"}, {"m/config.pbtxt": add(SEQ.format(START % "int32_false_true: [ 0, 1 ]" + " " + START.replace('"START"', '"START2"') % "int32_false_true: [ 0, 1 ]"))}),
    Case("seq-start-no-values", {"TR313"}, {"m/config.pbtxt": add(SEQ.format(START % ""))}),
    Case("seq-start-one-value", {"TR313"}, {"m/config.pbtxt": add(SEQ.format(START % "int32_false_true: [ 1 ]"))}),
    Case("seq-start-two-lists", {"TR313"}, {"m/config.pbtxt": add(SEQ.format(START % "int32_false_true: [ 0, 1 ] fp32_false_true: [ 0, 1 ]"))}),
    Case("seq-corrid-values", {"TR314"}, {"m/config.pbtxt": add(SEQ.format('control_input [ { name: "CID" control [ { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 int32_false_true: [ 0, 1 ] } ] } ]'))}),
    Case("seq-corrid-fp32", {"TR314"}, {"m/config.pbtxt": add(SEQ.format('control_input [ { name: "CID" control [ { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_FP32 } ] } ]'))}),
    Case("seq-oldest-too-large", {"TR315"}, {"m/config.pbtxt": add(SEQ.format("oldest { preferred_batch_size: [ 16 ] }"))}),
    Case("seq-oldest-zero", {"TR315"}, {"m/config.pbtxt": add(SEQ.format("oldest { preferred_batch_size: [ 0 ] }"))}),
    Case("seq-slot-utilization", {"TR316"}, {"m/config.pbtxt": add(SEQ.format("direct { minimum_slot_utilization: 1.5 }"))}),
    Case("cache-with-sequence", {"TR317"}, {"m/config.pbtxt": add("response_cache { enable: true }\nsequence_batching { }\n")}),
    Case("cache-with-decoupled", {"TR317"}, {"m/config.pbtxt": add("response_cache { enable: true }\nmodel_transaction_policy { decoupled: true }\n")}),
    Case("input-no-name", {"TR320"}, {"m/config.pbtxt": cfg(('{ name: "INPUT0" data_type', "{ data_type"))}),
    Case("input-no-data-type", {"TR320"}, {"m/config.pbtxt": cfg(('name: "INPUT0" data_type: TYPE_FP32', 'name: "INPUT0"'))}),
    Case("input-no-dims", {"TR320"}, {"m/config.pbtxt": cfg(('TYPE_FP32 dims: [ 4 ] } ]\noutput', "TYPE_FP32 } ]\noutput"))}),
    Case("output-no-dims", {"TR320"}, {"m/config.pbtxt": cfg(('name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ]', 'name: "OUTPUT0" data_type: TYPE_FP32'))}),
    Case("dim-zero", {"TR320"}, {"m/config.pbtxt": cfg(('TYPE_FP32 dims: [ 4 ] } ]\noutput', "TYPE_FP32 dims: [ 0 ] } ]\noutput"))}),
    Case("dim-minus-two", {"TR320"}, {"m/config.pbtxt": cfg(('TYPE_FP32 dims: [ 4 ] } ]\noutput', "TYPE_FP32 dims: [ -2 ] } ]\noutput"))}),
    Case("output-dim-zero", {"TR320"}, {"m/config.pbtxt": cfg(('name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ]', 'name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4, 0 ]'))}),
    Case("empty-reshape-no-batching", {"TR321"}, {"m/config.pbtxt": cfg(MBS, ("dims: [ 4 ] } ]\noutput", "dims: [ 1 ] reshape { shape: [ ] } } ]\noutput"))}),
    Case("reshape-count", {"TR321"}, {"m/config.pbtxt": cfg(("dims: [ 4 ] } ]\noutput", "dims: [ 4 ] reshape { shape: [ 3 ] } } ]\noutput"))}),
    Case("reshape-dim-zero", {"TR321"}, {"m/config.pbtxt": cfg(("dims: [ 4 ] } ]\noutput", "dims: [ 4 ] reshape { shape: [ 0 ] } } ]\noutput"))}),
    Case("reshape-variable-count", {"TR321"}, {"m/config.pbtxt": cfg(("dims: [ 4 ] } ]\noutput", "dims: [ -1, 4 ] reshape { shape: [ -1, -1 ] } } ]\noutput"))}),
    Case("format-nchw-dims", {"TR322"}, {"m/config.pbtxt": cfg(("data_type: TYPE_FP32 dims: [ 4 ] } ]\noutput", "data_type: TYPE_FP32 format: FORMAT_NCHW dims: [ 4 ] } ]\noutput"))}),
    Case("shape-tensor-python", {"TR323"}, {"m/config.pbtxt": cfg(("dims: [ 4 ] } ]\noutput", "dims: [ 4 ] is_shape_tensor: true } ]\noutput"))}),
    Case("batch-input-no-source", {"TR330"}, {"m/config.pbtxt": add('batch_input [ { kind: BATCH_ELEMENT_COUNT target_name: "N" data_type: TYPE_INT32 } ]\n')}),
    Case("batch-input-fp16", {"TR330"}, {"m/config.pbtxt": add('batch_input [ { kind: BATCH_ELEMENT_COUNT target_name: "N" data_type: TYPE_FP16 source_input: "INPUT0" } ]\n')}),
    Case("batch-input-unknown-source", {"TR330"}, {"m/config.pbtxt": add('batch_input [ { kind: BATCH_ELEMENT_COUNT target_name: "N" data_type: TYPE_INT32 source_input: "NOPE" } ]\n')}),
    Case("batch-output-unknown-target", {"TR331"}, {"m/config.pbtxt": add('batch_output [ { target_name: "NOPE" kind: BATCH_SCATTER_WITH_INPUT_SHAPE source_input: "INPUT0" } ]\n')}),
    Case("batch-output-twice", {"TR331"}, {"m/config.pbtxt": add('batch_output [ { target_name: [ "OUTPUT0", "OUTPUT0" ] kind: BATCH_SCATTER_WITH_INPUT_SHAPE source_input: "INPUT0" } ]\n')}),
    Case("cpu-group-with-gpus", {"TR340"}, {"m/config.pbtxt": cfg(("kind: KIND_CPU count: 1", "kind: KIND_CPU count: 1 gpus: [ 0 ]"))}),
    Case("model-group-with-gpus", {"TR340"}, {"m/config.pbtxt": cfg(("kind: KIND_CPU count: 1", "kind: KIND_MODEL count: 1 gpus: [ 0 ]"))}),
    Case("profile-not-tensorrt", {"TR342"}, {"m/config.pbtxt": cfg(("kind: KIND_CPU count: 1", 'kind: KIND_CPU count: 1 profile: [ "0" ]'))}),
    Case("label-file-missing", {"TR350"}, {"m/config.pbtxt": cfg(('name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ]', 'name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] label_filename: "labels.txt"'))}),
    Case("label-files-one-output-twice", {"TR350"}, {"m/config.pbtxt": cfg(('output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]', 'output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] label_filename: "labels.txt" }, { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] label_filename: "labels.txt" } ]')), "m/labels.txt": "a\nb\nc\nd\n"}),
    Case("tensorrt-profile-not-a-number", {"TR342"}, {"m/config.pbtxt": cfg(('backend: "python"', 'platform: "tensorrt_plan"'), ("kind: KIND_CPU count: 1", 'kind: KIND_GPU count: 1 profile: [ "x" ]')), "m/1/model.py": None, "m/1/model.plan": "0"},
         runs_here=False, source="core/src/model_config_utils.cc ValidateInstanceGroup (r24.10 l.1733): '... specifies invalid profile x. The field should contain the string representation of a non-negative integer.'"),
    Case("tensorrt-non-linear-io-dims", {"TR323"}, {"m/config.pbtxt": cfg(('backend: "python"', 'platform: "tensorrt_plan"'), ("dims: [ 4 ] } ]\noutput", "dims: [ 4 ] is_non_linear_format_io: true } ]\noutput")), "m/1/model.py": None, "m/1/model.plan": "0"},
         runs_here=False, source="core/src/model_config_utils.cc ValidateNonLinearFormatIO (r24.10): 'Non-linear IO format input requires 3 dims for m'"),
    Case("warmup-variable-dim", {"TR351"}, {"m/config.pbtxt": add('model_warmup [ { name: "w" batch_size: 1 inputs { key: "INPUT0" value { data_type: TYPE_FP32 dims: [ -1 ] zero_data: true } } } ]\n')}),
    Case("warmup-no-data", {"TR351"}, {"m/config.pbtxt": add('model_warmup [ { name: "w" batch_size: 1 inputs { key: "INPUT0" value { data_type: TYPE_FP32 dims: [ 4 ] } } } ]\n')}),
    Case("warmup-file-missing", {"TR351"}, {"m/config.pbtxt": add('model_warmup [ { name: "w" batch_size: 1 inputs { key: "INPUT0" value { data_type: TYPE_FP32 dims: [ 4 ] input_data_file: "x.bin" } } } ]\n')}),
    Case("warmup-batch-too-large", {"TR352"}, {"m/config.pbtxt": add('model_warmup [ { name: "w" batch_size: 8 inputs { key: "INPUT0" value { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } } } ]\n')}, own_server=True),
    Case("force-cpu-only-value", {"TR360"}, {"m/config.pbtxt": add('parameters { key: "FORCE_CPU_ONLY_INPUT_TENSORS" value { string_value: "maybe" } }\n')}),
    Case("execution-env-missing", {"TR360"}, {"m/config.pbtxt": add('parameters { key: "EXECUTION_ENV_PATH" value { string_value: "/no/such/env.tar.gz" } }\n')}),
    Case("batch-strategy-missing", {"TR361"}, {"m/config.pbtxt": add('parameters { key: "TRITON_BATCH_STRATEGY_PATH" value { string_value: "/no/such/lib.so" } }\n')}),
    Case("batch-strategy-sequence", {"TR361"}, {"m/config.pbtxt": add('sequence_batching { }\nparameters { key: "TRITON_BATCH_STRATEGY_PATH" value { string_value: "/no/such/lib.so" } }\n')}),
    Case("seq-control-reused", {"TR318"}, {"m/config.pbtxt": add(SEQ.format('control_input [ { name: "C" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] }, { name: "C" control [ { kind: CONTROL_SEQUENCE_END int32_false_true: [ 0, 1 ] } ] } ]'))}),
    Case("state-dtype", {"TR319"}, {"m/config.pbtxt": add(STATE % INIT % ("TYPE_INT32", "4", "zero_data: true"))}),
    Case("state-rank", {"TR319"}, {"m/config.pbtxt": add(STATE % INIT % ("TYPE_FP32", "2, 2", "zero_data: true"))}),
    Case("state-variable-dim", {"TR319"}, {"m/config.pbtxt": add(STATE % INIT % ("TYPE_FP32", "-1", "zero_data: true"))}),
    Case("state-dim", {"TR319"}, {"m/config.pbtxt": add(STATE % INIT % ("TYPE_FP32", "3", "zero_data: true"))}),
    Case("state-no-name", {"TR319"}, {"m/config.pbtxt": add(STATE % 'initial_state { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true }')}),
    Case("state-two-initial", {"TR319"}, {"m/config.pbtxt": add(STATE % 'initial_state [ { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true name: "s" }, { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true name: "t" } ]')}),
    Case("state-no-data", {"TR319"}, {"m/config.pbtxt": add(STATE % INIT % ("TYPE_FP32", "4", ""))}),
    Case("state-file-missing", {"TR319"}, {"m/config.pbtxt": add(STATE % INIT % ("TYPE_FP32", "4", 'data_file: "s.bin"'))}),
    Case("state-file-too-small", {"TR319"}, {"m/config.pbtxt": add(STATE % INIT % ("TYPE_FP32", "4", 'data_file: "s.bin"')), "m/initial_state/s.bin": bytes(8)}),
    Case("gpu-id-negative", {"TR343"}, {"m/config.pbtxt": cfg(("kind: KIND_CPU count: 1", "kind: KIND_GPU count: 1 gpus: [ -1 ]"))}),
    Case("warmup-file-too-small", {"TR351"}, {"m/config.pbtxt": add(WARM % ("INPUT0", "TYPE_FP32", "4", 'input_data_file: "x.bin"')), "m/warmup/x.bin": bytes(8)}),
    Case("warmup-input-missing", {"TR352"}, {"m/config.pbtxt": add(WARM % ("OTHER", "TYPE_FP32", "4", "zero_data: true"))}),
    Case("warmup-no-inputs", {"TR352"}, {"m/config.pbtxt": add('model_warmup [ { name: "w" batch_size: 1 } ]\n')}),
    Case("warmup-wrong-dims", {"TR352"}, {"m/config.pbtxt": add(WARM % ("INPUT0", "TYPE_FP32", "5", "zero_data: true"))}),
    Case("warmup-wrong-dtype", {"TR352"}, {"m/config.pbtxt": add(WARM % ("INPUT0", "TYPE_INT32", "4", "zero_data: true"))}),
    Case("unknown-backend", {"TR370"}, {"m/config.pbtxt": cfg(('backend: "python"', 'backend: "nosuch"'))}),
    Case("runtime-library-missing", {"TR371"}, {"m/config.pbtxt": add('runtime: "libnope.so"\n')}),
    Case("runtime-absolute-missing", {"TR371"}, {"m/config.pbtxt": add('runtime: "/usr/lib/libnope.so"\n')}),
    Case("runtime-model-py-missing", {"TR371"}, {"m/config.pbtxt": cfg(('backend: "python"', 'backend: "nosuch"\nruntime: "model.py"'))}),
    Case("runtime-escapes-model-dir", {"TR372"}, {"m/config.pbtxt": add('runtime: "../config.pbtxt"\n')}),
    Case("repo-agent-unknown", {"TR373"}, {"m/config.pbtxt": add('model_repository_agents { agents [ { name: "nope" } ] }\n')}),
    # TR4xx ensembles
    Case("ensemble-with-backend", {"TR303"}, {"ens/config.pbtxt": ens(('platform: "ensemble"', 'platform: "ensemble"\nbackend: "python"'))}, ensemble=True),
    Case("ensemble-without-scheduling", {"TR401"}, {"ens/config.pbtxt": ENSEMBLE.split("ensemble_scheduling")[0]}, ensemble=True),
    Case("scheduling-on-python-model", {"TR401"}, {"m/config.pbtxt": add('ensemble_scheduling { step [ { model_name: "x" } ] }\n')}),
    Case("ensemble-instance-group", {"TR402"}, {"ens/config.pbtxt": ens(extra="instance_group [ { count: 1 } ]\n")}, ensemble=True),
    Case("ensemble-warmup", {"TR402"}, {"ens/config.pbtxt": ens(extra='model_warmup [ { name: "w" batch_size: 1 inputs { key: "IN" value { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } } } ]\n')}, ensemble=True),
    Case("ensemble-no-steps", {"TR403"}, {"ens/config.pbtxt": ENSEMBLE.split("ensemble_scheduling")[0] + "ensemble_scheduling { }\n"}, ensemble=True),
    Case("step-no-input-map", {"TR403"}, {"ens/config.pbtxt": ens(('input_map { key: "INPUT0" value: "IN" } ', ""))}, ensemble=True),
    Case("step-no-output-map", {"TR403"}, {"ens/config.pbtxt": ens(('output_map { key: "OUTPUT0" value: "OUT" } ', ""))}, ensemble=True),
    Case("step-no-model-name", {"TR403"}, {"ens/config.pbtxt": ens(('model_name: "m" ', ""))}, ensemble=True),
    Case("tensor-written-twice", {"TR404"}, {"ens/config.pbtxt": ens(("} ]\n}", '}, { model_name: "m" model_version: -1 input_map { key: "INPUT0" value: "IN" } output_map { key: "OUTPUT0" value: "OUT" } } ]\n}'))}, ensemble=True),
    Case("ensemble-input-unused", {"TR404"}, {"ens/config.pbtxt": ens(('input [ { name: "IN" data_type: TYPE_FP32 dims: [ 4 ] } ]', 'input [ { name: "IN" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "EXTRA" data_type: TYPE_FP32 dims: [ 4 ] } ]'))}, ensemble=True),
    Case("ensemble-output-not-written", {"TR404"}, {"ens/config.pbtxt": ens(('output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 4 ] } ]', 'output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "MORE" data_type: TYPE_FP32 dims: [ 4 ] } ]'))}, ensemble=True),
    Case("intermediate-unused", {"TR404"}, {"ens/config.pbtxt": ens(("} ]\n}", '}, { model_name: "m" model_version: -1 input_map { key: "INPUT0" value: "IN" } output_map { key: "OUTPUT0" value: "DANGLING" } } ]\n}'))}, ensemble=True),
    Case("output-depends-on-unconnected", {"TR404"}, {"ens/config.pbtxt": ens(('value: "IN" } output_map', 'value: "NOWHERE" } output_map'))}, ensemble=True),
    Case("step-model-unknown", {"TR405"}, {"ens/config.pbtxt": ens(('model_name: "m"', 'model_name: "nope"'))}, ensemble=True),
    Case("ensemble-self-reference", {"TR405"}, {"ens/config.pbtxt": ens(("} ]\n}", '}, { model_name: "ens" model_version: -1 input_map { key: "IN" value: "IN" } output_map { key: "OUT" value: "OUT2" } } ]\n}'), ('output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 4 ] } ]', 'output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "OUT2" data_type: TYPE_FP32 dims: [ 4 ] } ]'))}, ensemble=True),
    Case("step-model-fails", {"TR405", "TR304"}, {"m/config.pbtxt": cfg(("max_batch_size: 4", "max_batch_size: -1"))}, ensemble=True),
    Case("pinned-version-missing", {"TR405"}, {"ens/config.pbtxt": ens(("model_version: -1", "model_version: 2"))}, ensemble=True),
    Case("pinned-version-zero", {"TR405"}, {"ens/config.pbtxt": ens(("model_version: -1", "model_version: 0"))}, ensemble=True),
    Case("input-map-unknown-input", {"TR406"}, {"ens/config.pbtxt": ens(('key: "INPUT0"', 'key: "WRONG"'))}, ensemble=True),
    Case("input-not-mapped", {"TR406"}, {"m/config.pbtxt": cfg(('input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]', 'input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] } ]'))}, ensemble=True),
    Case("output-map-unknown-output", {"TR406"}, {"ens/config.pbtxt": ens(('key: "OUTPUT0"', 'key: "WRONG"'))}, ensemble=True),
    Case("ensemble-dtype-mismatch", {"TR406"}, {"ens/config.pbtxt": ens(('input [ { name: "IN" data_type: TYPE_FP32', 'input [ { name: "IN" data_type: TYPE_INT32'))}, ensemble=True),
    Case("ensemble-shape-mismatch", {"TR406"}, {"ens/config.pbtxt": ens(('output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 4 ] } ]', 'output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 5 ] } ]'))}, ensemble=True),
    Case("ensemble-batch-too-large", {"TR406"}, {"ens/config.pbtxt": ens(("max_batch_size: 4", "max_batch_size: 8"))}, ensemble=True),
    Case("ensemble-no-version", {"TR107"}, {"ens/1/": None}, ensemble=True),
    Case("ensemble-cycle-of-two", {"TR405"}, {"m/1/model.py": None, "m/config.pbtxt": CYCLE_M, "m/1/": ""}, ensemble=True),
    Case("ensemble-input-dim-zero", {"TR406"}, {"ens/config.pbtxt": ens(('input [ { name: "IN" data_type: TYPE_FP32 dims: [ 4 ] } ]', 'input [ { name: "IN" data_type: TYPE_FP32 dims: [ 0 ] } ]'))}, ensemble=True),
    Case("ensemble-output-dim-zero", {"TR406"}, {"ens/config.pbtxt": ens(('output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 4 ] } ]', 'output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 0 ] } ]'))}, ensemble=True),
    Case("ensemble-two-decoupled-into-one-step", {"TR407"}, {"d/config.pbtxt": DECOUPLED, "d/1/model.py": MODEL_PY, "e/config.pbtxt": DECOUPLED.replace('name: "d"', 'name: "e"'), "e/1/model.py": MODEL_PY, "m2/config.pbtxt": TWO_INPUTS, "m2/1/model.py": MODEL_PY, "ens/config.pbtxt": JOIN}, ensemble=True),
    Case("ensemble-decoupled-and-request-into-one-step", {"TR407"}, {"d/config.pbtxt": DECOUPLED, "d/1/model.py": MODEL_PY, "e/config.pbtxt": CONFIG.replace('name: "m"', 'name: "e"'), "e/1/model.py": MODEL_PY, "m2/config.pbtxt": TWO_INPUTS, "m2/1/model.py": MODEL_PY, "ens/config.pbtxt": JOIN}, ensemble=True),
    # TR5xx ONNX (the native ONNX Runtime backend's checks; the server here serves ONNX through a Python-based backend)
    Case("onnx-no-batch-dim-auto-complete", {"TR503"}, {"m/config.pbtxt": 'name: "m"\nbackend: "onnxruntime"\nmax_batch_size: 4\n',
                                                      "m/1/model.py": None, "m/1/model.onnx": onnx_identity([1, 4])},
         runs_here=False, source="onnxruntime_backend/src/onnxruntime.cc AutoCompleteMaxBatch (r24.10 l.1137): 'autofill failed for model ...'"),
    Case("onnx-dtype-mismatch", {"TR501"}, {"m/config.pbtxt": cfg(('backend: "python"', 'backend: "onnxruntime"'), ('name: "OUTPUT0" data_type: TYPE_FP32', 'name: "OUTPUT0" data_type: TYPE_FP16')),
                                            "m/1/model.py": None, "m/1/model.onnx": onnx_identity([-1, 4])},
         runs_here=False, source="onnxruntime_backend/src/onnxruntime.cc ValidateOutputs (r24.10): 'unable to load model ..., configuration expects datatype ...'"),
    Case("onnx-execution-mode", {"TR504"}, {"m/config.pbtxt": cfg(('backend: "python"', 'backend: "onnxruntime"')) + 'parameters { key: "execution_mode" value { string_value: "2" } }\n',
                                            "m/1/model.py": None, "m/1/model.onnx": onnx_identity([-1, 4])},
         runs_here=False, source="onnxruntime_backend/src/onnxruntime.cc ModelState::ModelState (r24.10): 'Invalid configuration value provided. Expected values for  execution_mode are 0 or 1 ...'"),
    Case("onnx-unknown-gpu-accelerator", {"TR504"}, {"m/config.pbtxt": cfg(('backend: "python"', 'backend: "onnxruntime"'), ("kind: KIND_CPU", "kind: KIND_GPU")) + 'optimization { execution_accelerators { gpu_execution_accelerator [ { name: "unknown_gpu" } ] } }\n',
                                                     "m/1/model.py": None, "m/1/model.onnx": onnx_identity([-1, 4])},
         runs_here=False, source="onnxruntime_backend/src/onnxruntime.cc ModelState::LoadModel (r24.10): 'unknown Execution Accelerator ... is requested' (GPU hosts)"),
    Case("onnx-ragged-input-not-flat", {"TR505"}, {"m/config.pbtxt": cfg(('backend: "python"', 'backend: "onnxruntime"'), ('dims: [ 4 ] } ]\noutput', 'dims: [ 4 ] allow_ragged_batch: true } ]\noutput')),
                                                   "m/1/model.py": None, "m/1/model.onnx": onnx_identity([-1, 4])},
         runs_here=False, source="onnxruntime_backend/src/onnxruntime.cc ValidateInputs (r24.10): '... expects model provides input with shape [-1]  for ragged input ...'"),
    Case("onnx-sequence-output", {"TR506"}, {"m/config.pbtxt": cfg(('backend: "python"', 'backend: "onnxruntime"')),
                                             "m/1/model.py": None, "m/1/model.onnx": onnx_graph([("INPUT0", "tensor")], [("OUTPUT0", "sequence")])},
         runs_here=False, source="onnxruntime_backend/src/onnxruntime_utils.cc InputOutputInfos (r24.10 l.204): \"Unsupported ONNX Type "
         "'ONNX_TYPE_SEQUENCE' for I/O 'OUTPUT0', expected 'ONNX_TYPE_TENSOR'.\" (ONNXType names of onnxruntime_c_api.h)"),
    Case("onnx-sequence-control-missing", {"TR507"}, {"m/config.pbtxt": cfg(('backend: "python"', 'backend: "onnxruntime"')) + SEQ.format(START % "int32_false_true: [ 0, 1 ]"),
                                                      "m/1/model.py": None, "m/1/model.onnx": onnx_identity([-1, 4])},
         runs_here=False, source="onnxruntime_backend/src/onnxruntime.cc ModelInstanceState::ValidateBooleanSequenceControl (r24.10): "
         "\"configuration specified sequence control 'START', but model does not provide that input\"; ORT-15"),
    Case("onnx-sequence-control-dims", {"TR507"}, {"m/config.pbtxt": cfg(('backend: "python"', 'backend: "onnxruntime"')) + SEQ.format(START % "int32_false_true: [ 0, 1 ]"),
                                                   "m/1/model.py": None, "m/1/model.onnx": onnx_graph([("INPUT0", "tensor"), ("START", "tensor", 6, ["batch", 2])], [("OUTPUT0", "tensor")])},
         runs_here=False, source="onnxruntime_backend/src/onnxruntime.cc ValidateBooleanSequenceControl (r24.10): \"unable to load model "
         "'m', sequence control 'START' in model has dims [2] but dims [1] is expected\"; ORT-15"),
    Case("onnx-model-file-missing", {"TR108"}, {"m/config.pbtxt": ONNX_CONFIG, "m/1/model.py": None, "m/1/other.onnx": onnx_identity([-1, 4])},
         runs_here=False, rules=("ORT-01",), source=_ORT + "ModelState::LoadModel (r24.10 l.401): \"unable to find '\" + *model_path + \"' for model instance '\" + Name() + \"'\" (ModelState::Name(): the model's name)"),
    Case("onnx-input-count", {"TR501"}, {"m/config.pbtxt": cfg(('input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]', 'input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] } ]'), base=ONNX_CONFIG),
                                         "m/1/model.py": None, "m/1/model.onnx": onnx_identity([-1, 4])},
         runs_here=False, rules=("ORT-05",), source=_ORT + "ValidateInputs (r24.10 l.1632): \"unable to load model 'm', configuration expects 2 inputs, model provides 1\""),
    Case("onnx-optional-input-with-batching", {"TR501"}, {"m/config.pbtxt": cfg(('input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]', 'input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] optional: true } ]'), base=ONNX_CONFIG),
                                                          "m/1/model.py": None, "m/1/model.onnx": onnx_identity([-1, 4])},
         runs_here=False, rules=("ORT-06",), source=_ORT + "ValidateInputs (r24.10): \"unable to load model 'm', optional input 'INPUT1' is not supported for models that support batching\""),
    Case("onnx-unknown-input", {"TR501"}, {"m/config.pbtxt": cfg(('{ name: "INPUT0"', '{ name: "WRONG"'), base=ONNX_CONFIG), "m/1/model.py": None, "m/1/model.onnx": onnx_identity([-1, 4])},
         runs_here=False, rules=("ORT-07",), source="backend/src/backend_common.cc CheckAllowedModelInput (r24.10): \"unexpected inference input 'WRONG', allowed inputs are: INPUT0\""),
    Case("onnx-bf16-output", {"TR501"}, {"m/config.pbtxt": cfg(('name: "OUTPUT0" data_type: TYPE_FP32', 'name: "OUTPUT0" data_type: TYPE_BF16'), base=ONNX_CONFIG), "m/1/model.py": None, "m/1/model.onnx": onnx_identity([-1, 4])},
         runs_here=False, rules=("ORT-08",), source=_ORT + "ValidateOutputs (r24.10): \"unsupported datatype TYPE_BF16 for output 'OUTPUT0' for model 'm'\""),
    Case("onnx-shape-mismatch", {"TR501"}, {"m/config.pbtxt": cfg(('name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ]', 'name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 5 ]'), base=ONNX_CONFIG), "m/1/model.py": None, "m/1/model.onnx": onnx_identity([-1, 4])},
         runs_here=False, rules=("ORT-12",), source="onnxruntime_backend/src/onnxruntime_utils.cc CompareDimsSupported (r24.10): \"model 'm', tensor 'OUTPUT0': the model expects 2 dimensions (shape [-1,4]) but the model configuration specifies 2 dimensions (an initial batch dimension ...)\""),
    Case("onnx-scalar-tensor-dims", {"TR501"}, {"m/config.pbtxt": cfg(MBS, ("dims: [ 4 ]", "dims: [ 2 ]"), base=ONNX_CONFIG), "m/1/model.py": None, "m/1/model.onnx": onnx_identity([])},
         runs_here=False, rules=("ORT-13",), source=_ORT + "ValidateInputs (r24.10): \"unable to load model 'm', scalar tensor 'INPUT0', should only provide 1 in the model configuration when the model doesn't support batching. Model configuration provided: [2].\""),
    Case("onnx-unknown-output", {"TR501"}, {"m/config.pbtxt": cfg(('{ name: "OUTPUT0"', '{ name: "WRONG"'), base=ONNX_CONFIG), "m/1/model.py": None, "m/1/model.onnx": onnx_identity([-1, 4])},
         runs_here=False, rules=("ORT-14",), source="backend/src/backend_common.cc CheckAllowedModelOutput (r24.10): \"unexpected inference output 'WRONG', allowed outputs are: OUTPUT0\""),
    # custom libraries: batching strategies, custom backends, repository agents
    Case("batch-strategy-not-a-library", {"TR361"}, {"m/config.pbtxt": add(BATCH_PATH), "m/batching.so": "not a library\n"}),
    Case("batch-strategy-some-functions", {"TR361"}, {"m/config.pbtxt": add("dynamic_batching { }\n" + BATCH_PATH),
                                                     "m/batching.so": BATCH_LIB_FOUR}, hangs=True, needs_cc=True,
         source="core/src/backend_model.cc SetBatchingStrategy ('If one custom batching function is defined, all must "
                "be': '<path> does not define all required custom batching functions for model m'); tritonserver 2.51 "
                "never finishes loading this model (observed: still loading after minutes)"),
    Case("custom-backend-no-config", {"TR374"}, {"m.custom/libtriton_custom.so": CUSTOM_BACKEND, "m.custom/1/": ""}, needs_cc=True),
    Case("instance-kind-invalid-number", {"TR344"}, {"m/config.pbtxt": cfg(("kind: KIND_CPU", "kind: 7"))}),
    Case("instance-kind-invalid-number-no-auto-complete", {"TR344"}, {"m/config.pbtxt": cfg(("kind: KIND_CPU", "kind: 7"))},
         server_args=("--disable-auto-complete-config",)),
    Case("repo-agent-unknown-in-directory", {"TR373"}, {"m/config.pbtxt": add('model_repository_agents { agents [ { name: "nope" } ] }\n')},
         server_args=("--repoagent-directory=/nonexistent/tritonrepo-repoagents",)),
    # rules of docs/triton-load-rules.md that had no repository yet (tests/corpus/coverage.py)
    Case("no-config-no-auto-complete", {"TR190"}, {"m/config.pbtxt": None}, server_args=("--disable-auto-complete-config",),
         rules=("CORE-STRICT-01",)),
    Case("input-no-dims-no-auto-complete", {"TR320"}, {"m/config.pbtxt": cfg(('TYPE_FP32 dims: [ 4 ] } ]\noutput', "TYPE_FP32 } ]\noutput"))},
         server_args=("--disable-auto-complete-config",), rules=("CORE-STRICT-02",)),
    Case("reshape-variable-segments", {"TR321"}, {"m/config.pbtxt": cfg(("dims: [ 4 ] } ]\noutput", "dims: [ -1, 4 ] reshape { shape: [ -1, 2 ] } } ]\noutput"))},
         rules=("CORE-IO-09",)),
    Case("batch-output-two-sources", {"TR331"}, {"m/config.pbtxt": add('batch_output [ { target_name: "OUTPUT0" kind: BATCH_SCATTER_WITH_INPUT_SHAPE source_input: [ "INPUT0", "INPUT0" ] } ]\n')}),
    Case("ensemble-optimization", {"TR402"}, {"ens/config.pbtxt": ens(extra="optimization { priority: PRIORITY_MAX }\n")}, ensemble=True),
    Case("ensemble-output-from-unconnected", {"TR404"}, {"m2/config.pbtxt": TWO_INPUTS, "m2/1/model.py": MODEL_PY, "ens/config.pbtxt": ens(
        ('model_name: "m" model_version: -1 input_map { key: "INPUT0" value: "IN" }',
         'model_name: "m2" model_version: -1 input_map [ { key: "INPUT0" value: "IN" }, { key: "INPUT1" value: "NOWHERE" } ]'))}, ensemble=True),
    Case("step-model-fails-at-load", {"TR405", "TR350"}, {"m/config.pbtxt": cfg(('name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ]', 'name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] label_filename: "labels.txt"'))},
         ensemble=True),
    Case("step-model-fails-io-at-load", {"TR405", "TR320"}, {"m/config.pbtxt": cfg(('name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ]', 'name: "OUTPUT0" data_type: TYPE_FP32'))},
         ensemble=True),
    Case("auto-complete-lowers-max-batch-size", {"TR650"}, {"m/1/model.py": MODEL_PY.replace("    def initialize(self, args):",
         "    @staticmethod\n    def auto_complete_config(c):\n        c.set_max_batch_size(2)\n        return c\n\n    def initialize(self, args):")},
         rules=("PY-04",)),
    Case("auto-complete-conflicting-dims", {"TR650"}, {"m/1/model.py": MODEL_PY.replace("    def initialize(self, args):",
         "    @staticmethod\n    def auto_complete_config(c):\n        c.add_input({'name': 'INPUT0', 'data_type': 'TYPE_FP32', 'dims': [8]})\n        return c\n\n    def initialize(self, args):")},
         rules=("PY-05",)),
    # TR6xx python
    Case("model-py-syntax", {"TR601"}, {"m/1/model.py": MODEL_PY.replace("def execute(self, requests):", "def execute(self, requests)")}),
    Case("model-py-no-class", {"TR602"}, {"m/1/model.py": MODEL_PY.replace("class TritonPythonModel:", "class Model:")}),
]

VALID: list[Case] = [
    Case("base", set()),
    Case("no-config-auto-complete", set(), {"m/config.pbtxt": None}),
    Case("version-zero", set(), {"m/1/model.py": None, "m/0/model.py": MODEL_PY}),
    Case("versions-1-2-10", set(), {"m/2/model.py": MODEL_PY, "m/10/model.py": MODEL_PY}),
    Case("extra-non-numeric-folder", set(), {"m/v1/notes.txt": "x"}),
    Case("extra-leading-zero-folder", set(), {"m/01/model.py": MODEL_PY}),
    Case("name-omitted", set(), {"m/config.pbtxt": cfg(('name: "m"\n', ""))}),
    Case("no-batching", set(), {"m/config.pbtxt": cfg(MBS, ("dims: [ 4 ]", "dims: [ -1, 4 ]"))}),
    Case("dynamic-batching-preferred", set(), {"m/config.pbtxt": add("dynamic_batching { preferred_batch_size: [ 2, 4 ] max_queue_delay_microseconds: 100 }\n")}),
    Case("priority-levels", set(), {"m/config.pbtxt": add("dynamic_batching { priority_levels: 2 default_priority_level: 2 priority_queue_policy { key: 1 value { max_queue_size: 4 } } }\n")}),
    Case("instance-count-zero", set(), {"m/config.pbtxt": cfg(("count: 1", "count: 0"))}),
    Case("version-policy-all", set(), {"m/config.pbtxt": add("version_policy { all { } }\n"), "m/2/model.py": MODEL_PY}),
    Case("version-policy-specific", set(), {"m/config.pbtxt": add("version_policy { specific { versions: [ 1, 7 ] } }\n")}),
    Case("duplicate-input-names", set(), {"m/config.pbtxt": cfg(('input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]', 'input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]'))}),
    Case("any-platform-with-python", set(), {"m/config.pbtxt": cfg(('backend: "python"', 'backend: "python"\nplatform: "whatever"'))}),
    Case("bf16-on-python", set(), {"m/config.pbtxt": cfg(('name: "OUTPUT0" data_type: TYPE_FP32', 'name: "OUTPUT0" data_type: TYPE_BF16'))}),
    Case("no-inputs-outputs", set(), {"m/config.pbtxt": 'name: "m"\nbackend: "python"\nmax_batch_size: 0\n'}),
    Case("sequence-batching-controls", set(), {"m/config.pbtxt": add(SEQ.format(START % "int32_false_true: [ 0, 1 ]" + ' control_input [ { name: "CID" control [ { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 } ] } ]'))}),
    Case("slot-utilization-zero", set(), {"m/config.pbtxt": add(SEQ.format("direct { minimum_slot_utilization: 0.0 }"))}),
    Case("warmup-zero-data", set(), {"m/config.pbtxt": add('model_warmup [ { name: "w" batch_size: 2 inputs { key: "INPUT0" value { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } } } ]\n')}),
    Case("label-file-present", set(), {"m/config.pbtxt": cfg(('name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ]', 'name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] label_filename: "labels.txt"')), "m/labels.txt": "a\nb\nc\nd\n"}),
    Case("reshape-valid", set(), {"m/config.pbtxt": cfg(("dims: [ 4 ] } ]\noutput", "dims: [ 4 ] reshape { shape: [ 2, 2 ] } } ]\noutput"))}),
    Case("force-cpu-only-yes", set(), {"m/config.pbtxt": add('parameters { key: "FORCE_CPU_ONLY_INPUT_TENSORS" value { string_value: "no" } }\n')}),
    Case("ensemble", set(), ensemble=True),
    Case("ensemble-pinned-version", set(), {"ens/config.pbtxt": ens(("model_version: -1", "model_version: 1"))}, ensemble=True),
    Case("ensemble-repeated-map-key", set(), {"ens/config.pbtxt": ens(('input_map { key: "INPUT0" value: "IN" }', 'input_map { key: "INPUT0" value: "X" } input_map { key: "INPUT0" value: "IN" }'))}, ensemble=True),
    Case("ensemble-of-ensembles", set(), {"outer/config.pbtxt": ENSEMBLE.replace('name: "ens"', 'name: "outer"').replace('model_name: "m"', 'model_name: "ens"').replace('key: "INPUT0"', 'key: "IN"').replace('key: "OUTPUT0"', 'key: "OUT"'), "outer/1/": ""}, ensemble=True),
    Case("ensemble-over-non-batching-step", set(), {"m/config.pbtxt": cfg(("max_batch_size: 4", "max_batch_size: 0"))}, ensemble=True),
    Case("ensemble-smaller-batch", set(), {"ens/config.pbtxt": ens(("max_batch_size: 4", "max_batch_size: 2"))}, ensemble=True),
    Case("runtime-python-library", set(), {"m/config.pbtxt": add('runtime: "libtriton_python.so"\n')}),
    Case("runtime-inside-backend-dir", set(), {"m/config.pbtxt": add('runtime: "../python/libtriton_python.so"\n')}),
    Case("seq-one-control-two-kinds", set(), {"m/config.pbtxt": add(SEQ.format('control_input [ { name: "C" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] }, { kind: CONTROL_SEQUENCE_END int32_false_true: [ 0, 1 ] } ] } ]'))}),
    Case("state-zero-data", set(), {"m/config.pbtxt": add(STATE % INIT % ("TYPE_FP32", "4", "zero_data: true"))}),
    Case("state-without-initial", set(), {"m/config.pbtxt": add(STATE % "")}),
    Case("state-data-file", set(), {"m/config.pbtxt": add(STATE % INIT % ("TYPE_FP32", "4", 'data_file: "s.bin"')), "m/initial_state/s.bin": bytes(16)}),
    Case("state-input-name-twice-no-initial", set(), {"m/config.pbtxt": add('sequence_batching { state [ { input_name: "S" output_name: "O1" data_type: TYPE_FP32 dims: [ 4 ] }, { input_name: "S" output_name: "O2" data_type: TYPE_FP32 dims: [ 4 ] } ] }\n')}),
    Case("warmup-data-file", set(), {"m/config.pbtxt": add(WARM % ("INPUT0", "TYPE_FP32", "4", 'input_data_file: "x.bin"')), "m/warmup/x.bin": bytes(16)}),
    Case("onnx-execution-mode-parallel", set(), {"m/config.pbtxt": cfg(('backend: "python"', 'backend: "onnxruntime"')) + 'parameters { key: "execution_mode" value { string_value: "1" } }\n',
                                                "m/1/model.py": None, "m/1/model.onnx": onnx_identity([-1, 4])},
         runs_here=False, source="onnxruntime_backend/src/onnxruntime.cc ModelState::ModelState: 0 and 1 are valid"),
    Case("onnx-no-batch-dim-no-batching", set(), {"m/config.pbtxt": 'name: "m"\nbackend: "onnxruntime"\nmax_batch_size: 0\n',
                                                 "m/1/model.py": None, "m/1/model.onnx": onnx_identity([1, 4])},
         runs_here=False, source="onnxruntime_backend/src/onnxruntime.cc AutoCompleteMaxBatch: no batching, max_batch_size 0 accepted"),
    Case("onnx-sequence-control-present", set(), {"m/config.pbtxt": cfg(('backend: "python"', 'backend: "onnxruntime"')) + SEQ.format(START % "int32_false_true: [ 0, 1 ]"),
                                                 "m/1/model.py": None, "m/1/model.onnx": onnx_graph([("INPUT0", "tensor"), ("START", "tensor", 6, ["batch", 1])], [("OUTPUT0", "tensor")])},
         runs_here=False, source="onnxruntime_backend/src/onnxruntime.cc ModelInstanceState::ModelInstanceState: the control is a [1] INT32 "
         "input, counted among the expected inputs"),
    Case("instance-kind-auto", set(), {"m/config.pbtxt": cfg(("kind: KIND_CPU count: 1", "kind: KIND_AUTO count: 1"))}),
    Case("ensemble-version-1abc", set(), {"ens/1/": None, "ens/1abc/": ""}, ensemble=True),
    Case("ensemble-version-minus-1", set(), {"ens/1/": None, "ens/-1/": ""}, ensemble=True),
    Case("ensemble-one-decoupled-step", set(), {"m/config.pbtxt": add("model_transaction_policy { decoupled: true }\n")}, ensemble=True),
    Case("batch-strategy-all-functions", set(), {"m/config.pbtxt": add("dynamic_batching { }\n" + BATCH_PATH), "m/batching.so": BATCH_LIB_ALL},
         needs_cc=True),
    Case("batch-strategy-no-functions", set(), {"m/config.pbtxt": add(BATCH_PATH), "m/batching.so": CUSTOM_BACKEND}, needs_cc=True),
    Case("custom-backend-with-config", set(), {"c/config.pbtxt": CUSTOM_CONFIG, "c/libtriton_custom.so": CUSTOM_BACKEND, "c/1/": ""},
         needs_cc=True),
    Case("instance-rate-limiter-host-policy", set(), {"m/config.pbtxt": cfg(("kind: KIND_CPU count: 1", 'kind: KIND_CPU count: 1 rate_limiter { resources [ { name: "R" count: 2 } ] priority: 3 } host_policy: "nowhere"'))},
         rules=("CORE-IG-07",)),
    Case("auto-complete-adds-io", set(), {"m/config.pbtxt": 'name: "m"\nbackend: "python"\nmax_batch_size: 4\n', "m/1/model.py": MODEL_PY.replace("    def initialize(self, args):",
         "    @staticmethod\n    def auto_complete_config(c):\n        c.add_input({'name': 'INPUT0', 'data_type': 'TYPE_FP32', 'dims': [4]})\n"
         "        c.add_output({'name': 'OUTPUT0', 'data_type': 'TYPE_FP32', 'dims': [4]})\n        return c\n\n    def initialize(self, args):")},
         rules=("PY-04", "PY-05")),
    Case("onnx-detected-by-file", set(), {"m/config.pbtxt": cfg(('backend: "python"\n', "")), "m/1/model.py": None, "m/1/model.onnx": onnx_identity([-1, 4])},
         runs_here=False, rules=("ORT-19", "ORT-02"), source="core/src/model_config_utils.cc AutoCompleteBackendFields (r24.10): model.onnx in the "
         "first version folder selects backend onnxruntime, platform onnxruntime_onnx; onnxruntime.cc AutoCompleteConfig skips a config with inputs and outputs"),
    Case("onnx-state-output-dtype", set(), {"m/config.pbtxt": ONNX_CONFIG + STATE.replace("TYPE_FP32", "TYPE_INT32") % "", "m/1/model.py": None,
                                                "m/1/model.onnx": onnx_graph([("INPUT0", "tensor"), ("IN_STATE", "tensor", 6, ["batch", 4])], [("OUTPUT0", "tensor"), ("OUT_STATE", "tensor")])},
         runs_here=False, rules=("ORT-16",), source=_STATE_UNCHECKED),
    Case("onnx-state-bf16", set(), {"m/config.pbtxt": ONNX_CONFIG + STATE.replace("TYPE_FP32", "TYPE_BF16") % "", "m/1/model.py": None,
                                        "m/1/model.onnx": onnx_graph([("INPUT0", "tensor"), ("IN_STATE", "tensor", 16, ["batch", 4])], [("OUTPUT0", "tensor"), ("OUT_STATE", "tensor")])},
         runs_here=False, rules=("ORT-16",), source=_STATE_UNCHECKED),
    Case("ensemble-decoupled-then-plain", set(), {"d/config.pbtxt": DECOUPLED, "d/1/model.py": MODEL_PY, "ens/config.pbtxt": CHAIN}, ensemble=True),
]

_HANG = ("python_backend/src/stub_launcher.cc StubLauncher::Launch (r24.10): the stub exits before its handshake "
         "(pb_stub.cc 'Failed to preinitialize Python stub'), the parent waits on parent_message_queue_->Pop() "
         "forever; observed here as a server never ready")
for _c in BROKEN:
    if _c.hangs and not _c.source:
        _c.source = _HANG

#: rules of docs/triton-load-rules.md that cases exercise without their recorded message showing it: cases judged
#: from the source (no recorded message), valid cases (a rule about what Triton accepts or normalises), and hanging
#: ones. tests/corpus/coverage.py adds the rules each recorded message matches.
_TAGS = {
    "ensemble-repeated-map-key": ("CORE-PARSE-03",),
    "no-config-auto-complete": ("CORE-STRICT-01",),
    "hidden-dir-at-root": ("CORE-REPO-01",),
    "duplicate-input-names": ("CORE-IO-13",),
    "no-inputs-outputs": ("CORE-IO-13", "PY-10"),
    "bf16-on-python": ("CORE-IO-13", "PY-10"),
    "instance-count-zero": ("CORE-IG-00",),
    "instance-kind-auto": ("CORE-IG-00",),
    "tensorrt-profile-not-a-number": ("CORE-IG-06",),
    "tensorrt-non-linear-io-dims": ("CORE-IO-12",),
    "extra-non-numeric-folder": ("CORE-VER-02",),
    "only-non-numeric-version": ("CORE-VER-02",),
    "extra-leading-zero-folder": ("CORE-VER-03",),
    "only-leading-zero-version": ("CORE-VER-03",),
    "version-zero": ("CORE-VER-03",),
    "version-policy-specific": ("CORE-VER-04",),
    "specific-version-missing": ("CORE-VER-04",),
    "latest-zero-versions": ("CORE-VER-05",),
    "versions-1-2-10": ("CORE-VER-05",),
    "version-1abc": ("CORE-VER-06", "PY-01"),
    "version-plus-2": ("CORE-VER-06", "PY-01"),
    "version-minus-1": ("CORE-VER-06", "PY-01"),
    "ensemble-version-1abc": ("CORE-VER-06",),
    "warmup-input-missing": ("CORE-WARM-05",),
    "warmup-wrong-dims": ("CORE-WARM-05",),
    "model-py-missing": ("PY-01",),
    "default-model-filename-missing": ("PY-01",),
    "model-py-syntax": ("PY-02",),
    "whitespace-in-name": ("PY-06",),
    "onnx-no-batch-dim-auto-complete": ("ORT-02", "ORT-03"),
    "onnx-no-batch-dim-no-batching": ("ORT-02", "ORT-03", "ORT-04"),
    "onnx-dtype-mismatch": ("ORT-09",),
    "onnx-execution-mode": ("ORT-18",),
    "onnx-unknown-gpu-accelerator": ("ORT-18",),
    "onnx-ragged-input-not-flat": ("ORT-11",),
    "onnx-sequence-output": ("ORT-17",),
    "onnx-sequence-control-missing": ("ORT-15",),
    "onnx-sequence-control-dims": ("ORT-15",),
    "onnx-sequence-control-present": ("ORT-05", "ORT-15"),
    "onnx-execution-mode-parallel": ("ORT-02", "ORT-18"),
}
#: the message of each case the server here cannot run, rendered from the format string its ``source`` cites
#: (``<repo>``: the repository): tests/test_validate_corpus.py compares validate's message with it
_SOURCE_MESSAGES = {
    "tensorrt-profile-not-a-number": "instance group m_0 of model m and platform tensorrt_plan specifies invalid profile x. The "
                                     "field should contain the string representation of a non-negative integer.",
    "tensorrt-non-linear-io-dims": "Non-linear IO format input requires 3 dims for m",
    "onnx-no-batch-dim-auto-complete": "autofill failed for model 'm': model does not support batching while non-zero max_batch_size is specified",
    "onnx-dtype-mismatch": "unable to load model 'm', configuration expects datatype TYPE_FP16 for output 'OUTPUT0', model provides TYPE_FP32",
    "onnx-execution-mode": "Invalid configuration value provided. Expected values for  execution_mode are 0 or 1 but got 2 .",
    "onnx-unknown-gpu-accelerator": "unknown Execution Accelerator 'unknown_gpu' is requested",
    "onnx-ragged-input-not-flat": "unable to load model 'm', configuration expects model provides input with shape [-1]  for ragged input 'INPUT0', model provides [-1,4]",
    "onnx-sequence-output": "Unsupported ONNX Type 'ONNX_TYPE_SEQUENCE' for I/O 'OUTPUT0', expected 'ONNX_TYPE_TENSOR'.",
    "onnx-sequence-control-missing": "configuration specified sequence control 'START', but model does not provide that input",
    "onnx-sequence-control-dims": "unable to load model 'm', sequence control 'START' in model has dims [2] but dims [1] is expected",
    "onnx-model-file-missing": "unable to find '<repo>/m/1/model.onnx' for model instance 'm'",
    "onnx-input-count": "unable to load model 'm', configuration expects 2 inputs, model provides 1",
    "onnx-optional-input-with-batching": "unable to load model 'm', optional input 'INPUT1' is not supported for models that support batching",
    "onnx-unknown-input": "unexpected inference input 'WRONG', allowed inputs are: INPUT0",
    "onnx-bf16-output": "unsupported datatype TYPE_BF16 for output 'OUTPUT0' for model 'm'",
    "onnx-shape-mismatch": "model 'm', tensor 'OUTPUT0': the model expects 2 dimensions (shape [-1,4]) but the model configuration "
                           "specifies 2 dimensions (an initial batch dimension because max_batch_size > 0 followed by the explicit "
                           "tensor shape, making complete shape [-1,5])",
    "onnx-scalar-tensor-dims": "unable to load model 'm', scalar tensor 'INPUT0', should only provide 1 in the model configuration "
                               "when the model doesn't support batching. Model configuration provided: [2].",
    "onnx-unknown-output": "unexpected inference output 'WRONG', allowed outputs are: OUTPUT0",
}
for _c in BROKEN + VALID:
    _c.rules = tuple(_c.rules) + _TAGS.pop(_c.id, ())
    _c.message = _SOURCE_MESSAGES.pop(_c.id, _c.message)
assert not _TAGS, f"tags for unknown cases: {sorted(_TAGS)}"
assert not _SOURCE_MESSAGES, f"messages for unknown cases: {sorted(_SOURCE_MESSAGES)}"
