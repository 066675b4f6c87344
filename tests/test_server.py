"""Real Triton server (tritonserver from nvidia-pytriton): load generated repositories and compare with PyTorch."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from typer.testing import CliRunner

from tritonrepo.add import AddOptions, add_hf
from tritonrepo.cli import app
from tritonrepo.client import golden_sample, infer, max_abs_diff
from tritonrepo.errors import TritonRepoError
from tritonrepo.server import TritonServer
from tritonrepo.validate import validate_repository

pytestmark = pytest.mark.server
MODELS = ["bert", "bert_py", "vit", "vit_py"]


@pytest.fixture(scope="module")
def served(tmp_path_factory, bert_dir, vit_dir):
    repo = tmp_path_factory.mktemp("served")
    add_hf(str(bert_dir), AddOptions(repo=repo, name="bert"))
    add_hf(str(bert_dir), AddOptions(repo=repo, name="bert_py", backend="python"))
    add_hf(str(vit_dir), AddOptions(repo=repo, name="vit"))
    add_hf(str(vit_dir), AddOptions(repo=repo, name="vit_py", backend="python"))
    assert validate_repository(repo).findings == []
    with TritonServer(repo) as server:
        yield repo, server


@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("model", MODELS)
def test_served_answer_matches_pytorch(served, model, protocol):
    repo, server = served
    g = golden_sample(repo / model)
    url = server.http_url if protocol == "http" else server.grpc_url
    got = infer(url, model, g.inputs, protocol=protocol)
    assert set(got) == set(g.outputs)
    assert max_abs_diff(got, g.outputs, g.valid) <= g.atol


@pytest.mark.parametrize("model", ["bert", "bert_py"])
def test_concurrent_unpadded_rows_are_each_answered_correctly(served, model):
    """Rows sent one by one (different lengths, dynamic batching may stack them) match the padded batch."""
    repo, server = served
    g = golden_sample(repo / model)
    inputs, reference = g.inputs, g.outputs
    rows = []
    for i in range(inputs["input_ids"].shape[0]):
        n = int(inputs["attention_mask"][i].sum())
        rows.append({k: v[i : i + 1, :n] for k, v in inputs.items()})
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda r: infer(server.http_url, model, r), rows * 4))
    for i, got in enumerate(answers):
        np.testing.assert_allclose(got["logits"][0], reference["logits"][i % len(rows)], atol=1e-4)


@pytest.mark.parametrize("model", ["bert", "bert_py"])
def test_a_bad_request_gets_an_error_and_the_model_keeps_serving(served, model):
    repo, server = served
    g = golden_sample(repo / model)
    inputs, reference, atol = g.inputs, g.outputs, g.atol
    bad = {k: v.copy() for k, v in inputs.items()}
    bad["input_ids"][0, 1] = 10**6  # outside the vocabulary
    with pytest.raises(TritonRepoError, match="the server refused the request") as err:
        infer(server.http_url, model, bad)
    assert "index" in err.value.message.lower() or "out of" in err.value.message.lower()
    wrong_dtype = {k: v.astype(np.float32) for k, v in inputs.items()}
    with pytest.raises(TritonRepoError, match="FP32"):
        infer(server.grpc_url, model, wrong_dtype, protocol="grpc")
    assert max_abs_diff(infer(server.http_url, model, inputs), reference) <= atol


def test_infer_cli_replays_the_golden_sample(served):
    repo, server = served
    result = CliRunner().invoke(app, ["infer", "vit", "--repo", str(repo), "--url", server.grpc_url,
                                      "--protocol", "grpc", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert '"max_abs_diff"' in result.output
    result = CliRunner().invoke(app, ["infer", "bert", "--repo", str(repo), "--url", server.http_url, "--random"])
    assert result.exit_code == 0, result.output
    assert "logits" in result.output


def test_a_config_the_native_backend_would_refuse_fails_to_load(tmp_path, bert_dir):
    """The Python-based onnxruntime backend refuses what the native one refuses (ORT-09 message)."""
    add_hf(str(bert_dir), AddOptions(repo=tmp_path, name="bert"))
    cfg = tmp_path / "bert" / "config.pbtxt"
    cfg.write_text(cfg.read_text().replace("TYPE_FP32", "TYPE_FP16"))
    with pytest.raises(TritonRepoError) as err:
        TritonServer(tmp_path).start(timeout=60)
    assert (
        "unable to load model 'bert', configuration expects datatype TYPE_FP16 for output 'logits', "
        "model provides TYPE_FP32" in err.value.message
    )


def test_serve_command_starts_answers_and_stops_on_ctrl_c(tmp_path, bert_dir):
    import re
    import signal
    import subprocess
    import sys
    import time

    add_hf(str(bert_dir), AddOptions(repo=tmp_path / "repo", name="bert"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tritonrepo", "serve", str(tmp_path / "repo"),
         "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**__import__("os").environ, "COLUMNS": "200"},
    )
    lines, url = [], None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and url is None:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"HTTP\s+http://(127\.0\.0\.1:\d+)", line)
        url = m.group(1) if m else None
    try:
        assert url, "".join(lines)
        assert any("Python-based 'onnxruntime' backend" in ln for ln in lines)
        g = golden_sample(tmp_path / "repo" / "bert")
        assert max_abs_diff(infer(url, "bert", g.inputs), g.outputs, g.valid) <= g.atol
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "stopped" in out
