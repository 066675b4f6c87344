"""Every example in examples/ runs and passes its own checks (real server, PyTorch references)."""

import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.server, pytest.mark.slow]
sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))


def test_text_classifier_example(tmp_path, bert_dir, capsys):
    import text_classifier

    assert text_classifier.main(str(bert_dir), tmp_path / "repo") == 0
    assert "example passed" in capsys.readouterr().out


def test_vit_example(tmp_path, vit_dir, capsys):
    import vit_image_features

    assert vit_image_features.main(str(vit_dir), tmp_path / "repo") == 0
    out = capsys.readouterr().out
    assert "(3, 17, 32)" in out and "example passed" in out


def test_minilm_embeddings_example(tmp_path, capsys):
    import minilm_embeddings

    assert minilm_embeddings.main(tmp_path / "repo") == 0
    out = capsys.readouterr().out
    assert "min cosine vs sentence-transformers encode" in out and "example passed" in out


def test_generate_text_example(tmp_path, capsys):
    """examples/generate_text.py on a tiny GPT-2 (``--backend python``): greedy text equals transformers', the SSE
    and gRPC streams concatenate to it, seeded sampling repeats."""
    import generate_text
    import tiny_generative

    ckpt = tiny_generative.make_gpt2(tmp_path / "gpt2")
    assert generate_text.main(str(ckpt), tmp_path / "repo", backend="python") == 0
    out = capsys.readouterr().out
    assert out.count("greedy text equals transformers") == 2 and "FAIL" not in out and "example passed" in out
