"""Padding-aware batching in the Python-backend runtime, on the real Triton server.

Requests of different lengths sent together are batched into one forward pass (average executed batch > 1 in
Triton's statistics) and each answer equals the answer to the same request sent alone (<= 1e-5).
"""

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import tiny_models
from tritonrepo.add import AddOptions, add_hf
from tritonrepo.bench import _delta, _stats
from tritonrepo.client import infer
from tritonrepo.config import ModelSettings, read_config
from tritonrepo.server import TritonServer
from tritonrepo.triton_models.runtime import batch_groups, bucket_length, pad_batch

LENGTHS = [3, 9, 5, 12, 4, 7, 10, 6]


def test_pad_batch_pads_sequence_inputs_only():
    a = {"input_ids": np.array([[5, 6]]), "attention_mask": np.array([[1, 1]]), "pixel": np.ones((1, 3))}
    b = {"input_ids": np.array([[7, 8, 9, 4]]), "attention_mask": np.array([[1, 1, 1, 1]]), "pixel": np.zeros((1, 3))}
    out = pad_batch([a, b], {"input_ids": 99, "attention_mask": 0})
    assert out["input_ids"].tolist() == [[5, 6, 99, 99], [7, 8, 9, 4]]
    assert out["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert out["pixel"].shape == (2, 3)
    assert [bucket_length(n, [16, 32, 64]) for n in (1, 16, 17, 100)] == [16, 16, 32, 64]


def test_requests_of_different_lengths_form_one_group_only_with_padding():
    read = [(i, _request(n, i)) for i, n in enumerate([3, 9, 5])]
    pads = {"input_ids": 0, "attention_mask": 0, "token_type_ids": 0}
    assert [[i for i, _ in g] for g in batch_groups(read, pads).values()] == [[0, 1, 2]]
    assert len(batch_groups(read, {})) == 3
    assert len(batch_groups(read, pads, batching=False)) == 3


def test_pad_to_bucket_pads_on_the_tokenizer_side(tmp_path):
    """The tokenizer step's bucket padding (ONNX cores): the smallest bucket >= the request's length, pad ids per
    tensor, on the padding side; 3-D multiple-choice arrays along the last axis; above every bucket: unchanged."""
    import importlib.util
    import sys
    from importlib import resources

    pkg = resources.files("tritonrepo") / "triton_models"
    for src, dst in (("preprocess.py", "bucket_stub.py"), ("runtime.py", "tritonrepo_runtime.py"),
                     ("limits.py", "tritonrepo_limits.py")):
        (tmp_path / dst).write_bytes((pkg / src).read_bytes())
    spec = importlib.util.spec_from_file_location("bucket_stub", tmp_path / "bucket_stub.py")
    stub = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(tmp_path))
    try:
        spec.loader.exec_module(stub)
    finally:
        sys.path.remove(str(tmp_path))
    enc = {"input_ids": np.array([[5, 6, 7]]), "attention_mask": np.array([[1, 1, 1]]), "token_type_ids": np.zeros((1, 3))}
    pads = {"input_ids": 9, "token_type_ids": 2}
    right = stub.pad_to_bucket(enc, [4, 8], pads, "right")
    assert right["input_ids"].tolist() == [[5, 6, 7, 9]] and right["attention_mask"].tolist() == [[1, 1, 1, 0]]
    assert right["token_type_ids"].tolist() == [[0, 0, 0, 2]]
    left = stub.pad_to_bucket({"input_ids": np.array([[5, 6, 7, 8, 1]])}, [4, 8], pads, "left")
    assert left["input_ids"].tolist() == [[9, 9, 9, 5, 6, 7, 8, 1]]
    choices = stub.pad_to_bucket({"input_ids": np.ones((2, 3, 5), np.int64)}, [8], pads)
    assert choices["input_ids"].shape == (2, 3, 8) and (choices["input_ids"][..., 5:] == 9).all()
    assert stub.pad_to_bucket(enc, [2], pads)["input_ids"].shape == (1, 3)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    ckpt = tiny_models.make_bert_head(tmp_path_factory.mktemp("ckpt") / "tok-bert", "token")
    repo = tmp_path_factory.mktemp("padding")
    settings = ModelSettings(max_batch_size=8, max_queue_delay_us=50_000, pad_token_id=0)
    add_hf(str(ckpt), AddOptions(repo=repo, name="ner", backend="python", settings=settings))
    with TritonServer(repo) as server:
        yield repo, server


def _request(length: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 40, (1, length)).astype(np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}


@pytest.mark.server
def test_config_asks_for_padding_with_the_pad_id(served):
    repo, _ = served
    params = {k: v.string_value for k, v in read_config(repo / "ner").parameters.items()}
    assert params["batch_padding"] == "true" and params["pad_token_id"] == "0"


def _stats_once_recorded(client, since: dict, count: int, timeout: float = 5.0) -> dict:
    """``ner``'s statistics once ``count`` requests since ``since`` are recorded, or as they are after ``timeout`` s:
    Triton records a request's statistics when it releases the request, which can be just after the client has
    its response (a CI run counted the last one-by-one request in the concurrent window: 25 requests for 24)."""
    deadline = time.monotonic() + timeout
    while True:
        now = _stats(client, "grpc", ["ner"])
        if _delta(since, now, "ner").requests >= count or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


@pytest.mark.server
def test_different_lengths_batch_together_and_equal_one_by_one(served):
    _, server = served
    import tritonclient.grpc as grpcclient

    stats_client = grpcclient.InferenceServerClient(server.grpc_url)
    requests = [_request(n, i) for i, n in enumerate(LENGTHS)]
    start = _stats(stats_client, "grpc", ["ner"])
    alone = [infer(server.grpc_url, "ner", r, protocol="grpc") for r in requests]
    before = _stats_once_recorded(stats_client, start, len(requests))
    with ThreadPoolExecutor(len(requests)) as pool:
        together = list(pool.map(lambda r: infer(server.grpc_url, "ner", r, protocol="grpc"), requests * 3))
    after = _stats_once_recorded(stats_client, before, 3 * len(requests))
    delta = _delta(before, after, "ner")
    assert delta.requests == 3 * len(requests)
    assert delta.avg_batch > 1.0, "requests of different lengths should have been batched"
    assert delta.executions < delta.requests
    for i, got in enumerate(together):
        want = alone[i % len(requests)]
        assert got["logits"].shape == (1, LENGTHS[i % len(requests)], 4)
        np.testing.assert_allclose(got["logits"], want["logits"], atol=1e-5, rtol=0)
