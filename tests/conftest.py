"""Shared fixtures: tiny checkpoints (built once per session) and quiet libraries."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import tiny_models  # noqa: E402

from tritonrepo.cli._cli_utils import quiet_libraries  # noqa: E402

quiet_libraries()


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
