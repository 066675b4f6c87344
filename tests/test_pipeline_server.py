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
def served(tmp_path_factory, bert_dir, vit_dir, distilbert_dir, minilm_dir):
    repo = tmp_path_factory.mktemp("pipelines")
    add_pipeline(str(bert_dir), AddOptions(repo=repo, name="cls"))
    add_pipeline(str(vit_dir), AddOptions(repo=repo, name="vit", backend="python"))
    add_pipeline(str(distilbert_dir), AddOptions(repo=repo, name="distil"))
    add_pipeline(str(minilm_dir), AddOptions(repo=repo, name="minilm"))  # ONNX core: pooling folded, length buckets
    add_pipeline(str(bert_dir), AddOptions(repo=repo, name="q8", task="feature-extraction", quantize="int8"))
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


# --- issue 12: the embedding pipeline is tokenizer -> one ONNX model; length buckets; quantised golden tolerance ----

#: 3 to 40 tokens: buckets 16, 32 and 64 of all-MiniLM-L6-v2's 16,32,64,128,256.
EMBED_TEXTS = ["Short.", "Triton serves models from a repository.", "A man is riding a white horse on an enclosed ground.",
               "The patient was given 5 mg of the drug twice a day for two weeks, then the dose was halved again "
               "because of side effects that nobody had expected at the start of the study.", "ok",
               "How do I quantize a transformer without losing accuracy?"]


def _texts(texts):
    return np.array([[t.encode()] for t in texts], dtype=object)


def _cosine(a, b):
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def test_minilm_embedding_pipeline_is_tokenizer_then_one_onnx_model(served, minilm_dir):
    from sentence_transformers import SentenceTransformer

    from tritonrepo.config import read_config

    repo, server = served
    ens = read_config(repo / "minilm")
    assert [s.model_name for s in ens.ensemble_scheduling.step] == ["minilm_preprocess", "minilm_model"]
    assert not (repo / "minilm_postprocess").exists()
    assert [(t.name, list(t.dims)) for t in read_config(repo / "minilm_model").output] == [("embedding", [384])]
    want = SentenceTransformer(str(minilm_dir), device="cpu").encode(EMBED_TEXTS, convert_to_numpy=True)
    together = infer(server.grpc_url, "minilm", {"text": _texts(EMBED_TEXTS)}, protocol="grpc")["embedding"]
    assert _cosine(together, want).min() >= 0.9999
    np.testing.assert_allclose(together, want, atol=1e-5, rtol=0)
    g = golden_sample(repo / "minilm")
    assert max_abs_diff(infer(server.http_url, "minilm", g.inputs), g.outputs) <= g.atol
    core = golden_sample(repo / "minilm_model")  # the folded core's own golden: pooled PyTorch hidden states
    assert set(core.outputs) == {"embedding"}
    assert max_abs_diff(infer(server.http_url, "minilm_model", core.inputs), core.outputs) <= core.atol


def _core_stats(server, model):
    import tritonclient.http as th

    stats = th.InferenceServerClient(server.http_url).get_inference_statistics(model)["model_stats"][0]
    return int(stats["inference_count"]), int(stats["execution_count"])


def _core_stats_once_recorded(server, model, since, count, timeout=10.0):
    """``_core_stats`` once ``count`` inferences since ``since`` are recorded, or as they are after ``timeout`` s:
    Triton records a request's statistics when it releases the request, which can be a moment after the client
    has its answer (see tests/test_runtime_batching.py, where a CI run counted one request in the wrong window)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        now = _core_stats(server, model)
        if now[0] - since[0] >= count or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def test_length_buckets_batch_different_lengths_and_change_no_answer(served, minilm_dir):
    """The tokenizer step pads to length buckets for the ONNX core (equal shapes only): answers equal the unpadded
    ones within 1e-5, and requests of different lengths in one bucket are batched together by the core."""
    from concurrent.futures import ThreadPoolExecutor

    from transformers import AutoTokenizer

    from tritonrepo.config import read_config

    repo, server = served
    assert read_config(repo / "minilm_preprocess").parameters["length_buckets"].string_value == "16,32,64,128,256"
    tok = AutoTokenizer.from_pretrained(str(minilm_dir))
    for text, bucket in (("Short.", 16), (EMBED_TEXTS[3], 64)):
        ids = infer(server.http_url, "minilm_preprocess", {"text": _texts([text])})
        assert ids["input_ids"].shape == (1, bucket)
        assert int(ids["attention_mask"].sum()) == len(tok(text)["input_ids"])
    # unpadded: each text tokenised alone, sent to the core model as it is
    start = _core_stats(server, "minilm_model")
    unpadded = []
    for text in EMBED_TEXTS:
        enc = {k: np.asarray(v, dtype=np.int64)[None] for k, v in tok(text).items()}
        unpadded.append(infer(server.http_url, "minilm_model", enc)["embedding"][0])
    before = _core_stats_once_recorded(server, "minilm_model", start, len(EMBED_TEXTS))
    many = [EMBED_TEXTS[i % 3] + " " * (i % 2) + "x" * (i % 4) for i in range(24)]  # 3..14 tokens: bucket 16
    with ThreadPoolExecutor(12) as pool:
        got = list(pool.map(lambda t: infer(server.grpc_url, "minilm", {"text": _texts([t])}, protocol="grpc"), many))
    after = _core_stats_once_recorded(server, "minilm_model", before, len(many))
    inferences, executions = (a - b for a, b in zip(after, before))
    assert inferences == len(many) and executions < inferences, (inferences, executions)  # batches of several lengths
    for t, out in zip(many, got):
        enc = {k: np.asarray(v, dtype=np.int64)[None] for k, v in tok(t).items()}
        alone = infer(server.http_url, "minilm_model", enc)["embedding"][0]
        np.testing.assert_allclose(out["embedding"][0], alone, atol=1e-5, rtol=0)
    bucketed = infer(server.http_url, "minilm", {"text": _texts(EMBED_TEXTS)})["embedding"]
    np.testing.assert_allclose(bucketed, np.stack(unpadded), atol=1e-5, rtol=0)


def test_quantised_pipeline_golden_replays_with_the_quality_gate_tolerance(served):
    """The golden answers are the fp32 reference's: an int8 pipeline is replayed with the tolerance its quality gate
    measured (2x the max embedding difference over the gate's set), not with the fp32 parity atol."""
    from tritonrepo.manifest import read_manifest

    repo, server = served
    exporter = read_manifest(repo / "q8_model").versions[-1].exporter
    assert "SmoothQuant" in exporter and "post step folded" in exporter, exporter
    measured = float(exporter.split("max abs difference ")[1].split(" ")[0])
    g = golden_sample(repo / "q8")
    assert g.atol == pytest.approx(2 * measured, rel=1e-2) and g.atol > 1e-4
    replay = max_abs_diff(infer(server.http_url, "q8", g.inputs), g.outputs)
    assert 1e-4 < replay <= g.atol  # the fp32 tolerance would refuse this (correct) int8 answer
    result = CliRunner().invoke(app, ["infer", "q8", "--repo", str(repo), "--url", server.http_url])
    assert result.exit_code == 0, result.output


def test_ensemble_pipeline_for_a_quantised_core_uses_the_quality_gate_tolerance(served, tmp_path):
    """`ensemble --pipeline-for` around an int8 core added before (no pipeline) gives the ensemble's golden sample
    (fp32 reference answers) the core's recorded replay tolerance, as `add-hf --pipeline --quantize` does, not the
    fp32 parity atol; the wrapped pipeline's answers replay within it on the real server."""
    import shutil

    from tritonrepo.manifest import read_manifest

    repo, server = served
    shutil.copytree(repo / "q8_model", tmp_path / "q8_model")  # the quantised core alone, as add-hf wrote it
    record = read_manifest(tmp_path / "q8_model").versions[-1]
    assert record.replay_atol == pytest.approx(golden_sample(repo / "q8").atol) and record.replay_atol > 1e-4
    result = CliRunner().invoke(app, ["ensemble", "wrapped", "--repo", str(tmp_path), "--pipeline-for", "q8_model"])
    assert result.exit_code == 0, result.output
    g = golden_sample(tmp_path / "wrapped")
    assert g.atol == pytest.approx(record.replay_atol)
    # wrapped = tokenizer -> q8_model, the same steps as the served q8 pipeline: replay its golden sample there
    replay = max_abs_diff(infer(server.http_url, "q8", g.inputs), g.outputs)
    assert 1e-4 < replay <= g.atol  # the fp32 parity atol (1e-4) would refuse this correct int8 answer
