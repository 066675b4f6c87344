"""Multimodal pipeline steps in Triton's Python backend (copied as ``<version>/model.py``): CLIP/SigLIP
image + text, and LayoutLM words + boxes, as transformers' pipelines do them.

A fixed module; the config ``parameters`` say which step it is (``kind``):

* ``image-text-preprocess`` — ``image`` (``TYPE_STRING [n_images]``, encoded image bytes) and a text input
  (``candidate_labels`` or ``text``, ``TYPE_STRING [n_texts]``) -> the configured outputs among ``pixel_values``
  ``FP32 [n_images, C, H, W]``, ``input_ids`` / ``attention_mask`` ``INT64 [n_texts, seq]``. With
  ``hypothesis_template`` (e.g. ``This is a photo of {}.``, the zero-shot pipeline's default) each text is put into
  the template first; the optional ``hypothesis_template`` input (``TYPE_STRING [1]``) overrides it per request,
  as the pipeline's ``hypothesis_template`` argument. ``padding``: ``longest`` (default, the CLIP pipeline) or ``max_length`` with ``max_length``
  (SigLIP: 64). The model does not batch (``max_batch_size: 0``): images and texts are two lists of their own.
* ``zero-shot-image-classification`` — ``logits_per_image`` ``[n_images, n_texts]`` and ``candidate_labels`` ->
  ``labels`` (``TYPE_STRING [n_images, n_texts]``) and ``scores`` (``FP32 [n_images, n_texts]``), best first per
  image, as the zero-shot-image-classification pipeline's list: softmax over the labels, or ``sigmoid`` per
  label (``activation``, SigLIP).
* ``layout-preprocess`` — ``words`` (``TYPE_STRING [batch, n_words]``; ``""`` marks padding after the last word)
  and ``boxes`` (``INT64 [batch, n_words, 4]``: x0, y0, x1, y1 normalised to 0..1000, LayoutLM's scale) -> the
  tokenizer's ``input_ids``, ``attention_mask``, ``token_type_ids`` ``[batch, seq]``, ``bbox``
  ``INT64 [batch, seq, 4]`` (each sub-token gets its word's box; ``[CLS]`` ``[0,0,0,0]``, ``[SEP]``
  ``[1000,1000,1000,1000]``, padding zeros, as in LayoutLM's documentation) and ``word_ids`` ``INT64 [batch, seq]``
  (the word index at each word's first sub-token, -1 elsewhere), truncated to ``max_length`` tokens.
* ``layout-token-classification`` — ``logits`` ``[batch, seq, labels]`` and ``word_ids`` -> ``labels``
  (``TYPE_STRING [batch, n_words]``) and ``scores`` (``FP32 [batch, n_words]``): the label of each word's first
  sub-token and its softmax probability (transformers' ``aggregation_strategy="first"`` at word level);
  padding words ``""`` / 0; words cut by truncation ``""`` / 0 too.

Labels come from ``labels_file`` (``config.json``'s ``id2label``). A request that fails gets an error response.
"""

import io
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

try:
    from tritonrepo_runtime import RequestError, decode_strings, execute_batched, media_step_setup
except ImportError:  # imported from the tritonrepo package (tests, docs)
    from tritonrepo.triton_models.runtime import RequestError, decode_strings, execute_batched, media_step_setup

KINDS = ("image-text-preprocess", "zero-shot-image-classification", "layout-preprocess", "layout-token-classification")
TEXT_INPUTS = ("candidate_labels", "text")


def _images(array):
    from PIL import Image, UnidentifiedImageError

    images = []
    for i, blob in enumerate(np.asarray(array, dtype=object).reshape(-1)):
        try:
            images.append(Image.open(io.BytesIO(bytes(blob))).convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError, TypeError) as exc:
            raise RequestError(f"image {i} cannot be decoded: {exc}") from None
    return images


def _softmax(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def rank_labels(logits_per_image, candidate_labels, activation="softmax"):
    """``[n_images, n_labels]`` logits -> ``(labels, scores)`` sorted best first per image (ties: input order)."""
    x = np.asarray(logits_per_image, dtype=np.float64)
    probs = 1.0 / (1.0 + np.exp(-x)) if activation == "sigmoid" else _softmax(x)
    order = np.argsort(-probs, axis=-1, kind="stable")
    names = np.array([c.encode("utf-8") for c in candidate_labels], dtype=object)
    return names[order], np.take_along_axis(probs, order, axis=-1)


def layout_encode(tokenizer, documents, max_length):
    """``documents`` = ``[(words, boxes)]`` -> tokenizer outputs plus ``bbox`` and ``word_ids`` (see module doc)."""
    enc = tokenizer([w for w, _ in documents], is_split_into_words=True, padding=True, truncation=True,
                    max_length=max_length, return_tensors="np")
    seq = enc["input_ids"].shape[1]
    bbox = np.zeros((len(documents), seq, 4), dtype=np.int64)
    word_ids = np.full((len(documents), seq), -1, dtype=np.int64)
    for b, (_, boxes) in enumerate(documents):
        previous = None
        for t, w in enumerate(enc.word_ids(b)):
            if w is not None:
                bbox[b, t] = boxes[w]
                if w != previous:
                    word_ids[b, t] = w
            elif enc["input_ids"][b, t] == tokenizer.sep_token_id:
                bbox[b, t] = 1000
            previous = w
    out = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}
    out.update(bbox=bbox, word_ids=word_ids)
    return out


def word_labels(logits, word_ids, id2label):
    """Per word: the label of its first sub-token and its softmax probability; ``[batch, n_words]`` padded."""
    probs = _softmax(logits)
    n_words = max(1, int(np.asarray(word_ids).max()) + 1)
    labels = np.full((probs.shape[0], n_words), b"", dtype=object)
    scores = np.zeros((probs.shape[0], n_words))
    for b in range(probs.shape[0]):
        for t in np.nonzero(np.asarray(word_ids[b]) >= 0)[0]:
            i = int(probs[b, t].argmax())
            labels[b, int(word_ids[b, t])] = id2label.get(i, f"LABEL_{i}").encode("utf-8")
            scores[b, int(word_ids[b, t])] = probs[b, t, i]
    return labels, scores


class MultimodalSteps:
    """One multimodal step, independent of Triton (the stub's model and the tests use it)."""

    def __init__(self, kind, version_dir, params, outputs):
        if kind not in KINDS:
            raise ValueError(f"unknown multimodal step kind '{kind}'; expected one of {', '.join(KINDS)}")
        self.kind, self.outputs, self.params = kind, list(outputs), dict(params)
        self.id2label = {}
        labels_file = params.get("labels_file", "")
        if labels_file:
            with open(os.path.join(version_dir, labels_file), encoding="utf-8") as f:
                self.id2label = {int(k): v for k, v in json.load(f).get("id2label", {}).items()}
        folder = os.path.join(version_dir, params.get("processor_subfolder", "processor"))
        self.max_length = int(params.get("max_length", "0") or 0) or None
        if kind in ("image-text-preprocess", "layout-preprocess"):
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(folder)
        if kind == "image-text-preprocess":
            from transformers import AutoImageProcessor

            self.image_processor = AutoImageProcessor.from_pretrained(folder, use_fast=False)

    def run(self, a):
        """``{input name: array}`` -> ``{output name: array}``."""
        if self.kind == "image-text-preprocess":
            return self._image_text(a)
        if self.kind == "zero-shot-image-classification":
            candidates = decode_strings(a["candidate_labels"], "candidate_labels")
            labels, scores = rank_labels(a["logits_per_image"], candidates, self.params.get("activation", "softmax"))
            return {"labels": labels, "scores": scores}
        if self.kind == "layout-preprocess":
            words, boxes = np.asarray(a["words"], dtype=object), np.asarray(a["boxes"]).astype(np.int64)
            if boxes.shape[:2] != words.shape[:2] or boxes.shape[-1] != 4:
                raise RequestError(f"boxes must be [batch, n_words, 4] for words {list(words.shape)}, got {list(boxes.shape)}")
            docs = []
            for b in range(words.shape[0]):
                ws = [w for w in decode_strings(words[b], "words")]
                n = len(ws) - next((i for i, w in enumerate(reversed(ws)) if w), len(ws))
                if n == 0:
                    raise RequestError(f"document {b} has no words")
                docs.append((ws[:n], boxes[b, :n].tolist()))
            enc = layout_encode(self.tokenizer, docs, self.max_length)
            return {n: enc[n] for n in self.outputs}
        labels, scores = word_labels(a["logits"], a["word_ids"], self.id2label)
        return {"labels": labels, "scores": scores}

    def _image_text(self, a):
        texts_name = next(n for n in TEXT_INPUTS if n in a)
        texts = decode_strings(a[texts_name], texts_name)
        if not texts:
            raise RequestError(f"'{texts_name}' is empty")
        template = self.params.get("hypothesis_template", "")
        if a.get("hypothesis_template") is not None:  # the request's optional knob
            template = decode_strings(a["hypothesis_template"], "hypothesis_template")[0]
            if "{}" not in template:
                raise RequestError(f"hypothesis_template must contain '{{}}' (where the label goes), got {template!r}")
        if template:
            texts = [template.format(t) for t in texts]
        if self.params.get("padding", "longest") == "max_length":
            kwargs = {"padding": "max_length", "max_length": self.max_length or 64, "truncation": True}
        else:
            kwargs = {"padding": True, "truncation": True, "max_length": self.max_length}
        out = {k: np.asarray(v) for k, v in self.tokenizer(texts, return_tensors="np", **kwargs).items()}
        if "pixel_values" in self.outputs:
            out["pixel_values"] = np.asarray(self.image_processor(images=_images(a["image"]), return_tensors="np")
                                             ["pixel_values"])
        missing = [n for n in self.outputs if n not in out]
        if missing:
            raise RequestError(f"the processor produced no {missing}")
        return {n: out[n] for n in self.outputs}


class TritonPythonModel:
    """A multimodal pre/postprocessing step (see the module docstring)."""

    def initialize(self, args):
        self.io, version_dir, params = media_step_setup(args)
        self.steps = MultimodalSteps(self.io.parameter("kind"), version_dir, params, list(self.io.outputs))

    def execute(self, requests):
        """One response per request."""
        return execute_batched(requests, self.io, self.steps.run, stack=False)

    def finalize(self):
        self.steps = None
