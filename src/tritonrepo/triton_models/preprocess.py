"""Preprocessing for an ensemble, in Triton's Python backend (copied as ``<version>/model.py``).

A fixed module; config ``parameters`` say what it does:

* ``kind`` — ``text`` (tokenizer), ``text-pair`` (question + context, for question answering) or ``image``
  (image processor);
* ``processor_subfolder`` — the tokenizer / image processor files inside the version folder (``processor``);
* ``max_length`` — truncation length for text (tokens).

Text inputs are ``TYPE_STRING`` ``[batch, 1]`` (one UTF-8 string per batch item); image inputs are ``TYPE_STRING``
``[batch, 1]`` holding encoded JPEG/PNG bytes. Outputs are exactly the configured outputs (the core model's
inputs), cast to the configured dtype: ``input_ids``/``attention_mask``[/``token_type_ids``] ``[batch, seq]``
padded to the longest text of the request, or ``pixel_values`` ``[batch, C, H, W]``. Each request is processed
on its own (its padding never depends on other requests); a malformed one (undecodable image, text that is not
UTF-8, larger than the limits of ``tritonrepo_limits``) gets an error response (HTTP 400) and the model keeps serving.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from tritonrepo_limits import Limits  # noqa: E402
from tritonrepo_runtime import ModelIO, execute_batched  # noqa: E402


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
            from transformers import AutoTokenizer

            self.processor = AutoTokenizer.from_pretrained(folder)
            self.max_length = int(self.io.parameter("max_length", "512"))
        self.limits = Limits(self.io.config.get("parameters"), getattr(self, "max_length", None))

    def _run(self, arrays):
        if self.kind == "image":
            images = [self.limits.image(blob, i) for i, blob in enumerate(arrays[self.io.inputs[0]].reshape(-1))]
            enc = self.processor(images=images, return_tensors="np")
        elif self.kind == "text-pair":
            first, second = (self.limits.texts(arrays[n]) for n in self.io.inputs[:2])
            enc = self.processor(first, second, padding=True, truncation="only_second", max_length=self.max_length,
                                 return_tensors="np")
        else:
            enc = self.processor(self.limits.texts(arrays[self.io.inputs[0]]), padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="np")
        return {name: np.asarray(enc[name]) for name in self.io.outputs}

    def execute(self, requests):
        """One response per request; each request is tokenized/processed on its own."""
        return execute_batched(requests, self.io, self._run, stack=False)

    def finalize(self):
        self.processor = None
