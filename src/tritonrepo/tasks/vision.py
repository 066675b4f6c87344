"""Vision tasks (image encoders and classifiers): one registry entry per task.

Sample inputs are random images run through the checkpoint's image processor; the pipelines decode image
bytes and run the image processor in the preprocess step (``kind`` ``image``).
"""

from __future__ import annotations

from tritonrepo.tasks.registry import PipelineSpec, TaskSpec, TensorDecl, register

#: ViT-style encoders: the position embeddings fix the image size (``image_size``) and the token count.
VIT_LIKE = ("vit",)

_PIXELS = {"pixel_values": ("num_channels", "image_size", "image_size")}
_IMAGE = (TensorDecl("image", "TYPE_STRING", (1,)),)
_REF = "tritonrepo.tasks.reference"

register(TaskSpec(
    task="feature-extraction",
    family="image",
    model_types=VIT_LIKE,
    architectures=("ViTModel",),
    auto_class="AutoModel",
    sample_inputs="tritonrepo.samples:image_inputs",
    fixed_dims={**_PIXELS, "last_hidden_state": ("(image_size // patch_size) ** 2 + 1", "hidden_size")},
    pipeline=PipelineSpec(
        pre_kind="image",
        pre_setup="tritonrepo.tasks.processors:save_image_processor",
        raw_inputs=_IMAGE,
        outputs=("core.*",),
        golden_inputs=f"{_REF}:golden_image_inputs",
        reference=f"{_REF}:core_outputs",
    ),
    notes="patch embeddings (last_hidden_state)",
))

register(TaskSpec(
    task="image-classification",
    family="image",
    model_types=VIT_LIKE,
    architectures=("ForImageClassification",),
    auto_class="AutoModelForImageClassification",
    sample_inputs="tritonrepo.samples:image_inputs",
    fixed_dims={**_PIXELS, "logits": ("num_labels",)},
    pipeline=PipelineSpec(
        pre_kind="image",
        pre_setup="tritonrepo.tasks.processors:save_image_processor",
        raw_inputs=_IMAGE,
        post_kind="classification",
        post_inputs=("core.logits",),
        post_outputs=(TensorDecl("label", "TYPE_STRING", (1,)), TensorDecl("score", "TYPE_FP32", (1,))),
        post_files=("labels",),
        outputs=("post.label", "post.score"),
        golden_inputs=f"{_REF}:golden_image_inputs",
        reference=f"{_REF}:classification",
    ),
))
