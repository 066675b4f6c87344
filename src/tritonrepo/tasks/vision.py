"""Vision tasks: image classification, image feature extraction, object detection, semantic segmentation (SegFormer),
MaskFormer-style image segmentation and depth estimation, one registry entry per task.

Sample inputs are random images of different sizes run through the checkpoint's image processor. The pipelines
decode image bytes and run the image processor in the preprocess step, and post-process in numpy, with the
fixed module :mod:`tritonrepo.triton_models.image_steps` (classification uses the shared ``postprocess.py``).
Pinned dims come from config values only: ViT-style encoders fix the image size through their position
embeddings (``image_size``); convolutional models, DINOv2 (interpolated position embeddings), DETR, YOLOS,
SegFormer, MaskFormer and DPT keep image height and width variable.

Mask2Former/OneFormer are not registered: optimum (2.1, optimum-onnx 0.1) has no ONNX config for them, and the
Python backend exports the same tensor contract as optimum's config, so neither mode can be built.

Golden inputs, references (from ``transformers.pipeline`` or the image processor's own post-processing, which
is what the pipeline calls) and setup functions are below; heavy libraries are imported inside them.
"""

from __future__ import annotations

import io
from pathlib import Path

from tritonrepo.tasks.registry import PipelineSpec, TaskSpec, TensorDecl, register

_IMAGE = (TensorDecl("image", "TYPE_STRING", (1,)),)
_SIZE = (TensorDecl("image_size", "TYPE_INT64", (2,)),)
#: Models whose processor keeps the aspect ratio and pads a batch: the post step reruns the core model on each
#: padded image alone (image_steps.py, ``per_image_model``), as transformers' pipelines see each image.
_PIXEL_SIZE = (TensorDecl("pixel_size", "TYPE_INT64", (2,)),)
_PER_IMAGE = ("pre.pixel_values", "pre.pixel_mask?", "pre.pixel_size")
_HERE = "tritonrepo.tasks.vision"
_REF = "tritonrepo.tasks.reference"
_PIXELS_FIXED = {"pixel_values": ("num_channels", "image_size", "image_size")}
_PIXELS_FREE = {"pixel_values": ("num_channels", None, None)}
_STEPS = "image_steps.py"


# --- setup, golden inputs and references -------------------------------------------------------------------


def png(h: int, w: int, seed: int = 0) -> bytes:
    """A deterministic random RGB image of ``h`` x ``w`` pixels, PNG-encoded."""
    import numpy as np  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


#: Golden images: a portrait and a landscape one.
GOLDEN_SIZES = ((48, 30), (30, 52))


def golden_images(checkpoint, spec) -> dict[str, list]:
    """``{"image": [portrait png, landscape png]}``: one request with both (detection and MaskFormer pipelines
    answer each image as the pipeline does alone, see :mod:`tritonrepo.triton_models.image_steps`)."""
    return {"image": [png(h, w, seed=i) for i, (h, w) in enumerate(GOLDEN_SIZES)]}


def save_image_processor(checkpoint, spec, dst: Path) -> dict[str, str]:
    """Save the checkpoint's (slow, numpy) image processor into ``dst``; no parameters."""
    from transformers import AutoImageProcessor  # noqa: PLC0415

    AutoImageProcessor.from_pretrained(str(checkpoint.path), use_fast=False).save_pretrained(dst)
    return {}


def _pil(blobs):
    from PIL import Image  # noqa: PLC0415

    return [Image.open(io.BytesIO(b)).convert("RGB") for b in blobs]


def _pipe(checkpoint, spec, task):
    from transformers import AutoImageProcessor, pipeline  # noqa: PLC0415

    from tritonrepo.export.common import load_torch_model  # noqa: PLC0415

    proc = AutoImageProcessor.from_pretrained(str(checkpoint.path), use_fast=False)
    return pipeline(task, model=load_torch_model(checkpoint, spec), image_processor=proc, device="cpu")


def _model_outputs(pipe, image):
    """The pipeline's own preprocess + forward for one image (what its postprocess receives)."""
    return pipe.forward(pipe.preprocess(image))


def image_embedding_reference(checkpoint, spec, raw, max_length):
    """``token_embeddings`` (the hidden states) and ``embedding`` (token 0) from the ``image-feature-extraction``
    pipeline."""
    import numpy as np  # noqa: PLC0415

    pipe = _pipe(checkpoint, spec, "image-feature-extraction")
    hidden = np.concatenate([np.asarray(pipe(im), dtype=np.float32) for im in _pil(raw["image"])])
    return {"token_embeddings": hidden, "embedding": hidden[:, 0]}, None


def detection_reference(checkpoint, spec, raw, max_length):
    """``boxes`` / ``scores`` / ``label_ids`` for every query: the object-detection pipeline's preprocessing and
    model, then its image processor's ``post_process_object_detection`` at the original size (no threshold)."""
    import numpy as np  # noqa: PLC0415

    pipe = _pipe(checkpoint, spec, "object-detection")
    boxes, scores, labels = [], [], []
    for im in _pil(raw["image"]):
        out = _model_outputs(pipe, im)
        res = pipe.image_processor.post_process_object_detection(out, threshold=-1.0, target_sizes=[(im.height, im.width)])[0]
        boxes.append(res["boxes"].numpy())
        scores.append(res["scores"].numpy())
        labels.append(res["labels"].numpy())
    return {"boxes": np.stack(boxes).astype(np.float32), "scores": np.stack(scores).astype(np.float32),
            "label_ids": np.stack(labels).astype(np.int64)}, None


def segmentation_reference(checkpoint, spec, raw, max_length):
    """``label_map`` ``[batch, H, W]`` (padded with -1): the image-segmentation pipeline's semantic label map (its
    preprocessing and model, then its image processor's ``post_process_semantic_segmentation`` at the original
    size: what ``pipeline(image, subtask="semantic")`` turns into one mask per label)."""
    import numpy as np  # noqa: PLC0415

    pipe = _pipe(checkpoint, spec, "image-segmentation")
    maps = []
    for im in _pil(raw["image"]):
        out = _model_outputs(pipe, im)
        maps.append(pipe.image_processor.post_process_semantic_segmentation(out, target_sizes=[(im.height, im.width)])[0]
                    .numpy().astype(np.int32))
    return {"label_map": _pad(maps, -1)}, None


def depth_reference(checkpoint, spec, raw, max_length):
    """``depth`` ``[batch, H, W]`` (padded with 0): the depth-estimation pipeline's ``predicted_depth``."""
    import numpy as np  # noqa: PLC0415

    pipe = _pipe(checkpoint, spec, "depth-estimation")
    maps = [pipe(im)["predicted_depth"].numpy().astype(np.float32) for im in _pil(raw["image"])]
    return {"depth": _pad(maps, 0.0)}, None


def _pad(maps, fill):
    import numpy as np  # noqa: PLC0415

    h, w = max(m.shape[0] for m in maps), max(m.shape[1] for m in maps)
    out = np.full((len(maps), h, w), fill, dtype=maps[0].dtype)
    for i, m in enumerate(maps):
        out[i, : m.shape[0], : m.shape[1]] = m
    return out


# --- entries -------------------------------------------------------------------------------------------------

register(TaskSpec(
    task="feature-extraction",
    family="image",
    model_types=("vit", "dinov2"),
    architectures=("ViTModel", "Dinov2Model"),
    auto_class="AutoModel",
    hf_pipeline="image-feature-extraction",
    sample_inputs="tritonrepo.samples:image_inputs",
    fixed_dims={**_PIXELS_FIXED, "last_hidden_state": ("(image_size // patch_size) ** 2 + 1", "hidden_size")},
    model_fixed_dims={"dinov2": {**_PIXELS_FREE, "last_hidden_state": (None, "hidden_size")}},
    pipeline=PipelineSpec(
        pre_kind="image-preprocess",
        pre_module=_STEPS,
        pre_setup=f"{_HERE}:save_image_processor",
        raw_inputs=_IMAGE,
        post_kind="image-embedding",
        post_module=_STEPS,
        post_inputs=("core.last_hidden_state",),
        post_outputs=(TensorDecl("embedding", "TYPE_FP32", ("last_hidden_state[-1]",)),
                      TensorDecl("token_embeddings", "TYPE_FP32", ("last_hidden_state[0]", "last_hidden_state[1]"))),
        outputs=("post.token_embeddings", "post.embedding"),
        golden_inputs=f"{_HERE}:golden_images",
        reference=f"{_HERE}:image_embedding_reference",
    ),
    notes="patch embeddings (last_hidden_state) and the pooled embedding (CLS token)",
))

register(TaskSpec(
    task="image-classification",
    family="image",
    model_types=("vit", "convnext", "resnet", "dinov2"),
    architectures=("ForImageClassification",),
    auto_class="AutoModelForImageClassification",
    sample_inputs="tritonrepo.samples:image_inputs",
    fixed_dims={**_PIXELS_FIXED, "logits": ("num_labels",)},
    model_fixed_dims={mt: _PIXELS_FREE for mt in ("convnext", "resnet", "dinov2")},
    pipeline=PipelineSpec(
        pre_kind="image-preprocess",
        pre_module=_STEPS,
        pre_setup=f"{_HERE}:save_image_processor",
        raw_inputs=_IMAGE,
        post_kind="classification",
        post_inputs=("core.logits",),
        post_outputs=(TensorDecl("label", "TYPE_STRING", (1,)), TensorDecl("score", "TYPE_FP32", (1,))),
        post_files=("labels",),
        outputs=("post.label", "post.score"),
        golden_inputs=f"{_HERE}:golden_images",
        reference=f"{_REF}:classification",
    ),
))

register(TaskSpec(
    task="object-detection",
    family="image",
    model_types=("detr", "yolos"),
    architectures=("ForObjectDetection",),
    auto_class="AutoModelForObjectDetection",
    sample_inputs="tritonrepo.samples:image_inputs",
    fixed_dims={**_PIXELS_FREE,
                "logits": ("num_queries | num_detection_tokens", "num_labels + 1"),
                "pred_boxes": ("num_queries | num_detection_tokens", 4)},
    pipeline=PipelineSpec(
        pre_kind="image-preprocess",
        pre_module=_STEPS,
        pre_setup=f"{_HERE}:save_image_processor",
        pre_extra_outputs=(*_SIZE, *_PIXEL_SIZE),
        raw_inputs=(*_IMAGE, TensorDecl("threshold", "TYPE_FP32", (1,), optional=True)),
        post_kind="object-detection",
        post_module=_STEPS,
        post_inputs=("core.logits", "core.pred_boxes", "pre.image_size", *_PER_IMAGE, "raw.threshold?"),
        post_outputs=(TensorDecl("detections", "TYPE_STRING", (1,)),
                      TensorDecl("boxes", "TYPE_FP32", ("logits[0]", 4)),
                      TensorDecl("scores", "TYPE_FP32", ("logits[0]",)),
                      TensorDecl("label_ids", "TYPE_INT64", ("logits[0]",))),
        post_files=("labels",),
        post_parameters={"threshold": "0.5", "per_image_model": "{core_model}"},
        outputs=("post.detections", "post.boxes", "post.scores", "post.label_ids"),
        golden_inputs=f"{_HERE}:golden_images",
        reference=f"{_HERE}:detection_reference",
    ),
    notes="boxes in pixels of the original image (each image of a request alone); JSON detections above "
          "threshold (0.5, or the request's optional 'threshold' input)",
))

register(TaskSpec(
    task="semantic-segmentation",
    family="image",
    model_types=("segformer",),
    architectures=("ForSemanticSegmentation",),
    auto_class="AutoModelForSemanticSegmentation",
    hf_pipeline="image-segmentation",
    sample_inputs="tritonrepo.samples:image_inputs",
    fixed_dims={**_PIXELS_FREE, "logits": ("num_labels", None, None)},
    pipeline=PipelineSpec(
        pre_kind="image-preprocess",
        pre_module=_STEPS,
        pre_setup=f"{_HERE}:save_image_processor",
        pre_extra_outputs=_SIZE,
        raw_inputs=_IMAGE,
        post_kind="semantic-segmentation",
        post_module=_STEPS,
        post_inputs=("core.logits", "pre.image_size"),
        post_outputs=(TensorDecl("label_map", "TYPE_INT32", (-1, -1)), TensorDecl("segments", "TYPE_STRING", (1,))),
        post_files=("labels",),
        outputs=("post.label_map", "post.segments"),
        golden_inputs=f"{_HERE}:golden_images",
        reference=f"{_HERE}:segmentation_reference",
    ),
    notes="label map at the original image size",
))

register(TaskSpec(
    task="image-segmentation",
    family="image",
    model_types=("maskformer",),
    architectures=("MaskFormerForInstanceSegmentation",),
    # transformers.pipeline("image-segmentation") loads config.architectures[0] for MaskFormer (its check_model_type
    # accepts the instance/universal segmentation mappings); this auto class gives that same class
    auto_class="AutoModelForInstanceSegmentation",
    sample_inputs="tritonrepo.samples:image_inputs",
    fixed_dims={"pixel_values": ("backbone_config.num_channels | 3", None, None),
                "class_queries_logits": ("decoder_config.num_queries", "num_labels + 1"),
                "masks_queries_logits": ("decoder_config.num_queries", None, None)},
    pipeline=PipelineSpec(
        pre_kind="image-preprocess",
        pre_module=_STEPS,
        pre_setup=f"{_HERE}:save_image_processor",
        pre_extra_outputs=(*_SIZE, *_PIXEL_SIZE),
        raw_inputs=_IMAGE,
        post_kind="mask-segmentation",
        post_module=_STEPS,
        post_inputs=("core.class_queries_logits", "core.masks_queries_logits", "pre.image_size", *_PER_IMAGE),
        post_parameters={"per_image_model": "{core_model}"},
        post_outputs=(TensorDecl("label_map", "TYPE_INT32", (-1, -1)), TensorDecl("segments", "TYPE_STRING", (1,))),
        post_files=("labels",),
        outputs=("post.label_map", "post.segments"),
        golden_inputs=f"{_HERE}:golden_images",
        reference=f"{_HERE}:segmentation_reference",
    ),
    notes="MaskFormer: semantic label map at the original image size (the pipeline's subtask='semantic')",
))

register(TaskSpec(
    task="depth-estimation",
    family="image",
    model_types=("dpt",),
    architectures=("ForDepthEstimation",),
    auto_class="AutoModelForDepthEstimation",
    sample_inputs="tritonrepo.samples:image_inputs",
    fixed_dims={**_PIXELS_FREE, "predicted_depth": (None, None)},
    pipeline=PipelineSpec(
        pre_kind="image-preprocess",
        pre_module=_STEPS,
        pre_setup=f"{_HERE}:save_image_processor",
        pre_extra_outputs=_SIZE,
        raw_inputs=_IMAGE,
        post_kind="depth-estimation",
        post_module=_STEPS,
        post_inputs=("core.predicted_depth", "pre.image_size"),
        post_outputs=(TensorDecl("depth", "TYPE_FP32", (-1, -1)), TensorDecl("depth_image", "TYPE_UINT8", (-1, -1))),
        outputs=("post.depth", "post.depth_image"),
        golden_inputs=f"{_HERE}:golden_images",
        reference=f"{_HERE}:depth_reference",
    ),
    notes="depth map at the original image size",
))
