"""The generation family: models that answer text token by token (Triton's generate convention).

Every entry is of kind ``generate``: ``add-hf`` hands the checkpoint to
:func:`tritonrepo.generation.build_from_spec`, which stages one decoupled Python-backend model with the vLLM
backend's tensor contract (``text_input`` ... -> ``text_output``; speech and image-to-text take ``audio`` /
``image`` bytes instead; docs/generation.md). Model types are the ones tests/test_generation.py and
tests/test_generation_media.py / tests/test_generation_media_onnx.py serve on the real server; the ``sample_inputs`` field is not used by the builder
(it builds its own golden prompts, audio or images). Whisper has an entry of its own (family ``speech-seq2seq``):
the registry key is ``(task, family)`` and its pipeline class is ``AutoModelForSpeechSeq2Seq``, not wav2vec2's
``AutoModelForCTC``.
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
    model_types=("wav2vec2", "hubert"),
    architectures=("ForCTC",),
    auto_class="AutoModelForCTC",
    sample_inputs=_UNUSED,
    kind="generate",
    builder=_BUILD,
    notes="wav2vec2 / HuBERT CTC: audio bytes (WAV/FLAC/OGG) in, text_output out: the pipeline's chunking "
          "(chunk_length_s, strides), argmax and CTC decoding; ONNX (optimum's input_values -> logits graph in "
          "onnxruntime) or PyTorch",
))

register(TaskSpec(
    task="automatic-speech-recognition",
    family="speech-seq2seq",
    model_types=("whisper",),
    architectures=("WhisperForConditionalGeneration",),
    auto_class="AutoModelForSpeechSeq2Seq",
    sample_inputs=_UNUSED,
    kind="generate",
    builder=_BUILD,
    notes="Whisper: audio bytes in, greedy text streamed token by token; long audio chunked as the pipeline "
          "does (chunk_length_s, default 30); ONNX (encoder + merged decoder in the seq2seq engine) or PyTorch",
))

register(TaskSpec(
    task="image-to-text",
    family="generation",
    model_types=("vision-encoder-decoder",),
    architectures=("VisionEncoderDecoderModel",),
    auto_class="AutoModelForVision2Seq",
    sample_inputs=_UNUSED,
    kind="generate",
    builder=_BUILD,
    notes="VisionEncoderDecoder (ViT + GPT-2 ...): image bytes in, greedy text streamed token by token; ONNX "
          "(encoder + merged decoder in the seq2seq engine) or PyTorch",
))
