"""Mutation fuzzing of valid repositories: ``validate`` never crashes, whatever the config says.

Seeds: a Python-backend model, an ONNX model (tiny graph written with onnx.helper) and an ensemble over the Python
model. Each example mutates one seed's config a few times at the protobuf level (clear a field, set a scalar to an
edge value — negative, huge, an enum number with no name such as ``data_type: -3`` —, drop or duplicate a repeated
element, drop a tensor's name) or at the text level (delete, duplicate or insert characters), writes it and runs
``validate_repository``. The only exception allowed is ``TritonRepoError`` (a user-facing one-line error).
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
EDGE_INTS = [-(2**63), -(2**31), -3, -1, 0, 1, 2, 3, 4, 16, 2**31 - 1, 2**63 - 1]
EDGE_STRINGS = ["", "m", "o", "X", "Y", "INPUT0", "OUTPUT0", "IN", "OUT", " ", "../x", "a\nb", "é", "x" * 300]


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


def _scalar_paths(msg, prefix=()):
    """Every set scalar/enum field (and repeated scalar element) under ``msg``: ``(parent, field, index|None)``."""
    out = []
    for fd, value in msg.ListFields():
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            continue
        if fd.message_type is not None:
            items = value if fd.label == fd.LABEL_REPEATED else [value]
            for item in items:
                out.extend(_scalar_paths(item, prefix + (fd.name,)))
        elif fd.label == fd.LABEL_REPEATED:
            out.extend((msg, fd, i) for i in range(len(value)))
        else:
            out.append((msg, fd, None))
    return out


def _messages(msg):
    """``msg`` and every sub-message (map entries excluded)."""
    out = [msg]
    for fd, value in msg.ListFields():
        if fd.message_type is not None and not fd.message_type.GetOptions().map_entry:
            for item in value if fd.label == fd.LABEL_REPEATED else [value]:
                out.extend(_messages(item))
    return out


def _edge_value(fd, data):
    if fd.type == fd.TYPE_STRING:
        return data.draw(st.sampled_from(EDGE_STRINGS))
    if fd.type == fd.TYPE_BOOL:
        return data.draw(st.booleans())
    if fd.type in (fd.TYPE_FLOAT, fd.TYPE_DOUBLE):
        return data.draw(st.sampled_from([-1.0, 0.0, 0.5, 1e30]))
    if fd.type == fd.TYPE_ENUM:
        return data.draw(st.sampled_from([-3, 0, 1, 99] + [v.number for v in fd.enum_type.values]))
    value = data.draw(st.sampled_from(EDGE_INTS))
    if fd.type in (fd.TYPE_UINT32, fd.TYPE_FIXED32):
        return value % 2**32
    if fd.type in (fd.TYPE_UINT64, fd.TYPE_FIXED64):
        return value % 2**64
    if fd.type in (fd.TYPE_INT32, fd.TYPE_SINT32, fd.TYPE_SFIXED32):
        return max(-(2**31), min(2**31 - 1, value))
    return value


def _mutate(cfg: mc.ModelConfig, data) -> None:
    kind = data.draw(st.sampled_from(["set", "clear", "drop", "dup", "noname", "dims"]))
    if kind == "set":
        paths = _scalar_paths(cfg)
        if paths:
            msg, fd, index = data.draw(st.sampled_from(paths))
            value = _edge_value(fd, data)
            if index is None:
                setattr(msg, fd.name, value)
            else:
                getattr(msg, fd.name)[index] = value
    elif kind == "clear":
        msg = data.draw(st.sampled_from(_messages(cfg)))
        fields = [fd.name for fd, _ in msg.ListFields()]
        if fields:
            msg.ClearField(data.draw(st.sampled_from(fields)))
    elif kind in ("drop", "dup"):
        msg = data.draw(st.sampled_from(_messages(cfg)))
        repeated = [fd for fd, v in msg.ListFields() if fd.label == fd.LABEL_REPEATED
                    and not (fd.message_type is not None and fd.message_type.GetOptions().map_entry)]
        if repeated:
            fd = data.draw(st.sampled_from(repeated))
            items = getattr(msg, fd.name)
            i = data.draw(st.integers(0, len(items) - 1))
            if kind == "drop":
                del items[i]
            elif fd.message_type is not None:
                items.add().CopyFrom(items[i])
            else:
                items.append(items[i])
    elif kind == "noname":
        tensors = [*cfg.input, *cfg.output]
        if tensors:
            data.draw(st.sampled_from(tensors)).ClearField("name")
    else:
        tensors = [*cfg.input, *cfg.output]
        if tensors:
            t = data.draw(st.sampled_from(tensors))
            del t.dims[:]
            t.dims.extend(data.draw(st.lists(st.sampled_from([-2, -1, 0, 1, 4, 2**40]), max_size=4)))


def _text_mutate(text: str, data) -> str:
    i = data.draw(st.integers(0, max(len(text) - 1, 0)))
    j = data.draw(st.integers(i, min(len(text), i + 12)))
    kind = data.draw(st.sampled_from(["delete", "duplicate", "insert"]))
    if kind == "delete":
        return text[:i] + text[j:]
    if kind == "duplicate":
        return text[:j] + text[i:j] + text[j:]
    return text[:i] + data.draw(st.sampled_from(["{", "}", "[", "]", ":", '"', "-", "0", "\\", "\x00", "é"])) + text[i:]


@settings(max_examples=320, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_validate_never_crashes_on_mutated_configs(seeds, data):
    root, onnx_bytes = seeds
    seed = data.draw(st.sampled_from(["python", "onnx", "ensemble"]))
    repo = Path(tempfile.mkdtemp(dir=root))
    (repo / "m" / "1").mkdir(parents=True)
    (repo / "m" / "1" / "model.py").write_text(MODEL_PY)
    files = {"m": CONFIG}
    if seed == "onnx":
        (repo / "o" / "1").mkdir(parents=True)
        (repo / "o" / "1" / "model.onnx").write_bytes(onnx_bytes)
        files["o"] = ONNX_CONFIG
    if seed == "ensemble":
        (repo / "ens" / "1").mkdir(parents=True)
        files["ens"] = ENSEMBLE
    target = {"python": "m", "onnx": "o", "ensemble": "ens"}[seed]
    cfg = text_format.Parse(files[target], mc.ModelConfig())
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(cfg, data)
    text = text_format.MessageToString(cfg)
    if data.draw(st.booleans()):
        text = _text_mutate(text, data)
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
