"""Pooling + normalisation folded into the ONNX graph equal sentence-transformers' embeddings."""

import numpy as np
import pytest

from tritonrepo.checkpoint import resolve_checkpoint
from tritonrepo.errors import TritonRepoError
from tritonrepo.export.fold import fold_pooling
from tritonrepo.export.onnx import export_onnx

TEXTS = ["hello world", "the good movie serves text", "a", "triton serves models, models serve text!"]


def _st_model(path, pooling, normalize):
    from sentence_transformers import SentenceTransformer, models

    word = models.Transformer(str(path), max_seq_length=64)
    modules = [word, models.Pooling(word.get_word_embedding_dimension(), pooling_mode=pooling)]
    if normalize:
        modules.append(models.Normalize())
    return SentenceTransformer(modules=modules, device="cpu")


@pytest.fixture(scope="module")
def encoder_onnx(tmp_path_factory, bert_dir):
    vdir = tmp_path_factory.mktemp("fold") / "1"
    export_onnx(resolve_checkpoint(str(bert_dir)), "feature-extraction", vdir)
    return vdir / "model.onnx"


@pytest.mark.parametrize(("pooling", "normalize"), [("mean", True), ("cls", False), ("max", True)])
def test_folded_graph_equals_sentence_transformers(encoder_onnx, bert_dir, tmp_path, pooling, normalize):
    import onnxruntime as ort
    from transformers import AutoTokenizer

    dst = tmp_path / "folded.onnx"
    fold_pooling(encoder_onnx, dst, pooling=pooling, normalize=normalize)
    sess = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["embedding"]
    enc = AutoTokenizer.from_pretrained(str(bert_dir))(TEXTS, padding=True, return_tensors="np")
    feeds = {i.name: enc[i.name].astype(np.int64) for i in sess.get_inputs()}
    got = sess.run(["embedding"], feeds)[0]
    want = _st_model(bert_dir, pooling, normalize).encode(TEXTS, convert_to_numpy=True, batch_size=len(TEXTS))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_unknown_pooling_and_missing_output_are_refused(encoder_onnx, tmp_path):
    with pytest.raises(TritonRepoError, match="unknown pooling 'sum'"):
        fold_pooling(encoder_onnx, tmp_path / "x.onnx", pooling="sum")
    with pytest.raises(TritonRepoError, match="no graph output 'pooler_output' to pool"):
        fold_pooling(encoder_onnx, tmp_path / "x.onnx", hidden="pooler_output")
