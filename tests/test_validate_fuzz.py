"""Mutation fuzzing of valid repositories: ``validate`` never crashes, whatever the config says.

Seeds: a Python-backend model, an ONNX model (tiny graph written with onnx.helper) and an ensemble over the Python
model. Each example mutates one seed's config a few times (tests/corpus/mutate.py: at the protobuf level — clear a
field, set a scalar to an edge value such as ``data_type: -3``, drop or duplicate a repeated element, drop a tensor's
name — or at the text level), writes it and runs ``validate_repository``. The only exception allowed is
``TritonRepoError`` (a user-facing one-line error).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from google.protobuf import text_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus.cases import CONFIG, ENSEMBLE, MODEL_PY
from corpus.differential import ENSEMBLES, SEEDS
from corpus.mutate import DrawChooser, mutate, text_mutate
from tritonrepo._proto.model_config import model_config_pb2 as mc
from tritonrepo.errors import TritonRepoError
from tritonrepo.validate import RULES, ServerOptions, validate_repository
from tritonrepo.validate.report import to_github, to_json, to_junit

ONNX_CONFIG = '''name: "o"
backend: "onnxruntime"
max_batch_size: 4
input [ { name: "X" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "Y" data_type: TYPE_FP32 dims: [ 4 ] } ]
'''
def _onnx_model() -> bytes:
    import onnx  # noqa: PLC0415
    from onnx import TensorProto, helper  # noqa: PLC0415

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph([helper.make_node("Identity", ["X"], ["Y"])], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.fixture(scope="module")
def seeds():
    root = Path(tempfile.mkdtemp(prefix="fuzz-seeds-"))
    onnx_bytes = _onnx_model()
    yield root, onnx_bytes
    shutil.rmtree(root, ignore_errors=True)


@settings(max_examples=480, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_validate_never_crashes_on_mutated_configs(seeds, data):
    root, onnx_bytes = seeds
    seed = data.draw(st.sampled_from(["python", "onnx", "ensemble"]))
    repo = Path(tempfile.mkdtemp(dir=root))
    (repo / "m" / "1").mkdir(parents=True)
    (repo / "m" / "1" / "model.py").write_text(MODEL_PY)
    # the Python model's config: the plain one, or a richer seed of the differential fuzzer (batching, sequences,
    # warmup, optional inputs, decoupled), so mutations reach the rules those sections feed
    files = {"m": SEEDS[data.draw(st.sampled_from(sorted(set(SEEDS) - ENSEMBLES)))] if seed == "python" else CONFIG}
    if seed == "onnx":
        (repo / "o" / "1").mkdir(parents=True)
        (repo / "o" / "1" / "model.onnx").write_bytes(onnx_bytes)
        files["o"] = ONNX_CONFIG
    if seed == "ensemble":
        (repo / "ens" / "1").mkdir(parents=True)
        files["ens"] = ENSEMBLE
    target = {"python": "m", "onnx": "o", "ensemble": "ens"}[seed]
    cfg = text_format.Parse(files[target], mc.ModelConfig())
    ch = DrawChooser(data)
    for _ in range(data.draw(st.integers(1, 3))):
        mutate(cfg, ch)
    text = text_format.MessageToString(cfg)
    if data.draw(st.booleans()):
        text, _ = text_mutate(text, ch)
    files[target] = text
    for name, content in files.items():
        (repo / name / "config.pbtxt").write_text(content, encoding="utf-8", errors="surrogateescape")
    options = ServerOptions(exec_model_py=False, disable_auto_complete_config=data.draw(st.booleans()))
    try:
        report = validate_repository(repo, options=options)
    except TritonRepoError:
        return
    finally:
        shutil.rmtree(repo, ignore_errors=True)
    for f in report.findings:
        assert f.message and f.code in RULES
    for render in (to_json, to_github, to_junit):
        assert isinstance(render(report), str)


@pytest.mark.parametrize("edit", [
    ("input", lambda c: c.input[0].ClearField("name")),          # was KeyError: 'name' in the ONNX checks
    ("dtype", lambda c: setattr(c.input[0], "data_type", -3)),   # was ValueError: Enum DataType has no name for -3
    ("out-dtype", lambda c: setattr(c.output[0], "data_type", 99)),
    ("long-backend", lambda c: setattr(c, "backend", "x" * 300)),  # was OSError: File name too long (is_file)
    ("warmup-dtype", lambda c: (  # was ValueError: Enum DataType has no name defined for value 99 (TR352's message)
        text_format.Merge('model_warmup [ { name: "w" batch_size: 1 inputs { key: "X" value { data_type: TYPE_FP32 '
                          'dims: [ 4 ] zero_data: true } } } ]', c),
        setattr(c.input[0], "data_type", 99))),
])
def test_known_crashes_are_findings(seeds, tmp_path, edit):
    _, onnx_bytes = seeds
    (tmp_path / "o" / "1").mkdir(parents=True)
    (tmp_path / "o" / "1" / "model.onnx").write_bytes(onnx_bytes)
    cfg = text_format.Parse(ONNX_CONFIG, mc.ModelConfig())
    edit[1](cfg)
    (tmp_path / "o" / "config.pbtxt").write_text(text_format.MessageToString(cfg))
    report = validate_repository(tmp_path, options=ServerOptions(exec_model_py=False))
    assert not report.loads()
