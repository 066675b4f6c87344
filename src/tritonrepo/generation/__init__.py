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
#: prompts of the golden samples (two lengths).
GOLDEN_PROMPTS = ("hello world", "a model generates text one token at a time, and the server")
GOLDEN_MAX_TOKENS = 16
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
    return task in DECODER_TASKS


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


def generation_config(name: str, settings: ModelSettings, parameters: dict[str, str]) -> mc.ModelConfig:
    """The decoupled model config: ``max_batch_size: 0``, inputs of :data:`INPUTS` (``dims: [1]``, optional where
    vLLM's are), ``text_output`` (``TYPE_STRING``, ``dims: [-1]``), ``model_transaction_policy { decoupled: true }``.

    ``settings.max_batch_size`` becomes the engine's in-flight batch (parameter ``max_batch``), not Triton's
    batching: the module batches sequences itself, as the vLLM backend does.
    """
    params = {"max_batch": str(max(1, settings.max_batch_size or 1)), **parameters, **settings.parameters}
    cfg = build_config(
        name,
        backend="python",
        inputs=[TensorSpec(n, t, (1,)) for n, t, _ in INPUTS],
        outputs=[TensorSpec("text_output", mc.TYPE_STRING, (-1,))],
        settings=ModelSettings(max_batch_size=0, dynamic_batching=False, instance_count=settings.instance_count,
                               device=settings.device, parameters=params),
    )
    for inp, (_, _, optional) in zip(cfg.input, INPUTS):
        inp.optional = optional
    cfg.model_transaction_policy.decoupled = True
    return cfg


def reference_texts(model, tokenizer, prompts, max_new_tokens: int) -> list[str]:
    """transformers' greedy text for each prompt: ``model.generate(do_sample=False)``, new tokens decoded with
    ``skip_special_tokens=True``."""
    import torch  # noqa: PLC0415

    out = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            gen = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id
                                 if tokenizer.pad_token_id is not None else model.config.eos_token_id)
        out.append(tokenizer.decode(gen[0, ids.shape[1]:], skip_special_tokens=True))
    return out


def engine_texts(runner, tokenizer, eos: list[int], prompts, max_new_tokens: int) -> list[str]:
    """Greedy text of tritonrepo's engine (all prompts decoded together) for each prompt."""
    import threading  # noqa: PLC0415

    from tritonrepo.triton_models.generate_engine import Engine, Sampling, Sequence  # noqa: PLC0415

    engine = Engine(runner, tokenizer, eos)
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


def _export_decoder(model, version_dir: Path, opset: int | None) -> int:
    """optimum's ONNX export for ``text-generation-with-past`` into ``version_dir/onnx/``; returns the opset."""
    import onnx  # noqa: PLC0415
    from optimum.exporters.onnx import onnx_export_from_model  # noqa: PLC0415

    out_dir = version_dir.parent / (version_dir.name + ".optimum")
    try:
        onnx_export_from_model(model, out_dir, opset=opset, task="text-generation-with-past", do_validation=False,
                               library_name="transformers")
    except Exception as exc:  # noqa: BLE001 - optimum raises many types; report one line
        raise TritonRepoError(f"optimum could not export the decoder with past key/values: {exc}") from None
    dst = version_dir / "onnx"
    dst.mkdir(parents=True, exist_ok=True)
    for p in out_dir.iterdir():
        if p.suffix in (".onnx", ".onnx_data") or p.name.endswith(".onnx_data"):
            os.replace(p, dst / p.name)
    shutil.rmtree(out_dir, ignore_errors=True)
    if not (dst / "model.onnx").is_file():
        raise TritonRepoError(f"optimum wrote no model.onnx (got {sorted(p.name for p in dst.iterdir())})")
    proto = onnx.load(str(dst / "model.onnx"), load_external_data=False)
    return max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)


def stage_generation(checkpoint, task: str, version_dir: Path, *, backend: str, opset: int | None = None,
                     threads: int = 0) -> GenerationExport:
    """Fill ``version_dir`` with ``model.py`` (the generate module), its engine, ``hf_model/`` and, for ONNX,
    ``onnx/model.onnx``; compute the golden samples (transformers' greedy text).

    Raises:
        TritonRepoError: the checkpoint does not load as a causal LM, or the export fails.
        ParityError: the ONNX decoder's greedy text differs from transformers'.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

    try:
        model = AutoModelForCausalLM.from_pretrained(checkpoint.path).eval()
        tokenizer = AutoTokenizer.from_pretrained(checkpoint.path)
    except (OSError, ValueError, KeyError) as exc:
        raise TritonRepoError(f"{checkpoint.path}: cannot load a causal LM and its tokenizer: {exc}") from None
    refs = reference_texts(model, tokenizer, GOLDEN_PROMPTS, GOLDEN_MAX_TOKENS)
    version_dir.mkdir(parents=True, exist_ok=True)
    parameters = {"task": "text-generation", "model_subfolder": SUBFOLDER, "runtime": "torch",
                  "default_max_tokens": "16"}
    if threads:
        parameters["torch_threads"] = str(threads)
    opset_used, exporter = 0, "none (PyTorch in the Python backend)"
    if backend == "onnx":
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
                              f"use one of: {', '.join(DECODER_TASKS)}")
    model_dir = Path(options.repo) / name
    ver = free_version(model_dir, options.version, force=options.force)
    stage = tmp / name
    vdir = stage / str(ver)
    result = stage_generation(checkpoint, task, vdir, backend=options.backend, opset=options.opset)
    cfg = generation_config(name, options.settings, result.parameters or {})
    first = (result.samples[0][0], result.samples[0][1])
    export_like = GenerationExport(**{**result.__dict__, "samples": first})
    record = _record(checkpoint, "text-generation", options, "python", ver, export_like,
                     hash_files(vdir, relative_to=stage))
    record.samples[0].atol = 0.0
    for i, (ins, outs) in enumerate(result.samples[1:], start=1):
        record.samples.append(GoldenSample(
            name=f"trial-{i}", inputs=[array_to_tensor(k, v) for k, v in ins.items()],
            outputs=[array_to_tensor(k, v) for k, v in outs.items()], atol=0.0,
        ))
    write_staged_model(stage, model_dir, cfg, record)
    return AddResult(model_dir, ver, cfg, export_like, checkpoint, "text-generation",
                     ["generation model (decoupled): query it with /v2/models/NAME/generate or tritonrepo infer --text"])
