"""Generative checkpoints as Triton models that answer text, token by token (Triton's generate convention).

Entry point: :func:`add_generation` (``add-hf`` dispatches ``text-generation`` here). The model is one
decoupled Python-backend model running tritonrepo's fixed module
:mod:`tritonrepo.triton_models.generate` with its engine
:mod:`tritonrepo.triton_models.generate_engine`; the tensor contract is the vLLM backend's
(``text_input`` / ``max_tokens`` / ``stream`` / ``sampling_parameters`` / ``exclude_input_in_output`` ->
``text_output``). See docs/generation.md.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

from tritonrepo.config import ModelSettings, TensorSpec, build_config
from tritonrepo.errors import ParityError, TritonRepoError

#: optimum tasks served as generation (decoder-only).
DECODER_TASKS = ("text-generation", "text-generation-with-past")
#: encoder-decoder text generation (both backends); summarization/translation map here.
SEQ2SEQ_TASKS = ("text2text-generation", "text2text-generation-with-past", "summarization", "translation")
#: served through transformers' pipeline in the module: ``audio`` / ``image`` bytes in, ``text_output`` out.
PIPELINE_TASKS = ("automatic-speech-recognition", "image-to-text")
#: prompts of the golden samples (two lengths).
GOLDEN_PROMPTS = ("hello world", "a model generates text one token at a time, and the server")
GOLDEN_MAX_TOKENS = 16
#: model types served from ONNX graphs for speech/image-to-text, and optimum's export task for each (CTC
#: checkpoints: one graph ``model.onnx``, ``input_values`` -> ``logits``; the others: encoder + merged decoder).
ONNX_MEDIA_EXPORTS = {"whisper": "automatic-speech-recognition-with-past",
                      "vision-encoder-decoder": "image-to-text-with-past",
                      "wav2vec2": "automatic-speech-recognition",
                      "hubert": "automatic-speech-recognition"}
#: CTC model types among :data:`ONNX_MEDIA_EXPORTS` (``tritonrepo_ctc_onnx.py`` serves them).
CTC_MODEL_TYPES = ("wav2vec2", "hubert")
SUBFOLDER = "hf_model"
ONNX_FILE = "onnx/model.onnx"

#: (name, data type, optional) of the inputs, as Triton's vLLM backend declares them (dims [1]).
INPUTS = (
    ("text_input", mc.TYPE_STRING, False),
    ("max_tokens", mc.TYPE_INT32, True),
    ("stream", mc.TYPE_BOOL, True),
    ("sampling_parameters", mc.TYPE_STRING, True),
    ("exclude_input_in_output", mc.TYPE_BOOL, True),
    ("apply_chat_template", mc.TYPE_BOOL, True),
)


def is_generation_task(task: str) -> bool:
    """True for the tasks :func:`add_generation` builds."""
    return task in DECODER_TASKS or task in SEQ2SEQ_TASKS or task in PIPELINE_TASKS or task.startswith("translation")


@dataclass
class GenerationExport:
    """What was staged: the ``ExportResult``-like fields :mod:`tritonrepo.add` records in the manifest."""

    inputs: list
    outputs: list
    batching: bool
    samples: tuple
    parity_max_abs_diff: float = 0.0
    opset: int = 0
    exporter: str = ""
    parameters: dict | None = None
    default_model_filename: str = ""
    tolerance: float | None = None  # no quality-gated graph: golden texts replay exactly


def pipeline_inputs(task: str) -> tuple:
    """Inputs of a speech/image-to-text model: the file's bytes (``audio`` or ``image``), ``max_tokens``, ``stream``."""
    key = "image" if task == "image-to-text" else "audio"
    return ((key, mc.TYPE_STRING, False), ("max_tokens", mc.TYPE_INT32, True), ("stream", mc.TYPE_BOOL, True))


def generation_config(name: str, settings: ModelSettings, parameters: dict[str, str],
                      inputs: tuple = INPUTS) -> mc.ModelConfig:
    """The decoupled model config: ``max_batch_size: 0``, inputs of :data:`INPUTS` (``dims: [1]``, optional where
    vLLM's are), ``text_output`` (``TYPE_STRING``, ``dims: [-1]``), ``model_transaction_policy { decoupled: true }``.

    ``settings.max_batch_size`` becomes the engine's in-flight batch (parameter ``max_batch``), not Triton's
    batching: the module batches sequences itself, as the vLLM backend does.
    """
    params = {"max_batch": str(max(1, settings.max_batch_size or 1)), **parameters, **settings.parameters}
    cfg = build_config(
        name,
        backend="python",
        inputs=[TensorSpec(n, t, (1,)) for n, t, _ in inputs],
        outputs=[TensorSpec("text_output", mc.TYPE_STRING, (-1,))],
        settings=ModelSettings(max_batch_size=0, dynamic_batching=False, instance_count=settings.instance_count,
                               device=settings.device, parameters=params),
    )
    for inp, (_, _, optional) in zip(cfg.input, inputs):
        inp.optional = optional
    cfg.model_transaction_policy.decoupled = True
    return cfg


def reference_texts(model, tokenizer, prompts, max_new_tokens: int) -> list[str]:
    """transformers' greedy text for each prompt: ``model.generate(do_sample=False)``, new tokens decoded with
    ``skip_special_tokens=True`` (for an encoder-decoder, the whole decoder output)."""
    import torch  # noqa: PLC0415

    out = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            gen = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, num_beams=1,
                                 max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id
                                 if tokenizer.pad_token_id is not None else model.config.eos_token_id)
        start = 0 if model.config.is_encoder_decoder else ids.shape[1]
        out.append(tokenizer.decode(gen[0, start:], skip_special_tokens=True))
    return out


def engine_texts(runner, tokenizer, eos: list[int], prompts, max_new_tokens: int, *, engine=None) -> list[str]:
    """Greedy text of tritonrepo's engine (all prompts decoded together) for each prompt.

    ``engine``: an engine to use instead of a decoder-only :class:`Engine` on ``runner`` (e.g. a
    :class:`~tritonrepo.triton_models.seq2seq_engine.Seq2SeqEngine`); it is shut down at the end.
    """
    import threading  # noqa: PLC0415

    from tritonrepo.triton_models.generate_engine import Engine, Sampling, Sequence  # noqa: PLC0415

    engine = engine or Engine(runner, tokenizer, eos)
    done = [threading.Event() for _ in prompts]
    seqs = []
    errors: list[str] = []
    for i, prompt in enumerate(prompts):
        def emit(_delta, finished, error, i=i):
            if error:
                errors.append(error)
            if finished:
                done[i].set()
        seqs.append(Sequence(tokenizer(prompt).input_ids, Sampling(max_tokens=max_new_tokens), emit))
        engine.submit(seqs[-1])
    for event in done:
        event.wait(600)
    engine.shutdown()
    if errors:
        raise TritonRepoError(f"the generation engine failed: {errors[0]}")
    return [s.text for s in seqs]


def _eos_ids(model) -> list[int]:
    eos = model.generation_config.eos_token_id
    eos = model.config.eos_token_id if eos is None else eos
    return [] if eos is None else [eos] if isinstance(eos, int) else list(eos)


def _copy_tree(src: Path, dst: Path, *, weights: bool) -> None:
    skip = {".git", ".cache", ".gitattributes", "onnx", "openvino"}
    suffixes = (".h5", ".msgpack", ".ot", ".onnx", ".tflite")
    if not weights:
        suffixes += (".safetensors", ".bin", ".pt", ".pth")

    def ignore(_dir: str, names: list[str]) -> set[str]:
        return {n for n in names if n in skip or n.endswith(suffixes)}

    shutil.copytree(src, dst, symlinks=False, ignore=ignore)


def _export_decoder(model, version_dir: Path, opset: int | None, *, seq2seq: bool = False,
                    task: str | None = None) -> int:
    """optimum's ONNX export with past key/values into ``version_dir/onnx/``; returns the opset.

    Decoder-only: ``text-generation-with-past`` -> ``model.onnx``. Encoder-decoder (``seq2seq``):
    ``text2text-generation-with-past`` -> ``encoder_model.onnx`` + ``decoder_model_merged.onnx`` (optimum merges
    ``decoder_model.onnx`` and ``decoder_with_past_model.onnx``; when it does not, those two are kept instead).
    ``task``: optimum's export task instead (``automatic-speech-recognition-with-past`` for Whisper: same files,
    the encoder takes ``input_features``; ``automatic-speech-recognition`` for a CTC model, ``seq2seq`` false: one
    graph without past, ``model.onnx``).

    Raises:
        TritonRepoError: optimum fails, or writes none of the expected graphs.
    """
    import onnx  # noqa: PLC0415
    from optimum.exporters.onnx import onnx_export_from_model  # noqa: PLC0415

    from tritonrepo.triton_models.seq2seq_engine import (  # noqa: PLC0415
        DECODER_FILES,
        ENCODER_FILE,
        MERGED_DECODER_FILE,
    )

    task = task or ("text2text-generation-with-past" if seq2seq else "text-generation-with-past")
    out_dir = version_dir.parent / (version_dir.name + ".optimum")
    try:
        onnx_export_from_model(model, out_dir, opset=opset, task=task, do_validation=False,
                               library_name="transformers")
    except Exception as exc:  # noqa: BLE001 - optimum raises many types; report one line
        what = ("the encoder-decoder" if seq2seq else "the decoder") + " with past key/values"
        what = f"the CTC model ({task})" if not task.endswith("-with-past") else what
        raise TritonRepoError(f"optimum could not export {what}: {exc}") from None
    if seq2seq:
        merged = (out_dir / MERGED_DECODER_FILE).is_file()
        wanted = {ENCODER_FILE, *((MERGED_DECODER_FILE,) if merged else DECODER_FILES)}
        main = [ENCODER_FILE, MERGED_DECODER_FILE if merged else DECODER_FILES[0]]
    else:
        wanted, main = {"model.onnx"}, ["model.onnx"]
    dst = version_dir / "onnx"
    dst.mkdir(parents=True, exist_ok=True)
    for p in out_dir.iterdir():
        stem = p.name.split(".onnx")[0] + ".onnx"
        if stem in wanted and (p.suffix in (".onnx", ".onnx_data") or p.name.endswith(".onnx_data")):
            os.replace(p, dst / p.name)
    shutil.rmtree(out_dir, ignore_errors=True)
    missing = [m for m in main if not (dst / m).is_file()]
    if missing:
        raise TritonRepoError(f"optimum wrote no {', '.join(missing)} (got {sorted(p.name for p in dst.iterdir())})")
    proto = onnx.load(str(dst / main[-1]), load_external_data=False)
    return max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _sample_media(task: str, pipe) -> bytes:
    """A deterministic sample file for the golden sample: 2 s of tones as WAV, or a 64x64 gradient PNG."""
    if task == "image-to-text":
        import io  # noqa: PLC0415

        from PIL import Image  # noqa: PLC0415

        grid = np.linspace(0, 255, 64, dtype=np.uint8)
        img = np.stack([np.tile(grid, (64, 1)), np.tile(grid[:, None], (1, 64)), np.full((64, 64), 128, np.uint8)], -1)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        return buf.getvalue()
    from tritonrepo.triton_models.audio import encode_wav  # noqa: PLC0415

    rate = pipe.feature_extractor.sampling_rate
    t = np.arange(2 * rate) / rate
    return encode_wav((0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 587 * t)).astype(np.float32), rate)


def check_whisper_prompt(model, checkpoint_path) -> None:
    """A Whisper checkpoint's generation config must name a ``language`` / ``task`` that its ``lang_to_id`` /
    ``task_to_id`` hold (a code ``en``, a token ``<|en|>`` or a name ``english``, as
    ``WhisperGenerationMixin._retrieve_init_tokens`` accepts them in transformers
    ``models/whisper/generation_whisper.py``); otherwise transformers' ``generate`` and the ONNX engine's
    decoder prompt (:func:`~tritonrepo.triton_models.seq2seq_engine.whisper_decoder_prompt`) fail on every
    request. The language and task come only from the checkpoint (requests carry audio, ``max_tokens`` and
    ``stream``), so the check is made once, at ``add-hf``.

    Args:
        model: the pipeline's ``WhisperForConditionalGeneration`` (its ``generation_config`` and ``config``).
        checkpoint_path: the checkpoint folder, for the message.

    Raises:
        TritonRepoError: ``language`` / ``task`` unknown to the config; the message lists the ones it has.
    """
    from tritonrepo.triton_models.seq2seq_engine import whisper_decoder_prompt  # noqa: PLC0415

    gen = model.generation_config
    start = gen.decoder_start_token_id
    start = model.config.decoder_start_token_id if start is None else start
    try:
        whisper_decoder_prompt(gen, start if start is not None else 0, model.config)
    except ValueError as exc:
        where = Path(checkpoint_path) / "generation_config.json"
        key = "language" if str(exc).startswith("language") else "task"
        if key == "language":
            fix = (f"set \"language\" in {where} to one of those (a code such as \"en\", a token such as \"<|en|>\" "
                   "or a name such as \"english\"), or remove it (a multilingual checkpoint then detects the language "
                   "per request)")
        else:
            fix = f"set \"task\" in {where} to one of those, or remove it (transcribe)"
        raise TritonRepoError(f"{where}: {exc}", fix) from None


def pipeline_text(pipe, task: str, data: bytes, max_tokens: int | None = None, chunk_length_s: float = 0,
                  num_beams: int = 1) -> str:
    """transformers' pipeline on the decoded file, called with the arguments the module uses (the golden
    reference): ``pipe(value, chunk_length_s=..., generate_kwargs={"num_beams": 1, "max_new_tokens": ...})`` —
    greedy for encoder-decoders (the ASR pipeline's own default for Whisper is 5 beams)."""
    from tritonrepo.triton_models.audio import decode_audio  # noqa: PLC0415
    from tritonrepo.triton_models.media_generate import MediaGenerator  # noqa: PLC0415

    gen = MediaGenerator(pipe, task, chunk_length_s=chunk_length_s, decode_audio=decode_audio, num_beams=num_beams)
    out = pipe(gen.value(data), **gen.call_kwargs(max_tokens))
    return out[0]["generated_text"] if isinstance(out, list) else out["text"]


def stage_pipeline_task(checkpoint, task: str, version_dir: Path, *, backend: str,
                        parameters: dict[str, str] | None = None, opset: int | None = None) -> GenerationExport:
    """Speech recognition / image-to-text through transformers' pipeline inside the module: ``model.py`` (the
    generate module) with ``tritonrepo_media_generate.py`` (the pipeline's steps, streamed), ``tritonrepo_audio.py``
    and the checkpoint in ``hf_model/``.

    ``--backend onnx`` (Whisper, VisionEncoderDecoder, wav2vec2/HuBERT CTC: :data:`ONNX_MEDIA_EXPORTS`): optimum's
    ``automatic-speech-recognition-with-past`` / ``image-to-text-with-past`` export in ``onnx/``
    (``encoder_model.onnx`` taking ``input_features`` / ``pixel_values`` + ``decoder_model_merged.onnx``) and
    ``tritonrepo_seq2seq_engine.py``, or for CTC the ``automatic-speech-recognition`` export ``onnx/model.onnx``
    (``input_values`` -> ``logits``) and ``tritonrepo_ctc_onnx.py``; ``hf_model/`` without weights; config
    parameters ``media_runtime: onnx``, ``onnx_folder``. The module keeps the pipeline's
    preprocessing/chunking/postprocessing (CTC: strides, argmax, CTC decoding) and runs ``generate`` (CTC: the
    forward pass) on the graphs (``media_generate.onnx_pipeline``); at export the staged graphs must give the
    pipeline's text for the golden sample (:func:`_check_media_parity`).

    A Whisper generation config whose ``language`` / ``task`` is not in its ``lang_to_id`` / ``task_to_id`` is
    refused before anything is built (:func:`check_whisper_prompt`).

    Whisper gets config parameter ``chunk_length_s`` = its feature extractor's window (30 s) unless
    ``parameters`` (the user's ``--parameter``s) set it, so longer audio is chunked as the pipeline does; the
    golden sample is the pipeline's text with the same ``chunk_length_s`` and ``num_beams``.

    Raises:
        TritonRepoError: ``--backend onnx`` for another model type, or with ``num_beams`` > 1; the
            checkpoint does not load as a ``task`` pipeline; a Whisper language/task its generation config does
            not know; the export fails.
        ParityError: ``--backend onnx`` and the graphs' text differs from the pipeline's.
    """
    from transformers import pipeline  # noqa: PLC0415

    try:
        pipe = pipeline(task, model=str(checkpoint.path), device="cpu")
    except (OSError, ValueError, KeyError) as exc:
        raise TritonRepoError(f"{checkpoint.path}: cannot build a {task} pipeline: {exc}") from None
    model_type = getattr(pipe.model.config, "model_type", "")
    if backend == "onnx" and model_type not in ONNX_MEDIA_EXPORTS:
        raise TritonRepoError(f"task {task!r} ({model_type}) is served with --backend python only for now "
                              "(--backend onnx: Whisper, VisionEncoderDecoder, wav2vec2 and HuBERT CTC)",
                              "use --backend python (docs/generation.md)")
    if model_type == "whisper":
        check_whisper_prompt(pipe.model, checkpoint.path)
    parameters = dict(parameters or {})
    params = {"task": task, "model_subfolder": SUBFOLDER, "runtime": "pipeline"}
    if getattr(pipe.model.config, "model_type", "") == "whisper" and "chunk_length_s" not in parameters:
        params["chunk_length_s"] = str(getattr(pipe.feature_extractor, "chunk_length", 30))
    try:
        chunk = float(parameters.get("chunk_length_s", params.get("chunk_length_s", "0")))
        beams = int(parameters.get("num_beams", "1"))
    except ValueError as exc:
        raise TritonRepoError(f"bad config parameter: {exc}",
                              "chunk_length_s is a number of seconds, num_beams an integer") from None
    data = _sample_media(task, pipe)
    ref = pipeline_text(pipe, task, data, chunk_length_s=chunk, num_beams=beams)
    version_dir.mkdir(parents=True, exist_ok=True)
    exporter = "none (transformers pipeline in the Python backend)"
    opset_used = 0
    if backend == "onnx":
        if beams != 1:
            raise TritonRepoError(f"num_beams={beams}: --backend onnx decodes greedily (num_beams=1)",
                                  "drop --parameter num_beams, or use --backend python for beam search")
        export_task = ONNX_MEDIA_EXPORTS[model_type]
        ctc = model_type in CTC_MODEL_TYPES
        opset_used = _export_decoder(pipe.model, version_dir, opset, seq2seq=not ctc, task=export_task)
        _copy_tree(checkpoint.path, version_dir / SUBFOLDER, weights=False)
        _check_media_parity(pipe, task, version_dir, data, ref, chunk)
        params.update(media_runtime="onnx", onnx_folder="onnx")
        graphs = "input_values -> logits" if ctc else "encoder + merged decoder"
        steps = "chunking, strides and CTC decoding" if ctc else "steps"
        exporter = (f"optimum-onnx ({export_task}: {graphs}) + onnxruntime in the generate "
                    f"module, transformers' pipeline {steps} around it")
    else:
        _copy_tree(checkpoint.path, version_dir / SUBFOLDER, weights=True)
    pkg = resources.files("tritonrepo") / "triton_models"
    if backend == "onnx":
        engine = "ctc_onnx" if model_type in CTC_MODEL_TYPES else "seq2seq_engine"
        (version_dir / f"tritonrepo_{engine}.py").write_bytes((pkg / f"{engine}.py").read_bytes())
    (version_dir / "model.py").write_bytes((pkg / "generate.py").read_bytes())
    (version_dir / "tritonrepo_generate_engine.py").write_bytes((pkg / "generate_engine.py").read_bytes())
    (version_dir / "tritonrepo_audio.py").write_bytes((pkg / "audio.py").read_bytes())
    (version_dir / "tritonrepo_media_generate.py").write_bytes((pkg / "media_generate.py").read_bytes())
    key = "image" if task == "image-to-text" else "audio"
    sample = ({key: np.array([data], dtype=object)}, {"text_output": np.array([ref.encode()], dtype=object)})
    return GenerationExport(inputs=[], outputs=[], batching=False, samples=[sample], opset=opset_used,
                            exporter=exporter, parameters=params)


def _check_media_parity(pipe, task: str, version_dir: Path, data: bytes, ref: str, chunk_length_s: float) -> None:
    """The staged ONNX model (``version_dir``: ``hf_model/`` without weights, ``onnx/``) run exactly as the module
    runs it (:func:`~tritonrepo.triton_models.media_generate.onnx_pipeline` + ``MediaGenerator``) must give the
    PyTorch pipeline's (``pipe``) greedy text for the golden sample ``data``: ``ref`` (no ``max_tokens``: the
    generation config's length) and with ``max_tokens`` = :data:`GOLDEN_MAX_TOKENS` (a CTC model ignores it:
    its text is one forward pass's argmax, decoded).

    Raises:
        ParityError: a text differs.
    """
    from tritonrepo.triton_models.audio import decode_audio  # noqa: PLC0415
    from tritonrepo.triton_models.media_generate import MediaGenerator, onnx_pipeline  # noqa: PLC0415

    onnx_pipe = onnx_pipeline(task, str(version_dir / SUBFOLDER), str(version_dir))
    try:
        gen = MediaGenerator(onnx_pipe, task, chunk_length_s=chunk_length_s, decode_audio=decode_audio)
        for max_tokens in (None, GOLDEN_MAX_TOKENS):
            want = ref if max_tokens is None else pipeline_text(pipe, task, data, max_tokens, chunk_length_s)
            got = gen.run(data, max_tokens)
            if got != want:
                what = "encoder-decoder's greedy" if gen.generative else "CTC model's"
                raise ParityError(f"the ONNX {what} text differs from transformers' pipeline for "
                                  f"the golden {task} sample (max_tokens {max_tokens}): {got!r} != {want!r}",
                                  "use --backend python")
    finally:
        onnx_pipe.tritonrepo_engine.shutdown()


def stage_generation(checkpoint, task: str, version_dir: Path, *, backend: str, opset: int | None = None,
                     threads: int = 0) -> GenerationExport:
    """Fill ``version_dir`` with ``model.py`` (the generate module), its engine(s), ``hf_model/`` and, for ONNX,
    ``onnx/model.onnx`` (decoder-only) or ``onnx/encoder_model.onnx`` + ``onnx/decoder_model_merged.onnx``
    (encoder-decoder, :func:`_stage_seq2seq`); compute the golden samples (transformers' greedy text).

    Raises:
        TritonRepoError: the checkpoint does not load as a causal / seq2seq LM, or the export fails.
        ParityError: the ONNX graphs' greedy text (through tritonrepo's engine) differs from transformers'.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer  # noqa: PLC0415

    seq2seq = task not in DECODER_TASKS
    auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    try:
        model = auto.from_pretrained(checkpoint.path).eval()
        tokenizer = AutoTokenizer.from_pretrained(checkpoint.path)
    except (OSError, ValueError, KeyError) as exc:
        raise TritonRepoError(f"{checkpoint.path}: cannot load {auto.__name__} and its tokenizer: {exc}") from None
    refs = reference_texts(model, tokenizer, GOLDEN_PROMPTS, GOLDEN_MAX_TOKENS)
    version_dir.mkdir(parents=True, exist_ok=True)
    parameters = {"task": task, "model_subfolder": SUBFOLDER, "runtime": "seq2seq" if seq2seq else "torch",
                  "default_max_tokens": "16"}
    if threads:
        parameters["torch_threads"] = str(threads)
    opset_used, exporter = 0, "none (PyTorch in the Python backend)"
    if seq2seq:
        opset_used, exporter = _stage_seq2seq(model, tokenizer, refs, version_dir, parameters, backend, opset)
    elif backend == "onnx":
        from tritonrepo.triton_models.generate_engine import OrtRunner  # noqa: PLC0415

        opset_used = _export_decoder(model, version_dir, opset)
        runner = OrtRunner(str(version_dir / ONNX_FILE))
        got = engine_texts(runner, tokenizer, _eos_ids(model), GOLDEN_PROMPTS, GOLDEN_MAX_TOKENS)
        bad = [(p, g, r) for p, g, r in zip(GOLDEN_PROMPTS, got, refs) if g != r]
        if bad:
            p, g, r = bad[0]
            raise ParityError(
                f"the ONNX decoder's greedy text differs from transformers' for {p!r}: {g!r} != {r!r}",
                "use --backend python",
            )
        parameters.update(runtime="onnx", onnx_file=ONNX_FILE)
        exporter = "optimum-onnx (text-generation-with-past) + onnxruntime in the generate module"
    _copy_tree(checkpoint.path, version_dir / SUBFOLDER, weights=backend != "onnx")
    pkg = resources.files("tritonrepo") / "triton_models"
    (version_dir / "model.py").write_bytes((pkg / "generate.py").read_bytes())
    (version_dir / "tritonrepo_generate_engine.py").write_bytes((pkg / "generate_engine.py").read_bytes())
    if seq2seq:
        (version_dir / "tritonrepo_seq2seq_engine.py").write_bytes((pkg / "seq2seq_engine.py").read_bytes())
    samples = []
    for prompt, ref in zip(GOLDEN_PROMPTS, refs):
        samples.append((
            {"text_input": np.array([prompt.encode()], dtype=object),
             "max_tokens": np.array([GOLDEN_MAX_TOKENS], dtype=np.int32),
             "exclude_input_in_output": np.array([True])},
            {"text_output": np.array([ref.encode()], dtype=object)},
        ))
    return GenerationExport(
        inputs=[], outputs=[], batching=False, samples=samples, opset=opset_used, exporter=exporter,
        parameters=parameters,
    )


def _stage_seq2seq(model, tokenizer, refs: list[str], version_dir: Path, parameters: dict, backend: str,
                   opset: int | None) -> tuple[int, str]:
    """Encoder-decoder: export the ONNX graphs (``--backend onnx``) and check that the batched engine
    (:mod:`tritonrepo.triton_models.seq2seq_engine`, the golden prompts decoded together) gives transformers'
    greedy text ``refs``. Updates ``parameters`` (``runtime``, ``onnx_folder``); returns ``(opset, exporter)``.

    Raises:
        TritonRepoError: the export fails.
        ParityError: ``--backend onnx`` and the ONNX graphs' greedy text differs from transformers'.
    """
    from tritonrepo.triton_models.seq2seq_engine import (  # noqa: PLC0415
        GenerationRules,
        Seq2SeqEngine,
        Seq2SeqOrtRunner,
        Seq2SeqTorchRunner,
    )

    eos = _eos_ids(model)
    rules = GenerationRules.from_configs(model.generation_config, model.config, eos)
    opset_used = 0
    if backend == "onnx":
        opset_used = _export_decoder(model, version_dir, opset, seq2seq=True)
        runner = Seq2SeqOrtRunner(str(version_dir / "onnx"))
    else:
        runner = Seq2SeqTorchRunner(model)
    engine = Seq2SeqEngine(runner, tokenizer, eos, rules)
    got = engine_texts(runner, tokenizer, eos, GOLDEN_PROMPTS, GOLDEN_MAX_TOKENS, engine=engine)
    bad = [(p, g, r) for p, g, r in zip(GOLDEN_PROMPTS, got, refs) if g != r]
    if backend == "onnx":
        if bad:
            p, g, r = bad[0]
            raise ParityError(
                f"the ONNX encoder-decoder's greedy text differs from transformers' for {p!r}: {g!r} != {r!r}",
                "use --backend python",
            )
        parameters.update(runtime="seq2seq-onnx", onnx_folder="onnx")
        return opset_used, ("optimum-onnx (text2text-generation-with-past: encoder + merged decoder) + "
                            "onnxruntime in the generate module, batched")
    if bad:  # a generation_config rule the batched engine does not apply: transformers' generate(), serially
        parameters.update(runtime="seq2seq-generate")
        return 0, "none (PyTorch: transformers' generate() in the Python backend, one request at a time)"
    return 0, "none (PyTorch in the Python backend, batched encoder-decoder engine)"


def add_generation(checkpoint, task: str, name: str, options, tmp: Path):
    """Stage generative model ``name`` into ``tmp/name`` (files, config, manifest) for ``add-hf``.

    Args:
        checkpoint: a resolved :class:`tritonrepo.checkpoint.Checkpoint`.
        task: a task of :data:`DECODER_TASKS`.
        name: the model name.
        options: :class:`tritonrepo.add.AddOptions` (``repo``, ``backend``, ``version``, ``settings``,
            ``opset``, ``force``).
        tmp: the staging folder; :func:`tritonrepo.repository.commit_model` moves ``tmp/name`` into place.

    Returns:
        :class:`tritonrepo.add.AddResult`; the manifest's golden samples hold ``text_input`` /
        ``max_tokens`` / ``exclude_input_in_output`` and the greedy PyTorch ``text_output``.

    Raises:
        TritonRepoError: unsupported task, the version exists without ``force``, the checkpoint or export fails.
        ParityError: ONNX greedy text differs from PyTorch's.
    """
    from tritonrepo.add import AddResult, _record, write_staged_model  # noqa: PLC0415
    from tritonrepo.manifest import GoldenSample, array_to_tensor, hash_files  # noqa: PLC0415
    from tritonrepo.repository import free_version  # noqa: PLC0415

    if not is_generation_task(task):
        raise TritonRepoError(f"task {task!r} is not a generation task tritonrepo serves",
                              f"use one of: {', '.join(DECODER_TASKS + SEQ2SEQ_TASKS)}")
    model_dir = Path(options.repo) / name
    ver = free_version(model_dir, options.version, force=options.force)
    stage = tmp / name
    vdir = stage / str(ver)
    if task in PIPELINE_TASKS:
        result = stage_pipeline_task(checkpoint, task, vdir, backend=options.backend,
                                     parameters=dict(options.settings.parameters or {}), opset=options.opset)
        cfg = generation_config(name, options.settings, result.parameters or {}, inputs=pipeline_inputs(task))
    else:
        result = stage_generation(checkpoint, task, vdir, backend=options.backend, opset=options.opset)
        cfg = generation_config(name, options.settings, result.parameters or {})
    first = (result.samples[0][0], result.samples[0][1])
    export_like = GenerationExport(**{**result.__dict__, "samples": first})
    record = _record(checkpoint, task, options, "python", ver, export_like,
                     hash_files(vdir, relative_to=stage))
    record.samples[0].atol = 0.0
    for i, (ins, outs) in enumerate(result.samples[1:], start=1):
        record.samples.append(GoldenSample(
            name=f"trial-{i}", inputs=[array_to_tensor(k, v) for k, v in ins.items()],
            outputs=[array_to_tensor(k, v) for k, v in outs.items()], atol=0.0,
        ))
    write_staged_model(stage, model_dir, cfg, record)
    if task in PIPELINE_TASKS:
        flag = "--image FILE" if task == "image-to-text" else "--audio FILE"
        note = f"generation model (decoupled): query it with tritonrepo infer NAME {flag} --protocol grpc [--stream]"
    else:
        note = "generation model (decoupled): query it with /v2/models/NAME/generate or tritonrepo infer --text"
    return AddResult(model_dir, ver, cfg, export_like, checkpoint, task, [note])


def build_from_spec(checkpoint, spec, name: str, options, tmp: Path):
    """The task registry's builder for ``generate`` entries (:mod:`tritonrepo.tasks.generation`).

    Same contract as :func:`tritonrepo.add.stage_hf_model`: stages model ``name`` into ``tmp/name`` and returns
    its :class:`tritonrepo.add.AddResult`; see :func:`add_generation` for what is built and the errors raised.
    """
    return add_generation(checkpoint, spec.task, name, options, tmp)
