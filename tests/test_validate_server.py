"""The offline verdict and messages equal the real server's on every corpus repository.

Cases share servers (explicit model control, loaded one by one; see tests/corpus/runner.py); cases the 2.51 server
hangs on get their own server each, judged by a timeout; cases it sometimes crashes on (Case.own_server) get an
explicit-mode server of their own, and a crash (twice: the runner judges a case again once) is their verdict without a
message. Messages are compared with host paths as placeholders.
"""

import shutil
from pathlib import Path

import pytest

from corpus.cases import BROKEN, VALID
from corpus.messages import RECORDED
from corpus.runner import judge, message_parts, normalize
from tritonrepo.validate import validate_repository

pytestmark = pytest.mark.server
#: cases compiling a C library are left out where no C compiler is installed
ALL = [c for c in BROKEN + VALID if c.runs_here and not (c.needs_cc and shutil.which("cc") is None)]


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    """Server verdicts and messages for the whole corpus (work folders under pytest's temporary directory)."""
    return judge(ALL, tmp_path_factory.mktemp("corpus"))


@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_offline_verdict_and_messages_equal_the_servers(verdicts, case, tmp_path):
    server_loads, server_text = verdicts[case.id]
    report = validate_repository(case.build(tmp_path), options=case.server_options())
    assert report.loads() == (not case.expect)
    assert server_loads == report.loads(), server_text
    crashed = "no answer within" in server_text or server_text.startswith("server exited (status -11)")
    if case.hangs or server_loads or (case.own_server and crashed):
        return  # no message to compare (see Case.own_server)
    text = normalize(server_text)
    for f in report.errors:
        for part in message_parts(normalize(f.message, tmp_path)):
            assert part in text, f"{f.code} message not printed by the server:\n{part}\nserver: {text[:2000]}"


def test_recorded_messages_are_current():
    """Every case has a recorded server verdict (tests/corpus/record.py) matching its expectation."""
    every = BROKEN + VALID
    assert set(RECORDED) == {c.id for c in every}
    assert all(c.source for c in every if c.hangs or not c.runs_here)
    for case in every:
        loads, _ = RECORDED[case.id]
        assert loads == (not case.expect) or case.hangs, case.id
