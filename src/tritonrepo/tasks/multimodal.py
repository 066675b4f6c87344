"""Multimodal tasks: CLIP/SigLIP zero-shot image classification, CLIP image + text feature extraction, LayoutLM
token classification with word boxes; one registry entry per task.

SigLIP differs from CLIP where transformers' zero-shot-image-classification pipeline says so: texts are padded to
``max_length`` 64 (its text tower pools the last position and its tokenizer returns no attention mask), and each
label gets a sigmoid score of its own instead of a softmax over the labels (:func:`zero_shot_activation`).

CLIP takes a list of images and a list of texts of independent lengths, so its models do not batch
(``batching=False``: ``max_batch_size: 0``, dim 0 of each tensor is its own list). LayoutLM takes token ids
plus one box per token (``bbox`` ``[batch, seq, 4]``, 0..1000). Pre/post-processing:
:mod:`tritonrepo.triton_models.multimodal_steps`.
"""

from __future__ import annotations

from pathlib import Path

from tritonrepo.tasks.registry import PipelineSpec, TaskSpec, TensorDecl, register

_HERE = "tritonrepo.tasks.multimodal"
_STEPS = "multimodal_steps.py"
#: The zero-shot-image-classification pipeline's default template (transformers).
HYPOTHESIS_TEMPLATE = "This is a photo of {}."
CANDIDATE_LABELS = ["cat", "a dog", "a small bird", "car"]
TEXTS = ("a photo of a cat", "two dogs playing in the snow", "bird")
#: Trial documents for LayoutLM: words and boxes (0..1000).
DOCUMENTS = (
    [(["hello", "world"], [[10, 10, 60, 30], [70, 10, 140, 30]]),
     (["triton", "serves", "models"], [[10, 50, 90, 70], [100, 50, 180, 70], [190, 50, 260, 70]])],
    [(["good"], [[5, 5, 50, 20]]),
     (["the", "bad", "movie", "text"], [[5, 30, 40, 45], [45, 30, 80, 45], [85, 30, 150, 45], [5, 60, 60, 75]]),
     (["model", "hello"], [[300, 300, 400, 330], [410, 300, 500, 330]])],
)


def _images(n: int, seed: int = 0):
    """``n`` random RGB images: portrait, landscape, square, ..."""
    import io  # noqa: PLC0415

    from PIL import Image  # noqa: PLC0415

    from tritonrepo.tasks.vision import png  # noqa: PLC0415

    sizes = [(48, 30), (30, 52), (40, 40)]
    return [Image.open(io.BytesIO(png(*sizes[i % 3], seed=seed + i))).convert("RGB") for i in range(n)]


def clip_inputs(checkpoint, spec, trial: int):
    """``pixel_values`` (2 then 3 images), ``input_ids`` / ``attention_mask`` (3 then 2 texts, other lengths)."""
    import numpy as np  # noqa: PLC0415
    from transformers import AutoImageProcessor, AutoTokenizer  # noqa: PLC0415

    tok = AutoTokenizer.from_pretrained(str(checkpoint.path))
    proc = AutoImageProcessor.from_pretrained(str(checkpoint.path), use_fast=False)
    texts = list(TEXTS) if trial == 0 else [HYPOTHESIS_TEMPLATE.format(c) for c in CANDIDATE_LABELS[:2]]
    enc = tok(texts, padding=True, truncation=True, return_tensors="np")
    out = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}
    out["pixel_values"] = np.asarray(proc(images=_images(2 + trial, seed=trial), return_tensors="np")["pixel_values"],
                                     dtype=np.float32)
    return out


def layout_inputs(checkpoint, spec, trial: int):
    """LayoutLM's inputs (``input_ids``, ``bbox``, ``attention_mask``, ``token_type_ids``) for the trial documents."""
    from transformers import AutoTokenizer  # noqa: PLC0415

    from tritonrepo.triton_models.multimodal_steps import layout_encode  # noqa: PLC0415

    tok = AutoTokenizer.from_pretrained(str(checkpoint.path))
    enc = layout_encode(tok, DOCUMENTS[trial], None)
    enc.pop("word_ids")
    return enc


def save_clip_processor(checkpoint, spec, dst: Path) -> dict[str, str]:
    """Save the tokenizer and image processor; zero-shot gets the pipeline's ``hypothesis_template``."""
    from transformers import AutoImageProcessor, AutoTokenizer  # noqa: PLC0415

    tok = AutoTokenizer.from_pretrained(str(checkpoint.path))
    tok.save_pretrained(dst)
    AutoImageProcessor.from_pretrained(str(checkpoint.path), use_fast=False).save_pretrained(dst)
    params = {}
    if spec.task == "zero-shot-image-classification":
        params["hypothesis_template"] = HYPOTHESIS_TEMPLATE
    if "siglip" in str(checkpoint.config.get("model_type", "")):
        params.update(padding="max_length", max_length="64")
    return params


def zero_shot_activation(checkpoint, spec) -> dict[str, str]:
    """The post step's ``activation``: ``sigmoid`` per label for SigLIP, ``softmax`` over the labels otherwise, as
    the zero-shot-image-classification pipeline's ``postprocess`` chooses by ``model_type``
    (transformers ``pipelines/zero_shot_image_classification.py``)."""
    siglip = "siglip" in str(checkpoint.config.get("model_type", ""))
    return {"activation": "sigmoid" if siglip else "softmax"}


def save_layout_tokenizer(checkpoint, spec, dst: Path) -> dict[str, str]:
    """Save the tokenizer; ``max_length`` = the tokenizer's and the position embeddings' limit."""
    from transformers import AutoTokenizer  # noqa: PLC0415

    tok = AutoTokenizer.from_pretrained(str(checkpoint.path))
    tok.save_pretrained(dst)
    limit = min(int(tok.model_max_length if tok.model_max_length < 1_000_000 else 512),
                int(checkpoint.config.get("max_position_embeddings") or 512))
    return {"max_length": str(limit)}


def golden_zero_shot(checkpoint, spec) -> dict[str, list]:
    """Two images (portrait, landscape) and four candidate labels."""
    from tritonrepo.tasks.vision import golden_images  # noqa: PLC0415

    return {"image": golden_images(checkpoint, spec)["image"], "candidate_labels": list(CANDIDATE_LABELS)}


def golden_image_text(checkpoint, spec) -> dict[str, list]:
    """Two images and three texts."""
    from tritonrepo.tasks.vision import golden_images  # noqa: PLC0415

    return {"image": golden_images(checkpoint, spec)["image"], "text": list(TEXTS)}


def golden_documents(checkpoint, spec) -> dict[str, list]:
    """One document: ``words`` and ``boxes`` (one request = a batch of one document)."""
    words, boxes = DOCUMENTS[1][1]
    return {"words": [words], "boxes": [boxes]}


def zero_shot_reference(checkpoint, spec, raw, max_length):
    """``labels`` / ``scores`` ``[n_images, n_labels]`` from ``transformers.pipeline("zero-shot-image-classification")``."""
    import io  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415
    from transformers import AutoImageProcessor, AutoTokenizer, pipeline  # noqa: PLC0415

    from tritonrepo.export.common import load_torch_model  # noqa: PLC0415

    pipe = pipeline("zero-shot-image-classification", model=load_torch_model(checkpoint, spec), device="cpu",
                    tokenizer=AutoTokenizer.from_pretrained(str(checkpoint.path)),
                    image_processor=AutoImageProcessor.from_pretrained(str(checkpoint.path), use_fast=False))
    labels = [x.decode() if isinstance(x, bytes) else x for x in raw["candidate_labels"]]
    results = [pipe(Image.open(io.BytesIO(b)).convert("RGB"), candidate_labels=labels) for b in raw["image"]]
    return {"labels": np.array([[r["label"].encode() for r in res] for res in results], dtype=object),
            "scores": np.array([[r["score"] for r in res] for res in results], dtype=np.float32)}, None


def image_text_reference(checkpoint, spec, raw, max_length):
    """``image_embeds`` / ``text_embeds``: CLIP's ``get_image_features`` / ``get_text_features``, L2-normalised (the
    space ``logits_per_image`` is the scaled cosine in)."""
    import io  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415
    from transformers import AutoImageProcessor, AutoTokenizer  # noqa: PLC0415

    from tritonrepo.export.common import load_torch_model  # noqa: PLC0415

    model = load_torch_model(checkpoint, spec)
    tok = AutoTokenizer.from_pretrained(str(checkpoint.path))
    proc = AutoImageProcessor.from_pretrained(str(checkpoint.path), use_fast=False)
    texts = [x.decode() if isinstance(x, bytes) else x for x in raw["text"]]
    with torch.no_grad():
        img = model.get_image_features(**proc(images=[Image.open(io.BytesIO(b)).convert("RGB") for b in raw["image"]],
                                              return_tensors="pt"))
        txt = model.get_text_features(**tok(texts, padding=True, truncation=True, return_tensors="pt"))
    norm = lambda x: (x / x.norm(dim=-1, keepdim=True)).numpy().astype(np.float32)  # noqa: E731
    return {"image_embeds": norm(img), "text_embeds": norm(txt)}, None


def layout_reference(checkpoint, spec, raw, max_length):
    """Per word: the label of its first sub-token and its softmax probability (PyTorch, each document alone,
    token boxes as LayoutLM's documentation builds them). transformers' token-classification pipeline has no
    ``bbox`` input, so this is the model's forward pass."""
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415
    from transformers import AutoTokenizer  # noqa: PLC0415

    from tritonrepo.export.common import load_torch_model  # noqa: PLC0415

    model = load_torch_model(checkpoint, spec)
    tok = AutoTokenizer.from_pretrained(str(checkpoint.path))
    n = max(len(w) for w in raw["words"])
    labels = np.full((len(raw["words"]), n), b"", dtype=object)
    scores = np.zeros((len(raw["words"]), n), dtype=np.float32)
    for b, (words, boxes) in enumerate(zip(raw["words"], raw["boxes"])):
        words = [w.decode() if isinstance(w, bytes) else w for w in words]
        enc = tok(words, is_split_into_words=True, truncation=True, max_length=max_length, return_tensors="pt")
        ids = enc.word_ids(0)
        bbox = [[0, 0, 0, 0] if w is None else list(boxes[w]) for w in ids]
        bbox[-1] = [1000] * 4
        with torch.no_grad():
            probs = model(**enc, bbox=torch.tensor([bbox])).logits.softmax(-1)[0]
        for w in range(len(words)):
            if w in ids:
                t = ids.index(w)
                labels[b, w] = model.config.id2label[int(probs[t].argmax())].encode()
                scores[b, w] = float(probs[t].max())
    return {"labels": labels, "scores": scores}, None


_CLIP_FIXED = {
    "pixel_values": ("vision_config.num_channels", "vision_config.image_size", "vision_config.image_size"),
    "input_ids": (None,), "attention_mask": (None,),
    "logits_per_image": (None,), "logits_per_text": (None,),
    "text_embeds": ("projection_dim",), "image_embeds": ("projection_dim",),
}

#: SigLIP: no projection (embeddings have each tower's hidden size), no attention mask (its tokenizer gives none).
_SIGLIP_FIXED = {
    "pixel_values": ("vision_config.num_channels", "vision_config.image_size", "vision_config.image_size"),
    "input_ids": (None,), "logits_per_image": (None,), "logits_per_text": (None,),
    "text_embeds": ("text_config.projection_size | text_config.hidden_size",),
    "image_embeds": ("vision_config.hidden_size",),
}

register(TaskSpec(
    task="zero-shot-image-classification",
    family="multimodal",
    model_types=("clip", "siglip"),
    architectures=("CLIPModel", "SiglipModel"),
    auto_class="AutoModelForZeroShotImageClassification",
    sample_inputs=f"{_HERE}:clip_inputs",
    fixed_dims=_CLIP_FIXED,
    model_fixed_dims={"siglip": _SIGLIP_FIXED},
    batching=False,
    pipeline=PipelineSpec(
        pre_kind="image-text-preprocess",
        pre_module=_STEPS,
        pre_setup=f"{_HERE}:save_clip_processor",
        raw_inputs=(TensorDecl("image", "TYPE_STRING", (-1,)), TensorDecl("candidate_labels", "TYPE_STRING", (-1,)),
                    TensorDecl("hypothesis_template", "TYPE_STRING", (1,), optional=True)),
        post_kind="zero-shot-image-classification",
        post_module=_STEPS,
        post_inputs=("core.logits_per_image", "raw.candidate_labels"),
        post_setup=f"{_HERE}:zero_shot_activation",
        post_outputs=(TensorDecl("labels", "TYPE_STRING", (-1, -1)), TensorDecl("scores", "TYPE_FP32", (-1, -1))),
        outputs=("post.labels", "post.scores"),
        golden_inputs=f"{_HERE}:golden_zero_shot",
        reference=f"{_HERE}:zero_shot_reference",
    ),
    notes="image list + candidate_labels list (one request); labels sorted by score per image "
          "(CLIP: softmax over the labels; SigLIP: sigmoid per label, texts padded to 64 tokens)",
))

register(TaskSpec(
    task="feature-extraction",
    family="multimodal",
    model_types=("clip",),
    architectures=("CLIPModel",),  # zero-shot, registered first, wins the architecture; this one needs --task
    auto_class="AutoModel",
    sample_inputs=f"{_HERE}:clip_inputs",
    fixed_dims=_CLIP_FIXED,
    batching=False,
    pipeline=PipelineSpec(
        pre_kind="image-text-preprocess",
        pre_module=_STEPS,
        pre_setup=f"{_HERE}:save_clip_processor",
        raw_inputs=(TensorDecl("image", "TYPE_STRING", (-1,)), TensorDecl("text", "TYPE_STRING", (-1,))),
        outputs=("core.image_embeds", "core.text_embeds"),
        golden_inputs=f"{_HERE}:golden_image_text",
        reference=f"{_HERE}:image_text_reference",
    ),
    notes="image and text embeddings in one space (L2-normalised)",
))

register(TaskSpec(
    task="token-classification",
    family="multimodal",
    model_types=("layoutlm",),
    architectures=("LayoutLMForTokenClassification",),
    auto_class="AutoModelForTokenClassification",
    sample_inputs=f"{_HERE}:layout_inputs",
    fixed_dims={"input_ids": (None,), "attention_mask": (None,), "token_type_ids": (None,), "bbox": (None, 4),
                "logits": (None, "num_labels")},
    pipeline=PipelineSpec(
        pre_kind="layout-preprocess",
        pre_module=_STEPS,
        pre_setup=f"{_HERE}:save_layout_tokenizer",
        pre_extra_outputs=(TensorDecl("word_ids", "TYPE_INT64", (-1,)),),
        raw_inputs=(TensorDecl("words", "TYPE_STRING", (-1,)), TensorDecl("boxes", "TYPE_INT64", (-1, 4))),
        post_kind="layout-token-classification",
        post_module=_STEPS,
        post_inputs=("core.logits", "pre.word_ids"),
        post_outputs=(TensorDecl("labels", "TYPE_STRING", (-1,)), TensorDecl("scores", "TYPE_FP32", (-1,))),
        post_files=("labels",),
        outputs=("post.labels", "post.scores"),
        golden_inputs=f"{_HERE}:golden_documents",
        reference=f"{_HERE}:layout_reference",
    ),
    notes="words + boxes (0..1000) in; a label and score per word",
))
