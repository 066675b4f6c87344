"""Golden raw inputs and reference outputs of the text pipelines (``golden_inputs`` / ``reference`` of text entries).

Same contracts as :mod:`tritonrepo.tasks.reference`: a reference is ``fn(checkpoint, spec, raw, max_length) ->
(outputs, valid)``, ``outputs`` keyed by the ensemble's output names, computed with ``transformers.pipeline`` of
the task (multiple choice, which transformers has no pipeline for: the softmax of the PyTorch model's logits).
The pipeline parameters are the post step's defaults (``top_k``, ``aggregation_strategy``, ...) of the entry.
Every import beyond the standard library happens inside the functions (numpy included): importing
:mod:`tritonrepo.tasks` imports this module, and that must stay light.
"""

from __future__ import annotations

import json

#: Raw golden texts: different lengths, so that padding is exercised (also :mod:`tritonrepo.tasks.reference`'s).
GOLDEN_TEXTS = [
    "Triton serves this model.",
    "A longer second sentence, so that the first one is padded in the batch.",
    "Short.",
    "Model repositories load the first time.",
    "The third text of the second trial is the longest one here.",
]

#: Texts with names, places and organisations (token classification), of different lengths.
ENTITY_TEXTS = ["John works at Acme corporation in London.", "Paris is in France.",
                "Short text.", "the movie was good and Berlin is in Germany, said Mary."]
#: Candidate labels of the zero-shot golden sample.
ZERO_SHOT_LABELS = ["sport", "politics", "weather", "music"]
#: (prompt, choices) pairs of the multiple-choice golden sample.
CHOICES = [("The cat sat on", ["the mat.", "a movie about Paris.", "London."]),
           ("Triton serves", ["models from a repository on disk.", "the capital.", "John."])]


def _tokenizer(checkpoint):
    from tritonrepo.samples import load_tokenizer  # noqa: PLC0415

    return load_tokenizer(checkpoint)


def _pipe(checkpoint, spec, task: str | None = None):
    import warnings  # noqa: PLC0415

    from transformers import pipeline  # noqa: PLC0415

    warnings.filterwarnings("ignore", message="Tokenizer does not support real words")
    from tritonrepo.tasks.reference import load_model  # noqa: PLC0415

    return pipeline(task or spec.task, model=load_model(checkpoint, spec), tokenizer=_tokenizer(checkpoint),
                    device="cpu")


def _param(spec, name: str) -> str:
    return spec.pipeline.post_parameters[name]


def _strings(rows):
    """Rows of str as a ``TYPE_STRING`` object array of UTF-8 bytes."""
    import numpy as np  # noqa: PLC0415

    return np.array([[str(v).encode() for v in row] for row in rows], dtype=object)


# --- golden inputs -------------------------------------------------------------------------------------------------

def golden_entity_texts(checkpoint, spec) -> dict[str, list]:
    """``{"text": [...]}``: four texts of different lengths with entity-like words."""
    return {"text": list(ENTITY_TEXTS)}


def golden_masked_texts(checkpoint, spec) -> dict[str, list]:
    """``{"text": [...]}``: the golden texts with one word replaced by the tokenizer's mask token."""
    mask = _tokenizer(checkpoint).mask_token
    out = []
    for text in GOLDEN_TEXTS[:4]:
        words = text.split()
        words[len(words) // 2] = mask
        out.append(" ".join(words))
    return {"text": out}


def golden_zero_shot(checkpoint, spec) -> dict[str, list]:
    """``{"text": [...], "candidate_labels": [...]}`` (labels shared by every text)."""
    return {"text": GOLDEN_TEXTS[:3], "candidate_labels": list(ZERO_SHOT_LABELS)}


def golden_choices(checkpoint, spec) -> dict[str, list]:
    """``{"text": [prompt, ...], "choices": [[choice, ...], ...]}``."""
    return {"text": [p for p, _ in CHOICES], "choices": [c for _, c in CHOICES]}


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


# --- references ----------------------------------------------------------------------------------------------------

def classification(checkpoint, spec, raw, max_length):
    """``label`` / ``score`` ``[batch, top_k]`` from the text-classification pipeline (``top_k=0``: all labels)."""
    import numpy as np  # noqa: PLC0415

    pipe = _pipe(checkpoint, spec)
    k = int(_param(spec, "top_k"))
    rows = [pipe(_text(t), top_k=k or None) for t in raw["text"]]
    return {"label": _strings([[r["label"] for r in row] for row in rows]),
            "score": np.array([[r["score"] for r in row] for row in rows], dtype=np.float32)}, None


def token_classification(checkpoint, spec, raw, max_length):
    """``entities`` ``[batch, 1]``: the token-classification pipeline's list as JSON, per text."""
    import numpy as np  # noqa: PLC0415

    pipe = _pipe(checkpoint, spec)
    strategy = _param(spec, "aggregation_strategy")
    ignore = [s for s in _param(spec, "ignore_labels").split(",") if s]
    out = []
    for t in raw["text"]:
        entities = pipe(_text(t), aggregation_strategy=strategy, ignore_labels=ignore)
        out.append([json.dumps([{k: (v.item() if isinstance(v, np.generic) else v) for k, v in e.items()}
                                for e in entities]).encode()])
    return {"entities": np.array(out, dtype=object)}, None


def question_answering(checkpoint, spec, raw, max_length):
    """``answer``, ``score``, ``start``, ``end`` ``[batch, top_k]`` from the question-answering pipeline."""
    import numpy as np  # noqa: PLC0415

    pipe = _pipe(checkpoint, spec)
    k = int(_param(spec, "top_k"))
    rows = []
    for q, c in zip(raw["question"], raw["context"]):
        r = pipe(question=_text(q), context=_text(c), top_k=k, max_answer_len=int(_param(spec, "max_answer_len")),
                 max_seq_len=max_length, handle_impossible_answer=_param(spec, "handle_impossible_answer") == "true",
                 align_to_words=_param(spec, "align_to_words") == "true")
        rows.append(r if isinstance(r, list) else [r])
    width = k
    pad = [{"answer": "", "score": 0.0, "start": 0, "end": 0}]
    rows = [row + pad * (width - len(row)) for row in rows]
    return {"answer": _strings([[a["answer"] for a in row] for row in rows]),
            "score": np.array([[a["score"] for a in row] for row in rows], dtype=np.float32),
            "start": np.array([[a["start"] for a in row] for row in rows], dtype=np.int64),
            "end": np.array([[a["end"] for a in row] for row in rows], dtype=np.int64)}, None


def fill_mask(checkpoint, spec, raw, max_length):
    """``score``, ``token``, ``token_str``, ``sequence`` ``[batch, top_k]`` from the fill-mask pipeline."""
    import numpy as np  # noqa: PLC0415

    pipe = _pipe(checkpoint, spec)
    k = int(_param(spec, "top_k"))
    rows = [pipe(_text(t), top_k=k) for t in raw["text"]]
    return {"score": np.array([[r["score"] for r in row] for row in rows], dtype=np.float32),
            "token": np.array([[r["token"] for r in row] for row in rows], dtype=np.int64),
            "token_str": _strings([[r["token_str"] for r in row] for row in rows]),
            "sequence": _strings([[r["sequence"] for r in row] for row in rows])}, None


def zero_shot(checkpoint, spec, raw, max_length):
    """``labels`` / ``scores`` ``[texts, labels]`` from the zero-shot-classification pipeline."""
    import numpy as np  # noqa: PLC0415

    from tritonrepo.tasks.text import HYPOTHESIS_TEMPLATE  # noqa: PLC0415

    pipe = _pipe(checkpoint, spec)
    labels = [_text(x) for x in raw["candidate_labels"]]
    multi = _param(spec, "multi_label") == "true"
    rows = [pipe(_text(t), candidate_labels=labels, hypothesis_template=HYPOTHESIS_TEMPLATE, multi_label=multi)
            for t in raw["text"]]
    return {"labels": _strings([r["labels"] for r in rows]),
            "scores": np.array([r["scores"] for r in rows], dtype=np.float32)}, None


def multiple_choice(checkpoint, spec, raw, max_length):
    """``choice`` ``[batch, 1]`` and ``scores`` ``[batch, choices]``: softmax of the PyTorch model's logits."""
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415

    from tritonrepo.tasks.reference import load_model  # noqa: PLC0415

    tok = _tokenizer(checkpoint)
    prompts, choices = [_text(p) for p in raw["text"]], [[_text(c) for c in row] for row in raw["choices"]]
    n = len(choices[0])
    enc = tok([p for p in prompts for _ in range(n)], [c for row in choices for c in row], padding=True,
              truncation=True, max_length=max_length, return_tensors="pt")
    enc = {k: v.reshape(len(prompts), n, -1) for k, v in enc.items()}
    with torch.no_grad():
        logits = load_model(checkpoint, spec)(**enc).logits
    scores = torch.softmax(logits.float(), -1).numpy()
    return {"choice": scores.argmax(-1)[:, None].astype(np.int64), "scores": scores.astype(np.float32)}, None
