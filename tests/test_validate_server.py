"""The offline verdict equals the real server's on every corpus repository (loads / does not load)."""

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from corpus.cases import BROKEN, VALID
from tritonrepo.validate import validate_repository
from tritonrepo.validate.live import server_verdict

pytestmark = pytest.mark.server
ALL = BROKEN + VALID


@pytest.fixture(scope="module")
def verdicts():
    """Server verdicts for the whole corpus, three servers at a time (hanging cases end by timeout)."""
    root = Path(tempfile.mkdtemp(prefix="corpus-"))

    def run(case):
        repo = case.build(root / case.id)
        return case.id, server_verdict(repo, timeout=15 if case.hangs else 90), validate_repository(repo).loads()

    with ThreadPoolExecutor(3) as pool:
        return {cid: (server, offline) for cid, server, offline in pool.map(run, ALL)}


@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_offline_verdict_equals_the_servers(verdicts, case):
    (server_loads, server_message), offline_loads = verdicts[case.id]
    assert offline_loads == (not case.expect)
    assert server_loads == offline_loads, server_message
