"""Audio bytes -> mono float32 samples at a model's sampling rate (copied next to the audio pipeline modules).

Clients send audio as the bytes of a WAV, FLAC or OGG/Vorbis file in a ``TYPE_STRING`` tensor (like images as
encoded bytes); :func:`decode_audio` decodes them with ``soundfile`` (libsndfile), averages the channels and
resamples with ``soxr`` (the "HQ" quality) to the feature extractor's ``sampling_rate``. transformers' own
pipelines resample with torchaudio, which cannot be installed beside torch 2.13 here; tests therefore compare
with the pipeline fed the array this function returns.
"""

from __future__ import annotations

import io

import numpy as np

#: Refuse audio longer than this many seconds (after decoding) with a clear error instead of exhausting memory.
DEFAULT_MAX_SECONDS = 600.0


class AudioError(ValueError):
    """The bytes are not a decodable audio file, or the audio is empty or too long."""


def decode_audio(data: bytes, sampling_rate: int, max_seconds: float = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """Decode an encoded audio file to mono samples at ``sampling_rate``.

    Args:
        data: the bytes of a WAV/FLAC/OGG file (any format libsndfile reads).
        sampling_rate: the target rate in Hz (the feature extractor's ``sampling_rate``, e.g. 16000).
        max_seconds: the longest audio accepted, in seconds.

    Returns:
        ``float32`` array of shape ``[samples]``, values in [-1, 1].

    Raises:
        AudioError: undecodable bytes, no samples, or longer than ``max_seconds``.
    """
    import soundfile as sf

    if not data:
        raise AudioError("empty audio: send the bytes of a WAV, FLAC or OGG file")
    try:
        with sf.SoundFile(io.BytesIO(bytes(data))) as f:
            if f.frames > max_seconds * f.samplerate:
                raise AudioError(f"audio of {f.frames / f.samplerate:.1f} s is longer than the {max_seconds:g} s allowed")
            samples = f.read(dtype="float32", always_2d=True)
            rate = f.samplerate
    except AudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - libsndfile raises RuntimeError/LibsndfileError/TypeError
        raise AudioError(f"cannot decode audio ({type(exc).__name__}: {exc}); send WAV, FLAC or OGG bytes") from None
    mono = samples.mean(axis=1, dtype=np.float32)
    if mono.size == 0:
        raise AudioError("the audio file holds no samples")
    if rate != sampling_rate:
        import soxr

        mono = soxr.resample(mono, rate, sampling_rate, quality="HQ").astype(np.float32, copy=False)
    return mono


def encode_wav(samples: np.ndarray, sampling_rate: int) -> bytes:
    """``float32`` mono samples -> the bytes of a 16-bit PCM WAV file (for clients, tests and golden samples)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(samples, dtype=np.float32), sampling_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
