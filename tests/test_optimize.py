"""``add-hf --optimize/--quantize`` behind the quality gate vs the fp32 PyTorch model."""

import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import tiny_models
from tritonrepo.add import AddOptions, add_hf
from tritonrepo.checkpoint import resolve_checkpoint
from tritonrepo.cli import app
from tritonrepo.errors import TritonRepoError
from tritonrepo.export.optimize import Quality, compare, optimize_exported
from tritonrepo.manifest import read_manifest


def test_compare_figures_for_embeddings_and_classes():
    ref = {"logits": np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.9]])}
    got = {"logits": np.array([[2.0, 0.1], [0.0, 1.1], [0.8, 0.9]])}
    q = compare(ref, got, None, embedding=False)
    assert q.agreement == pytest.approx(2 / 3) and q.max_score_diff > 0 and q.min_cosine is None
    assert not q.passes(0.99, 0.99) and q.passes(0.99, 0.6)
    hidden = np.random.default_rng(0).standard_normal((2, 3, 4))
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    noisy = hidden.copy()
    noisy[:, 2] += 100.0  # padding positions do not count
    q = compare({"last_hidden_state": hidden}, {"last_hidden_state": noisy}, mask, embedding=True)
    assert q.min_cosine == pytest.approx(1.0)
    assert Quality(samples=3, min_cosine=float("nan")).passes(0.5, 0.5) is False


def test_int8_classifier_passes_the_gate_and_records_the_figures(tmp_path, bert_dir):
    add_hf(str(bert_dir), AddOptions(repo=tmp_path, name="q", quantize="int8-dynamic"))
    record = read_manifest(tmp_path / "q").versions[-1]
    assert "int8-dynamic" in record.exporter and "argmax agreement" in record.exporter
    import onnx

    ops = {n.op_type for n in onnx.load(str(tmp_path / "q" / "1" / "model.onnx")).graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLinear"}


def test_gate_refusal_writes_nothing_and_says_why(tmp_path, bert_dir):
    result = CliRunner().invoke(app, ["add-hf", str(bert_dir), "--repo", str(tmp_path), "--name", "q",
                                      "--quantize", "int8-dynamic", "--min-agreement", "1.01"])
    assert result.exit_code == 1, result.output
    assert "below the quality gate vs the fp32 PyTorch model: argmax agreement" in result.output
    assert "nothing was written" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "q").exists()
    with pytest.raises(TritonRepoError, match="--optimize O4 is for GPU targets"):
        add_hf(str(bert_dir), AddOptions(repo=tmp_path, name="q", optimize="O4"))
    with pytest.raises(TritonRepoError, match="apply to ONNX exports"):
        add_hf(str(bert_dir), AddOptions(repo=tmp_path, name="q", backend="python", quantize="int8"))


@pytest.fixture(scope="module")
def minilm_onnx(tmp_path_factory):
    from tritonrepo.export.onnx import export_onnx

    vdir = tmp_path_factory.mktemp("minilm") / "1"
    export_onnx(resolve_checkpoint(str(tiny_models.minilm_path())), "feature-extraction", vdir)
    return vdir / "model.onnx"


@pytest.mark.slow
def test_minilm_int8_keeps_cosine_and_a_bad_int4_is_refused(minilm_onnx, tmp_path):
    import onnx

    from tritonrepo.export.optimize import _weight_int8

    ckpt = resolve_checkpoint(str(tiny_models.minilm_path()))
    target = tmp_path / "v" / "model.onnx"
    target.parent.mkdir()
    shutil.copy(minilm_onnx, target)
    report = optimize_exported(target, ckpt, "feature-extraction", quantize="int8")
    assert report.quality.min_cosine >= 0.99 and report.quality.samples == 20
    # SmoothQuant + dynamic int8 (MatMulInteger: fast at batch 8 too), calibrated on other texts than the gate's
    assert "SmoothQuant" in report.method, report.method
    ops = {n.op_type for n in onnx.load(str(target)).graph.node}
    assert "MatMulInteger" in ops and "MatMulNBits" not in ops
    # MiniLM's embeddings are L2-normalised: the replay tolerance is twice the largest embedding difference measured
    assert 0 < report.quality.max_abs_diff < 0.1
    assert report.quality.replay_tolerance() == pytest.approx(2 * report.quality.max_abs_diff)
    # a deliberately bad quantisation (4-bit weights): the gate's figures refuse it
    bad = tmp_path / "bad.onnx"
    _weight_int8(minilm_onnx, bad, 128, bits=4)
    from tritonrepo.export.optimize import GATE_TEXTS, _run, gate_inputs
    from tritonrepo.export.common import load_torch_model, torch_outputs

    feeds = gate_inputs(ckpt, "feature-extraction", ["input_ids", "attention_mask", "token_type_ids"])
    ref = torch_outputs(load_torch_model(ckpt, "feature-extraction"), feeds, ["last_hidden_state"])
    q = compare(ref, _run(bad, feeds, ["last_hidden_state"]), feeds["attention_mask"], embedding=True)
    assert q.samples == len(GATE_TEXTS) and q.min_cosine < 0.99 and not q.passes(0.99, 0.99)


def test_smoothing_is_exact_in_fp32(minilm_onnx, tmp_path):
    """SmoothQuant rescales activations and weights so that X @ W is unchanged (before any quantisation)."""
    from tritonrepo.export.optimize import CALIBRATION_TEXTS, _run, gate_inputs, smooth_activations

    ckpt = resolve_checkpoint(str(tiny_models.minilm_path()))
    names = ["input_ids", "attention_mask", "token_type_ids"]
    smoothed = tmp_path / "smoothed.onnx"
    assert smooth_activations(minilm_onnx, smoothed, gate_inputs(ckpt, "feature-extraction", names, CALIBRATION_TEXTS),
                              0.7) == 36  # 6 layers x (q, k, v, attention out, ffn in, ffn out)
    feeds = gate_inputs(ckpt, "feature-extraction", names)
    mask = feeds["attention_mask"].astype(bool)
    a, b = (_run(p, feeds, ["last_hidden_state"])["last_hidden_state"] for p in (minilm_onnx, smoothed))
    assert np.abs(a - b)[mask].max() <= 1e-4
