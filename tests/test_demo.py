"""`make demo` as a test: the real all-MiniLM-L6-v2 checkpoint, both backends, HTTP and gRPC, vs PyTorch (1e-4)."""

import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.server, pytest.mark.slow]


def test_minilm_demo(tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))
    import minilm_demo

    assert minilm_demo.main(tmp_path / "repo") == 0
    out = capsys.readouterr().out
    assert out.count(" ok") == 4 and "demo passed" in out
