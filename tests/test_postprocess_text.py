"""The text postprocessing kinds (triton_models/postprocess.py), in-process, against ``transformers.pipeline``.

Each function is fed the PyTorch model's outputs for a *padded batch* (as the served core model returns them)
and must give the pipeline's answer for each text: labels/words/offsets equal, scores within 1e-3.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tiny_text

from tritonrepo.triton_models import postprocess as pp

TEXTS = ["John works at Acme corporation in London.", "the movie was good", "Paris is the capital of France!"]
ATOL = 1e-3


def _pipeline(task, path, **kw):
    from transformers import pipeline

    warnings.filterwarnings("ignore", message="Tokenizer does not support real words")
    return pipeline(task, model=str(path), device="cpu", **kw)


def _forward(pipe, *texts, **kw):
    """The pipeline's model on a padded batch of ``texts``: (encoding, outputs as NumPy)."""
    import torch

    enc = pipe.tokenizer(*texts, padding=True, truncation=True, return_tensors="pt", **kw)
    with torch.no_grad():
        out = pipe.model(**enc)
    return enc, {k: v.numpy() for k, v in out.items()}


def _same(got, want, path="") -> None:
    """Nested dict/list equality; floats (``score``) within ATOL."""
    if isinstance(want, dict):
        assert set(got) == set(want), (path, got, want)
        for k in want:
            _same(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), (path, got, want)
        for i, (g, w) in enumerate(zip(got, want)):
            _same(g, w, f"{path}[{i}]")
    elif isinstance(want, (float, np.floating)):
        assert abs(float(got) - float(want)) <= ATOL, (path, got, want)
    else:
        assert got == want, (path, got, want)


@pytest.mark.parametrize("arch,head", [(a, "text-classification") for a in tiny_text.ARCH_HEADS]
                         + [("bert", "multi-label")])
def test_classification_matches_the_pipeline(arch, head):
    path = tiny_text.cached(arch, head)
    pipe = _pipeline("text-classification", path)
    _, out = _forward(pipe, TEXTS)
    function = pp.classification_function(pipe.model.config.to_dict())
    assert function == ("sigmoid" if head == "multi-label" else "softmax")
    id2label = pipe.model.config.id2label
    labels, scores = pp.classify(out["logits"], id2label, function, top_k=0)
    for i, want in enumerate(pipe(TEXTS, top_k=None)):
        _same([{"label": lab, "score": s} for lab, s in zip(labels[i], scores[i])], want)
    labels, scores = pp.classify(out["logits"], id2label, function, top_k=1)
    for i, want in enumerate(pipe(TEXTS)):  # the pipeline's default (legacy) answer: the best label
        _same({"label": labels[i, 0], "score": scores[i, 0]}, want)
    if head == "multi-label":
        assert (scores > 0).all() and not np.allclose(pp.classify(out["logits"], id2label, function, 0)[1].sum(-1), 1)


@pytest.mark.parametrize("strategy", pp.STRATEGIES)
@pytest.mark.parametrize("arch", ["bert", "xlm-roberta", "electra"])
def test_token_classification_matches_the_pipeline(arch, strategy):
    pipe = _pipeline("token-classification", tiny_text.cached(arch, "token-classification"))
    _, out = _forward(pipe, TEXTS)
    id2label = pipe.model.config.id2label
    for i, text in enumerate(TEXTS):
        want = pipe(text, aggregation_strategy=strategy)
        got = pp.token_entities(pipe.tokenizer, text, out["logits"][i], id2label, strategy, max_length=64)
        assert want, "the tiny model should find some entities"
        _same(got, [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in e.items()} for e in want])


@pytest.mark.parametrize("arch", ["bert", "roberta", "albert"])
def test_fill_mask_matches_the_pipeline(arch):
    pipe = _pipeline("fill-mask", tiny_text.cached(arch, "fill-mask"))
    m = pipe.tokenizer.mask_token
    texts = [f"the movie was {m} .", f"{m} serves models from a repository on disk ."]
    enc, out = _forward(pipe, texts)
    for i, text in enumerate(texts):
        got = pp.fill_mask(pipe.tokenizer, enc["input_ids"][i].numpy(), out["logits"][i], top_k=4)
        _same(got, pipe(text, top_k=4))
    with pytest.raises(pp.RequestError, match="exactly one"):
        pp.fill_mask(pipe.tokenizer, enc["input_ids"][0].numpy() * 0, out["logits"][0])


QA = [("who works at acme?", "John works at Acme corporation in London."),
      ("what is the capital?", "Paris is the capital of France and Berlin is in Germany, the cat sat on the mat.")]


@pytest.mark.parametrize("arch", ["bert", "distilbert", "deberta-v2"])
@pytest.mark.parametrize("top_k", [1, 3])
def test_question_answering_matches_the_pipeline(arch, top_k):
    pipe = _pipeline("question-answering", tiny_text.cached(arch, "question-answering"))
    q, c = (list(x) for x in zip(*QA))
    _, out = _forward(pipe, q, c)
    for i in range(len(QA)):
        got = pp.answer_spans(pipe.tokenizer, q[i], c[i], out["start_logits"][i], out["end_logits"][i],
                              max_length=64, top_k=top_k)
        want = pipe(question=q[i], context=c[i], top_k=top_k)
        _same(got, want if isinstance(want, list) else [want])


@pytest.mark.parametrize("multi_label", [False, True])
def test_zero_shot_matches_the_pipeline(multi_label):
    pipe = _pipeline("zero-shot-classification", tiny_text.cached("bert", "nli"))
    labels = ["sport", "music", "weather", "politics"]
    template = "This example is {}."
    pairs = [(t, template.format(lab)) for t in TEXTS for lab in labels]  # text-major, as the preprocessing expands
    _, out = _forward(pipe, [p[0] for p in pairs], [p[1] for p in pairs], )
    entail = pp.entailment_id(pipe.model.config.label2id)
    assert entail == 0
    got_labels, got_scores = pp.zero_shot(out["logits"], [labels] * len(TEXTS), entail, multi_label)
    for i, text in enumerate(TEXTS):
        want = pipe(text, candidate_labels=labels, hypothesis_template=template, multi_label=multi_label)
        assert list(got_labels[i]) == want["labels"]
        np.testing.assert_allclose(got_scores[i], want["scores"], atol=ATOL)
    assert multi_label or np.allclose(got_scores.sum(-1), 1, atol=1e-5)


def test_multiple_choice_scores_are_the_softmax_of_the_model():
    import torch
    from transformers import AutoModelForMultipleChoice, AutoTokenizer

    path = tiny_text.cached("bert", "multiple-choice")
    tok, model = AutoTokenizer.from_pretrained(path), AutoModelForMultipleChoice.from_pretrained(path).eval()
    prompt, choices = "the cat sat on", ["the mat", "a movie about paris", "london"]
    enc = tok([prompt] * 3, choices, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**{k: v[None] for k, v in enc.items()}).logits.numpy()
    assert logits.shape == (1, 3)
    want = torch.softmax(torch.from_numpy(logits), -1).numpy()
    np.testing.assert_allclose(pp.softmax(logits), want, atol=1e-6)


def test_mean_pooled_normalised_embedding_matches_sentence_transformers(minilm_dir):
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(minilm_dir), AutoModel.from_pretrained(minilm_dir).eval()
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state.numpy()
    got = pp.pool(hidden, enc["attention_mask"].numpy(), "mean", normalize=True)
    want = SentenceTransformer(str(minilm_dir), device="cpu").encode(TEXTS)
    cos = (got * want).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
    assert cos.min() >= 0.9999
