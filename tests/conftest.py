"""Shared fixtures: tiny checkpoints (built once per session), quiet libraries, and the support-matrix recorder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import tiny_models  # noqa: E402

from tritonrepo.cli._cli_utils import quiet_libraries  # noqa: E402

quiet_libraries()

#: Where matrix tests record their results; ``make support-matrix`` renders docs/support-matrix.md from it.
MATRIX_JSON = Path(__file__).resolve().parent.parent / "build" / "support-matrix.json"


@pytest.fixture(scope="session")
def matrix_record():
    """``matrix_record(arch, task, mode, ok_or_reason, model_type="")``: record one support-matrix cell.

    ``mode`` is ``onnx``, ``python`` or ``pipeline``; ``ok_or_reason`` is ``True`` once the test's checks passed
    (call it after the assertions) or the reason the pair is not supported. The records are merged into
    build/support-matrix.json at the end of the session (same (arch, task, mode) replaced).
    """
    from tritonrepo.tasks.matrix import make_record, merge_records

    records: list[dict] = []

    def record(arch: str, task: str, mode: str, ok_or_reason, model_type: str = "") -> None:
        test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
        records.append(make_record(arch, task, mode, ok_or_reason, model_type=model_type, test=test))

    yield record
    if records:
        import fcntl

        MATRIX_JSON.parent.mkdir(parents=True, exist_ok=True)
        with open(MATRIX_JSON.with_suffix(".lock"), "w") as lock:  # pytest-xdist workers merge one at a time
            fcntl.flock(lock, fcntl.LOCK_EX)
            merge_records(MATRIX_JSON, records)


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory) -> Path:
    return tiny_models.make_bert_classifier(tmp_path_factory.mktemp("ckpt") / "tiny-bert")


@pytest.fixture(scope="session")
def distilbert_dir(tmp_path_factory) -> Path:
    return tiny_models.make_distilbert_classifier(tmp_path_factory.mktemp("ckpt") / "tiny-distilbert")


@pytest.fixture(scope="session")
def vit_dir(tmp_path_factory) -> Path:
    return tiny_models.make_vit(tmp_path_factory.mktemp("ckpt") / "tiny-vit")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    return tiny_models.minilm_path()
