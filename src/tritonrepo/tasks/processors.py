"""Saving a checkpoint's tokenizer / processor for a pipeline step (the registry's ``pre_setup`` functions).

A setup function is ``fn(checkpoint, spec, dst: Path) -> {parameter: value}``: it writes what the fixed
pre/post module loads into ``dst`` and returns the config ``parameters`` that tell the module how to use it.
Heavy imports happen inside the functions.
"""

from __future__ import annotations

import json
from pathlib import Path


def max_length(checkpoint, tok=None) -> int:
    """Token limit: sentence-transformers' ``max_seq_length`` when present, else the tokenizer's and position limit."""
    st = checkpoint.path / "sentence_bert_config.json"
    if st.is_file():
        value = json.loads(st.read_text()).get("max_seq_length")
        if value:
            return int(value)
    if tok is None:
        from tritonrepo.samples import load_tokenizer  # noqa: PLC0415

        tok = load_tokenizer(checkpoint)
    tok_max = int(getattr(tok, "model_max_length", 512) or 512)
    if tok_max > 1_000_000:  # transformers' "no limit" sentinel
        tok_max = 512
    pos_max = int(checkpoint.config.get("max_position_embeddings") or tok_max)
    return min(tok_max, pos_max, 4096)


def save_tokenizer(checkpoint, spec, dst: Path) -> dict[str, str]:
    """Save the tokenizer (eos as pad when it has no pad token) and return the preprocess step's parameters.

    Parameters: ``max_length``; ``engine`` ``tokenizers`` for a fast tokenizer (the step loads only
    ``tokenizer.json`` with the ``tokenizers`` library) or ``transformers`` (slow tokenizers); ``pad_id``,
    ``pad_token``, ``pad_type_id``, ``padding_side`` and ``truncation_side`` as the transformers tokenizer pads
    and truncates, so both engines give the same ids.
    """
    from tritonrepo.samples import load_tokenizer  # noqa: PLC0415

    tok = load_tokenizer(checkpoint)
    tok.save_pretrained(dst)
    params = {"max_length": str(max_length(checkpoint, tok))}
    if getattr(tok, "is_fast", False) and (Path(dst) / "tokenizer.json").is_file():
        params.update(
            engine="tokenizers",
            pad_id=str(tok.pad_token_id),
            pad_token=str(tok.pad_token),
            pad_type_id=str(getattr(tok, "pad_token_type_id", 0) or 0),
            padding_side=str(tok.padding_side),
            truncation_side=str(getattr(tok, "truncation_side", "right")),
        )
    else:
        params["engine"] = "transformers"
    return params


def save_image_processor(checkpoint, spec, dst: Path) -> dict[str, str]:
    """Save the image processor (``preprocessor_config.json``); no parameters."""
    from transformers import AutoImageProcessor  # noqa: PLC0415

    AutoImageProcessor.from_pretrained(str(checkpoint.path)).save_pretrained(dst)
    return {}
