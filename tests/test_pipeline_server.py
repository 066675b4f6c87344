"""Pipelines (pre -> core -> post ensembles) on the real Triton server, compared with the PyTorch pipeline."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tritonrepo.add import AddOptions
from tritonrepo.cli import app
from tritonrepo.client import golden_sample, infer, max_abs_diff
from tritonrepo.errors import TritonRepoError
from tritonrepo.pipeline import add_pipeline, golden_images
from tritonrepo.server import TritonServer
from tritonrepo.validate import validate_repository

pytestmark = pytest.mark.server

#: Support-matrix cells each served pipeline proves: (architecture, task, model_type).
MATRIX = {"cls": ("BertForSequenceClassification", "text-classification", "bert"),
          "vit": ("ViTModel", "feature-extraction", "vit"),
          "distil": ("DistilBertForSequenceClassification", "text-classification", "distilbert")}


@pytest.fixture(scope="module")
def served(tmp_path_factory, bert_dir, vit_dir, distilbert_dir):
    repo = tmp_path_factory.mktemp("pipelines")
    add_pipeline(str(bert_dir), AddOptions(repo=repo, name="cls"))
    add_pipeline(str(vit_dir), AddOptions(repo=repo, name="vit", backend="python"))
    add_pipeline(str(distilbert_dir), AddOptions(repo=repo, name="distil"))
    assert validate_repository(repo).findings == []
    with TritonServer(repo) as server:
        yield repo, server


@pytest.mark.parametrize("model", ["cls", "vit", "distil"])
def test_raw_golden_sample_matches_the_pytorch_pipeline(served, model, matrix_record):
    repo, server = served
    g = golden_sample(repo / model)
    got = infer(server.grpc_url, model, g.inputs, protocol="grpc")
    assert set(got) == set(g.outputs)
    assert max_abs_diff(got, g.outputs, g.valid) <= g.atol
    arch, task, model_type = MATRIX[model]
    matrix_record(arch, task, "pipeline", True, model_type=model_type)


def _stub_rss_mib(server_pid: int, model: str) -> list[float]:
    """VmRSS (MiB) of the Python-backend stub processes of ``model`` under the server process."""
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        children.setdefault(int(fields.get("PPid", "0").strip()), []).append(int(status.parent.name))
    todo, found = [server_pid], []
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if "stub" in cmd and f"/{model}/" in cmd:
            kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            found.append(kib / 1024)
    return found


def test_tokenizer_stub_is_lean(served):
    """issue 12: the tokenizer step loads only the tokenizers library (no torch): <= 150 MiB RSS per stub."""
    repo, server = served
    infer(server.http_url, "cls", {"text": np.array([[b"warm up the tokenizer"]], dtype=object)})
    for model in ("cls_preprocess", "distil_preprocess"):
        rss = _stub_rss_mib(server._proc.pid, model)
        assert rss, f"no stub process found for {model}"
        print(f"{model}: stub VmRSS {max(rss):.1f} MiB")
        assert max(rss) <= 150, rss
    print(f"for comparison, image step (transformers image processor): {max(_stub_rss_mib(server._proc.pid, 'vit_preprocess') or [0]):.1f} MiB")


def test_classifier_labels_and_scores(served):
    repo, server = served
    g = golden_sample(repo / "cls")
    got = infer(server.http_url, "cls", g.inputs)
    labels = [x.decode() for x in got["label"].reshape(-1)]
    assert labels == [x.decode() for x in g.outputs["label"].reshape(-1)]
    assert len(set(labels)) > 1, "the tiny classifier should not give every text the same label"
    np.testing.assert_allclose(got["score"], g.outputs["score"], atol=1e-4)


def test_undecodable_image_gets_an_error_and_the_next_request_succeeds(served):
    _, server = served
    bad = np.array([[b"definitely not a png"]], dtype=object)
    with pytest.raises(TritonRepoError, match="image 0 cannot be decoded"):
        infer(server.http_url, "vit", {"image": bad})
    good = infer(server.http_url, "vit", {"image": np.array([[golden_images(1)[0]]], dtype=object)})
    assert good["token_embeddings"].shape == (1, 17, 32)


def test_non_utf8_text_gets_an_error_and_the_next_request_succeeds(served):
    _, server = served
    with pytest.raises(TritonRepoError, match="text is not valid UTF-8"):
        infer(server.http_url, "cls", {"text": np.array([[b"\xff\xfe bad"]], dtype=object)})
    good = infer(server.http_url, "cls", {"text": np.array([[b"good movie"]], dtype=object)})
    assert good["label"].shape == (1, 1)


def test_infer_cli_sends_raw_text(served):
    repo, server = served
    result = CliRunner().invoke(app, ["infer", "cls", "--repo", str(repo), "--url", server.http_url,
                                      "--text", "the movie was good", "--text", "bad", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["outputs"]["label"]["shape"] == [2, 1]
    wrong = CliRunner().invoke(app, ["infer", "vit", "--repo", str(repo), "--url", server.http_url, "--text", "x"])
    assert wrong.exit_code == 2 and "model 'vit' has no 'text' input" in wrong.output


def test_infer_cli_sends_image_files(served, tmp_path):
    repo, server = served
    for i, png in enumerate(golden_images(2)):
        (tmp_path / f"{i}.png").write_bytes(png)
    result = CliRunner().invoke(app, ["infer", "vit", "--repo", str(repo), "--url", server.grpc_url, "--protocol", "grpc",
                                      "--image", str(tmp_path / "0.png"), "--image", str(tmp_path / "1.png"),
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["outputs"]["token_embeddings"]["shape"] == [2, 17, 32]
    missing = CliRunner().invoke(app, ["infer", "vit", "--repo", str(repo), "--image", str(tmp_path / "nope.png")])
    assert missing.exit_code == 2 and "--image: cannot read" in missing.output


def test_token_classification_and_question_answering_pipelines(tmp_path, matrix_record):
    import tiny_models

    token_dir = tiny_models.make_bert_head(tmp_path / "ckpt-token", "token")
    qa_dir = tiny_models.make_bert_head(tmp_path / "ckpt-qa", "qa")
    repo = tmp_path / "repo"
    add_pipeline(str(token_dir), AddOptions(repo=repo, name="ner"))
    add_pipeline(str(qa_dir), AddOptions(repo=repo, name="qa"))
    assert validate_repository(repo).findings == []
    with TritonServer(repo) as server:
        g = golden_sample(repo / "ner")
        got = infer(server.http_url, "ner", g.inputs)
        assert got["entities"].shape == g.outputs["entities"].shape
        assert max_abs_diff(got, g.outputs, g.valid) <= g.atol  # the pipeline's entities, scores within atol
        groups = {e["entity_group"] for row in got["entities"].reshape(-1) for e in json.loads(row)}
        assert groups and groups <= {"ORG", "MISC"}
        g = golden_sample(repo / "qa")
        got = infer(server.grpc_url, "qa", g.inputs, protocol="grpc")
    assert max_abs_diff(got, g.outputs, g.valid) <= g.atol  # the QA pipeline's answer, score, start, end
    contexts = [c.decode() for c in g.inputs["context"].reshape(-1)]
    for answer, start, end, context in zip(got["answer"][:, 0], got["start"][:, 0], got["end"][:, 0], contexts):
        assert answer.decode() and context[start:end] == answer.decode()
    matrix_record("BertForTokenClassification", "token-classification", "pipeline", True, model_type="bert")
    matrix_record("BertForQuestionAnswering", "question-answering", "pipeline", True, model_type="bert")
