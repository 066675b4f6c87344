"""add-hf costs no more than it must: imports of the CLI path, one tokenizer and one PyTorch load per run.

Timed targets (add-hf / optimum-cli wall time and peak RSS) live in bench/add_overhead.py, not here.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tiny_models
from tritonrepo.add import AddOptions, add_hf
from tritonrepo.export import common
from tritonrepo.manifest import read_manifest, tensor_to_array
from tritonrepo import samples

#: Modules the ONNX add-hf path has no use for (storage, clients, servers, pipelines, sentence-transformers).
UNNEEDED = [
    "boto3", "botocore", "sentence_transformers", "tritonclient.http", "geventhttpclient", "matplotlib",
    "tritonrepo.storage", "tritonrepo.package", "tritonrepo.pipeline", "tritonrepo.tasks.reference",
    "tritonrepo.validate", "tritonrepo.triton_models",
]

_RUN_CLI = """
import json, sys
from tritonrepo.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    print("MODULES " + json.dumps(sorted(sys.modules)))
"""


@pytest.mark.slow
def test_add_hf_cli_imports_only_what_it_uses(tmp_path, bert_dir):
    src = Path(__file__).resolve().parent.parent / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    args = ["add-hf", str(bert_dir), "--repo", str(tmp_path / "repo"), "--name", "m", "--format", "json"]
    proc = subprocess.run([sys.executable, "-c", _RUN_CLI, *args], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "repo" / "m" / "1" / "model.onnx").is_file()
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MODULES "))
    modules = set(json.loads(line[len("MODULES "):]))
    assert "onnxruntime" in modules and "tritonrepo.export.onnx" in modules  # the run did export
    loaded = sorted(m for m in modules if any(m == u or m.startswith(u + ".") for u in UNNEEDED))
    assert loaded == []


def _counting(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(args[0].path)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


@pytest.mark.slow
def test_one_tokenizer_and_one_model_load_per_add(tmp_path, monkeypatch):
    ckpt = shutil.copytree(tiny_models.make_bert_classifier(tmp_path / "src-ckpt"), tmp_path / "ckpt")
    monkeypatch.setattr(samples, "_TOKENIZER", [None, None])
    monkeypatch.setattr(common, "_MODEL", [None, None])
    tok_loads = _counting(monkeypatch, samples, "_load_tokenizer")
    model_loads = _counting(monkeypatch, common, "_load_torch_model")
    import transformers

    all_tok_loads = []
    real_from_pretrained = transformers.AutoTokenizer.from_pretrained
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained",
                        lambda *a, **k: all_tok_loads.append(a[0]) or real_from_pretrained(*a, **k))

    result = add_hf(str(ckpt), AddOptions(repo=tmp_path / "repo", name="a"))
    assert (len(tok_loads), len(model_loads)) == (1, 1)  # trials, parity and golden samples share them
    assert all_tok_loads == [str(ckpt)]  # nor does optimum load it again (to copy it beside the graph)
    # the golden sample is PyTorch's output for the trial-0 inputs (same run as the parity check)
    sample = read_manifest(result.model_dir).versions[0].samples[0]
    inputs = {t.name: tensor_to_array(t) for t in sample.inputs}
    want = common.torch_outputs(common.load_torch_model(result.checkpoint, result.spec), inputs, ["logits"])
    np.testing.assert_allclose(tensor_to_array(sample.outputs[0]), want["logits"], rtol=0, atol=1e-6)

    # a rewritten checkpoint (other weights, same path) is loaded again, never served from the cache
    shutil.rmtree(ckpt)
    tiny_models.make_bert_classifier(ckpt, seed=1)
    result2 = add_hf(str(ckpt), AddOptions(repo=tmp_path / "repo", name="b"))
    assert (len(tok_loads), len(model_loads), len(all_tok_loads)) == (2, 2, 2)
    sample2 = read_manifest(result2.model_dir).versions[0].samples[0]
    assert not np.allclose(tensor_to_array(sample2.outputs[0]), tensor_to_array(sample.outputs[0]))
