"""``tritonrepo bench`` against the real Triton server: a tiny ONNX classifier, its pipeline and a streaming model."""

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tritonrepo.add import AddOptions
from tritonrepo.bench import PA_COLUMNS, BenchOptions, run_bench, split_rows, texts_payloads
from tritonrepo.cli import app
from tritonrepo.client import golden_sample
from tritonrepo.errors import TritonRepoError
from tritonrepo.pipeline import add_pipeline
from tritonrepo.server import TritonServer

pytestmark = pytest.mark.server

STREAM_CONFIG = """name: "words"
backend: "python"
max_batch_size: 0
model_transaction_policy { decoupled: true }
input { name: "text_input" data_type: TYPE_STRING dims: [1] }
output { name: "text_output" data_type: TYPE_STRING dims: [1] }
parameters { key: "delay_ms" value { string_value: "8" } }
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory, bert_dir):
    repo = tmp_path_factory.mktemp("bench")
    add_pipeline(str(bert_dir), AddOptions(repo=repo, name="cls"))
    add_pipeline(str(bert_dir), AddOptions(repo=repo, name="emb", task="feature-extraction"))
    (repo / "words" / "1").mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "bench_models" / "stream_words.py", repo / "words" / "1" / "model.py")
    (repo / "words" / "config.pbtxt").write_text(STREAM_CONFIG)
    with TritonServer(repo) as server:
        yield repo, server


def _short(url, protocol="grpc", **kw):
    return BenchOptions(url=url, protocol=protocol, duration=kw.pop("duration", 1.5), warmup=0.3, **kw)


def test_split_rows_trims_each_request_to_its_own_length():
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    rows = split_rows({"input_ids": np.arange(8).reshape(2, 4), "attention_mask": mask})
    assert [r["input_ids"].tolist() for r in rows] == [[[0, 1, 2]], [[4, 5]]]
    assert [r["attention_mask"].shape for r in rows] == [(1, 3), (1, 2)]


def test_core_model_concurrency_sweep_with_server_split(served):
    repo, server = served
    reqs = split_rows(golden_sample(repo / "cls_model").inputs)
    assert len({r["input_ids"].shape[1] for r in reqs}) > 1, "golden rows should have different lengths"
    res = run_bench("cls_model", reqs, _short(server.grpc_url, concurrency=[1, 4]))
    assert [lv.concurrency for lv in res.levels] == [1, 4]
    for lv in res.levels:
        assert lv.requests > 5 and lv.errors == 0
        lat = lv.latency_us
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
        s = lv.server
        # the server counted the window's requests (its window is read a moment apart from the client's)
        assert s.requests >= lv.requests * 0.7
        assert s.compute_infer_us > 0 and s.avg_batch >= 1.0
        assert s.queue_us + s.compute_input_us + s.compute_infer_us + s.compute_output_us < lat["avg"]
        # requests per second of the measured window: 1.5 s, or a little longer when the last requests end late
        assert lv.requests / 1.5 * 0.8 <= lv.throughput <= lv.requests / 1.5 * 1.001


def test_pipeline_over_http_sums_its_steps(served):
    _, server = served
    reqs = texts_payloads("text", ["good movie", "the bad model serves text", "hello"])
    res = run_bench("cls", reqs, _short(server.http_url, "http", concurrency=[2]))
    lv = res.levels[0]
    assert [s.model for s in lv.steps] == ["cls_preprocess", "cls_model", "cls_postprocess"]
    assert all(s.requests > 0 and s.compute_infer_us > 0 for s in lv.steps)
    assert lv.server.compute_infer_us == pytest.approx(sum(s.compute_infer_us for s in lv.steps))


def test_request_rate_is_kept(served):
    _, server = served
    reqs = texts_payloads("text", ["good movie"])
    res = run_bench("cls", reqs, _short(server.grpc_url, request_rate=[20.0], duration=2.0))
    lv = res.levels[0]
    assert lv.request_rate == 20.0 and lv.concurrency is None
    assert 30 <= lv.requests <= 42  # 20/s over a 2 s window


def test_generation_model_gets_ttft_itl_and_tokens_per_second(served):
    _, server = served
    reqs = texts_payloads("text_input", ["one two three four five"], batching=False)
    res = run_bench("words", reqs, _short(server.grpc_url, concurrency=[1]))
    assert res.generation
    lv = res.levels[0]
    assert lv.requests >= 5 and lv.output_tokens == 5
    assert lv.ttft_ms >= 8 and 8 <= lv.itl_ms < 100  # the model sleeps 8 ms before each word
    assert lv.tokens_per_second == pytest.approx(5 * lv.throughput, rel=0.05)
    with pytest.raises(TritonRepoError, match=r"words streams its answer \(decoupled\)"):
        run_bench("words", reqs, _short(server.http_url, "http"))


def test_failing_requests_are_reported_with_the_server_message(served):
    _, server = served
    bad = [{"input_ids": np.full((1, 4), 10_000, dtype=np.int64), "attention_mask": np.ones((1, 4), np.int64),
            "token_type_ids": np.zeros((1, 4), np.int64)}]
    with pytest.raises(TritonRepoError, match="every request failed: .*"):
        run_bench("cls_model", bad, _short(server.grpc_url, duration=0.5))


def test_cli_csv_json_and_plot(served, tmp_path):
    repo, server = served
    png = tmp_path / "curve.png"
    common = ["bench", "cls_model", "--repo", str(repo), "--url", server.grpc_url, "-c", "1,2", "--duration", "0.8",
              "--warmup", "0.2"]
    result = CliRunner().invoke(app, [*common, "--format", "csv", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0])[: len(PA_COLUMNS)] == PA_COLUMNS
    assert [r["Concurrency"] for r in rows] == ["1", "2"]
    assert float(rows[1]["Inferences/Second"]) > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = CliRunner().invoke(app, [*common[:-4], "--format", "json", "-c", "1", "--duration", "0.5", "--warmup", "0"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["model"] == "cls_model" and doc["levels"][0]["p99 latency"] > 0
    text = CliRunner().invoke(app, [*common[:-4], "-c", "1", "--duration", "0.5", "--warmup", "0"])
    assert text.exit_code == 0 and "p99 ms" in text.stdout
    missing = CliRunner().invoke(app, ["bench", "nope", "--url", server.grpc_url])
    assert missing.exit_code == 1 and "nope" in missing.output and "Traceback" not in missing.output


@pytest.mark.parametrize(("model", "wanted"), [("emb", ["embedding"]), ("cls", ["label"]), ("cls", ["score"])])
def test_a_client_asking_for_some_outputs_gets_only_those(served, model, wanted):
    import tritonclient.grpc as grpcclient

    _, server = served
    client = grpcclient.InferenceServerClient(server.grpc_url)
    text = grpcclient.InferInput("text", [2, 1], "BYTES")
    text.set_data_from_numpy(np.array([[b"good movie"], [b"hello"]], dtype=object))
    result = client.infer(model, [text], outputs=[grpcclient.InferRequestedOutput(n) for n in wanted])
    assert [o.name for o in result.get_response().outputs] == wanted
    assert result.as_numpy(wanted[0]).shape[0] == 2


def test_embedding_pipeline_matches_its_golden_sample(served):
    from tritonrepo.client import infer, max_abs_diff

    repo, server = served
    g = golden_sample(repo / "emb")
    got = infer(server.grpc_url, "emb", g.inputs, protocol="grpc")
    assert set(got) == {"embedding"} and max_abs_diff(got, g.outputs) <= g.atol
