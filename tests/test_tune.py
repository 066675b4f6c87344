"""``tritonrepo tune`` on the real server with a tiny ONNX classifier (short trials, a reduced search space)."""

from dataclasses import replace

import pytest
from typer.testing import CliRunner

from tritonrepo.add import AddOptions, add_hf
from tritonrepo.cli import app
from tritonrepo.config import ModelSettings, read_config
from tritonrepo.errors import TritonRepoError
from tritonrepo.tune import apply, current, tune, write_tuned

pytestmark = pytest.mark.server
SPACE = [("instance_count", [1, 2]), ("max_queue_delay_us", [0, 2000])]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, bert_dir):
    repo = tmp_path_factory.mktemp("tune")
    add_hf(str(bert_dir), AddOptions(repo=repo, name="bert", settings=ModelSettings(instance_count=1, max_queue_delay_us=100)))
    result = tune(repo, "bert", concurrency=4, duration=0.8, warmup=0.2, space=SPACE)
    return repo, result


def test_every_candidate_is_measured_on_the_server(tuned):
    _, result = tuned
    seen = {(t.candidate.instance_count, t.candidate.max_queue_delay_us) for t in result.trials}
    assert (1, 100) in seen and any(count == 2 for count, _ in seen) and any(delay == 2000 for _, delay in seen)
    assert len(result.trials) >= 3
    for t in result.trials:
        assert not t.error, t.error
        assert t.throughput > 0 and 0 < t.p50_ms <= t.p99_ms and t.avg_batch >= 1
    assert result.best.throughput >= result.base.throughput
    assert result.best_config.instance_group[0].count == result.best.candidate.instance_count


def test_write_needs_force_and_adds_a_version(tuned):
    repo, result = tuned
    cfg = read_config(repo / "bert")
    result.best_config = apply(cfg, replace(current(cfg), instance_count=2, max_queue_delay_us=500))
    with pytest.raises(TritonRepoError, match="needs a different model configuration"):
        write_tuned(repo, result)
    assert not (repo / "bert" / "2").exists()
    assert write_tuned(repo, result, force=True) == 2
    new = read_config(repo / "bert")
    assert new.instance_group[0].count == 2 and new.dynamic_batching.max_queue_delay_microseconds == 500
    assert (repo / "bert" / "2" / "model.onnx").stat().st_ino == (repo / "bert" / "1" / "model.onnx").stat().st_ino


def test_cli_budget_that_cannot_be_met_writes_nothing(tuned):
    repo, _ = tuned
    before = (repo / "bert" / "config.pbtxt").read_text()
    result = CliRunner().invoke(app, ["tune", "bert", "--repo", str(repo), "--p99-ms", "0.001", "--duration", "0.5",
                                      "--warmup", "0.1", "-c", "2", "--dry-run", "--search", "instance_count"])
    assert result.exit_code == 1, result.output
    assert "no trial met the p99 budget of 0.001 ms" in result.output
    assert (repo / "bert" / "config.pbtxt").read_text() == before
    with pytest.raises(TritonRepoError, match="is not in"):
        tune(repo, "nope")
    bad = CliRunner().invoke(app, ["tune", "bert", "--repo", str(repo), "--search", "colour"])
    assert bad.exit_code == 2 and "--search colour: not a setting of this model" in bad.output
