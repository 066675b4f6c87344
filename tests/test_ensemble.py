"""Ensemble wiring and its checks (no server): messages mirror Triton's ensemble_utils.cc."""

import pytest
from tritonclient.grpc import model_config_pb2 as mc
from typer.testing import CliRunner

from tritonrepo.add import AddOptions
from tritonrepo.cli import app
from tritonrepo.config import ModelSettings, TensorSpec, build_config, read_config
from tritonrepo.ensemble import parse_map, plan_ensemble
from tritonrepo.errors import TritonRepoError
from tritonrepo.pipeline import add_pipeline

S, I64, I32, F32 = mc.TYPE_STRING, mc.TYPE_INT64, mc.TYPE_INT32, mc.TYPE_FP32


def _cfg(name, inputs, outputs, mbs=8):
    return build_config(name, backend="python", inputs=[TensorSpec(*t) for t in inputs],
                        outputs=[TensorSpec(*t) for t in outputs], settings=ModelSettings(max_batch_size=mbs))


def _models(core_ids=I64, post_inputs=(("logits", F32, (3,)),), mbs=(8, 8, 8)):
    return {
        "tok": _cfg("tok", [("text", S, (1,))], [("input_ids", I64, (-1,)), ("attention_mask", I64, (-1,))], mbs[0]),
        "bert": _cfg("bert", [("input_ids", core_ids, (-1,)), ("attention_mask", I64, (-1,))], [("logits", F32, (3,))], mbs[1]),
        "argmax": _cfg("argmax", list(post_inputs), [("label", S, (1,)), ("score", F32, (1,))], mbs[2]),
    }


def test_name_based_wiring():
    cfg = plan_ensemble("cls", ["tok", "bert", "argmax"], _models()).to_config()
    assert cfg.platform == "ensemble" and cfg.backend == "" and cfg.max_batch_size == 8
    assert [(t.name, t.data_type, list(t.dims)) for t in cfg.input] == [("text", S, [1])]
    assert [t.name for t in cfg.output] == ["label", "score"]
    steps = cfg.ensemble_scheduling.step
    assert [s.model_name for s in steps] == ["tok", "bert", "argmax"]
    assert dict(steps[0].input_map) == {"text": "text"}
    assert dict(steps[0].output_map) == {"input_ids": "input_ids", "attention_mask": "attention_mask"}
    assert dict(steps[1].input_map) == {"input_ids": "input_ids", "attention_mask": "attention_mask"}
    assert dict(steps[2].output_map) == {"label": "label", "score": "score"}
    assert all(s.model_version == -1 for s in steps)


def test_explicit_map_and_named_outputs():
    models = _models(post_inputs=(("logits", F32, (3,)), ("mask", I64, (-1,))))
    maps = dict([parse_map("argmax.mask=tok.attention_mask")])
    cfg = plan_ensemble("cls", ["tok", "bert", "argmax"], models, maps=maps, outputs=["argmax.score", "label"]).to_config()
    assert dict(cfg.ensemble_scheduling.step[2].input_map) == {"logits": "logits", "mask": "attention_mask"}
    assert [t.name for t in cfg.output] == ["score", "label"]


def test_missing_tensor_is_refused_with_a_fix():
    models = _models(post_inputs=(("logits", F32, (3,)), ("mask", I64, (-1,))))
    with pytest.raises(TritonRepoError) as err:
        plan_ensemble("cls", ["tok", "bert", "argmax"], models)
    assert err.value.message == (
        "ensemble 'cls': input 'mask' of step 'argmax' is not produced by an earlier step and is not an ensemble input"
    )
    assert err.value.hint == "map it: --map argmax.mask=<earlier step>.<output>"


def test_dtype_mismatch_uses_tritons_message():
    with pytest.raises(TritonRepoError) as err:
        plan_ensemble("cls", ["tok", "bert", "argmax"], _models(core_ids=I32))
    assert err.value.message == (
        "in ensemble cls, ensemble tensor input_ids: inconsistent data type: TYPE_INT64 is inferred from model tok "
        "while TYPE_INT32 is inferred from model bert"
    )


def test_shape_mismatch_uses_tritons_message():
    with pytest.raises(TritonRepoError) as err:
        plan_ensemble("cls", ["tok", "bert", "argmax"], _models(post_inputs=(("logits", F32, (5,)),)))
    assert err.value.message == (
        "in ensemble cls, ensemble tensor logits: inconsistent shape: [-1,3] is inferred from model bert while "
        "[-1,5] is inferred from model argmax"
    )


def test_max_batch_size_rules():
    with pytest.raises(TritonRepoError) as err:
        plan_ensemble("cls", ["tok", "bert", "argmax"], _models(mbs=(8, 4, 8)), max_batch_size=8)
    assert err.value.message == (
        "ensemble cls allows maximum batch size 8, but it contains model bert which only allows maximum batch size to be 4"
    )
    assert plan_ensemble("cls", ["tok", "bert", "argmax"], _models(mbs=(8, 4, 8))).max_batch_size == 4
    with pytest.raises(TritonRepoError, match="steps mix batching and non-batching models"):
        plan_ensemble("cls", ["tok", "bert", "argmax"], _models(mbs=(8, 0, 8)))


@pytest.mark.parametrize(
    ("spec", "message"),
    [("argmax.logits", "expected CONSUMER.INPUT=PRODUCER.OUTPUT"), ("a=b.c", "expected CONSUMER.INPUT=PRODUCER.OUTPUT")],
)
def test_bad_map_specs(spec, message):
    with pytest.raises(TritonRepoError, match=message):
        parse_map(spec)


def test_an_output_consumed_by_a_later_step_is_refused():
    models = _models()
    models["bert"] = _cfg("bert", [("input_ids", I64, (-1,)), ("attention_mask", I64, (-1,))],
                          [("logits", F32, (3,)), ("hidden", F32, (-1, 4))])
    plan_ensemble("e", ["tok", "bert", "argmax"], models, outputs=["label", "bert.hidden"])  # not consumed: fine
    with pytest.raises(TritonRepoError) as err:
        plan_ensemble("e", ["tok", "bert", "argmax"], models, outputs=["label", "bert.logits"])
    assert err.value.message == (
        "ensemble 'e': output 'logits' of step 'bert' is also an input of step 'argmax'; Triton then answers requests "
        "for only some outputs with 'unexpected deadlock' (its ensemble pruning drops step 'bert')")


def test_map_to_a_later_step_is_refused():
    with pytest.raises(TritonRepoError, match="'argmax' is not an earlier step"):
        plan_ensemble("cls", ["tok", "bert", "argmax"], _models(), maps={("bert", "input_ids"): ("argmax", "label")})


def test_ensemble_command_writes_config_and_empty_version(tmp_path):
    from tritonrepo.config import write_config

    for name, cfg in _models().items():
        (tmp_path / name / "1").mkdir(parents=True)
        write_config(cfg, tmp_path / name)
    runner = CliRunner()
    args = ["ensemble", "cls", "--repo", str(tmp_path), "--step", "tok", "--step", "bert", "--step", "argmax"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert read_config(tmp_path / "cls").platform == "ensemble"
    assert list((tmp_path / "cls" / "1").iterdir()) == []
    again = runner.invoke(app, args + ["--max-batch-size", "4"])
    assert again.exit_code == 2
    assert again.output.startswith(f"error: {tmp_path / 'cls'}: model already exists")
    forced = runner.invoke(app, args + ["--max-batch-size", "4", "--force"])
    assert forced.exit_code == 0, forced.output
    assert read_config(tmp_path / "cls").max_batch_size == 4
    missing = runner.invoke(app, ["ensemble", "x", "--repo", str(tmp_path), "--step", "nope"])
    assert missing.exit_code == 2 and f"step model 'nope' is not in {tmp_path}" in missing.output


def test_pipeline_follows_the_graph_distilbert_has_no_token_type_ids(tmp_path, distilbert_dir):
    result = add_pipeline(str(distilbert_dir), AddOptions(repo=tmp_path, name="distil"))
    assert result.steps == ["distil_preprocess", "distil_model", "distil_postprocess"]
    pre = read_config(tmp_path / "distil_preprocess")
    assert [t.name for t in pre.output] == ["input_ids", "attention_mask"]
    assert [(t.name, t.data_type) for t in pre.input] == [("text", S)]
    ens = read_config(tmp_path / "distil")
    assert [t.name for t in ens.output] == ["label", "score"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "distil", "distil_model", "distil_postprocess", "distil_preprocess"]


def test_minilm_pipeline_honours_sentence_transformers_config(tmp_path, minilm_dir):
    add_pipeline(str(minilm_dir), AddOptions(repo=tmp_path, name="minilm", backend="python"))
    post = read_config(tmp_path / "minilm_postprocess")
    params = {k: v.string_value for k, v in post.parameters.items()}
    assert params == {"kind": "embedding", "pooling": "mean", "normalize": "true", "batch_padding": "true"}
    pre = read_config(tmp_path / "minilm_preprocess")
    assert pre.parameters["max_length"].string_value == "256"  # sentence_bert_config.json max_seq_length
    assert [t.name for t in read_config(tmp_path / "minilm").output] == ["embedding"]  # not the consumed hidden states


def test_pipeline_for_a_model_already_in_the_repository(tmp_path, bert_dir):
    from tritonrepo.add import add_hf
    from tritonrepo.client import golden_sample

    add_hf(str(bert_dir), AddOptions(repo=tmp_path, name="bert"))
    result = CliRunner().invoke(app, ["ensemble", "classifier", "--repo", str(tmp_path), "--pipeline-for", "bert"])
    assert result.exit_code == 0, result.output
    ens = read_config(tmp_path / "classifier")
    assert [s.model_name for s in ens.ensemble_scheduling.step] == [
        "classifier_preprocess", "bert", "classifier_postprocess"]
    assert golden_sample(tmp_path / "classifier").outputs["label"].shape == (5, 1)
    again = CliRunner().invoke(app, ["ensemble", "classifier", "--repo", str(tmp_path), "--pipeline-for", "bert"])
    assert again.exit_code == 0, again.output  # like add-hf: a new version of each generated model
    assert sorted(p.name for p in (tmp_path / "classifier_preprocess").iterdir() if p.is_dir()) == ["1", "2"]
    nothing = CliRunner().invoke(app, ["ensemble", "e", "--repo", str(tmp_path)])
    assert nothing.exit_code == 2 and "give the steps" in nothing.output
