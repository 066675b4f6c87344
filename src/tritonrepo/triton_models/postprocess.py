"""Postprocessing for an ensemble, in Triton's Python backend (copied as ``<version>/model.py``).

A fixed module (NumPy, plus the checkpoint's tokenizer where text must be decoded; never torch). Config
``parameters`` say what it does (``kind``); every kind reproduces the postprocessing of the transformers pipeline
of the same task (``transformers/pipelines/<task>.py``, transformers 4.57), so the answers are the pipeline's:

* ``classification`` — ``logits`` ``[batch, num_labels]`` -> ``label`` (``TYPE_STRING``) and ``score``
  ``[batch, top_k]``, best first. ``function`` is ``softmax``, ``sigmoid`` or ``none``; by default the pipeline's
  rule from the labels file: sigmoid when ``problem_type`` is ``multi_label_classification`` or ``num_labels == 1``,
  none for ``regression``, else softmax (``text_classification.py``). ``top_k`` (default 1; ``0``: all labels).
* ``token-classification`` — ``logits`` ``[batch, seq, num_labels]`` and the raw ``text`` ``[batch, 1]`` ->
  ``entities`` ``TYPE_STRING`` ``[batch, 1]``: one JSON list per text, as the pipeline returns it with
  ``aggregation_strategy`` (``none``/``simple``/``first``/``average``/``max``): items
  ``{"entity"|"entity_group", "score", "word", "start", "end"}`` (plus ``"index"`` for ``none``); labels in
  ``ignore_labels`` (default ``O``) are dropped. Character offsets come from re-tokenising the text with the
  same tokenizer and ``max_length`` as the preprocessing step (``token_classification.py``).
* ``fill-mask`` — ``logits`` ``[batch, seq, vocab]`` and ``input_ids`` -> ``score`` (FP32), ``token`` (INT64),
  ``token_str`` and ``sequence`` (``TYPE_STRING``), each ``[batch, top_k]`` (default 5) for the one mask token
  of each text (``fill_mask.py``).
* ``question-answering`` — ``start_logits``, ``end_logits`` ``[batch, seq]`` and the raw ``question``,
  ``context`` -> ``answer`` (``TYPE_STRING``), ``score`` (FP32), ``start``, ``end`` (INT64, characters of the
  context) ``[batch, top_k]`` (default 1; ``""``/0 where fewer answers exist), with ``max_answer_len`` (15),
  ``handle_impossible_answer`` and ``align_to_words`` (``question_answering.py``).
* ``zero-shot`` — ``logits`` ``[batch * n_labels, 3]`` of the NLI model over (text, hypothesis) pairs that the
  preprocessing made, and ``candidate_labels`` ``[batch, n_labels]`` -> ``labels`` (``TYPE_STRING``) and
  ``scores`` ``[batch, n_labels]``, best first; ``multi_label`` (``zero_shot_classification.py``).
* ``multiple-choice`` — ``logits`` ``[batch, num_choices]`` -> ``choice`` (INT64 ``[batch, 1]``, the argmax) and
  ``scores`` (softmax, ``[batch, num_choices]``).
* ``embedding`` — ``last_hidden_state`` ``[batch, seq, hidden]`` and ``attention_mask`` -> ``embedding``
  ``[batch, hidden]``, pooled by ``pooling`` (``mean``, ``cls`` or ``max``, as a sentence-transformers
  ``1_Pooling`` config says) and L2-normalised when ``normalize`` is ``true``.

Labels come from ``labels_file`` (the checkpoint's ``config.json``: ``id2label``, ``label2id``, ``problem_type``)
in the version folder; the tokenizer from ``processor_subfolder``. Output dtypes are the configured ones. A
request that cannot be processed gets an error response of its own.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

try:  # inside Triton: the runtime is copied beside this file
    from tritonrepo_runtime import ModelIO, RequestError, decode_strings, execute_batched  # noqa: E402
except ImportError:  # imported from the package (tests, docs)
    from tritonrepo.triton_models.runtime import ModelIO, RequestError, decode_strings, execute_batched  # noqa: E402

STRATEGIES = ("none", "simple", "first", "average", "max")


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, computed as transformers' pipelines do (float32 in, same dtype out)."""
    maxes = np.max(x, axis=-1, keepdims=True)
    e = np.exp(x - maxes)
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _label_names(array: np.ndarray) -> list[list[str]]:
    """``[batch, n]`` (or ``[n]``) strings -> one list of labels per batch item."""
    a = np.asarray(array, dtype=object)
    if a.ndim == 1:
        a = a[None]
    return [decode_strings(row) for row in a]


# --- text classification -------------------------------------------------------------------------------------------

def classification_function(labels_config: dict) -> str:
    """The pipeline's default ``function_to_apply`` for a checkpoint ``config.json`` (``text_classification.py``)."""
    problem = labels_config.get("problem_type")
    num_labels = len(labels_config.get("id2label") or {}) or int(labels_config.get("num_labels", 2))
    if problem == "regression":
        return "none"
    if problem == "multi_label_classification" or num_labels == 1:
        return "sigmoid"
    if problem == "single_label_classification" or num_labels > 1:
        return "softmax"
    return labels_config.get("function_to_apply", "none")


def classify(logits: np.ndarray, id2label: dict[int, str], function: str, top_k: int):
    """``logits`` ``[batch, num_labels]`` -> ``(labels, scores)`` ``[batch, k]``, best first.

    ``k`` is ``top_k`` (``0`` or more than the labels: all labels). Scores are float32 as the pipeline's.
    """
    x = np.asarray(logits, dtype=np.float32)
    scores = {"softmax": softmax, "sigmoid": sigmoid}.get(function, lambda v: v)(x)
    k = scores.shape[-1] if top_k <= 0 else min(top_k, scores.shape[-1])
    order = np.argsort(-scores, axis=-1, kind="stable")[:, :k]
    labels = np.array([[id2label.get(int(i), f"LABEL_{int(i)}") for i in row] for row in order], dtype=object)
    return labels, np.take_along_axis(scores, order, axis=-1)


# --- token classification ------------------------------------------------------------------------------------------

def _encode(tokenizer, *texts, max_length: int, **kw):
    """One unpadded encoding, truncated as the preprocessing step truncates."""
    trunc = kw.pop("truncation", True)
    return tokenizer(*texts, truncation=trunc, max_length=max_length, **kw)


def _rows(logits_row: np.ndarray, n: int, padding_side: str) -> np.ndarray:
    """The ``n`` positions of a padded row that belong to the (unpadded) encoding."""
    if n > logits_row.shape[0]:
        raise RequestError(f"the model returned {logits_row.shape[0]} positions for a text of {n} tokens")
    return logits_row[-n:] if padding_side == "left" else logits_row[:n]


def _get_tag(name: str) -> tuple[str, str]:
    if name.startswith("B-"):
        return "B", name[2:]
    if name.startswith("I-"):
        return "I", name[2:]
    return "I", name


def token_entities(tokenizer, text: str, logits: np.ndarray, id2label: dict[int, str], strategy: str = "none",
                   ignore_labels=("O",), max_length: int = 512) -> list[dict]:
    """Entities of one text, as ``TokenClassificationPipeline.postprocess`` returns them.

    Args:
        tokenizer: the checkpoint's fast tokenizer.
        text: the raw text.
        logits: ``[seq, num_labels]`` for this text (padding positions after the text's tokens are ignored).
        strategy: one of :data:`STRATEGIES`.
    Returns:
        A list of dicts (``entity``/``entity_group``, ``score`` (float), ``word``, ``start``, ``end``
        characters; ``index`` for ``none``).
    """
    enc = _encode(tokenizer, text, max_length=max_length, return_special_tokens_mask=True,
                  return_offsets_mapping=True)
    ids = enc["input_ids"]
    scores = softmax(_rows(np.asarray(logits, dtype=np.float32), len(ids), tokenizer.padding_side))
    backend = getattr(tokenizer, "_tokenizer", None)
    word_aware = bool(backend and getattr(backend.model, "continuing_subword_prefix", None))
    pre = []
    for idx, token_scores in enumerate(scores):
        if enc["special_tokens_mask"][idx]:
            continue
        word = tokenizer.convert_ids_to_tokens(int(ids[idx]))
        start, end = (int(v) for v in enc["offset_mapping"][idx])
        word_ref = text[start:end]
        if word_aware:
            is_subword = len(word) != len(word_ref)
        else:
            is_subword = start > 0 and " " not in text[start - 1 : start + 1]
        if int(ids[idx]) == tokenizer.unk_token_id:
            word, is_subword = word_ref, False
        pre.append({"word": word, "scores": token_scores, "start": start, "end": end, "index": idx,
                    "is_subword": is_subword})

    if strategy in ("none", "simple"):
        entities = []
        for p in pre:
            i = int(p["scores"].argmax())
            entities.append({"entity": id2label[i], "score": p["scores"][i], "index": p["index"], "word": p["word"],
                             "start": p["start"], "end": p["end"]})
    elif strategy in ("first", "average", "max"):
        entities, group = [], []
        for p in pre:
            if group and not p["is_subword"]:
                entities.append(_aggregate_word(tokenizer, group, strategy, id2label))
                group = []
            group.append(p)
        if group:
            entities.append(_aggregate_word(tokenizer, group, strategy, id2label))
    else:
        raise ValueError(f"unknown aggregation_strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if strategy != "none":
        entities = _group_entities(tokenizer, entities)
    out = []
    for e in entities:
        if e.get("entity") in ignore_labels or e.get("entity_group") in ignore_labels:
            continue
        out.append({k: (float(v) if k == "score" else v) for k, v in e.items()})
    return out


def _aggregate_word(tokenizer, group: list[dict], strategy: str, id2label) -> dict:
    word = tokenizer.convert_tokens_to_string([g["word"] for g in group])
    if strategy == "first":
        scores = group[0]["scores"]
    elif strategy == "max":
        scores = max(group, key=lambda g: g["scores"].max())["scores"]
    else:
        scores = np.nanmean(np.stack([g["scores"] for g in group]), axis=0)
    i = int(scores.argmax())
    return {"entity": id2label[i], "score": scores[i], "word": word, "start": group[0]["start"],
            "end": group[-1]["end"]}


def _group_entities(tokenizer, entities: list[dict]) -> list[dict]:
    groups, current = [], []

    def close(members):
        return {"entity_group": members[0]["entity"].split("-", 1)[-1],
                "score": np.mean(np.nanmean([m["score"] for m in members])),
                "word": tokenizer.convert_tokens_to_string([m["word"] for m in members]),
                "start": members[0]["start"], "end": members[-1]["end"]}

    for e in entities:
        if current:
            bi, tag = _get_tag(e["entity"])
            _, last_tag = _get_tag(current[-1]["entity"])
            if not (tag == last_tag and bi != "B"):
                groups.append(close(current))
                current = []
        current.append(e)
    if current:
        groups.append(close(current))
    return groups


# --- fill mask -----------------------------------------------------------------------------------------------------

def fill_mask(tokenizer, input_ids: np.ndarray, logits: np.ndarray, top_k: int = 5) -> list[dict]:
    """Top-``k`` fillers of the mask token of one text, as ``FillMaskPipeline.postprocess`` returns them.

    Args:
        input_ids: ``[seq]`` (padding included; pad tokens are dropped from ``sequence`` as the pipeline does).
        logits: ``[seq, vocab]``.
    Returns:
        ``[{"score", "token", "token_str", "sequence"}]``, best first.
    Raises:
        RequestError: the text has no mask token or more than one.
    """
    ids = np.asarray(input_ids).astype(np.int64)
    masked = np.nonzero(ids == tokenizer.mask_token_id)[0]
    if len(masked) != 1:
        raise RequestError(f"each text needs exactly one {tokenizer.mask_token} token; one has {len(masked)}")
    probs = softmax(np.asarray(logits, dtype=np.float32)[masked[0]])
    order = np.argsort(-probs, kind="stable")[:top_k]
    out = []
    for p in order:
        tokens = ids.copy()
        tokens[masked[0]] = p
        tokens = tokens[tokens != tokenizer.pad_token_id]
        out.append({"score": float(probs[p]), "token": int(p), "token_str": tokenizer.decode([int(p)]),
                    "sequence": tokenizer.decode(tokens, skip_special_tokens=True)})
    return out


# --- question answering --------------------------------------------------------------------------------------------

def _decode_spans(start, end, topk, max_answer_len, undesired):
    outer = np.matmul(start[:, :, None], end[:, None, :])
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    flat = candidates.flatten()
    if topk == 1:
        idx_sort = [np.argmax(flat)]
    elif len(flat) < topk:
        idx_sort = np.argsort(-flat)
    else:
        idx = np.argpartition(-flat, topk)[0:topk]
        idx_sort = idx[np.argsort(-flat[idx])]
    starts, ends = np.unravel_index(idx_sort, candidates.shape)[1:]
    keep = np.isin(starts, undesired.nonzero()) & np.isin(ends, undesired.nonzero())
    starts, ends = starts[keep], ends[keep]
    return starts, ends, candidates[0, starts, ends]


def answer_spans(tokenizer, question: str, context: str, start_logits: np.ndarray, end_logits: np.ndarray,
                 max_length: int = 384, top_k: int = 1, max_answer_len: int = 15,
                 handle_impossible_answer: bool = False, align_to_words: bool = True) -> list[dict]:
    """Answers in ``context``, as ``QuestionAnsweringPipeline.postprocess`` returns them (one span window).

    Args:
        start_logits, end_logits: ``[seq]`` for this (question, context) pair (padding positions ignored).
    Returns:
        ``[{"score", "start", "end", "answer"}]``, best first, at most ``top_k``; ``start``/``end`` are
        character positions in ``context``.
    """
    question_first = tokenizer.padding_side == "right"
    pair = (question, context) if question_first else (context, question)
    enc = _encode(tokenizer, *pair, max_length=max_length,
                  truncation="only_second" if question_first else "only_first")
    encoding = enc.encodings[0]
    n = len(enc["input_ids"])
    start = _rows(np.asarray(start_logits, dtype=np.float32), n, tokenizer.padding_side)[None]
    end = _rows(np.asarray(end_logits, dtype=np.float32), n, tokenizer.padding_side)[None]
    p_mask = np.array([(s != 1) if question_first else 0 for s in encoding.sequence_ids], dtype=np.int64)
    if tokenizer.cls_token_id is not None:
        p_mask[np.array(enc["input_ids"]) == tokenizer.cls_token_id] = 0
    undesired = np.abs(p_mask - 1) & np.array(enc["attention_mask"])
    mask = undesired == 0.0
    start = np.where(mask, -10000.0, start)
    end = np.where(mask, -10000.0, end)
    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()
    min_null = 1000000
    if handle_impossible_answer:
        min_null = min(min_null, (start[0, 0] * end[0, 0]).item())
    start[0, 0] = end[0, 0] = 0.0
    pre_topk = top_k * 2 + 10 if align_to_words else top_k
    starts, ends, scores = _decode_spans(start, end, pre_topk, max_answer_len, undesired)
    seq_index = 1 if question_first else 0
    answers: list[dict] = []
    for s, e, score in zip(starts, ends, scores):
        s, e = int(s), int(e)
        try:
            if not align_to_words:
                raise ValueError
            i = encoding.word_to_chars(encoding.token_to_word(s), sequence_index=seq_index)[0]
            j = encoding.word_to_chars(encoding.token_to_word(e), sequence_index=seq_index)[1]
        except Exception:  # noqa: BLE001 - as the pipeline: tokenizers without words keep to offsets
            i, j = encoding.offsets[s][0], encoding.offsets[e][1]
        same = next((a for a in answers if a["answer"].lower() == context[i:j].lower()), None)
        if same:
            same["score"] += score.item()
        else:
            answers.append({"score": score.item(), "start": i, "end": j, "answer": context[i:j]})
    if handle_impossible_answer:
        answers.append({"score": min_null, "start": 0, "end": 0, "answer": ""})
    return sorted(answers, key=lambda a: a["score"], reverse=True)[:top_k]


# --- zero-shot classification --------------------------------------------------------------------------------------

def entailment_id(label2id: dict[str, int]) -> int:
    """The id of the label starting with ``entail`` (case-insensitive), else -1 (``zero_shot_classification.py``)."""
    for label, i in label2id.items():
        if label.lower().startswith("entail"):
            return int(i)
    return -1


def zero_shot(logits: np.ndarray, candidate_labels: list[list[str]], entail: int, multi_label: bool = False):
    """Regroup NLI logits ``[batch * n, classes]`` (pairs in text-major order) into per-text label rankings.

    Returns:
        ``(labels, scores)``, each ``[batch, n]``, best first (object strings and float32).
    """
    n = len(candidate_labels[0])
    if any(len(c) != n for c in candidate_labels):
        raise RequestError("every text needs the same number of candidate labels")
    x = np.asarray(logits, dtype=np.float32).reshape(len(candidate_labels), n, -1)
    if multi_label or n == 1:
        contradiction = -1 if entail == 0 else 0
        pair = x[..., [contradiction, entail]]
        scores = (np.exp(pair) / np.exp(pair).sum(-1, keepdims=True))[..., 1]
    else:
        ent = x[..., entail]
        scores = np.exp(ent) / np.exp(ent).sum(-1, keepdims=True)
    labels, out = [], []
    for row, names in zip(scores, candidate_labels):
        order = list(reversed(row.argsort()))
        labels.append([names[i] for i in order])
        out.append(row[order])
    return np.array(labels, dtype=object), np.array(out, dtype=np.float32)


# --- embeddings ----------------------------------------------------------------------------------------------------

def pool(hidden: np.ndarray, attention_mask: np.ndarray, pooling: str = "mean", normalize: bool = False):
    """Sentence embedding ``[batch, hidden]`` as sentence-transformers' ``Pooling`` (+ ``Normalize``) computes it."""
    h = hidden.astype(np.float32)
    mask = attention_mask.astype(np.float32)[..., None]
    if pooling == "cls":
        emb = h[:, 0]
    elif pooling == "max":
        emb = np.where(mask > 0, h, -1e9).max(1)
    else:
        emb = (h * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
    if normalize:
        emb = emb / np.clip(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12, None)
    return emb


def _flag(value: str) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes")


class TritonPythonModel:
    """Turns core-model tensors into the pipeline's answers (labels, entities, spans, fillers, embeddings)."""

    def initialize(self, args):
        self.io = ModelIO(args["model_config"])
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        self.kind = self.io.parameter("kind")
        labels_file = self.io.parameter("labels_file", "")
        self.labels_config = {}
        if labels_file:
            with open(os.path.join(version_dir, labels_file), encoding="utf-8") as f:
                self.labels_config = json.load(f)
        self.id2label = {int(k): v for k, v in (self.labels_config.get("id2label") or {}).items()}
        self.max_length = int(self.io.parameter("max_length", "512"))
        self.top_k = int(self.io.parameter("top_k", {"fill-mask": "5"}.get(self.kind, "1")))
        self.tokenizer = None
        if self.kind in ("token-classification", "fill-mask", "question-answering"):
            # a tokenizer needs no torch: keep transformers from importing it (about 420 MB -> 70 MB per stub)
            os.environ.setdefault("USE_TORCH", "0")
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(
                os.path.join(version_dir, self.io.parameter("processor_subfolder", "processor"))
            )
        if self.kind == "classification":
            self.function = self.io.parameter("function", "") or classification_function(self.labels_config)
        if self.kind == "token-classification":
            self.strategy = self.io.parameter("aggregation_strategy", "none")
            self.ignore = [s for s in self.io.parameter("ignore_labels", "O").split(",") if s]
        if self.kind == "zero-shot":
            self.entail = entailment_id(self.labels_config.get("label2id") or {})
            self.multi_label = _flag(self.io.parameter("multi_label", "false"))

    def _run(self, a):
        if self.kind == "classification":
            labels, scores = classify(a["logits"], self.id2label, self.function, self.top_k)
            return {"label": labels, "score": scores}
        if self.kind == "token-classification":
            texts = decode_strings(a["text"])
            out = [[json.dumps(token_entities(self.tokenizer, t, row, self.id2label, self.strategy, self.ignore,
                                              self.max_length)).encode("utf-8")]
                   for t, row in zip(texts, a["logits"])]
            return {"entities": np.array(out, dtype=object)}
        if self.kind == "fill-mask":
            rows = [fill_mask(self.tokenizer, ids, row, self.top_k) for ids, row in zip(a["input_ids"], a["logits"])]
            return {
                "score": np.array([[r["score"] for r in row] for row in rows], dtype=np.float32),
                "token": np.array([[r["token"] for r in row] for row in rows], dtype=np.int64),
                "token_str": np.array([[r["token_str"].encode() for r in row] for row in rows], dtype=object),
                "sequence": np.array([[r["sequence"].encode() for r in row] for row in rows], dtype=object),
            }
        if self.kind == "question-answering":
            return self._answers(a)
        if self.kind == "zero-shot":
            multi = self.multi_label
            if "multi_label" in a:
                multi = bool(np.asarray(a["multi_label"]).reshape(-1)[0])
            names = _label_names(a["candidate_labels"])
            if len(names) == 1 and names[0]:  # one label list shared by every text, as the pipeline takes it
                names = names * (len(a["logits"]) // len(names[0]))
            labels, scores = zero_shot(a["logits"], names, self.entail, multi)
            return {"labels": np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(labels), "scores": scores}
        if self.kind == "multiple-choice":
            scores = softmax(np.asarray(a["logits"], dtype=np.float32))
            return {"choice": scores.argmax(-1)[:, None], "scores": scores}
        if self.kind == "embedding":
            emb = pool(a["last_hidden_state"], a["attention_mask"], self.io.parameter("pooling", "mean"),
                       self.io.parameter("normalize", "false") == "true")
            return {"embedding": emb}
        raise ValueError(f"unknown postprocessing kind '{self.kind}'")

    def _answers(self, a):
        k = self.top_k
        answer = np.full((len(a["start_logits"]), k), b"", dtype=object)
        score = np.zeros((len(a["start_logits"]), k), dtype=np.float32)
        start = np.zeros((len(a["start_logits"]), k), dtype=np.int64)
        end = np.zeros_like(start)
        params = dict(max_length=self.max_length, top_k=k,
                      max_answer_len=int(self.io.parameter("max_answer_len", "15")),
                      handle_impossible_answer=_flag(self.io.parameter("handle_impossible_answer", "false")),
                      align_to_words=_flag(self.io.parameter("align_to_words", "true")))
        questions, contexts = decode_strings(a["question"]), decode_strings(a["context"])
        for b, (q, c) in enumerate(zip(questions, contexts)):
            for j, ans in enumerate(answer_spans(self.tokenizer, q, c, a["start_logits"][b], a["end_logits"][b],
                                                 **params)):
                answer[b, j], score[b, j] = ans["answer"].encode("utf-8"), ans["score"]
                start[b, j], end[b, j] = ans["start"], ans["end"]
        return {"answer": answer, "score": score, "start": start, "end": end}

    def execute(self, requests):
        """One response per request, stacked where shapes allow."""
        return execute_batched(requests, self.io, self._run)

    def finalize(self):
        self.tokenizer = None
