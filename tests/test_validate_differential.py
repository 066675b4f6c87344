"""Differential fuzzing (tests/corpus/differential.py) in CI: validate's verdict equals the real server's on mutated
repositories no case was written for, and on the unmutated seeds (which load on both).

A fixed sample (seed 1, 40 cases: about half a minute with two shared servers); run the script for more, e.g.
``python tests/corpus/differential.py --cases 500 --seed 3`` (499/499 agreed, 1 inconclusive, on 2026-12-02).
"""

import pytest

from corpus.differential import SEEDS, run, seed_case
from corpus.runner import judge
from tritonrepo.validate import validate_repository

pytestmark = pytest.mark.server


def test_every_seed_loads_on_the_server_and_offline(tmp_path):
    cases = [seed_case(f"seed-{name}", name, text) for name, text in SEEDS.items()]
    verdicts = judge(cases, tmp_path / "server", load_timeout=60)
    for case in cases:
        assert verdicts[case.id][0], (case.id, verdicts[case.id][1])
        report = validate_repository(case.build(tmp_path / "offline" / case.id))
        assert report.loads() and not report.errors, (case.id, [f.message for f in report.errors])


def test_mutated_repositories_get_the_servers_verdict(tmp_path):
    outcomes = run(40, 1, tmp_path, timeout=30.0)
    assert not [o.case.id for o in outcomes if o.offline_loads is None], "validate crashed"
    wrong = [(o.case.id, o.mutations, o.server_loads, o.codes, o.server_message[:300])
             for o in outcomes if not o.inconclusive and not o.agrees]
    assert wrong == []
    judged = [o for o in outcomes if not o.inconclusive]
    assert len(judged) >= 38 and any(o.server_loads for o in judged) and any(not o.server_loads for o in judged)
