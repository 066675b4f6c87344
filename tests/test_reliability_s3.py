"""push resumed after an interruption, pull of a missing prefix, serve s3:// (real SeaweedFS and tritonserver; issue 13
items 2, 3, 9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import tritonrepo.storage as storage
from corpus.cases import Case
from seaweed import ACCESS_KEY, REGION, SECRET_KEY, seaweedfs
from tritonrepo.cli import app
from tritonrepo.client import infer
from tritonrepo.errors import TritonRepoError
from tritonrepo.storage import INDEX, parse_url, push, triton_url

pytestmark = pytest.mark.server
runner = CliRunner()
SRC = Path(__file__).resolve().parent.parent / "src"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    mp.setenv("AWS_DEFAULT_REGION", REGION)
    mp.delenv("AWS_ENDPOINT_URL", raising=False)
    with seaweedfs(tmp_path_factory.mktemp("seaweed")) as endpoint:
        yield endpoint
    mp.undo()


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


def test_push_killed_before_the_index_resumes_without_force(s3, tmp_path, monkeypatch):
    url = "s3://models/resume"
    repo = Case("ensemble", set(), ensemble=True).build(tmp_path / "repo")
    real_put = storage.S3Location.key

    def key(self, rel):  # the index is the last object written: die right before it
        if rel == INDEX:
            raise Killed
        return real_put(self, rel)

    monkeypatch.setattr(storage.S3Location, "key", key)
    with pytest.raises(Killed):
        push(repo, url, endpoint_url=s3)
    monkeypatch.undo()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    result = runner.invoke(app, ["push", str(repo), url, "--endpoint-url", s3, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["uploaded"] == [] and data["unchanged"] == 4  # same bytes: nothing re-sent, no guard written
    assert INDEX in {o["Key"].rsplit("/", 1)[-1] for o in storage.client(s3).list_objects_v2(
        Bucket="models", Prefix="resume/")["Contents"]}
    # a real change of a served version still needs --force
    (repo / "m" / "1" / "model.py").write_text((repo / "m" / "1" / "model.py").read_text() + "# changed\n")
    with pytest.raises(TritonRepoError, match=r"served version\(s\) 1 would change"):
        push(repo, url, endpoint_url=s3)


def test_pull_of_a_missing_prefix_fails_and_creates_nothing(s3, tmp_path):
    dest = tmp_path / "pulled"
    result = runner.invoke(app, ["pull", "s3://models/no/such/prefix", str(dest), "--endpoint-url", s3])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (f"error: s3://models/no/such/prefix at {s3}: no objects under this prefix "
                                     "(fix: check the URL (tritonrepo push writes one))")
    assert not dest.exists() and not list(tmp_path.glob(".tritonrepo-*"))


def test_pull_format_json_prints_a_path_that_exists(s3, tmp_path):
    repo = Case("base", set()).build(tmp_path / "repo")
    push(repo, "s3://models/pulljson", endpoint_url=s3)
    result = runner.invoke(app, ["pull", "s3://models/pulljson", str(tmp_path / "back"), "--endpoint-url", s3,
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["files"] == 2 and Path(data["dest"]).is_dir()


@pytest.mark.parametrize("form", ["endpoint-option", "triton-url"])
def test_serve_s3_with_credentials_from_the_environment(s3, tmp_path, form):
    url = "s3://models/served"
    repo = Case("ensemble", set(), ensemble=True).build(tmp_path / "repo")
    push(repo, url, endpoint_url=s3)
    args = [url, "--endpoint-url", s3] if form == "endpoint-option" else [triton_url(parse_url(url), s3)]
    env = dict(os.environ, PYTHONPATH=str(SRC))
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "tritonrepo", "serve", *args, "--http-port", "0", "--grpc-port",
                             "0", "--metrics-port", "0", "--format", "json"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        lines = [proc.stdout.readline()]
        while lines[-1] not in (b"}\n", b""):
            lines.append(proc.stdout.readline())
        assert lines[-1] == b"}\n", proc.stderr.read().decode() if proc.poll() is not None else lines
        data = json.loads(b"".join(lines))
        assert data["repository"] == f"s3://{s3}/models/served"
        assert Path(data["log"]).is_file()  # every path a command prints exists
        x = np.arange(8, dtype=np.float32).reshape(2, 4)
        np.testing.assert_array_equal(infer(data["http"], "ens", {"IN": x})["OUT"], x)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0
    assert out.strip() == b""  # one JSON document on stdout, nothing else


def test_serve_s3_errors_are_one_line_and_no_command_suggests_init_on_a_url(s3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    empty = runner.invoke(app, ["serve", "s3://models/nothing-here", "--endpoint-url", s3, "--http-port", "0"])
    assert empty.exit_code == 2
    assert empty.output.strip() == ("error: s3://models/nothing-here: no objects under this prefix (fix: push a "
                                    "repository there first (tritonrepo push))")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    denied = runner.invoke(app, ["serve", "s3://models/served", "--endpoint-url", s3, "--http-port", "0"])
    assert denied.exit_code == 2 and "access denied (SignatureDoesNotMatch)" in denied.output, denied.output
    for cmd in (["ensemble", "e", "--repo", "s3://models/x", "--step", "m"], ["init", "s3://models/x"]):
        result = runner.invoke(app, cmd)
        assert result.exit_code == 2, result.output
        assert "s3://models/x: a URL, not a local model repository" in result.output
        assert "init s3:" not in result.output
    assert not list(tmp_path.iterdir())  # no bogus 's3:' folder
