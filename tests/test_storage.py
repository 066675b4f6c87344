"""push/pull against a real S3 server (SeaweedFS) and the real Triton server reading the repository from it."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from corpus.cases import Case
from seaweed import ACCESS_KEY, REGION, SECRET_KEY, seaweedfs
from tritonrepo.cli import app
from tritonrepo.client import infer
from tritonrepo.errors import TritonRepoError
from tritonrepo.server import TritonServer
from tritonrepo.storage import INDEX, client, local_files, parse_url, pull, push, triton_url

pytestmark = pytest.mark.server
runner = CliRunner()


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    mp.setenv("AWS_DEFAULT_REGION", REGION)
    with seaweedfs(tmp_path_factory.mktemp("seaweed")) as endpoint:
        yield endpoint
    mp.undo()


def _remote(endpoint, url):
    loc = parse_url(url)
    out = {}
    for page in client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=loc.prefix + "/"):
        for o in page.get("Contents", []):
            out[o["Key"][len(loc.prefix) + 1:]] = o["Size"]
    return out


def _answer(server, model="ens"):
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    return infer(server.http_url, model, {"IN": x})["OUT"]


def test_round_trip_served_by_triton_from_s3(s3, tmp_path):
    repo = Case("ensemble", set(), ensemble=True).build(tmp_path / "repo")
    url = "s3://models/prod"
    result = runner.invoke(app, ["push", str(repo), url, "--endpoint-url", s3, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert sorted(data["uploaded"]) == ["ens/1/", "ens/config.pbtxt", "m/1/model.py", "m/config.pbtxt"]
    assert data["triton_model_repository"] == f"s3://{s3}/models/prod"
    assert set(_remote(s3, url)) == {"ens/1/", "ens/config.pbtxt", "m/1/model.py", "m/config.pbtxt", INDEX}

    again = push(repo, url, endpoint_url=s3)
    assert again.uploaded == [] and again.unchanged == 4

    with TritonServer(triton_url(parse_url(url), s3)) as server:
        np.testing.assert_array_equal(_answer(server), np.arange(8, dtype=np.float32).reshape(2, 4))

    back = tmp_path / "pulled"
    assert pull(url, back, endpoint_url=s3) == 4
    assert {k: p.read_bytes() if p.is_file() else b"" for k, p in local_files(back).items()} == {
        k: p.read_bytes() if p.is_file() else b"" for k, p in local_files(repo).items()}
    with pytest.raises(TritonRepoError, match="exists and is not empty"):
        pull(url, back, endpoint_url=s3)


def test_interrupted_push_leaves_the_previous_state_servable(s3, tmp_path, monkeypatch):
    url = "s3://models/interrupt"
    repo = Case("ensemble", set(), ensemble=True).build(tmp_path / "repo")
    push(repo, url, endpoint_url=s3)
    # version 2 of m doubles its input; the config switch to it must not happen before all of it is there
    (repo / "m" / "2").mkdir()
    (repo / "m" / "2" / "model.py").write_text((repo / "m" / "1" / "model.py").read_text().replace(
        'pb_utils.Tensor("OUTPUT0", x)', 'pb_utils.Tensor("OUTPUT0", x * 2)'))
    (repo / "m" / "2" / "weights.bin").write_bytes(b"\0" * 1000)
    import tritonrepo.storage as storage

    real_upload = storage._upload
    calls = []

    def flaky(s3_client, location, root, rel, result, progress):
        calls.append(rel)
        if len(calls) == 2:
            raise ConnectionError("network dropped")
        real_upload(s3_client, location, root, rel, result, progress)

    monkeypatch.setattr(storage, "_upload", flaky)
    with pytest.raises(TritonRepoError, match="network dropped"):
        push(repo, url, endpoint_url=s3)
    monkeypatch.setattr(storage, "_upload", real_upload)
    remote = _remote(s3, url)
    assert "m/2/model.py" in remote or "m/2/weights.bin" in remote  # half of version 2 is up ...
    with TritonServer(triton_url(parse_url(url), s3)) as server:  # ... and the old version is what is served
        np.testing.assert_array_equal(_answer(server), np.arange(8, dtype=np.float32).reshape(2, 4))
    finished = push(repo, url, endpoint_url=s3)
    assert "m/config.pbtxt" in finished.uploaded
    with TritonServer(triton_url(parse_url(url), s3)) as server:
        np.testing.assert_array_equal(_answer(server), 2 * np.arange(8, dtype=np.float32).reshape(2, 4))


def test_changing_a_pushed_version_needs_force(s3, tmp_path):
    url = "s3://models/force"
    repo = Case("base", set()).build(tmp_path / "repo")
    push(repo, url, endpoint_url=s3)
    (repo / "m" / "1" / "model.py").write_text((repo / "m" / "1" / "model.py").read_text() + "\n# edited\n")
    with pytest.raises(TritonRepoError, match=r"served version\(s\) 1 would change"):
        push(repo, url, endpoint_url=s3)
    assert push(repo, url, endpoint_url=s3, force=True).uploaded == ["m/1/model.py", "m/config.pbtxt"]


@pytest.mark.parametrize(
    ("endpoint", "url", "env", "message"),
    [
        ("http://127.0.0.1:9", "s3://models/x", {}, "s3://models/x at http://127.0.0.1:9: cannot reach the endpoint"),
        (None, "s3://models/x", {"AWS_SECRET_ACCESS_KEY": "wrong"}, "s3://models/x at {s3}: access denied (SignatureDoesNotMatch)"),
        (None, "s3://no-such-bucket/x", {}, "s3://no-such-bucket/x at {s3}: no such bucket 'no-such-bucket'"),
        (None, "http://models/x", {}, "http://models/x: not an s3:// URL"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(s3, tmp_path, monkeypatch, endpoint, url, env, message):
    repo = Case("base", set()).build(tmp_path / "repo")
    before = {k: p.read_bytes() for k, p in local_files(repo).items()}
    remote_before = _remote(s3, "s3://models/x")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    result = runner.invoke(app, ["push", str(repo), url, "--endpoint-url", endpoint or s3])
    assert result.exit_code == 2
    assert result.output.startswith("error: " + message.format(s3=s3)), result.output
    assert len(result.output.strip().splitlines()) == 1
    assert {k: p.read_bytes() for k, p in local_files(repo).items()} == before
    monkeypatch.undo()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    assert _remote(s3, "s3://models/x") == remote_before


def test_invalid_repository_is_refused_before_any_upload(s3, tmp_path):
    repo = Case("bad", {"TR304"}).build(tmp_path / "repo")
    cfg = repo / "m" / "config.pbtxt"
    cfg.write_text(cfg.read_text().replace("max_batch_size: 4", "max_batch_size: -1"))
    with pytest.raises(TritonRepoError, match="1 validation error"):
        push(repo, "s3://models/invalid", endpoint_url=s3)
    assert _remote(s3, "s3://models/invalid") == {}
    shutil.rmtree(repo)
