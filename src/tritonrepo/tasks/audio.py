"""Audio tasks: audio classification (wav2vec2, HuBERT, AST), one registry entry per task.

Audio is an input kind of its own: sample inputs are synthetic clips of different lengths run through the
checkpoint's feature extractor (wav2vec2, HuBERT: normalised samples ``[batch, samples]``; AST: a log-mel filterbank
``[batch, max_length, num_mel_bins]``, fixed by the config). The pipeline's raw input ``audio`` holds the bytes of
a WAV/FLAC/OGG file; the preprocess step decodes and resamples it (:mod:`tritonrepo.triton_models.audio`,
copied beside the step as ``tritonrepo_audio.py``) and runs the feature extractor; the postprocess step returns
every label with its score, best first, as ``transformers.pipeline("audio-classification")``
(:mod:`tritonrepo.triton_models.audio_steps`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tritonrepo.tasks.registry import PipelineSpec, TaskSpec, TensorDecl, register

_HERE = "tritonrepo.tasks.audio"
_STEPS = "audio_steps.py"
#: Clip lengths in seconds per trial (batch 2 then 3): the sample dim varies.
TRIAL_SECONDS = ((0.5, 0.8), (0.3, 0.6, 1.1))
#: Golden clips: (seconds, sampling rate of the file); the second is resampled by the preprocess step.
GOLDEN_CLIPS = ((0.6, 16000), (1.3, 8000))


def tone(seconds: float, rate: int, seed: int = 0):
    """A deterministic ``float32`` clip: a sine tone plus a little noise, ``seconds`` long at ``rate`` Hz."""
    import numpy as np  # noqa: PLC0415

    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * (220 + 200 * seed) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def audio_inputs(checkpoint, spec, trial: int):
    """The feature extractor's outputs (``input_values`` [, ``attention_mask``]) for clips of different lengths."""
    import numpy as np  # noqa: PLC0415
    from transformers import AutoFeatureExtractor  # noqa: PLC0415

    fe = AutoFeatureExtractor.from_pretrained(str(checkpoint.path))
    rate = int(fe.sampling_rate)
    clips = [tone(s, rate, seed=i + 3 * trial) for i, s in enumerate(TRIAL_SECONDS[trial])]
    enc = fe(clips, sampling_rate=rate, padding=True, return_tensors="np")
    out = {"input_values": np.asarray(enc["input_values"], dtype=np.float32)}
    if "attention_mask" in enc:
        out["attention_mask"] = np.asarray(enc["attention_mask"], dtype=np.int64)
    return out


def golden_clips(checkpoint, spec) -> dict[str, list]:
    """``{"audio": [wav bytes]}``: one clip per request (the pipeline processes one clip at a time, and padding
    changes what models without an attention mask compute)."""
    from tritonrepo.triton_models.audio import encode_wav  # noqa: PLC0415

    seconds, rate = GOLDEN_CLIPS[1]
    return {"audio": [encode_wav(tone(seconds, rate, seed=2), rate)]}


def save_feature_extractor(checkpoint, spec, dst: Path) -> dict[str, str]:
    """Save the feature extractor into ``dst`` and copy the audio decoder beside the step's ``model.py``
    (``tritonrepo_audio.py``); no parameters."""
    from transformers import AutoFeatureExtractor  # noqa: PLC0415

    AutoFeatureExtractor.from_pretrained(str(checkpoint.path)).save_pretrained(dst)
    decoder = resources.files("tritonrepo") / "triton_models" / "audio.py"
    (Path(dst).parent / "tritonrepo_audio.py").write_bytes(decoder.read_bytes())
    return {}


def audio_classification_reference(checkpoint, spec, raw, max_length):
    """``labels`` / ``scores`` ``[batch, num_labels]`` from ``transformers.pipeline("audio-classification")``, fed
    the samples :func:`~tritonrepo.triton_models.audio.decode_audio` returns (torchaudio, the pipeline's own
    resampler, is not installable beside torch 2.13 here)."""
    import numpy as np  # noqa: PLC0415
    from transformers import AutoFeatureExtractor, pipeline  # noqa: PLC0415

    from tritonrepo.export.common import load_torch_model  # noqa: PLC0415
    from tritonrepo.triton_models.audio import decode_audio  # noqa: PLC0415

    fe = AutoFeatureExtractor.from_pretrained(str(checkpoint.path))
    pipe = pipeline("audio-classification", model=load_torch_model(checkpoint, spec), feature_extractor=fe, device="cpu")
    rate = int(fe.sampling_rate)
    results = [pipe({"raw": decode_audio(b, rate), "sampling_rate": rate}) for b in raw["audio"]]
    labels = np.array([[r["label"].encode() for r in res] for res in results], dtype=object)
    scores = np.array([[r["score"] for r in res] for res in results], dtype=np.float32)
    return {"labels": labels, "scores": scores}, None


register(TaskSpec(
    task="audio-classification",
    family="audio",
    model_types=("wav2vec2", "hubert", "audio-spectrogram-transformer"),
    architectures=("Wav2Vec2ForSequenceClassification", "HubertForSequenceClassification", "ASTForAudioClassification"),
    auto_class="AutoModelForAudioClassification",
    sample_inputs=f"{_HERE}:audio_inputs",
    fixed_dims={"input_values": (None,), "logits": ("num_labels",)},
    model_fixed_dims={"audio-spectrogram-transformer": {"input_values": ("max_length", "num_mel_bins")}},
    pipeline=PipelineSpec(
        pre_kind="audio-preprocess",
        pre_module=_STEPS,
        pre_setup=f"{_HERE}:save_feature_extractor",
        raw_inputs=(TensorDecl("audio", "TYPE_STRING", (1,)), TensorDecl("top_k", "TYPE_INT32", (1,), optional=True)),
        post_kind="audio-classification",
        post_module=_STEPS,
        post_inputs=("core.logits", "raw.top_k?"),
        post_outputs=(TensorDecl("labels", "TYPE_STRING", (-1,)), TensorDecl("scores", "TYPE_FP32", (-1,))),
        post_files=("labels",),
        outputs=("post.labels", "post.scores"),
        golden_inputs=f"{_HERE}:golden_clips",
        reference=f"{_HERE}:audio_classification_reference",
    ),
    notes="audio: WAV/FLAC/OGG bytes, resampled to the feature extractor's rate; every label, best first "
          "(or the request's optional 'top_k' best)",
))
