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
    assert (f.line, f.col) == (7, 10)  # where the C++ parser in tritonserver reports it
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


def _rule_findings(root, code, **options):
    """Findings of one rule on the repository at ``root`` under ``tritonserver`` options (ServerOptions fields)."""
    from tritonrepo.validate import RULES, load_repository  # noqa: PLC0415
    from tritonrepo.validate.options import ServerOptions  # noqa: PLC0415

    repo = load_repository(root)
    repo.options = ServerOptions(**options)
    return [f for ctx in repo.models.values() for f in RULES[code].findings(ctx)]


@pytest.mark.parametrize(("version", "refused"), [("24.10", True), ("2.51", True), ("24.11", False), ("2.52", False), ("25.06", False)])
def test_model_metrics_is_a_parse_error_before_2_52(tmp_path, version, refused):
    root = Case("mm", set(), {"m/config.pbtxt": add("model_metrics { }\n")}).build(tmp_path)
    found = _rule_findings(root, "TR201", triton_version=version)
    assert bool(found) == refused
    if refused:
        assert found[0].message.endswith(
            'Error parsing text-format inference.ModelConfig: 7:15: Message type "inference.ModelConfig" has no field named "model_metrics".')
        assert (found[0].line, found[0].col) == (7, 15)


def test_backend_directory_option_is_searched_on_disk(tmp_path):
    root = Case("b", set(), {"m/config.pbtxt": cfg(('backend: "python"', 'backend: "custom"'))}).build(tmp_path / "repo")
    assert [f.message for f in _rule_findings(root, "TR370")] == [
        "unable to find backend library for backend 'custom', try specifying runtime on the model configuration."]
    backends = tmp_path / "backends"
    (backends / "custom").mkdir(parents=True)
    assert _rule_findings(root, "TR370", backend_directory=backends)  # an empty backend folder is no backend
    (backends / "custom" / "model.py").write_text("")  # a Python-based backend ...
    (found,) = _rule_findings(root, "TR370", backend_directory=backends)  # ... runs on the Python backend's library
    assert found.message == (f"unable to find backend library 'libtriton_python.so' for model 'm', searched: "
                             f"'{root / 'm' / '1'}' '{root / 'm'}' '{backends / 'custom'}' '{backends / 'python'}' ")
    (backends / "python").mkdir()
    (backends / "python" / "libtriton_python.so").write_bytes(b"")
    assert _rule_findings(root, "TR370", backend_directory=backends) == []
    (backends / "python" / "libtriton_python.so").unlink()
    # python is a standard backend, but not in a backend directory that lacks it
    Case("p", set()).build(tmp_path / "repo2")
    assert _rule_findings(tmp_path / "repo2", "TR370") == []
    assert _rule_findings(tmp_path / "repo2", "TR370", backend_directory=backends)
    # a custom backend library shipped in the model folder needs no backend directory
    (root / "m" / "libtriton_custom.so").write_bytes(b"")
    assert _rule_findings(root, "TR370") == []


def test_runtime_model_py_searches_the_backend_directory(tmp_path):
    root = Case("r", set(), {"m/config.pbtxt": cfg(('backend: "python"', 'backend: "mybe"\nruntime: "model.py"'))}).build(tmp_path / "repo")
    backends = tmp_path / "backends"
    (backends / "python").mkdir(parents=True)
    (backends / "python" / "libtriton_python.so").write_bytes(b"")
    (found,) = _rule_findings(root, "TR371", backend_directory=backends)
    assert found.message == (f"unable to find Python backend based backend library 'model.py' for model 'm', searched: "
                             f"'{backends / 'mybe' / 'model.py'}'")
    (backends / "mybe").mkdir()
    (backends / "mybe" / "model.py").write_text("")
    assert _rule_findings(root, "TR371", backend_directory=backends) == []


def test_repoagent_directory_option(tmp_path):
    root = Case("a", set(), {"m/config.pbtxt": add('model_repository_agents { agents [ { name: "checksum" } ] }\n')}).build(tmp_path / "repo")
    assert _rule_findings(root, "TR373") == []  # shipped with the NGC image
    agents = tmp_path / "agents"
    agents.mkdir()
    (found,) = _rule_findings(root, "TR373", repoagent_directory=agents)
    assert found.message == f"unable to find 'libtritonrepoagent_checksum.so' for repo agent 'checksum', searched: {agents}"
    (agents / "checksum").mkdir()
    (agents / "checksum" / "libtritonrepoagent_checksum.so").write_bytes(b"")
    assert _rule_findings(root, "TR373", repoagent_directory=agents) == []


def test_onnx_batching_auto_complete_only_when_enabled(tmp_path):
    from corpus.cases import BROKEN  # noqa: PLC0415

    (case,) = [c for c in BROKEN if c.id == "onnx-no-batch-dim-auto-complete"]
    root = case.build(tmp_path)
    (found,) = _rule_findings(root, "TR503")
    assert found.message == "autofill failed for model 'm': model does not support batching while non-zero max_batch_size is specified"
    assert _rule_findings(root, "TR503", disable_auto_complete_config=True) == []


@pytest.mark.parametrize(("kind", "gpus", "code"), [("KIND_AUTO", "0", "TR341"), ("KIND_AUTO", "-1", "TR340"), ("KIND_GPU", "-1", "TR343")])
def test_gpu_ids(tmp_path, kind, gpus, code):
    root = Case("g", set(), {"m/config.pbtxt": cfg(("kind: KIND_CPU count: 1", f"kind: {kind} count: 1 gpus: [ {gpus} ]"))}).build(tmp_path)
    report = validate_repository(root)
    assert code in _codes(report)
    assert report.loads() == (code == "TR341")

