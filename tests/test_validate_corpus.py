"""Offline verdicts on the corpus: each broken repository reports exactly its rule; valid ones report no error."""

import shutil
from pathlib import Path

import pytest

from corpus.cases import BROKEN, VALID
from corpus.messages import RECORDED
from corpus.runner import normalize
from tritonrepo.validate import RULES, Severity, validate_repository
from tritonrepo.validate.docs_gen import render

ALL = BROKEN + VALID
_NO_CC = shutil.which("cc") is None and shutil.which("gcc") is None


def _param(cases):
    """Cases as parameters; those compiling a C library are skipped where no C compiler is installed."""
    return [pytest.param(c, id=c.id, marks=pytest.mark.skipif(c.needs_cc and _NO_CC, reason="no C compiler"))
            for c in cases]


def test_corpus_size():
    assert len(BROKEN) >= 80 and len(VALID) >= 20
    assert len({c.id for c in ALL}) == len(ALL)


@pytest.mark.parametrize("case", _param(ALL))
def test_offline_verdict(case, tmp_path):
    report = validate_repository(case.build(tmp_path), options=case.server_options())
    assert {f.code for f in report.errors} == case.expect, [f.message for f in report.errors]
    assert report.loads() == (not case.expect)


SERVED = [c for c in BROKEN if c.runs_here and not c.hangs]


@pytest.mark.parametrize("case", _param(SERVED))
def test_offline_messages_are_the_servers(case, tmp_path):
    """Each error message is the one the real server printed for this case (recorded by tests/corpus/record.py)."""
    report = validate_repository(case.build(tmp_path), options=case.server_options())
    _, recorded = RECORDED[case.id]
    assert tuple(normalize(f.message, tmp_path) for f in report.errors) == recorded


CITED = [c for c in BROKEN if not c.runs_here and c.message]


@pytest.mark.parametrize("case", _param(CITED))
def test_offline_message_is_the_cited_sources(case, tmp_path):
    """Cases the server here cannot run: validate's message is the one rendered from the cited source line."""
    report = validate_repository(case.build(tmp_path), options=case.server_options())
    assert tuple(normalize(f.message, tmp_path) for f in report.errors) == (case.message,)


def test_every_case_the_server_cannot_run_has_its_message():
    """A refused case judged from the source states the message validate must print (Case.message)."""
    assert [c.id for c in BROKEN if not c.runs_here and not c.message] == []


def test_every_error_rule_has_a_failing_case():
    covered = set().union(*(c.expect for c in BROKEN))
    errors = {code for code, r in RULES.items() if r.severity == Severity.error}
    untested_here = {"TR301"}  # covered in test_validate_rules.py
    # need server options or model.py execution: covered in test_validate_options.py / test_validate_autocomplete.py
    untested_here |= {"TR190", "TR191", "TR650"}
    assert errors - covered <= untested_here


def test_docs_list_every_rule():
    text = (Path(__file__).parent.parent / "docs" / "rules.md").read_text()
    assert text == render(), "docs/rules.md is stale: python -m tritonrepo.validate.docs_gen > docs/rules.md"
    for code in RULES:
        assert f"### {code}" in text


def test_state_output_mismatch_loads_with_a_warning(tmp_path):
    """ORT-16 never runs in the ONNX Runtime backend (see corpus case source): validate loads the model and warns."""
    case = next(c for c in VALID if c.id == "onnx-state-output-dtype")
    report = validate_repository(case.build(tmp_path))
    assert report.loads()
    assert [(f.code, f.message) for f in report.findings if f.code == "TR508"] == [
        ("TR508", "implicit state 'OUT_STATE' of model 'm' is TYPE_INT32 but the graph output 'OUT_STATE' is TYPE_FP32")]
