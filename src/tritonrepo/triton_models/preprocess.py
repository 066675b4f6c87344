"""Preprocessing for an ensemble, in Triton's Python backend (copied as ``<version>/model.py``).

A fixed module; config ``parameters`` say what it does:

* ``kind`` — ``text`` (tokenizer), ``text-pair`` (question + context, for question answering), ``zero-shot``
  (``text`` ``[n, 1]`` × ``candidate_labels`` ``[k]`` -> ``n * k`` rows of (text, ``hypothesis_template``
  filled with the label) pairs, text-major, the text truncated: the zero-shot-classification pipeline's pairs),
  ``multiple-choice`` (``text`` ``[batch, 1]`` prompt × ``choices`` ``[batch, c]`` -> ``[batch, c, seq]``) or
  ``image`` (image processor);
* ``hypothesis_template`` — ``zero-shot`` only (default ``This example is {}.``);
* ``processor_subfolder`` — the tokenizer / image processor files inside the version folder (``processor``);
* ``max_length`` — truncation length for text (tokens);
* ``engine`` — for text: ``tokenizers`` (default written by tritonrepo for fast tokenizers: only
  ``tokenizer.json`` is loaded, with the ``tokenizers`` library — no torch, no transformers in this process) or
  ``transformers`` (``AutoTokenizer``, for slow tokenizers);
* ``pad_id``, ``pad_token``, ``pad_type_id``, ``padding_side``, ``truncation_side`` — how the transformers
  tokenizer pads and truncates (engine ``tokenizers``), so the ids are the same as transformers' (tested);
* ``TOKENIZERS_PARALLELISM`` is ``false`` in this process unless the server's environment sets it;
* ``length_buckets`` — text only, e.g. ``16,32,64,128,256`` (written by ``add-hf --pipeline`` when the core model is
  an ONNX model, which the ONNX Runtime backend batches only with equal shapes): each request's tokens are padded
  further, on the padding side, to the smallest bucket that holds its longest text (:func:`pad_to_bucket`), so
  requests of similar lengths have equal shapes and Triton's dynamic batcher can put them in one batch. The padding
  is masked (``attention_mask`` 0), so the core model's answers at real tokens are unchanged.

Text inputs are ``TYPE_STRING`` ``[batch, 1]`` (one UTF-8 string per batch item); image inputs are ``TYPE_STRING``
``[batch, 1]`` holding encoded JPEG/PNG bytes. Outputs are exactly the configured outputs (the core model's
inputs), cast to the configured dtype: ``input_ids``/``attention_mask``[/``token_type_ids``] ``[batch, seq]``
padded to the longest text of the request (with ``length_buckets``: to its bucket), or ``pixel_values``
``[batch, C, H, W]``. Each request is processed on its own (its padding never depends on other requests); a malformed one (undecodable image, text that is not
UTF-8, larger than the limits of ``tritonrepo_limits``) gets an error response (HTTP 400) and the model keeps serving.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Each request's texts are tokenised on the calling thread: a rayon pool (one thread per core, spinning between jobs)
# costs more than it gains on a request's few short texts and competes with the ONNX Runtime threads of the core
# model's stub for the same cores (docs/performance.md, "Where the time of a served request goes").
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
from tritonrepo_limits import Limits  # noqa: E402
from tritonrepo_runtime import ModelIO, RequestError, execute_batched  # noqa: E402


def load_tokenizers(folder, parameter):
    """A ``tokenizers.Tokenizer`` from ``folder/tokenizer.json`` padding as the config parameters say.

    ``parameter(name, default)`` reads a config parameter (``pad_id``, ``pad_token``, ``pad_type_id``,
    ``padding_side``); truncation is set per call (:func:`encode_tokenizers`).
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tok.no_truncation()
    tok.enable_padding(
        direction=parameter("padding_side", "right"),
        pad_id=int(parameter("pad_id", "0")),
        pad_type_id=int(parameter("pad_type_id", "0")),
        pad_token=parameter("pad_token", "[PAD]"),
    )
    return tok


def encode_tokenizers(tok, items, max_length, pair=False, side="right", strategy=None):
    """``{input_ids, attention_mask, token_type_ids}`` ``int64 [batch, seq]`` for texts (or pairs), padded to the
    longest and truncated to ``max_length`` as transformers' fast tokenizer does (``longest_first`` for texts,
    ``only_second`` for pairs, unless ``strategy`` says otherwise)."""
    tok.enable_truncation(max_length, strategy=strategy or ("only_second" if pair else "longest_first"),
                          direction=side)
    encs = tok.encode_batch(items, add_special_tokens=True)
    return {
        "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
    }


def pad_to_bucket(enc, buckets, pad_values, side="right"):
    """Pad every array of ``enc`` (``[..., seq]`` token arrays) along its last axis to the smallest of ``buckets``
    ``>= seq`` (unchanged when ``seq`` is above every bucket).

    ``pad_values``: ``{name: value}`` (``input_ids``: the pad id, ``token_type_ids``: the pad type id; others 0);
    ``side``: ``right`` or ``left`` (the tokenizer's padding side).
    """
    arrays = {k: np.asarray(v) for k, v in dict(enc).items()}
    seq = max((a.shape[-1] for a in arrays.values() if a.ndim >= 2), default=0)
    target = next((b for b in sorted(buckets) if b >= seq), seq)
    if target == seq:
        return arrays
    out = {}
    for k, a in arrays.items():
        if a.ndim < 2 or a.shape[-1] != seq:
            out[k] = a
            continue
        width = [(0, 0)] * (a.ndim - 1) + [(target - seq, 0) if side == "left" else (0, target - seq)]
        out[k] = np.pad(a, width, constant_values=pad_values.get(k, 0))
    return out


class TritonPythonModel:
    """Tokenizer or image processor of a Hugging Face checkpoint."""

    def initialize(self, args):
        self.io = ModelIO(args["model_config"])
        folder = os.path.join(
            args["model_repository"], args["model_version"], self.io.parameter("processor_subfolder", "processor")
        )
        self.kind = self.io.parameter("kind")
        self.engine = self.io.parameter("engine", "transformers") if self.kind != "image" else "image"
        if self.kind == "image":
            from transformers import AutoImageProcessor

            self.processor = AutoImageProcessor.from_pretrained(folder)
        elif self.engine == "tokenizers":
            self.processor = load_tokenizers(folder, self.io.parameter)
            self.max_length = int(self.io.parameter("max_length", "512"))
        else:
            from transformers import AutoTokenizer

            self.processor = AutoTokenizer.from_pretrained(folder)
            self.max_length = int(self.io.parameter("max_length", "512"))
        self.limits = Limits(self.io.config.get("parameters"), getattr(self, "max_length", None))
        self.buckets = [int(b) for b in self.io.parameter("length_buckets", "").split(",") if b.strip()]
        if self.buckets and self.kind != "image":
            if self.engine == "tokenizers":
                pad_id, pad_type = int(self.io.parameter("pad_id", "0")), int(self.io.parameter("pad_type_id", "0"))
                self.side = self.io.parameter("padding_side", "right")
            else:
                pad_id, pad_type = int(self.processor.pad_token_id or 0), int(self.processor.pad_token_type_id or 0)
                self.side = self.processor.padding_side
            self.pad_values = {"input_ids": pad_id, "token_type_ids": pad_type}

    def _run(self, arrays):
        if self.kind == "image":
            images = [self.limits.image(blob, i) for i, blob in enumerate(arrays[self.io.inputs[0]].reshape(-1))]
            enc = self.processor(images=images, return_tensors="np")
        else:
            first, second, strategy, rows = self._text_items(arrays)
            if self.engine == "tokenizers":
                items = list(zip(first, second)) if second is not None else first
                enc = encode_tokenizers(self.processor, items, self.max_length, pair=second is not None,
                                        side=self.io.parameter("truncation_side", "right"), strategy=strategy)
            else:
                args = (first,) if second is None else (first, second)
                enc = self.processor(*args, padding=True, truncation=strategy, max_length=self.max_length,
                                     return_tensors="np")
            if rows:  # multiple choice: [batch * choices, seq] -> [batch, choices, seq]
                enc = {k: np.asarray(v).reshape(rows[0], rows[1], -1) for k, v in dict(enc).items()}
            if self.buckets:
                enc = pad_to_bucket(enc, self.buckets, self.pad_values, self.side)
        return {name: np.asarray(enc[name]) for name in self.io.outputs}

    def _text_items(self, arrays):
        """``(first texts, second texts or None, truncation strategy, (batch, choices) or None)`` for the kind."""
        if self.kind == "text-pair":
            first, second = (self.limits.texts(arrays[n]) for n in self.io.inputs[:2])
            return first, second, "only_second", None
        if self.kind == "zero-shot":
            texts, labels = (self.limits.texts(arrays[n]) for n in self.io.inputs[:2])
            if not labels:
                raise RequestError("candidate_labels is empty")
            template = self.io.parameter("hypothesis_template", "This example is {}.")
            return ([t for t in texts for _ in labels], [template.format(x) for _ in texts for x in labels],
                    "only_first", None)
        if self.kind == "multiple-choice":
            prompts = self.limits.texts(arrays[self.io.inputs[0]])
            choices = np.asarray(arrays[self.io.inputs[1]], dtype=object).reshape(len(prompts), -1)
            n = choices.shape[1]
            return [p for p in prompts for _ in range(n)], self.limits.texts(choices), "longest_first", (len(prompts), n)
        return self.limits.texts(arrays[self.io.inputs[0]]), None, "longest_first", None

    def execute(self, requests):
        """One response per request; each request is tokenized/processed on its own."""
        return execute_batched(requests, self.io, self._run, stack=False)

    def finalize(self):
        self.processor = None
