"""Postprocessing for an ensemble, in Triton's Python backend (copied as ``<version>/model.py``).

A fixed module; config ``parameters`` say what it does (``kind``):

* ``classification`` — ``logits`` ``[batch, num_labels]`` -> ``label`` (``TYPE_STRING`` ``[batch, 1]``, from
  ``id2label``) and ``score`` (softmax probability, ``[batch, 1]``);
* ``token-classification`` — ``logits`` ``[batch, seq, num_labels]`` and ``attention_mask`` -> ``labels`` and
  ``scores`` ``[batch, seq]`` (padding positions: ``""`` and 0);
* ``embedding`` — ``last_hidden_state`` ``[batch, seq, hidden]`` and ``attention_mask`` -> ``embedding``
  ``[batch, hidden]``, pooled by ``pooling`` (``mean``, ``cls`` or ``max``, as a sentence-transformers
  ``1_Pooling`` config says) and L2-normalised when ``normalize`` is ``true``;
* ``question-answering`` — ``start_logits``, ``end_logits``, ``input_ids`` (and ``token_type_ids`` when the model
  has it) -> ``answer`` (``TYPE_STRING`` ``[batch, 1]``): the best span with start <= end, at most
  ``max_answer_tokens`` long, inside the context, decoded with the tokenizer in ``processor_subfolder``.

Labels come from ``labels_file`` (the checkpoint's ``config.json``, ``id2label``) in the version folder.
Output dtypes are the configured ones. A request that cannot be processed gets an error response.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from tritonrepo_runtime import ModelIO, execute_batched  # noqa: E402


def _softmax(x, axis=-1):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class TritonPythonModel:
    """Turns core-model tensors into answers (labels, scores, embeddings, answer spans)."""

    def initialize(self, args):
        self.io = ModelIO(args["model_config"])
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        self.kind = self.io.parameter("kind")
        labels_file = self.io.parameter("labels_file", "")
        self.id2label = {}
        if labels_file:
            with open(os.path.join(version_dir, labels_file), encoding="utf-8") as f:
                self.id2label = {int(k): v for k, v in json.load(f).get("id2label", {}).items()}
        self.pooling = self.io.parameter("pooling", "mean")
        self.normalize = self.io.parameter("normalize", "false") == "true"
        if self.kind == "question-answering":
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(
                os.path.join(version_dir, self.io.parameter("processor_subfolder", "processor"))
            )
            self.max_answer = int(self.io.parameter("max_answer_tokens", "30"))
            vocab = self.tokenizer.get_vocab()
            self._marks_word_start = any(k.startswith(("Ġ", "▁")) for k in list(vocab)[:2000])

    def _label(self, i):
        return self.id2label.get(int(i), f"LABEL_{int(i)}").encode("utf-8")

    def _run(self, a):
        if self.kind == "classification":
            probs = _softmax(a["logits"])
            best = probs.argmax(-1)
            labels = np.array([[self._label(i)] for i in best], dtype=object)
            return {"label": labels, "score": probs.max(-1, keepdims=True)}
        if self.kind == "token-classification":
            probs = _softmax(a["logits"])
            best, mask = probs.argmax(-1), a["attention_mask"] > 0
            labels = np.array([[self._label(i) if m else b"" for i, m in zip(r, mr)] for r, mr in zip(best, mask)],
                              dtype=object).reshape(best.shape)
            return {"labels": labels, "scores": np.where(mask, probs.max(-1), 0.0)}
        if self.kind == "embedding":
            h = a["last_hidden_state"].astype(np.float32)
            mask = a["attention_mask"].astype(np.float32)[..., None]
            if self.pooling == "cls":
                emb = h[:, 0]
            elif self.pooling == "max":
                emb = np.where(mask > 0, h, -1e9).max(1)
            else:
                emb = (h * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
            if self.normalize:
                emb = emb / np.clip(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12, None)
            return {"embedding": emb}
        if self.kind == "question-answering":
            return {"answer": self._answers(a)}
        raise ValueError(f"unknown postprocessing kind '{self.kind}'")

    def _answers(self, a):
        out = []
        for b, ids in enumerate(a["input_ids"]):
            special = set(self.tokenizer.all_special_ids)
            ok = np.array([int(t) not in special for t in ids])
            if "token_type_ids" in a:
                ok &= a["token_type_ids"][b] == 1
            start = np.where(ok, a["start_logits"][b], -np.inf)
            end = np.where(ok, a["end_logits"][b], -np.inf)
            best, span = -np.inf, (0, -1)
            for s in np.argsort(start)[::-1][:20]:
                for e in range(s, min(s + self.max_answer, len(ids))):
                    if ok[e] and start[s] + end[e] > best:
                        best, span = start[s] + end[e], (s, e)
            s, e = self._whole_words(ids, ok, *span)
            text = self.tokenizer.decode(ids[s : e + 1], skip_special_tokens=True).strip()
            out.append([text.encode("utf-8")])
        return np.array(out, dtype=object)

    def _continues(self, token_id):
        """True when the token continues the previous word (WordPiece ``##x``; BPE/SentencePiece without ``Ġ``/``▁``)."""
        piece = self.tokenizer.convert_ids_to_tokens(int(token_id))
        if piece.startswith("##"):
            return True
        if self._marks_word_start:
            return not piece.startswith(("Ġ", "▁"))
        return False

    def _whole_words(self, ids, ok, s, e):
        """Widen the span ``[s, e]`` to whole words, staying inside the allowed (context) tokens."""
        if e < s:
            return s, e
        while s > 0 and ok[s - 1] and self._continues(ids[s]):
            s -= 1
        while e + 1 < len(ids) and ok[e + 1] and self._continues(ids[e + 1]):
            e += 1
        return s, e

    def execute(self, requests):
        """One response per request, stacked where shapes allow."""
        return execute_batched(requests, self.io, self._run)

    def finalize(self):
        pass
