"""Preprocessing for an ensemble, in Triton's Python backend (copied as ``<version>/model.py``).

A fixed module; config ``parameters`` say what it does:

* ``kind`` — ``text`` (tokenizer), ``text-pair`` (question + context, for question answering), ``zero-shot``
  (``text`` ``[n, 1]`` × ``candidate_labels`` ``[k]`` -> ``n * k`` rows of (text, ``hypothesis_template``
  filled with the label) pairs, text-major, the text truncated: the zero-shot-classification pipeline's pairs),
  ``multiple-choice`` (``text`` ``[batch, 1]`` prompt × ``choices`` ``[batch, c]`` -> ``[batch, c, seq]``) or
  ``image`` (image processor);
* ``hypothesis_template`` — ``zero-shot`` only (default ``This example is {}.``);
* ``processor_subfolder`` — the tokenizer / image processor files inside the version folder (``processor``);
* ``max_length`` — truncation length for text (tokens).

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


class TritonPythonModel:
    """Tokenizer or image processor of a Hugging Face checkpoint."""

    def initialize(self, args):
        self.io = ModelIO(args["model_config"])
        folder = os.path.join(
            args["model_repository"], args["model_version"], self.io.parameter("processor_subfolder", "processor")
        )
        self.kind = self.io.parameter("kind")
        if self.kind == "image":
            from transformers import AutoImageProcessor

            self.processor = AutoImageProcessor.from_pretrained(folder)
        else:
            os.environ.setdefault("USE_TORCH", "0")  # a tokenizer needs no torch: about 420 MB -> 70 MB per stub
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
        elif self.kind == "zero-shot":
            texts = _texts(arrays[self.io.inputs[0]])
            labels = _texts(arrays[self.io.inputs[1]])
            if not labels:
                raise RequestError("candidate_labels is empty")
            template = self.io.parameter("hypothesis_template", "This example is {}.")
            enc = self.processor([t for t in texts for _ in labels], [template.format(x) for _ in texts for x in labels],
                                 padding=True, truncation="only_first", max_length=self.max_length, return_tensors="np")
        elif self.kind == "multiple-choice":
            prompts = _texts(arrays[self.io.inputs[0]])
            choices = np.asarray(arrays[self.io.inputs[1]], dtype=object).reshape(len(prompts), -1)
            n = choices.shape[1]
            enc = self.processor([p for p in prompts for _ in range(n)], _texts(choices), padding=True,
                                 truncation=True, max_length=self.max_length, return_tensors="np")
            enc = {k: np.asarray(v).reshape(len(prompts), n, -1) for k, v in enc.items()}
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
