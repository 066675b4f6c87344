"""What keeps validate fast and bounded (the timings themselves are measured in bench/validate.py, not asserted):
no heavy imports, ONNX signatures read without the weights, nothing hashed unless asked, huge configs refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from corpus.cases import CONFIG, MODEL_PY
from tritonrepo.errors import TritonRepoError
from tritonrepo.validate import MAX_CONFIG_BYTES, ServerOptions, validate_repository
from tritonrepo.validate.onnx_graph import OnnxReadError, read_graph

SRC = Path(__file__).resolve().parent.parent / "src"
HEAVY = ["torch", "transformers", "optimum", "onnxruntime", "onnx", "numpy", "grpc", "tritonclient.grpc",
         "tritonrepo.cli.add_hf", "tritonrepo.cli.serve", "tritonrepo.cli.infer", "tritonrepo.export",
         "typer", "click", "rich", "pydantic"]


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64: ten-byte two's complement, as protobuf writes it
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _value_info(name: str, elem: int, dims: list[int | str]) -> bytes:
    shape = b"".join(_field(1, (_varint(1 << 3) + _varint(d)) if isinstance(d, int) else _field(2, d.encode()))
                     for d in dims)
    tensor = _varint(1 << 3) + _varint(elem) + _field(2, shape)
    return _field(1, name.encode()) + _field(2, _field(1, tensor))


def test_validate_cli_imports_nothing_heavy(tmp_path):
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "config.pbtxt").write_text(CONFIG)
    (tmp_path / "m" / "1" / "model.py").write_text(MODEL_PY)
    code = (
        "import sys, json\nfrom tritonrepo.cli import main\n"
        f"sys.argv = ['tritonrepo', 'validate', {str(tmp_path)!r}, '--format', 'json']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)}).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_onnx_signature_of_a_2gb_model_is_read_without_the_weights(tmp_path):
    """A ModelProto whose 2 GiB initializer is a sparse hole: read_graph seeks over it (reading it would take seconds
    and 2 GiB of memory)."""
    big = 2 * 1024**3
    header = _varint(1 << 3) + _varint(7) + _field(8, b"W") + _varint(9 << 3 | 2) + _varint(big)  # dims, name, raw_data
    tensor_len = len(header) + big
    inputs = _field(11, _value_info("X", 1, ["batch", 4])) + _field(11, _value_info("W", 1, [7]))
    outputs = _field(12, _value_info("Y", 7, [-1]))
    graph_len = len(_varint(5 << 3 | 2)) + len(_varint(tensor_len)) + tensor_len + len(inputs) + len(outputs)
    path = tmp_path / "model.onnx"
    with open(path, "wb") as f:
        f.write(_varint(1 << 3) + _varint(8))  # ir_version 8
        f.write(_varint(7 << 3 | 2) + _varint(graph_len) + _varint(5 << 3 | 2) + _varint(tensor_len) + header)
        f.seek(big, os.SEEK_CUR)
        f.write(inputs + outputs)
        f.write(_field(8, _field(1, b"") + _varint(2 << 3) + _varint(17)))  # opset_import { domain: "" version: 17 }
    assert path.stat().st_size > big
    graph = read_graph(path)
    assert graph.ir_version == 8 and graph.opsets == {"": 17}
    assert graph.inputs == {"X": ("TYPE_FP32", [-1, 4])}  # W is an initializer: not a model input
    assert graph.outputs == {"Y": ("TYPE_INT64", [-1])}


@pytest.mark.parametrize("data, message", [
    (b"", "no graph"),
    (b"\x3a\xff\xff\xff\xff\x0f", "runs past the end"),
    (b"\x00\x00\x00", "field number 0"),
    (b"\x0b", "unsupported protobuf wire type 3"),
])
def test_broken_onnx_files_are_one_line_errors(tmp_path, data, message):
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    with pytest.raises(OnnxReadError, match=message):
        read_graph(path)


def test_nothing_is_hashed_unless_asked(tmp_path, monkeypatch):
    import hashlib  # noqa: PLC0415

    from tritonrepo._proto.manifest_pb2 import FileHash, Manifest, VersionRecord  # noqa: PLC0415
    from google.protobuf import json_format  # noqa: PLC0415

    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "config.pbtxt").write_text(CONFIG)
    (tmp_path / "m" / "1" / "model.py").write_text(MODEL_PY)
    manifest = Manifest(schema_version=1, model_name="m", versions=[VersionRecord(version=1, exporter="tritonrepo fixed module", files=[
        FileHash(path="1/model.py", sha256="0" * 64, size=len(MODEL_PY))])])
    (tmp_path / "m" / "tritonrepo.json").write_text(json_format.MessageToJson(manifest))
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(hashlib, "sha256", lambda *a: calls.append(a) or real(*a))
    assert [f.code for f in validate_repository(tmp_path).findings] == [] and calls == []
    found = validate_repository(tmp_path, options=ServerOptions(verify_hashes=True)).findings
    assert [f.code for f in found] == ["TR701"] and calls


def test_absurd_config_is_refused_and_16mb_of_parameters_parse(tmp_path):
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "1" / "model.py").write_text(MODEL_PY)
    path = tmp_path / "m" / "config.pbtxt"
    with open(path, "wb") as f:
        f.write(CONFIG.encode())
        f.truncate(MAX_CONFIG_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(TritonRepoError, match=r"config.pbtxt: 67108865 bytes, larger than the 64 MiB"):
        validate_repository(tmp_path)
    entry = 'parameters { key: "k%d" value { string_value: "' + "v" * 200 + '" } }\n'
    path.write_text(CONFIG + "".join(entry % i for i in range(16 * 2**20 // 240)))
    report = validate_repository(tmp_path, options=ServerOptions(exec_model_py=False))
    assert report.findings == []


def test_validate_cli_text_run_skips_startup_costs(tmp_path):
    """The text report of ordinary models needs no argparse, dataclass code generation for the engine's classes,
    hashlib, json or tritonrepo.config (configs are read by validate.textproto)."""
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "config.pbtxt").write_text(CONFIG)
    (tmp_path / "m" / "1" / "model.py").write_text(MODEL_PY)
    code = (
        "import sys, json\nfrom tritonrepo.cli import main\n"
        f"sys.argv = ['tritonrepo', 'validate', {str(tmp_path)!r}]\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        "from tritonrepo.validate.model import Finding, ModelContext\n"
        "print(json.dumps([m for m in ('argparse', 'hashlib', 'tritonrepo.config', 'tritonrepo.validate.report', 'tritonrepo.repository', 'tempfile', 'dataclasses')"
        " if m in sys.modules] + [c.__name__ for c in (Finding, ModelContext) if hasattr(c, '__dataclass_fields__')]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)}).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_record_classes_behave_as_dataclasses():
    from dataclasses import FrozenInstanceError  # noqa: F401 - the record error is an AttributeError like it

    from tritonrepo.validate import Report
    from tritonrepo.validate.model import Finding, Severity

    f = Finding("TR101", Severity.error, "m", Path("x"), 1, 2, "msg", "fix")
    assert f == Finding(code="TR101", severity=Severity.error, model="m", path=Path("x"), line=1, col=2,
                        message="msg", fix="fix")
    assert hash(f) == hash(Finding("TR101", Severity.error, "m", Path("x"), 1, 2, "msg", "fix"))
    assert repr(f).startswith("Finding(code='TR101', severity=")
    with pytest.raises(AttributeError):
        f.line = 3
    a, b = Report(Path("r"), []), Report(Path("r"), [])
    a.findings.append(f)
    assert b.findings == [] and a != b  # factory defaults are per instance
    with pytest.raises(TypeError):
        Finding("TR101")
    with pytest.raises(TypeError):
        Report(Path("r"), [], nope=1)
    with pytest.raises(TritonRepoError):  # __post_init__ runs
        ServerOptions(model_control_mode="sometimes")


@pytest.mark.parametrize("policy", ["", "version_policy { all { } }", "version_policy { latest { num_versions: 2 } }",
                                    "version_policy { latest { num_versions: 0 } }",
                                    "version_policy { specific { versions: [ 1, 3, 9 ] } }"])
def test_layout_policy_versions_is_the_repository_one(policy):
    """validate keeps its own copy of repository.policy_versions (no shutil/tempfile at start-up): same answers."""
    from google.protobuf import text_format

    from tritonrepo._proto.model_config import model_config_pb2 as mc
    from tritonrepo.repository import policy_versions
    from tritonrepo.validate.rules.layout import policy_versions as mirror

    cfg = text_format.Parse(policy, mc.ModelConfig())
    for versions in ([], [1], [3, 1, 2], [0, 10, 9]):
        assert mirror(cfg, versions) == policy_versions(cfg, versions)
    assert mirror(None, [2, 1]) == policy_versions(None, [2, 1]) == [2]
