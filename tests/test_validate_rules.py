"""Rules beyond the corpus: warnings, ONNX, manifests, locations, formats, exit codes, select/ignore, fuzzing."""

import json
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from corpus.cases import CONFIG, MODEL_PY, Case, add, cfg
from tritonrepo.add import AddOptions, add_hf
from tritonrepo.cli import app
from tritonrepo.validate import validate_repository

runner = CliRunner()


def _codes(report, severity=None):
    return {f.code for f in report.findings if severity is None or f.severity.value == severity}


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ({"m/config.pbtxt": None}, "TR104"),
        ({"m/v2/x.txt": "x"}, "TR105"),
        ({"m/config.pbtxt": cfg(('backend: "python"\n', "")), "m/0/model.py": MODEL_PY}, "TR110"),
        ({"m/config.pbtxt": cfg(('name: "m"', 'name: "m"\nparameters { key: "p" value { string_value: "${VALUE}" } }'))}, "TR202"),
        ({"m/config.pbtxt": cfg(("kind: KIND_CPU", "kind: KIND_GPU"))}, "TR341"),
        ({"m/1/model.py": MODEL_PY.replace("def execute", "def run")}, "TR603"),
        ({"m/1/model.py": "import not_a_real_package_xyz\n" + MODEL_PY}, "TR604"),
    ],
)
def test_warning_rules(tmp_path, files, code):
    report = validate_repository(Case("w", set(), files).build(tmp_path))
    assert code in _codes(report, "warning")
    assert report.loads()
    assert code not in _codes(validate_repository(Case("ok", set()).build(tmp_path / "ok")))


def test_unknown_platform_without_backend(tmp_path):
    files = {"m/config.pbtxt": cfg(('backend: "python"', 'platform: "custom_thing"')), "m/1/model.py": None,
             "m/1/weights.bin": "0"}
    report = validate_repository(Case("p", {"TR301"}, files).build(tmp_path))
    assert _codes(report, "error") == {"TR301"}
    assert report.errors[0].message == "unexpected platform type 'custom_thing' for m"


def test_onnx_config_checked_against_the_graph(tmp_path, bert_dir):
    add_hf(str(bert_dir), AddOptions(repo=tmp_path, name="bert"))
    assert validate_repository(tmp_path).findings == []
    path = tmp_path / "bert" / "config.pbtxt"
    path.write_text(path.read_text().replace("TYPE_FP32", "TYPE_FP16"))
    report = validate_repository(tmp_path)
    assert [(f.code, f.message) for f in report.errors] == [(
        "TR501", "unable to load model 'bert', configuration expects datatype TYPE_FP16 for output 'logits', model provides TYPE_FP32")]
    assert "TR701" not in _codes(report)  # the manifest records model files, not the config


def test_onnx_auto_complete_is_predicted(tmp_path, bert_dir):
    add_hf(str(bert_dir), AddOptions(repo=tmp_path, name="bert"))
    (tmp_path / "bert" / "config.pbtxt").write_text('name: "bert"\nbackend: "onnxruntime"\n')
    report = validate_repository(tmp_path)
    assert report.loads()
    (f,) = [f for f in report.warnings if f.code == "TR502"]
    assert f.message == (
        "the ONNX Runtime backend would auto-complete max_batch_size 4 and tensors: input_ids TYPE_INT64 [-1]; "
        "attention_mask TYPE_INT64 [-1]; token_type_ids TYPE_INT64 [-1]; logits TYPE_FP32 [3]")


def test_manifest_hash_mismatch(tmp_path, bert_dir):
    add_hf(str(bert_dir), AddOptions(repo=tmp_path, name="bert"))
    with open(tmp_path / "bert" / "1" / "model.onnx", "ab") as f:
        f.write(b"\0")
    report = validate_repository(tmp_path)
    assert [(f.code, f.message) for f in report.warnings] == [("TR701", "1/model.onnx changed since tritonrepo wrote it (sha256 differs)")]


def test_findings_point_at_line_and_column(tmp_path):
    text = cfg(("max_batch_size: 4", "max_batch_size: -1"))
    report = validate_repository(Case("l", {"TR304"}, {"m/config.pbtxt": text}).build(tmp_path))
    (f,) = report.errors
    assert (f.path, f.line, f.col) == (tmp_path / "m" / "config.pbtxt", 3, 1)
    report = validate_repository(Case("p", {"TR201"}, {"m/config.pbtxt": add("max_batch: 4\n")}).build(tmp_path / "p"))
    (f,) = report.errors
    assert (f.line, f.col) == (7, 1)
    assert f.message.endswith('Message type "inference.ModelConfig" has no field named "max_batch".')


def test_cli_formats_and_exit_codes(tmp_path):
    Case("b", {"TR304"}, {"m/config.pbtxt": cfg(("max_batch_size: 4", "max_batch_size: -1"))}).build(tmp_path / "bad")
    Case("g", set()).build(tmp_path / "good")
    ok = runner.invoke(app, ["validate", str(tmp_path / "good")])
    assert ok.exit_code == 0 and "1 models, 0 errors, 0 warnings: repository loads" in ok.output
    bad = runner.invoke(app, ["validate", str(tmp_path / "bad"), "--format", "json"])
    assert bad.exit_code == 1
    data = json.loads(bad.output)
    assert data["loads"] is False and data["findings"][0]["code"] == "TR304" and data["findings"][0]["line"] == 3
    gh = runner.invoke(app, ["validate", str(tmp_path / "bad"), "--format", "github"])
    assert gh.output.startswith(f"::error file={tmp_path / 'bad' / 'm' / 'config.pbtxt'},line=3,col=1,title=TR304::")
    junit = runner.invoke(app, ["validate", str(tmp_path / "bad"), "--format", "junit"])
    suite = ET.fromstring(junit.output.split("\n", 1)[1])
    assert suite.get("failures") == "1" and suite.find("testcase/failure").get("type") == "TR304"
    ignored = runner.invoke(app, ["validate", str(tmp_path / "bad"), "--ignore", "TR3"])
    assert ignored.exit_code == 0
    selected = runner.invoke(app, ["validate", str(tmp_path / "bad"), "--select", "TR1"])
    assert selected.exit_code == 0
    unknown = runner.invoke(app, ["validate", str(tmp_path / "bad"), "--select", "XX9"])
    assert unknown.exit_code == 2 and "no rule code starts with 'XX9'" in unknown.output
    missing = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such model repository" in missing.output


def test_warnings_as_errors(tmp_path):
    Case("w", set(), {"m/v2/x.txt": "x"}).build(tmp_path)
    assert runner.invoke(app, ["validate", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["validate", str(tmp_path), "--warnings-as-errors"]).exit_code == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(CONFIG.split()), max_size=60).map(" ".join),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
))
def test_fuzzed_configs_never_crash(tmp_path_factory, text):
    root = tmp_path_factory.mktemp("fuzz")
    Case("f", set(), {"m/config.pbtxt": text}).build(root)
    result = runner.invoke(app, ["validate", str(root), "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    json.loads(result.output)


@pytest.mark.server
def test_live_mode_loads_and_replays(tmp_path, bert_dir):
    add_hf(str(bert_dir), AddOptions(repo=tmp_path, name="bert", backend="python"))
    Case("b", {"TR304"}, {"m/config.pbtxt": cfg(("max_batch_size: 4", "max_batch_size: -1"))}).build(tmp_path)
    result = runner.invoke(app, ["validate", str(tmp_path), "--live"])
    assert result.exit_code == 1, result.output
    assert "bert: loaded" in result.output
    assert "bert: golden sample max abs difference 0 (atol 0.0001) ok" in result.output
    assert "m: refused: failed to load 'm', failed to poll from model repository" in result.output.replace("\n", " ")
    assert "'max_batch_size' must be non-negative value for m" in result.output.replace("\n", " ")
