"""The generation family: models that answer text token by token (Triton's generate convention).

Every entry is of kind ``generate``: ``add-hf`` hands the checkpoint to
:func:`tritonrepo.generation.build_from_spec`, which stages one decoupled Python-backend model with the vLLM
backend's tensor contract (``text_input`` ... -> ``text_output``; docs/generation.md). Model types are the ones
tests/test_generation.py serves on the real server; the ``sample_inputs`` field is not used by the builder
(it builds its own golden prompts, audio or images).
"""

from __future__ import annotations

from tritonrepo.tasks.registry import TaskSpec, register

_BUILD = "tritonrepo.generation:build_from_spec"
_UNUSED = "tritonrepo.samples:text_inputs"

register(TaskSpec(
    task="text-generation",
    family="generation",
    model_types=("gpt2", "llama", "qwen2"),
    architectures=("ForCausalLM", "LMHeadModel"),
    auto_class="AutoModelForCausalLM",
    sample_inputs=_UNUSED,
    kind="generate",
    builder=_BUILD,
    notes="decoder-only generation with a KV cache and in-flight batching; ONNX (merged decoder) or PyTorch",
))

register(TaskSpec(
    task="text2text-generation",
    family="generation",
    model_types=("t5", "bart", "marian"),
    architectures=("ForConditionalGeneration", "MarianMTModel"),
    auto_class="AutoModelForSeq2SeqLM",
    sample_inputs=_UNUSED,
    kind="generate",
    builder=_BUILD,
    notes="encoder-decoder generation, encoder once per request, decoder with self/cross KV caches, batched "
          "by cohort; ONNX (encoder + merged decoder) or PyTorch",
))

for _task in ("summarization", "translation"):
    register(TaskSpec(
        task=_task,
        family="generation",
        model_types=("t5", "bart", "marian"),
        architectures=(),
        auto_class="AutoModelForSeq2SeqLM",
        sample_inputs=_UNUSED,
        kind="generate",
        builder=_BUILD,
        notes="as text2text-generation (ONNX or PyTorch)",
    ))

register(TaskSpec(
    task="automatic-speech-recognition",
    family="generation",
    model_types=("wav2vec2",),
    architectures=("ForCTC",),
    auto_class="AutoModelForCTC",
    sample_inputs=_UNUSED,
    kind="generate",
    builder=_BUILD,
    notes="audio bytes (WAV/FLAC/OGG) in, text_output out: CTC argmax + tokenizer decode (--backend python)",
))
