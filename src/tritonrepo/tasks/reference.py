"""Golden raw inputs and reference outputs for pipelines (the ``golden_inputs`` / ``reference`` of registry entries).

A reference function is ``fn(checkpoint, spec, raw, max_length) -> (outputs, valid)``: ``outputs`` maps ensemble
output names to the arrays a correct pipeline returns for the raw inputs ``raw`` (``{input: [str | bytes]}``);
``valid`` is an ``[batch, seq]`` mask of the positions where hidden states mean something (``None`` when every
position counts). Where transformers has a pipeline for the task the reference comes from
``transformers.pipeline`` (what users compare with); otherwise from the PyTorch model's forward pass.

Heavy libraries (torch, transformers, PIL) are imported inside the functions: importing this module is light.
"""

from __future__ import annotations

import io

import numpy as np

from tritonrepo.tasks.text_reference import GOLDEN_TEXTS  # one list: text_reference is the light module

GOLDEN_QA = [("Who serves models?", "Triton serves models from a repository."), ("What pads?", "Short texts pad.")]


def golden_texts(checkpoint, spec) -> dict[str, list]:
    """``{"text": [...]}``: five texts of different lengths."""
    return {"text": list(GOLDEN_TEXTS)}


def golden_qa(checkpoint, spec) -> dict[str, list]:
    """``{"question": [...], "context": [...]}``: two pairs."""
    q, c = zip(*GOLDEN_QA)
    return {"question": list(q), "context": list(c)}


def golden_images(n: int = 3, seed: int = 0) -> list[bytes]:
    """``n`` deterministic random images of different sizes (portrait, square, landscape), PNG-encoded."""
    from PIL import Image  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    out = []
    for h, w in [(48, 64), (30, 30), (80, 40)][:n]:
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def golden_image_inputs(checkpoint, spec) -> dict[str, list]:
    """``{"image": [png bytes, ...]}`` (three images of different sizes)."""
    return {"image": golden_images()}


def load_model(checkpoint, spec):
    """The PyTorch model of the entry's auto class (eval mode, CPU)."""
    from tritonrepo.export.common import load_torch_model  # noqa: PLC0415

    return load_torch_model(checkpoint, spec)


def encode(checkpoint, raw: dict[str, list], max_length: int | None) -> dict:
    """The processor's PyTorch tensors for raw inputs (texts padded together, as the preprocess step does)."""
    if "image" in raw:
        from PIL import Image  # noqa: PLC0415
        from transformers import AutoImageProcessor  # noqa: PLC0415

        images = [Image.open(io.BytesIO(b)).convert("RGB") for b in raw["image"]]
        return dict(AutoImageProcessor.from_pretrained(str(checkpoint.path))(images=images, return_tensors="pt"))
    from tritonrepo.samples import load_tokenizer  # noqa: PLC0415

    tok = load_tokenizer(checkpoint)
    args = (raw["question"], raw["context"]) if "question" in raw else (raw["text"],)
    trunc = "only_second" if "question" in raw else True
    return dict(tok(*args, padding=True, truncation=trunc, max_length=max_length, return_tensors="pt"))


def forward(checkpoint, spec, raw, max_length):
    """``(model outputs, encoded inputs, model)`` of one forward pass over the raw golden inputs."""
    import torch  # noqa: PLC0415

    model = load_model(checkpoint, spec)
    enc = encode(checkpoint, raw, max_length)
    with torch.no_grad():
        out = model(**enc, return_dict=True)
    return out, enc, model


def _valid(enc):
    return enc["attention_mask"].numpy() if "attention_mask" in enc else None


def classification(checkpoint, spec, raw, max_length):
    """``label`` / ``score`` ``[batch, 1]`` from ``transformers.pipeline`` (text or image classification)."""
    from transformers import pipeline  # noqa: PLC0415

    model = load_model(checkpoint, spec)
    if "image" in raw:
        from PIL import Image  # noqa: PLC0415
        from transformers import AutoImageProcessor  # noqa: PLC0415

        pipe = pipeline(spec.task, model=model, image_processor=AutoImageProcessor.from_pretrained(str(checkpoint.path)),
                        device="cpu")
        items = [Image.open(io.BytesIO(b)).convert("RGB") for b in raw["image"]]
    else:
        from tritonrepo.samples import load_tokenizer  # noqa: PLC0415

        pipe = pipeline(spec.task, model=model, tokenizer=load_tokenizer(checkpoint), device="cpu")
        items = list(raw["text"])
    results = [r[0] if isinstance(r, list) else r for r in (pipe(x) for x in items)]
    labels = np.array([[r["label"].encode()] for r in results], dtype=object)
    return {"label": labels, "score": np.array([[r["score"]] for r in results], dtype=np.float32)}, None


def token_classification(checkpoint, spec, raw, max_length):
    """Per-token ``labels`` / ``scores`` ``[batch, seq]`` (softmax argmax; padding: ``""`` and 0)."""
    import torch  # noqa: PLC0415

    out, enc, model = forward(checkpoint, spec, raw, max_length)
    probs = torch.softmax(out["logits"].double(), -1)
    best = probs.argmax(-1)
    id2label = model.config.id2label
    mask = enc["attention_mask"].numpy() > 0
    labels = np.array([[id2label[int(i)].encode() if m else b"" for i, m in zip(r, mr)] for r, mr in zip(best, mask)],
                      dtype=object)
    scores = np.where(mask, probs.max(-1).values.numpy(), 0).astype(np.float32)
    return {"labels": labels, "scores": scores}, _valid(enc)


def embedding(checkpoint, spec, raw, max_length):
    """``last_hidden_state`` and the pooled ``embedding`` (sentence-transformers' encode for its folders)."""
    out, enc, _ = forward(checkpoint, spec, raw, max_length)
    hidden = out["last_hidden_state"].numpy()
    if checkpoint.is_sentence_transformers:
        from sentence_transformers import SentenceTransformer  # noqa: PLC0415

        emb = SentenceTransformer(str(checkpoint.path), device="cpu").encode(raw["text"], convert_to_numpy=True)
    else:
        mask = enc["attention_mask"].numpy()[..., None].astype(np.float32)
        emb = (hidden * mask).sum(1) / mask.sum(1)
    return {"embedding": emb.astype(np.float32)}, _valid(enc)


def core_outputs(checkpoint, spec, raw, max_length):
    """The core model's outputs unchanged (pipelines without a post step, e.g. image feature extraction)."""
    out, enc, _ = forward(checkpoint, spec, raw, max_length)
    return {k: out[k].numpy() for k in out.keys() if k == "last_hidden_state"}, _valid(enc)


def no_reference(checkpoint, spec, raw, max_length):
    """No independent reference (the pipeline's own search, e.g. QA spans; served answers are checked in tests)."""
    return {}, None
