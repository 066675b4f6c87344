"""Sample inputs built from a checkpoint's own tokenizer or image processor (the registry's ``sample_inputs``).

Used for the parity check (ONNX Runtime vs PyTorch), for the trial runs that find which dims vary, and as the
golden samples recorded in the manifest. Two *trials* differ in batch size and input size (text length, image
size) so that a dim that changes between them is variable; which dims are *fixed* comes only from the task
registry (``TaskSpec.fixed_dims``), never from the trials.

Every builder has the signature ``fn(checkpoint, spec, trial) -> {name: np.ndarray}`` (batch first).
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
#: Multiple-choice prompts and their choices (trial 0: 2 prompts x 2 choices; trial 1: 3 x 3).
CHOICES = (
    [("The model is served by", ["Triton.", "a long list of many other words."]),
     ("Clients send", ["text.", "raw images over the network."])],
    [("A", ["b", "c", "d"]), ("Repositories", ["load.", "fail often.", "are folders."]), ("Why?", ["x", "y y", "z"])],
)
MAX_LENGTH = 128


def sample_inputs(checkpoint: Checkpoint, spec, input_names: list[str], trial: int = 0) -> dict[str, np.ndarray]:
    """Inputs for ``input_names`` (batch first) built by the registry entry's ``sample_inputs`` function.

    Args:
        checkpoint: the resolved checkpoint.
        spec: the :class:`~tritonrepo.tasks.registry.TaskSpec` (a task name is resolved against the checkpoint).
        input_names: the core model's inputs, in order.
        trial: 0 (batch 2) or 1 (batch 3, other lengths/sizes).

    Raises:
        TritonRepoError: the checkpoint has no tokenizer/processor, or an input cannot be made.
    """
    if isinstance(spec, str):
        from tritonrepo.tasks import detect_spec  # noqa: PLC0415

        spec = detect_spec(checkpoint, spec)
    arrays = spec.load("sample_inputs")(checkpoint, spec, trial)
    missing = [n for n in input_names if n not in arrays]
    if missing:
        raise TritonRepoError(
            f"cannot build sample inputs {missing} for {checkpoint.source} (task {spec.task})",
            "this input is not produced by the checkpoint's tokenizer/processor",
        )
    return {n: arrays[n] for n in input_names}


def load_tokenizer(checkpoint: Checkpoint):
    """The checkpoint's transformers tokenizer, with the eos token as pad token when it has none.

    That is what ``transformers.pipeline`` does for models without a pad token (GPT-2 style), so batches of
    different lengths can be padded. The last tokenizer loaded is reused while the checkpoint folder's files are
    unchanged (same names, sizes and mtimes), so the trials, the parity check and the pipeline references of one
    ``add-hf`` run load it once.

    Raises:
        TritonRepoError: no tokenizer files, or neither a pad nor an eos token to pad with.
    """
    key = _folder_key(checkpoint.path)
    if _TOKENIZER[0] == key:
        return _TOKENIZER[1]
    tok = _load_tokenizer(checkpoint)
    _TOKENIZER[:] = [key, tok]
    return tok


#: ``[folder key, tokenizer]`` of the last tokenizer loaded (one slot: a run uses one checkpoint).
_TOKENIZER: list = [None, None]


def _folder_key(path) -> tuple:
    """The folder and the name, size and mtime of each file in it (changes when the checkpoint is rewritten)."""
    try:
        files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir() if p.is_file())
    except OSError:
        return (str(path), None)
    return (str(path), tuple(files))


def _load_tokenizer(checkpoint: Checkpoint):
    from transformers import AutoTokenizer  # noqa: PLC0415

    try:
        tok = AutoTokenizer.from_pretrained(str(checkpoint.path))
    except (OSError, ValueError, TypeError) as exc:
        raise TritonRepoError(f"{checkpoint.path}: cannot load a tokenizer: {exc}", "add the tokenizer files") from None
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise TritonRepoError(
                f"{checkpoint.path}: the tokenizer has neither a pad token nor an eos token to pad batches with",
                "set pad_token in tokenizer_config.json (or special_tokens_map.json)",
            )
        tok.pad_token = tok.eos_token
    return tok


def _max_len(tok) -> int:
    return min(int(getattr(tok, "model_max_length", MAX_LENGTH) or MAX_LENGTH), MAX_LENGTH)


def _ints(enc) -> dict[str, np.ndarray]:
    return {k: np.asarray(v).astype(np.int64) for k, v in enc.items()}


def text_inputs(checkpoint: Checkpoint, spec, trial: int) -> dict[str, np.ndarray]:
    """``int64`` ``[batch, seq]`` token ids, attention mask (and token type ids) for the trial texts."""
    tok = load_tokenizer(checkpoint)
    return _ints(tok(TEXTS[trial], padding=True, truncation=True, max_length=_max_len(tok), return_tensors="np"))


def text_pair_inputs(checkpoint: Checkpoint, spec, trial: int) -> dict[str, np.ndarray]:
    """``int64`` ``[batch, seq]`` encodings of (question, context) pairs (context truncated first)."""
    tok = load_tokenizer(checkpoint)
    q, c = zip(*QA[trial])
    enc = tok(list(q), list(c), padding=True, truncation="only_second", max_length=_max_len(tok), return_tensors="np")
    return _ints(enc)


def multiple_choice_inputs(checkpoint: Checkpoint, spec, trial: int) -> dict[str, np.ndarray]:
    """``int64`` ``[batch, choices, seq]``: each prompt paired with each of its choices (as transformers' examples)."""
    tok = load_tokenizer(checkpoint)
    items = CHOICES[trial]
    firsts = [p for p, choices in items for _ in choices]
    seconds = [c for _, choices in items for c in choices]
    enc = _ints(tok(firsts, seconds, padding=True, truncation=True, max_length=_max_len(tok), return_tensors="np"))
    n = len(items[0][1])
    return {k: v.reshape(len(items), n, -1) for k, v in enc.items()}


def image_inputs(checkpoint: Checkpoint, spec, trial: int) -> dict[str, np.ndarray]:
    """``float32`` ``pixel_values`` ``[batch, channels, height, width]`` from random images of different sizes."""
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
