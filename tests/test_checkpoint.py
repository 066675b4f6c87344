"""The hub path is real huggingface_hub code; here it resolves from a local HF cache with HF_HUB_OFFLINE=1."""

import json
import shutil

import pytest

from tritonrepo.checkpoint import resolve_checkpoint
from tritonrepo.errors import TritonRepoError

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def offline_cache(tmp_path, monkeypatch, bert_dir):
    """A HF cache holding org/tiny-bert at commit SHA (layout of huggingface_hub's cache)."""
    hub = tmp_path / "hf" / "hub"
    snap = hub / "models--org--tiny-bert" / "snapshots" / SHA
    shutil.copytree(bert_dir, snap)
    (hub / "models--org--tiny-bert" / "refs").mkdir(parents=True)
    (hub / "models--org--tiny-bert" / "refs" / "main").write_text(SHA)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    return hub


def test_hub_id_resolves_to_cached_snapshot_and_records_sha(offline_cache):
    ckpt = resolve_checkpoint("org/tiny-bert")
    assert ckpt.kind == "hub"
    assert ckpt.revision == SHA
    assert ckpt.path.name == SHA
    assert json.loads((ckpt.path / "config.json").read_text())["architectures"] == ["BertForSequenceClassification"]


def test_hub_id_missing_offline_is_one_clear_error(offline_cache):
    with pytest.raises(TritonRepoError) as err:
        resolve_checkpoint("org/not-cached")
    assert err.value.message == (
        "org/not-cached: not in the Hugging Face cache and the hub cannot be reached (offline or HF_HUB_OFFLINE=1)"
    )


def test_local_folder_without_config(tmp_path):
    with pytest.raises(TritonRepoError, match="no config.json in this folder"):
        resolve_checkpoint(str(tmp_path))


def test_neither_folder_nor_hub_id():
    with pytest.raises(TritonRepoError, match="no such folder, and not a Hugging Face Hub id"):
        resolve_checkpoint("./does/not/exist/x")
