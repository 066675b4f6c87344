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


def test_fold_embedding_step_folds_only_what_it_can_prove_exact(encoder_onnx, bert_dir, tmp_path):
    """The registry's post_fold for sentence embeddings: folds when the folded graph equals the post step's NumPy
    pooling, returns the golden embedding from the given hidden states; declines (graph untouched) otherwise."""
    import shutil

    import onnxruntime as ort
    from transformers import AutoTokenizer

    from tritonrepo.export.fold import fold_embedding_step
    from tritonrepo.triton_models.postprocess import pool

    enc = AutoTokenizer.from_pretrained(str(bert_dir))(TEXTS, padding=True, return_tensors="np")
    inputs = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}
    sess = ort.InferenceSession(str(encoder_onnx), providers=["CPUExecutionProvider"])
    hidden = sess.run(["last_hidden_state"], inputs)[0]
    model = tmp_path / "model.onnx"
    shutil.copy(encoder_onnx, model)
    params = {"pooling": "mean", "normalize": "true"}
    golden = fold_embedding_step(model, params, inputs, {"last_hidden_state": hidden})
    np.testing.assert_allclose(golden["embedding"], pool(hidden, inputs["attention_mask"], "mean", True), atol=1e-7)
    folded = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    assert [o.name for o in folded.get_outputs()] == ["embedding"]
    np.testing.assert_allclose(folded.run(["embedding"], inputs)[0], golden["embedding"], atol=1e-5, rtol=0)
    # already folded (no last_hidden_state output), an unknown pooling, or a tolerance nothing meets: declined
    before = model.read_bytes()
    assert fold_embedding_step(model, params, inputs, {"embedding": golden["embedding"]}) is None
    shutil.copy(encoder_onnx, model)
    assert fold_embedding_step(model, {"pooling": "weighted"}, inputs, {"last_hidden_state": hidden}) is None
    assert fold_embedding_step(model, params, inputs, {"last_hidden_state": hidden}, atol=-1.0) is None
    assert model.read_bytes() == encoder_onnx.read_bytes() != before
    assert not list(tmp_path.glob("*.folded"))
