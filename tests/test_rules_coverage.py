"""Every rule of docs/triton-load-rules.md (the load checks of the real Triton 2.51) has a corpus repository.

Offline and fast: reads the reference table, the corpus cases and the messages recorded from the real server
(tests/corpus/coverage.py maps them); builds nothing and starts no server.
"""

import re

import pytest

from corpus.cases import BROKEN, VALID, Case
from corpus.coverage import ALLOWED_UNCOVERED, RuleRef, coverage, load_reference
from corpus.messages import RECORDED

RULES = load_reference()
TABLE = coverage(BROKEN + VALID, RECORDED, RULES)


def test_reference_is_read_whole():
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids)) >= 140
    assert {"CORE-PARSE-01", "CORE-ENS-15", "PY-10", "ORT-19"} <= set(ids)
    # every rule with a message of its own got at least one pattern
    assert sum(1 for r in RULES if r.messages) >= 110


@pytest.mark.parametrize("rule_id", [r.id for r in RULES])
def test_rule_has_a_corpus_case(rule_id):
    if rule_id in ALLOWED_UNCOVERED:
        pytest.skip(ALLOWED_UNCOVERED[rule_id])
    assert TABLE[rule_id], f"{rule_id}: no corpus case exercises it (add one to tests/corpus/cases.py or tag one)"


def test_allow_list_is_current():
    """Allowed rules exist, have a reason, and are really uncovered (a case that now covers one ends the excuse)."""
    ids = {r.id for r in RULES}
    for rule_id, reason in ALLOWED_UNCOVERED.items():
        assert rule_id in ids and len(reason) > 20
        assert not TABLE[rule_id], f"{rule_id} is covered by {TABLE[rule_id]}: drop it from ALLOWED_UNCOVERED"


def test_recorded_message_maps_to_its_rule():
    """The matching is real: a recorded message maps to the rule it quotes, and a made-up one to none."""
    assert "name-mismatch" in TABLE["CORE-NAME-01"]
    assert "ensemble-input-unused" in TABLE["CORE-ENS-12"]  # the stray quote of Triton's message is matched verbatim
    assert "seq-start-one-value" in TABLE["CORE-SEQ-06"]
    fake = Case("fake", {"TR999"})
    assert not any(coverage([fake], {"fake": (False, ("something Triton never says",))}, RULES)[r.id] for r in RULES)


def test_unknown_tag_is_refused():
    with pytest.raises(ValueError, match="NOPE-01"):
        coverage([Case("x", set(), rules=("NOPE-01",))], {}, RULES)


def test_placeholders_match_any_text():
    rule = RuleRef("X", "POLL", tuple(p for p in [re.compile(r"model '.*?' is bad for .*?")]))
    assert coverage([Case("c", {"TR1"})], {"c": (False, ("model 'a b' is bad for m",))}, [rule]) == {"X": ["c"]}


def test_cited_ranges_are_resolved():
    from corpus.coverage import cited_ids  # noqa: PLC0415

    assert cited_ids("ValidateX; CORE-ENS-07..10") == {"CORE-ENS-07", "CORE-ENS-08", "CORE-ENS-09", "CORE-ENS-10"}
    assert cited_ids("CORE-SEQ-04/05/06, PY-01") == {"CORE-SEQ-04", "CORE-SEQ-05", "CORE-SEQ-06", "PY-01"}


def test_every_check_is_implemented_by_a_validate_rule():
    """Every rule of the reference that is a check is cited (directly, in a range or a/b list) by the source of a
    validate rule (TR code); the others are listed in NOT_A_CHECK with where they live."""
    from corpus.coverage import NOT_A_CHECK, implemented_by  # noqa: PLC0415
    from tritonrepo.validate import RULES as TR  # noqa: PLC0415

    implemented = implemented_by(TR)
    ids = {r.id for r in RULES}
    assert [r.id for r in RULES if r.id not in implemented and r.id not in NOT_A_CHECK] == []
    assert set(implemented) <= ids, "a validate rule cites an id the reference does not have"
    assert set(NOT_A_CHECK) <= ids and not set(NOT_A_CHECK) & set(implemented)
    assert implemented["ORT-16"] == ["TR508"]
