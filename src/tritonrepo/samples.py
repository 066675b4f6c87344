"""Sample inputs built from a checkpoint's own tokenizer or image processor.

Used for the parity check (ONNX Runtime vs PyTorch), for inferring which dims are fixed and which vary, and
as the golden samples recorded in the manifest. Two *trials* differ in batch size and sequence length so that
a dim that changes between them is variable (``-1``) and one that does not is fixed.
"""

from __future__ import annotations

import numpy as np

from tritonrepo.checkpoint import Checkpoint
from tritonrepo.errors import TritonRepoError

#: Trial texts: batch 2 then batch 3, of different lengths so that padding is exercised.
TEXTS = (
    ["Triton serves this model.", "A longer second sentence, so that the first one is padded in the batch."],
    ["Short.", "Model repositories load the first time.", "The third text of the second trial is the longest one here."],
)
#: Question-answering pairs (question, context) for the same two trials.
QA = (
    [("Who serves models?", "Triton serves models."), ("What pads?", "Shorter texts are padded in a batch of text.")],
    [("What?", "This."), ("Where?", "In a model repository on disk."), ("Why?", "Because clients send raw text.")],
)
MAX_LENGTH = 128


def is_vision(checkpoint: Checkpoint) -> bool:
    """True when the checkpoint has an image processor (``preprocessor_config.json`` without a tokenizer)."""
    p = checkpoint.path
    has_tok = any((p / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"))
    return (p / "preprocessor_config.json").is_file() and not has_tok


def sample_inputs(checkpoint: Checkpoint, task: str, input_names: list[str], trial: int = 0) -> dict[str, np.ndarray]:
    """Inputs for ``input_names`` (batch first) from the checkpoint's tokenizer or image processor.

    Text: ``int64`` arrays ``[batch, seq]`` (padded, truncated to the tokenizer's max length, at most 128).
    Images: ``float32`` ``pixel_values`` ``[batch, channels, height, width]`` from random images run through
    the image processor (so at the model's ``image_size``). ``trial`` 0 has batch 2, trial 1 batch 3.

    Raises:
        TritonRepoError: the checkpoint has neither tokenizer nor image processor, or an input cannot be made.
    """
    if is_vision(checkpoint) or "pixel_values" in input_names:
        arrays = _image_inputs(checkpoint, trial)
    else:
        arrays = _text_inputs(checkpoint, task, trial)
    missing = [n for n in input_names if n not in arrays]
    if missing:
        raise TritonRepoError(
            f"cannot build sample inputs {missing} for {checkpoint.source}",
            "this input is not produced by the checkpoint's tokenizer/processor",
        )
    return {n: arrays[n] for n in input_names}


def _text_inputs(checkpoint: Checkpoint, task: str, trial: int) -> dict[str, np.ndarray]:
    from transformers import AutoTokenizer  # noqa: PLC0415

    try:
        tok = AutoTokenizer.from_pretrained(str(checkpoint.path))
    except (OSError, ValueError) as exc:
        raise TritonRepoError(f"{checkpoint.path}: cannot load a tokenizer: {exc}", "add the tokenizer files") from None
    max_len = min(int(getattr(tok, "model_max_length", MAX_LENGTH) or MAX_LENGTH), MAX_LENGTH)
    if task == "question-answering":
        q, c = zip(*QA[trial])
        enc = tok(list(q), list(c), padding=True, truncation=True, max_length=max_len, return_tensors="np")
    else:
        enc = tok(TEXTS[trial], padding=True, truncation=True, max_length=max_len, return_tensors="np")
    return {k: np.asarray(v).astype(np.int64) for k, v in enc.items()}


def _image_inputs(checkpoint: Checkpoint, trial: int) -> dict[str, np.ndarray]:
    from PIL import Image  # noqa: PLC0415
    from transformers import AutoImageProcessor  # noqa: PLC0415

    try:
        proc = AutoImageProcessor.from_pretrained(str(checkpoint.path))
    except (OSError, ValueError) as exc:
        raise TritonRepoError(f"{checkpoint.path}: cannot load an image processor: {exc}") from None
    rng = np.random.default_rng(trial)
    sizes = [(40, 30), (64, 48)] if trial == 0 else [(20, 20), (50, 70), (33, 33)]
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in sizes]
    enc = proc(images=images, return_tensors="np")
    return {"pixel_values": np.asarray(enc["pixel_values"], dtype=np.float32)}
