"""The CLI: one-line errors with exit codes, never a traceback; JSON for machines."""

import json

import pytest
from typer.testing import CliRunner

from tritonrepo.cli import app

runner = CliRunner()


def test_init_and_refusal(tmp_path):
    result = runner.invoke(app, ["init", str(tmp_path / "repo")])
    assert result.exit_code == 0 and "model repository ready" in result.output
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    (tmp_path / "other" / "src").mkdir()
    result = runner.invoke(app, ["init", str(tmp_path / "other")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {tmp_path / 'other'}: directory is not empty and is not a model repository "
        "(fix: choose an empty or new directory)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add-hf", "/no/such/ckpt"], "error: /no/such/ckpt: no such folder, and not a Hugging Face Hub id"),
        (["add-hf", "{bert}", "--name", "a b"], "error: invalid model name 'a b'"),
        (["add-hf", "{bert}", "--task", "nope"], "error: unknown task 'nope'"),
        (["add-hf", "{bert}", "--instance-count", "0"], "error: instance count must be >= 1, got 0"),
    ],
)
def test_add_hf_errors_are_one_line(tmp_path, bert_dir, args, message):
    args = [a.replace("{bert}", str(bert_dir)) for a in args] + ["--repo", str(tmp_path / "repo")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.output.startswith(message)
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_add_hf_json_output_and_parity_exit_code(tmp_path, bert_dir):
    repo = tmp_path / "repo"
    result = runner.invoke(app, ["add-hf", str(bert_dir), "--repo", str(repo), "--name", "b", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["model"] == "b" and data["version"] == 1 and data["task"] == "text-classification"
    assert data["outputs"] == [{"name": "logits", "data_type": "TYPE_FP32", "dims": [3]}]
    assert data["parity_max_abs_diff"] <= 1e-4
    assert 'name: "b"' in data["config_pbtxt"]
    result = runner.invoke(app, ["add-hf", str(bert_dir), "--repo", str(repo), "--name", "c", "--atol", "0"])
    assert result.exit_code == 1
    assert "differs from PyTorch" in result.output
    assert not (repo / "c").exists()


def test_usage_errors_exit_2():
    result = runner.invoke(app, ["add-hf", "x", "--backend", "tensorrt"])
    assert result.exit_code == 2


def test_infer_without_manifest_or_server(tmp_path):
    (tmp_path / "m").mkdir()
    result = runner.invoke(app, ["infer", "m", "--repo", str(tmp_path)])
    assert result.exit_code == 2
    assert "no tritonrepo manifest with golden samples" in result.output
    (tmp_path / "m" / "config.pbtxt").write_text('name: "m"\nmax_batch_size: 0\ninput { name: "x" data_type: TYPE_FP32 dims: 2 }\n')
    result = runner.invoke(app, ["infer", "m", "--repo", str(tmp_path), "--random", "--url", "127.0.0.1:9"])
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot reach Triton at 127.0.0.1:9 (http)")


def test_python_m_entry_point():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "tritonrepo", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "tritonrepo 0.1.0"
