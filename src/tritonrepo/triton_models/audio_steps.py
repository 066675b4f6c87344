"""Audio pipeline steps in Triton's Python backend (copied as ``<version>/model.py``, with ``audio.py`` copied
beside it as ``tritonrepo_audio.py``), as transformers' ``audio-classification`` pipeline does them.

A fixed module; the config ``parameters`` say which step it is (``kind``):

* ``audio-preprocess`` — ``audio`` (``TYPE_STRING`` ``[batch, 1]``: the bytes of a WAV, FLAC or OGG file) ->
  decoded to mono and resampled to the feature extractor's ``sampling_rate``
  (:func:`tritonrepo.triton_models.audio.decode_audio`: soundfile + soxr), then the checkpoint's feature
  extractor (in ``processor_subfolder``; transformers' numpy path): the configured outputs among
  ``input_values`` (wav2vec2/HuBERT: normalised samples ``FP32 [batch, samples]``; AST: log-mel filterbank
  ``FP32 [batch, frames, mel bins]``) and ``attention_mask``. Several clips in one request are padded to the
  longest, as the feature extractor pads; the pipeline processes one clip at a time, so send one clip per
  request for its exact results with models that ignore padding masks (wav2vec2 base).
* ``audio-classification`` — ``logits`` ``[batch, labels]`` -> ``labels`` (``TYPE_STRING [batch, top_k]``) and
  ``scores`` (``FP32 [batch, top_k]``), best first, as the pipeline's list of ``{"label", "score"}``:
  ``function_to_apply`` ``softmax`` (default), ``sigmoid`` or ``none``; ``top_k`` (parameter; default: every
  label) overridden per request by the optional ``top_k`` input (``INT32 [batch, 1]``, one value per request),
  as the pipeline's ``top_k`` argument.

Labels come from ``labels_file`` (the checkpoint's ``config.json``, ``id2label``). The postprocessing uses numpy
only. A request that fails (undecodable audio) gets an error response and the model keeps serving.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

try:
    from tritonrepo_limits import Limits
    from tritonrepo_runtime import RequestError, execute_batched, media_step_setup
except ImportError:  # imported from the tritonrepo package (tests, docs)
    from tritonrepo.triton_models.limits import Limits
    from tritonrepo.triton_models.runtime import RequestError, execute_batched, media_step_setup
try:
    from tritonrepo_audio import AudioError, decode_audio
except ImportError:
    from tritonrepo.triton_models.audio import AudioError, decode_audio

KINDS = ("audio-preprocess", "audio-classification")


def activate(logits, function):
    """``softmax`` (float64, last axis), ``sigmoid`` or ``none`` (the logits as they are)."""
    x = np.asarray(logits, dtype=np.float64)
    if function == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if function == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if function == "none":
        return x
    raise ValueError(f"unknown function_to_apply '{function}'; use softmax, sigmoid or none")


def top_labels(logits, id2label, top_k=None, function="softmax"):
    """``logits`` ``[batch, labels]`` -> ``(labels [batch, k] object of bytes, scores [batch, k] float64)``, best first.

    Ties keep the lower label id first (``np.argsort`` stable on negated scores), as ``torch.topk`` on CPU does.
    """
    probs = activate(logits, function)
    k = probs.shape[-1] if not top_k else min(int(top_k), probs.shape[-1])
    order = np.argsort(-probs, axis=-1, kind="stable")[..., :k]
    scores = np.take_along_axis(probs, order, axis=-1)
    labels = np.vectorize(lambda i: id2label.get(int(i), f"LABEL_{int(i)}").encode("utf-8"), otypes=[object])(order)
    return labels, scores


def ast_fbank(extractor, waveform, max_length):
    """``ASTFeatureExtractor._extract_fbank_features`` without torch (transformers pads with ``torch.nn`` even on
    its numpy path): the same ``audio_utils.spectrogram`` call (Kaldi-compatible log-mel filterbank), then zero
    padding / truncation to ``max_length`` frames (transformers
    ``models/audio_spectrogram_transformer/feature_extraction_audio_spectrogram_transformer.py``)."""
    from transformers.audio_utils import spectrogram

    fbank = spectrogram(
        np.squeeze(waveform), extractor.window, frame_length=400, hop_length=160, fft_length=512, power=2.0,
        center=False, preemphasis=0.97, mel_filters=extractor.mel_filters, log_mel="log",
        mel_floor=1.192092955078125e-07, remove_dc_offset=True,
    ).T
    if fbank.shape[0] < max_length:
        return np.pad(fbank, ((0, max_length - fbank.shape[0]), (0, 0)))
    return fbank[:max_length]


def decode_clips(array, sampling_rate, limits=None):
    """``TYPE_STRING`` array of encoded audio files -> list of mono ``float32`` clips, each checked against
    ``limits`` (:class:`tritonrepo_limits.Limits`: bytes and duration from the header) before decoding.

    Raises:
        RequestError: a clip over a limit (HTTP 400) or not decodable.
    """
    limits = limits or Limits()
    clips = []
    for i, blob in enumerate(np.asarray(array, dtype=object).reshape(-1)):
        data = limits.audio(blob, i)
        try:
            clips.append(decode_audio(data, sampling_rate, max_seconds=float(limits.values["max_audio_seconds"])))
        except AudioError as exc:
            raise RequestError(f"audio {i}: {exc}") from None
    return clips


class AudioSteps:
    """One audio step, independent of Triton (the stub's model and the tests use it).

    Args:
        kind: one of :data:`KINDS`.
        version_dir: the folder holding ``processor_subfolder`` and ``labels_file``.
        params: the config ``parameters``.
        outputs: the configured output names (the preprocessing returns exactly these).
    """

    def __init__(self, kind, version_dir, params, outputs):
        if kind not in KINDS:
            raise ValueError(f"unknown audio step kind '{kind}'; expected one of {', '.join(KINDS)}")
        self.kind, self.outputs = kind, list(outputs)
        self.limits = Limits(params)
        self.function = params.get("function_to_apply", "softmax")
        self.top_k = int(params.get("top_k", "0") or 0)
        self.id2label = {}
        labels_file = params.get("labels_file", "")
        if labels_file:
            with open(os.path.join(version_dir, labels_file), encoding="utf-8") as f:
                self.id2label = {int(k): v for k, v in json.load(f).get("id2label", {}).items()}
        if kind == "audio-preprocess":
            from transformers import AutoFeatureExtractor

            folder = os.path.join(version_dir, params.get("processor_subfolder", "processor"))
            self.extractor = AutoFeatureExtractor.from_pretrained(folder)
            self.sampling_rate = int(self.extractor.sampling_rate)
            from transformers.utils import is_speech_available

            if type(self.extractor).__name__ == "ASTFeatureExtractor" and not is_speech_available():
                # transformers' numpy path, minus its torch padding (equal arrays, tests/test_steps_media.py)
                self.extractor._extract_fbank_features = lambda waveform, max_length: ast_fbank(
                    self.extractor, waveform, max_length)

    def run(self, a):
        """``{input name: array}`` -> ``{output name: array}``."""
        if self.kind == "audio-preprocess":
            clips = decode_clips(a["audio"], self.sampling_rate, self.limits)
            kwargs = {"padding": True} if len(clips) > 1 else {}
            enc = self.extractor(clips, sampling_rate=self.sampling_rate, return_tensors="np", **kwargs)
            missing = [n for n in self.outputs if n not in enc]
            if missing:
                raise RequestError(f"the feature extractor produced no {missing}")
            return {n: np.asarray(enc[n]) for n in self.outputs}
        return dict(zip(("labels", "scores"), top_labels(a["logits"], self.id2label, self.request_top_k(a), self.function)))

    def request_top_k(self, a):
        """The request's optional ``top_k`` input (one value for the whole request), else the ``top_k`` parameter.

        Raises:
            RequestError: rows with different values, or a value below 1.
        """
        if a.get("top_k") is None:
            return self.top_k
        values = {int(v) for v in np.asarray(a["top_k"]).reshape(-1)}
        if len(values) != 1 or min(values) < 1:
            raise RequestError(f"top_k must be one value >= 1 for the whole request, got {sorted(values)}")
        return values.pop()


class TritonPythonModel:
    """An audio pre/postprocessing step (see the module docstring)."""

    def initialize(self, args):
        self.io, version_dir, params = media_step_setup(args)
        self.steps = AudioSteps(self.io.parameter("kind"), version_dir, params, list(self.io.outputs))

    def execute(self, requests):
        """One response per request (clips of one request are padded together, never with other requests')."""
        # never stacked: clips of one request are padded together, and top_k is per request
        return execute_batched(requests, self.io, self.steps.run, stack=False)

    def finalize(self):
        self.steps = None
