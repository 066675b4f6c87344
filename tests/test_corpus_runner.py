"""The corpus judge (tests/corpus/runner.py) itself: a server that dies while judging a case is no verdict."""

import warnings

import pytest

from corpus.cases import BROKEN, MODEL_PY, Case
from corpus.runner import judge_in_one_server
from test_reliability_server import _orphan_regions

pytestmark = pytest.mark.server

#: a Python-backend model whose initialize() kills the server that started its stub (a real crash, no mock)
KILLER_PY = "import os\nimport signal\n" + MODEL_PY.replace(
    "    def initialize(self, args):\n        pass", "    def initialize(self, args):\n        os.kill(os.getppid(), signal.SIGKILL)", 1)


def test_a_server_that_dies_is_judged_again_then_reported(tmp_path):
    """The killer case is judged twice (one warning), its verdict names the exit; the next case still gets its own."""
    killer = Case("kills-its-server", {"TRxxx"}, {"m/1/model.py": KILLER_PY})
    after = next(c for c in BROKEN if c.id == "state-no-data")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = judge_in_one_server([killer, after], tmp_path)
    loads, message = results["kills-its-server"]
    assert not loads and message.startswith("server exited (status -9)"), message
    retried = [str(w.message) for w in caught if "kills-its-server" in str(w.message)]
    assert len(retried) == 1 and retried[0].endswith("judged again in a fresh server"), retried
    assert results["state-no-data"][0] is False
    assert "initial_state setting expects state'IN_STATE' to have state_data set" in results["state-no-data"][1]


def test_a_crashed_servers_shared_memory_is_removed(tmp_path):
    """The regions of a server that crashed while loading (its stubs cannot unlink them) are gone after stop()."""
    from pathlib import Path

    from corpus.runner import ServerGone, _Repository
    from tritonrepo.server import TritonServer

    repo = Case("kills-its-server", {"TRxxx"}, {"m/1/model.py": KILLER_PY}).build(tmp_path)
    server = TritonServer(repo, model_control="explicit").start()
    try:
        with pytest.raises(ServerGone, match=r"tritonserver exited with status -9 while loading m"):
            _Repository(server.http_url, 60).load("m", server)
        regions = set(server._shm)  # noqa: SLF001 - what exit_status() noted while the server ran
    finally:
        server.stop()
    assert regions, "the stub's region was not noted before the crash"
    assert [r for r in regions if Path("/dev/shm", r).exists()] == []


def test_a_server_stopped_while_starting_many_stubs_leaves_no_region(tmp_path):
    """count: 2147483647 instances: the server starts stubs until it is killed; none of their regions is left."""
    from pathlib import Path

    from corpus.cases import CONFIG
    from corpus.runner import _Repository
    from tritonrepo.server import TritonServer

    before = set(p.name for p in Path("/dev/shm").glob("triton_*"))
    repo = Case("many", set(), {"m/config.pbtxt": CONFIG.replace("count: 1", "count: 2147483647")}).build(tmp_path)
    server = TritonServer(repo, model_control="explicit").start()
    try:
        assert _Repository(server.http_url, 5).load("m", server) == "no answer within 5 s"
    finally:
        server.stop(timeout=3)
    left = _orphan_regions({p.name for p in Path("/dev/shm").glob("triton_*")} - before)
    assert left == set(), f"{len(left)} regions left"
