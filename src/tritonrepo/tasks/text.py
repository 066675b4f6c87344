"""Text-encoder tasks (BERT-like models): one registry entry per task.

Sample inputs come from the checkpoint's tokenizer (:mod:`tritonrepo.samples`); the pipelines tokenize with
the ``tokenizers`` library in the preprocess step and post-process with :mod:`tritonrepo.triton_models.postprocess`,
whose kinds reproduce the postprocessing of ``transformers.pipeline`` for each task (golden references:
:mod:`tritonrepo.tasks.text_reference`). docs/pipelines.md documents every entry's raw inputs and outputs.

Post steps that need character offsets or text (token classification, question answering) take the raw
ensemble inputs (``raw.<name>``) and re-tokenise them with the same tokenizer and ``max_length`` as the
preprocess step. Zero-shot classification runs ``texts × labels`` NLI pairs through the core model, so its
pipeline does not batch (``max_batch_size=0``: the preprocess step expands the pairs, the postprocess step
regroups them per text).
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
        outputs=("post.embedding",),  # not last_hidden_state: the post step consumes it (tritonrepo.ensemble)
        post_fold="tritonrepo.export.fold:fold_embedding_step",  # ONNX core: tokenizer -> one graph
        golden_inputs=f"{_REF}:golden_texts",
        reference=f"{_REF}:embedding",
    ),
    notes="token embeddings; the pipeline pools them as sentence-transformers does",
))

def post_max_length(checkpoint, spec) -> dict[str, str]:
    """``max_length`` for post steps that re-tokenise the raw text (same limit as the preprocess step)."""
    from tritonrepo.tasks.processors import max_length  # noqa: PLC0415

    return {"max_length": str(max_length(checkpoint))}


def save_tokenizer_zero_shot(checkpoint, spec, dst) -> dict[str, str]:
    """The tokenizer (as :func:`~tritonrepo.tasks.processors.save_tokenizer`) plus the NLI ``hypothesis_template``."""
    from tritonrepo.tasks.processors import save_tokenizer  # noqa: PLC0415

    return {**save_tokenizer(checkpoint, spec, dst), "hypothesis_template": HYPOTHESIS_TEMPLATE}


#: transformers' default for the zero-shot-classification pipeline.
HYPOTHESIS_TEMPLATE = "This example is {}."
_STR, _F32, _I64 = "TYPE_STRING", "TYPE_FP32", "TYPE_INT64"
_TREF = "tritonrepo.tasks.text_reference"

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
        post_outputs=(TensorDecl("label", _STR, (-1,)), TensorDecl("score", _F32, (-1,))),
        post_files=("labels",),
        post_parameters={"top_k": "1"},
        outputs=("post.label", "post.score"),
        golden_inputs=f"{_REF}:golden_texts",
        reference=f"{_TREF}:classification",
    ),
    notes="softmax, or sigmoid for multi-label checkpoints (problem_type); top_k labels",
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
        post_inputs=("core.logits", "raw.text"),
        post_outputs=(TensorDecl("entities", _STR, (1,)),),
        post_files=("labels", "processor"),
        post_parameters={"aggregation_strategy": "simple", "ignore_labels": "O"},
        post_setup="tritonrepo.tasks.text:post_max_length",
        outputs=("post.entities",),
        golden_inputs=f"{_TREF}:golden_entity_texts",
        reference=f"{_TREF}:token_classification",
    ),
    notes="entities as one JSON list per text (aggregation_strategy none/simple/first/average/max)",
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
        raw_inputs=(TensorDecl("question", _STR, (1,)), TensorDecl("context", _STR, (1,))),
        post_kind="question-answering",
        post_inputs=("core.start_logits", "core.end_logits", "raw.question", "raw.context"),
        post_outputs=(TensorDecl("answer", _STR, (-1,)), TensorDecl("score", _F32, (-1,)),
                      TensorDecl("start", _I64, (-1,)), TensorDecl("end", _I64, (-1,))),
        post_files=("processor",),
        post_parameters={"top_k": "1", "max_answer_len": "15", "handle_impossible_answer": "false",
                         "align_to_words": "true"},
        post_setup="tritonrepo.tasks.text:post_max_length",
        outputs=("post.answer", "post.score", "post.start", "post.end"),
        golden_inputs=f"{_REF}:golden_qa",
        reference=f"{_TREF}:question_answering",
    ),
    notes="answer, score and character start/end in the context, as the pipeline's span search",
))

register(TaskSpec(
    task="fill-mask",
    family="text",
    model_types=TEXT_ENCODERS,
    architectures=("ForMaskedLM",),
    auto_class="AutoModelForMaskedLM",
    sample_inputs="tritonrepo.samples:text_inputs",
    fixed_dims={**_TEXT_IN, "logits": (None, "vocab_size")},
    pipeline=PipelineSpec(
        pre_kind="text",
        raw_inputs=_TEXT,
        post_kind="fill-mask",
        post_inputs=("core.logits", "pre.input_ids"),
        post_outputs=(TensorDecl("score", _F32, (-1,)), TensorDecl("token", _I64, (-1,)),
                      TensorDecl("token_str", _STR, (-1,)), TensorDecl("sequence", _STR, (-1,))),
        post_files=("processor",),
        post_parameters={"top_k": "5"},
        outputs=("post.score", "post.token", "post.token_str", "post.sequence"),
        golden_inputs=f"{_TREF}:golden_masked_texts",
        reference=f"{_TREF}:fill_mask",
    ),
    notes="top_k fillers of the one mask token of each text",
))

register(TaskSpec(
    task="zero-shot-classification",
    family="text",
    model_types=TEXT_ENCODERS,
    # an NLI checkpoint is a sequence classifier: text-classification (registered earlier) wins the architecture,
    # this entry is chosen with --task zero-shot-classification
    architectures=("ForSequenceClassification",),
    auto_class="AutoModelForSequenceClassification",
    export_task="text-classification",
    sample_inputs="tritonrepo.samples:text_pair_inputs",
    fixed_dims={**_TEXT_IN, "logits": ("num_labels",)},
    pipeline=PipelineSpec(
        pre_kind="zero-shot",
        pre_setup="tritonrepo.tasks.text:save_tokenizer_zero_shot",
        raw_inputs=(TensorDecl("text", _STR, (-1, 1)), TensorDecl("candidate_labels", _STR, (-1,))),
        post_kind="zero-shot",
        post_inputs=("core.logits", "raw.candidate_labels"),
        post_outputs=(TensorDecl("labels", _STR, (-1, -1)), TensorDecl("scores", _F32, (-1, -1))),
        post_files=("labels",),
        post_parameters={"multi_label": "false"},
        outputs=("post.labels", "post.scores"),
        max_batch_size=0,
        golden_inputs=f"{_TREF}:golden_zero_shot",
        reference=f"{_TREF}:zero_shot",
    ),
    notes="NLI model (entailment label) over text x candidate_labels pairs; the pipeline does not batch",
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
    pipeline=PipelineSpec(
        pre_kind="multiple-choice",
        raw_inputs=(TensorDecl("text", _STR, (1,)), TensorDecl("choices", _STR, (-1,))),
        post_kind="multiple-choice",
        post_inputs=("core.logits",),
        post_outputs=(TensorDecl("choice", _I64, (1,)), TensorDecl("scores", _F32, (-1,))),
        outputs=("post.choice", "post.scores"),
        golden_inputs=f"{_TREF}:golden_choices",
        reference=f"{_TREF}:multiple_choice",
    ),
    notes="inputs [batch, choices, seq]; the pipeline returns the best choice and the softmax over choices",
))
