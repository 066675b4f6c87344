"""add-hf without a server: configs from the real graph, parity, atomic writes, versions and --force."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2 as mc

from tritonrepo.add import AddOptions, add_hf
from tritonrepo.backends.onnxruntime.ort_checks import check_config
from tritonrepo.config import ModelSettings, read_config
from tritonrepo.errors import ParityError, TritonRepoError
from tritonrepo.export.onnx import graph_io
from tritonrepo.manifest import read_manifest, tensor_to_array


def _io(cfg):
    return [(t.name, mc.DataType.Name(t.data_type), list(t.dims)) for t in cfg.input], [
        (t.name, mc.DataType.Name(t.data_type), list(t.dims)) for t in cfg.output
    ]


def _native_backend_errors(model_dir: Path, version: int = 1) -> list[str]:
    cfg = read_config(model_dir)
    ins, outs = graph_io(model_dir / str(version) / "model.onnx")
    return check_config(cfg.name, json_format.MessageToDict(cfg, preserving_proto_field_name=True), ins, outs)


@pytest.fixture(scope="module")
def bert_repo(tmp_path_factory, bert_dir):
    repo = tmp_path_factory.mktemp("repo")
    add_hf(str(bert_dir), AddOptions(repo=repo, name="bert"))
    return repo


def test_onnx_config_comes_from_the_graph(bert_repo, matrix_record):
    cfg = read_config(bert_repo / "bert")
    assert cfg.backend == "onnxruntime" and cfg.platform == "onnxruntime_onnx"
    assert cfg.max_batch_size == 8 and cfg.HasField("dynamic_batching")
    assert _io(cfg) == (
        [("input_ids", "TYPE_INT64", [-1]), ("attention_mask", "TYPE_INT64", [-1]), ("token_type_ids", "TYPE_INT64", [-1])],
        [("logits", "TYPE_FP32", [3])],
    )
    assert graph_io(bert_repo / "bert" / "1" / "model.onnx")[1] == {"logits": ("TYPE_FP32", [-1, 3])}
    assert _native_backend_errors(bert_repo / "bert") == []
    matrix_record("BertForSequenceClassification", "text-classification", "onnx", True, model_type="bert")


def test_manifest_records_provenance_hashes_and_golden_samples(bert_repo, bert_dir):
    manifest = read_manifest(bert_repo / "bert")
    (rec,) = manifest.versions
    assert (rec.version, rec.source, rec.source_kind, rec.task, rec.backend) == (
        1, str(bert_dir), "local", "text-classification", "onnxruntime")
    assert rec.exporter == "optimum-onnx 0.1.0" and rec.opset > 0
    assert rec.package_versions["torch"].startswith("2.13.0")
    assert 0 <= rec.parity_max_abs_diff <= rec.atol == 1e-4
    (f,) = rec.files
    data = (bert_repo / "bert" / f.path).read_bytes()
    assert f.path == "1/model.onnx" and f.sha256 == hashlib.sha256(data).hexdigest() and f.size == len(data)
    sample = rec.samples[0]
    inputs = {t.name: tensor_to_array(t) for t in sample.inputs}
    assert inputs["input_ids"].dtype.name == "int64" and inputs["input_ids"].shape[0] == 2
    assert (inputs["attention_mask"] == 0).any(), "the golden batch must exercise padding"
    assert tensor_to_array(sample.outputs[0]).shape == (2, 3)
    assert json.loads((bert_repo / "bert" / "tritonrepo.json").read_text())["modelName"] == "bert"


def test_non_batching_model_keeps_batch_dim_in_dims(tmp_path, bert_dir):
    add_hf(str(bert_dir), AddOptions(repo=tmp_path, name="nb", settings=ModelSettings(max_batch_size=0)))
    cfg = read_config(tmp_path / "nb")
    assert "max_batch_size: 0\n" in (tmp_path / "nb" / "config.pbtxt").read_text()
    assert not cfg.HasField("dynamic_batching")
    assert _io(cfg)[0][0] == ("input_ids", "TYPE_INT64", [-1, -1])
    assert _io(cfg)[1] == [("logits", "TYPE_FP32", [-1, 3])]
    assert _native_backend_errors(tmp_path / "nb") == []


def test_distilbert_graph_has_no_token_type_ids(tmp_path, distilbert_dir, matrix_record):
    add_hf(str(distilbert_dir), AddOptions(repo=tmp_path, name="distil"))
    cfg = read_config(tmp_path / "distil")
    assert [t.name for t in cfg.input] == ["input_ids", "attention_mask"]
    assert _native_backend_errors(tmp_path / "distil") == []
    matrix_record("DistilBertForSequenceClassification", "text-classification", "onnx", True, model_type="distilbert")


def test_vit_fixed_dims_come_from_the_registry_not_trial_runs(tmp_path, vit_dir, matrix_record):
    add_hf(str(vit_dir), AddOptions(repo=tmp_path, name="vit"))
    cfg = read_config(tmp_path / "vit")
    assert _io(cfg) == ([("pixel_values", "TYPE_FP32", [3, 32, 32])], [("last_hidden_state", "TYPE_FP32", [17, 32])])
    ins, outs = graph_io(tmp_path / "vit" / "1" / "model.onnx")
    assert outs["last_hidden_state"] == ("TYPE_FP32", [-1, 17, 32])  # graph pinned to match (native compares exactly)
    assert _native_backend_errors(tmp_path / "vit") == []
    matrix_record("ViTModel", "feature-extraction", "onnx", True, model_type="vit")


def test_only_config_rules_pin_dims(tmp_path, bert_dir):
    """The YOLOS bug: a dim that the trials happen to agree on (here the sequence length) is not pinned."""
    from tritonrepo.checkpoint import resolve_checkpoint
    from tritonrepo.export.common import specs_from_trials
    from tritonrepo.tasks import detect_spec

    spec = detect_spec(resolve_checkpoint(str(bert_dir)))
    trials = [{"input_ids": np.zeros((2, 7), np.int64), "logits": np.zeros((2, 3), np.float32)},
              {"input_ids": np.zeros((3, 7), np.int64), "logits": np.zeros((3, 3), np.float32)}]
    cfg = {"id2label": {"0": "a", "1": "b", "2": "c"}}
    specs = specs_from_trials(["input_ids", "logits"], trials, batching=True, spec=spec, config=cfg)
    assert [(s.name, tuple(s.dims)) for s in specs] == [("input_ids", (-1,)), ("logits", (3,))]
    with pytest.raises(TritonRepoError, match="pins it to 4 from the model config, but the model produced"):
        specs_from_trials(["logits"], trials, batching=True, spec=spec, config={"num_labels": 4})


def test_parity_failure_fails_and_writes_nothing(tmp_path, bert_dir):
    with pytest.raises(ParityError) as err:
        add_hf(str(bert_dir), AddOptions(repo=tmp_path / "repo", name="bert", atol=1e-15))
    assert err.value.exit_code == 1
    assert "differs from PyTorch: max abs difference" in err.value.message and "> atol 1e-15" in err.value.message
    assert list(tmp_path.iterdir()) == []  # the repository add-hf would have created, and no staging folder


def test_interrupted_export_leaves_nothing_behind(tmp_path, bert_dir, monkeypatch):
    import tritonrepo.export.onnx as onnx_export

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_export, "_pin_dims", interrupt)
    (tmp_path / "repo").mkdir()
    with pytest.raises(KeyboardInterrupt):
        add_hf(str(bert_dir), AddOptions(repo=tmp_path / "repo", name="bert"))
    assert list((tmp_path / "repo").iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["repo"]


def test_versions_number_up_and_force_is_needed_to_replace(tmp_path, bert_dir):
    repo = tmp_path / "repo"
    assert add_hf(str(bert_dir), AddOptions(repo=repo, name="m")).version == 1
    assert add_hf(str(bert_dir), AddOptions(repo=repo, name="m")).version == 2
    assert [r.version for r in read_manifest(repo / "m").versions] == [1, 2]
    with pytest.raises(TritonRepoError) as err:
        add_hf(str(bert_dir), AddOptions(repo=repo, name="m", version=1))
    assert err.value.message == f"{repo / 'm' / '1'}: version 1 already exists"
    before = (repo / "m" / "1" / "model.onnx").stat().st_mtime_ns
    add_hf(str(bert_dir), AddOptions(repo=repo, name="m", version=1, force=True))
    assert (repo / "m" / "1" / "model.onnx").stat().st_mtime_ns != before
    assert sorted(p.name for p in (repo / "m").iterdir()) == ["1", "2", "config.pbtxt", "tritonrepo.json"]


def test_a_changed_config_needs_force(tmp_path, bert_dir):
    repo = tmp_path / "repo"
    add_hf(str(bert_dir), AddOptions(repo=repo, name="m"))
    text = (repo / "m" / "config.pbtxt").read_text()
    with pytest.raises(TritonRepoError, match="the new version needs a different model configuration"):
        add_hf(str(bert_dir), AddOptions(repo=repo, name="m", settings=ModelSettings(max_batch_size=4)))
    assert (repo / "m" / "config.pbtxt").read_text() == text
    assert not (repo / "m" / "2").exists()
    add_hf(str(bert_dir), AddOptions(repo=repo, name="m", settings=ModelSettings(max_batch_size=4), force=True))
    assert read_config(repo / "m").max_batch_size == 4


def test_python_backend_ships_the_fixed_module_and_parameters(tmp_path, bert_dir, matrix_record):
    from importlib import resources

    add_hf(str(bert_dir), AddOptions(repo=tmp_path, name="py", backend="python"))
    v = tmp_path / "py" / "1"
    pkg = resources.files("tritonrepo") / "triton_models"
    assert (v / "model.py").read_bytes() == (pkg / "hf_transformers.py").read_bytes()
    assert (v / "tritonrepo_runtime.py").read_bytes() == (pkg / "runtime.py").read_bytes()
    assert (v / "hf_model" / "config.json").is_file() and (v / "hf_model" / "model.safetensors").is_file()
    cfg = read_config(tmp_path / "py")
    assert cfg.backend == "python" and cfg.platform == ""
    assert {k: p.string_value for k, p in cfg.parameters.items()} == {
        "task": "text-classification", "auto_class": "AutoModelForSequenceClassification", "model_subfolder": "hf_model"}
    assert _io(cfg)[1] == [("logits", "TYPE_FP32", [3])]
    matrix_record("BertForSequenceClassification", "text-classification", "python", True, model_type="bert")


@pytest.mark.parametrize("backend", ["onnx", "python"])
def test_multiple_choice_has_three_dim_inputs(tmp_path, backend, matrix_record):
    """BERT multiple-choice (inputs [batch, choices, seq]) exports and matches PyTorch (was a traceback)."""
    import tiny_models

    ckpt = tiny_models.make_bert_head(tmp_path / "ckpt", "choice")
    result = add_hf(str(ckpt), AddOptions(repo=tmp_path / "repo", name="mc", backend=backend))
    assert result.task == "multiple-choice"
    assert _io(result.config) == (
        [("input_ids", "TYPE_INT64", [-1, -1]), ("attention_mask", "TYPE_INT64", [-1, -1]),
         ("token_type_ids", "TYPE_INT64", [-1, -1])],
        [("logits", "TYPE_FP32", [-1])],
    )
    assert result.export.parity_max_abs_diff <= 1e-4
    if backend == "onnx":
        assert _native_backend_errors(tmp_path / "repo" / "mc") == []
    matrix_record("BertForMultipleChoice", "multiple-choice", backend, True, model_type="bert")


def test_bad_names_and_backends_are_refused_before_any_work(tmp_path, bert_dir):
    with pytest.raises(TritonRepoError, match="invalid model name"):
        add_hf(str(bert_dir), AddOptions(repo=tmp_path, name="../escape"))
    with pytest.raises(TritonRepoError, match="unknown backend 'tensorrt'"):
        add_hf(str(bert_dir), AddOptions(repo=tmp_path, backend="tensorrt"))
    assert list(tmp_path.iterdir()) == []
