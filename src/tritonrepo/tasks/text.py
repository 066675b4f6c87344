"""Text-encoder tasks (BERT-like models): one registry entry per task.

Sample inputs come from the checkpoint's tokenizer (:mod:`tritonrepo.samples`); the pipelines tokenize with
the ``tokenizers`` library in the preprocess step and post-process with :mod:`tritonrepo.triton_models.postprocess`.
"""

from __future__ import annotations

import json

from tritonrepo.errors import TritonRepoError
from tritonrepo.tasks.registry import PipelineSpec, TaskSpec, TensorDecl, register

#: Text encoders tritonrepo supports (config.json model_type).
TEXT_ENCODERS = ("bert", "distilbert", "roberta", "xlm-roberta", "deberta-v2", "electra", "albert", "mpnet")

_TEXT_IN = {"input_ids": (None,), "attention_mask": (None,), "token_type_ids": (None,)}
_TEXT = (TensorDecl("text", "TYPE_STRING", (1,)),)
_REF = "tritonrepo.tasks.reference"


def pooling_parameters(checkpoint, spec) -> dict[str, str]:
    """``pooling`` (``mean``/``cls``/``max``) and ``normalize`` from a sentence-transformers folder (defaults: mean, no).

    Reads ``modules.json`` and the pooling module's ``config.json`` (sentence-transformers' ``Pooling``).

    Raises:
        TritonRepoError: a pooling mode other than mean, cls or max.
    """
    pooling, normalize = "mean", False
    modules = checkpoint.path / "modules.json"
    if modules.is_file():
        entries = json.loads(modules.read_text())
        normalize = any(m.get("type", "").endswith(".Normalize") for m in entries)
        for m in entries:
            if m.get("type", "").endswith(".Pooling"):
                cfg_path = checkpoint.path / m.get("path", "1_Pooling") / "config.json"
                if cfg_path.is_file():
                    cfg = json.loads(cfg_path.read_text())
                    if cfg.get("pooling_mode_cls_token"):
                        pooling = "cls"
                    elif cfg.get("pooling_mode_max_tokens"):
                        pooling = "max"
                    elif cfg.get("pooling_mode_mean_tokens"):
                        pooling = "mean"
                    else:
                        raise TritonRepoError(f"{cfg_path}: unsupported pooling mode", "use mean, cls or max pooling")
    return {"pooling": pooling, "normalize": "true" if normalize else "false"}


register(TaskSpec(
    task="feature-extraction",
    family="text",
    model_types=TEXT_ENCODERS,
    architectures=("Model",),
    auto_class="AutoModel",
    sample_inputs="tritonrepo.samples:text_inputs",
    fixed_dims={**_TEXT_IN, "last_hidden_state": (None, "hidden_size")},
    pipeline=PipelineSpec(
        pre_kind="text",
        raw_inputs=_TEXT,
        post_kind="embedding",
        post_inputs=("core.last_hidden_state", "pre.attention_mask"),
        post_outputs=(TensorDecl("embedding", "TYPE_FP32", ("last_hidden_state[-1]",)),),
        post_setup="tritonrepo.tasks.text:pooling_parameters",
        outputs=("core.last_hidden_state", "post.embedding"),
        golden_inputs=f"{_REF}:golden_texts",
        reference=f"{_REF}:embedding",
    ),
    notes="token embeddings; the pipeline pools them as sentence-transformers does",
))

register(TaskSpec(
    task="text-classification",
    family="text",
    model_types=TEXT_ENCODERS,
    architectures=("ForSequenceClassification",),
    auto_class="AutoModelForSequenceClassification",
    sample_inputs="tritonrepo.samples:text_inputs",
    fixed_dims={**_TEXT_IN, "logits": ("num_labels",)},
    pipeline=PipelineSpec(
        pre_kind="text",
        raw_inputs=_TEXT,
        post_kind="classification",
        post_inputs=("core.logits",),
        post_outputs=(TensorDecl("label", "TYPE_STRING", (1,)), TensorDecl("score", "TYPE_FP32", (1,))),
        post_files=("labels",),
        outputs=("post.label", "post.score"),
        golden_inputs=f"{_REF}:golden_texts",
        reference=f"{_REF}:classification",
    ),
))

register(TaskSpec(
    task="token-classification",
    family="text",
    model_types=TEXT_ENCODERS,
    architectures=("ForTokenClassification",),
    auto_class="AutoModelForTokenClassification",
    sample_inputs="tritonrepo.samples:text_inputs",
    fixed_dims={**_TEXT_IN, "logits": (None, "num_labels")},
    pipeline=PipelineSpec(
        pre_kind="text",
        raw_inputs=_TEXT,
        post_kind="token-classification",
        post_inputs=("core.logits", "pre.attention_mask"),
        post_outputs=(TensorDecl("labels", "TYPE_STRING", (-1,)), TensorDecl("scores", "TYPE_FP32", (-1,))),
        post_files=("labels",),
        outputs=("post.labels", "post.scores"),
        golden_inputs=f"{_REF}:golden_texts",
        reference=f"{_REF}:token_classification",
    ),
))

register(TaskSpec(
    task="question-answering",
    family="text",
    model_types=TEXT_ENCODERS,
    architectures=("ForQuestionAnswering",),
    auto_class="AutoModelForQuestionAnswering",
    sample_inputs="tritonrepo.samples:text_pair_inputs",
    fixed_dims={**_TEXT_IN, "start_logits": (None,), "end_logits": (None,)},
    pipeline=PipelineSpec(
        pre_kind="text-pair",
        raw_inputs=(TensorDecl("question", "TYPE_STRING", (1,)), TensorDecl("context", "TYPE_STRING", (1,))),
        post_kind="question-answering",
        post_inputs=("core.start_logits", "core.end_logits", "pre.input_ids", "pre.token_type_ids?"),
        post_outputs=(TensorDecl("answer", "TYPE_STRING", (1,)),),
        post_files=("processor",),
        outputs=("post.answer",),
        golden_inputs=f"{_REF}:golden_qa",
        reference=f"{_REF}:no_reference",
    ),
))

register(TaskSpec(
    task="fill-mask",
    family="text",
    model_types=TEXT_ENCODERS,
    architectures=("ForMaskedLM",),
    auto_class="AutoModelForMaskedLM",
    sample_inputs="tritonrepo.samples:text_inputs",
    fixed_dims={**_TEXT_IN, "logits": (None, "vocab_size")},
))

register(TaskSpec(
    task="multiple-choice",
    family="text",
    model_types=TEXT_ENCODERS,
    architectures=("ForMultipleChoice",),
    auto_class="AutoModelForMultipleChoice",
    sample_inputs="tritonrepo.samples:multiple_choice_inputs",
    fixed_dims={"input_ids": (None, None), "attention_mask": (None, None), "token_type_ids": (None, None),
                "logits": (None,)},
    hf_pipeline=None,
    notes="inputs [batch, choices, seq]",
))
