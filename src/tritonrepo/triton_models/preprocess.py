"""Preprocessing for an ensemble, in Triton's Python backend (copied as ``<version>/model.py``).

A fixed module; config ``parameters`` say what it does:

* ``kind`` — ``text`` (tokenizer), ``text-pair`` (question + context, for question answering) or ``image``
  (image processor);
* ``processor_subfolder`` — the tokenizer / image processor files inside the version folder (``processor``);
* ``max_length`` — truncation length for text (tokens);
* ``engine`` — for text: ``tokenizers`` (default written by tritonrepo for fast tokenizers: only
  ``tokenizer.json`` is loaded, with the ``tokenizers`` library — no torch, no transformers in this process) or
  ``transformers`` (``AutoTokenizer``, for slow tokenizers);
* ``pad_id``, ``pad_token``, ``pad_type_id``, ``padding_side``, ``truncation_side`` — how the transformers
  tokenizer pads and truncates (engine ``tokenizers``), so the ids are the same as transformers' (tested).

Text inputs are ``TYPE_STRING`` ``[batch, 1]`` (one UTF-8 string per batch item); image inputs are ``TYPE_STRING``
``[batch, 1]`` holding encoded JPEG/PNG bytes. Outputs are exactly the configured outputs (the core model's
inputs), cast to the configured dtype: ``input_ids``/``attention_mask``[/``token_type_ids``] ``[batch, seq]``
padded to the longest text of the request, or ``pixel_values`` ``[batch, C, H, W]``. Each request is processed
on its own (its padding never depends on other requests); a malformed one (undecodable image, text that is not
UTF-8) gets an error response and the model keeps serving.
"""

import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from tritonrepo_runtime import ModelIO, RequestError, execute_batched  # noqa: E402


def _texts(array):
    out = []
    for item in array.reshape(-1):
        if isinstance(item, bytes):
            try:
                item = item.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RequestError(f"text is not valid UTF-8: {exc}") from None
        out.append(str(item))
    return out


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


def encode_tokenizers(tok, items, max_length, pair=False, side="right"):
    """``{input_ids, attention_mask, token_type_ids}`` ``int64 [batch, seq]`` for texts (or pairs), padded to the
    longest and truncated to ``max_length`` as transformers' fast tokenizer does (``longest_first`` for texts,
    ``only_second`` for pairs)."""
    tok.enable_truncation(max_length, strategy="only_second" if pair else "longest_first",
                          direction=side)
    encs = tok.encode_batch(items, add_special_tokens=True)
    return {
        "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
    }


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

    def _run(self, arrays):
        if self.kind == "image":
            from PIL import Image, UnidentifiedImageError

            images = []
            for i, blob in enumerate(arrays[self.io.inputs[0]].reshape(-1)):
                try:
                    images.append(Image.open(io.BytesIO(bytes(blob))).convert("RGB"))
                except (UnidentifiedImageError, OSError, ValueError) as exc:
                    raise RequestError(f"image {i} cannot be decoded: {exc}") from None
            enc = self.processor(images=images, return_tensors="np")
        elif self.engine == "tokenizers":
            if self.kind == "text-pair":
                first, second = (_texts(arrays[n]) for n in self.io.inputs[:2])
                items = list(zip(first, second))
            else:
                items = _texts(arrays[self.io.inputs[0]])
            enc = encode_tokenizers(self.processor, items, self.max_length, pair=self.kind == "text-pair",
                                    side=self.io.parameter("truncation_side", "right"))
        elif self.kind == "text-pair":
            first, second = (_texts(arrays[n]) for n in self.io.inputs[:2])
            enc = self.processor(first, second, padding=True, truncation="only_second", max_length=self.max_length,
                                 return_tensors="np")
        else:
            enc = self.processor(_texts(arrays[self.io.inputs[0]]), padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="np")
        return {name: np.asarray(enc[name]) for name in self.io.outputs}

    def execute(self, requests):
        """One response per request; each request is tokenized/processed on its own."""
        return execute_batched(requests, self.io, self._run, stack=False)

    def finalize(self):
        self.processor = None
