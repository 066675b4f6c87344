"""Request size limits for tritonrepo's Python-backend models (copied as ``tritonrepo_limits.py`` beside ``model.py``).

Runs inside Triton's Python-backend stub, where one slow request holds up every other request of the instance: a
10 MB text took ~21 s to tokenize (100 MB: 85 s and 2.3 GB) before anyone else got an answer. Every payload a
client controls is therefore checked *before* the expensive work, and a payload over a limit gets its own error
response with HTTP status 400 (``INVALID_ARG``, see :class:`ClientError`); the model keeps serving.

Limits (defaults; a config ``parameters`` entry of the same name overrides one, e.g.
``parameters { key: "max_text_bytes" value { string_value: "4194304" } }``):

==================== ============ ===========================================================================
parameter            default      meaning
==================== ============ ===========================================================================
``max_text_bytes``   1 MiB        UTF-8 bytes of one text item; larger: error
``max_text_chars``   32 x tokens  characters of one text kept before tokenizing (``tokens``: the model's
                     (min 4096)   ``max_length``); the tokenizer truncates to ``max_length`` tokens anyway, so
                                  cutting earlier changes nothing unless the kept prefix holds fewer than
                                  ``max_length`` tokens (e.g. thousands of blanks in a row)
``max_image_bytes``  20 MiB       encoded bytes of one image; larger: error
``max_image_pixels`` 40 000 000   width x height of one image, read from its header before decoding
                                  (decompression bombs); larger: error
``max_audio_bytes``  50 MiB       encoded bytes of one audio clip; larger: error
``max_audio_seconds`` 600         duration of one clip, read from its header; longer: error
==================== ============ ===========================================================================

Errors raised: :class:`ClientError` (a ``RequestError`` of ``tritonrepo_runtime``), message naming the item, its
size, the limit and the parameter that changes it.
"""

from __future__ import annotations

import io

try:  # inside a version folder (copied as tritonrepo_limits.py next to tritonrepo_runtime.py)
    from tritonrepo_runtime import RequestError
except ImportError:  # pragma: no cover - imported from the package (docs, tests)
    from tritonrepo.triton_models.runtime import RequestError

MiB = 1 << 20
DEFAULTS = {
    "max_text_bytes": 1 * MiB,
    "max_image_bytes": 20 * MiB,
    "max_image_pixels": 40_000_000,
    "max_audio_bytes": 50 * MiB,
    "max_audio_seconds": 600,
}
#: Characters kept per token of ``max_length`` (and at least this many characters in all).
CHARS_PER_TOKEN, MIN_TEXT_CHARS = 32, 4096


class ClientError(RequestError):
    """The client sent something the model cannot take (too large, not UTF-8, not an image): HTTP 400."""


def _size(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n} bytes"


class Limits:
    """The limits of one model instance, from its config ``parameters`` (see the module docs).

    Args:
        parameters: the config's ``parameters`` as Triton passes them (``{key: {"string_value": text}}``), or a
            plain ``{key: value}`` dict.
        max_length: the tokenizer's truncation length in tokens (``None``: no text truncation before tokenizing).

    Raises:
        ValueError: a limit parameter that is not a positive integer (the model then fails to load, naming it).
    """

    def __init__(self, parameters: dict | None = None, max_length: int | None = None) -> None:
        params = {}
        for key, value in (parameters or {}).items():
            params[key] = value.get("string_value") if isinstance(value, dict) else value
        self.values = {}
        for key, default in {**DEFAULTS, "max_text_chars": None}.items():
            raw = params.get(key)
            if raw is None or raw == "":
                self.values[key] = default
                continue
            try:
                number = int(str(raw).strip())
            except ValueError:
                number = 0
            if number <= 0:
                raise ValueError(f"config parameter '{key}' must be a positive integer, got {raw!r}")
            self.values[key] = number
        if self.values["max_text_chars"] is None and max_length:
            self.values["max_text_chars"] = max(MIN_TEXT_CHARS, CHARS_PER_TOKEN * int(max_length))

    def __getitem__(self, key: str) -> int | None:
        return self.values[key]

    def _over(self, what: str, size: str, key: str, limit: str) -> ClientError:
        return ClientError(f"{what} is {size}, more than the limit of {limit} "
                           f"(config parameter '{key}')")

    def texts(self, array) -> list[str]:
        """The text items of a ``TYPE_STRING`` tensor (any shape, row-major) as ``str``, each checked and cut.

        Raises:
            ClientError: an item larger than ``max_text_bytes``, or not valid UTF-8.
        """
        out = []
        cap, keep = self.values["max_text_bytes"], self.values["max_text_chars"]
        for i, item in enumerate(array.reshape(-1)):
            if isinstance(item, bytes):
                if len(item) > cap:
                    raise self._over(f"text {i}", _size(len(item)), "max_text_bytes", _size(cap))
                if keep is not None and len(item) > 4 * keep:  # never decode more than the kept prefix needs
                    item = item[: 4 * keep]
                    try:
                        text = item.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        if exc.start < len(item) - 3:  # a real error, not a character cut at the end
                            raise ClientError(f"text is not valid UTF-8: {exc}") from None
                        text = item[: exc.start].decode("utf-8")
                else:
                    try:
                        text = item.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise ClientError(f"text is not valid UTF-8: {exc}") from None
            else:
                text = str(item)
                if len(text) > cap:
                    raise self._over(f"text {i}", f"{len(text)} characters", "max_text_bytes", _size(cap))
            out.append(text[:keep] if keep is not None else text)
        return out

    def image(self, blob, index: int = 0):
        """Decode one encoded image (JPEG, PNG, ...) to an RGB ``PIL.Image`` after checking its size.

        Raises:
            ClientError: more than ``max_image_bytes`` or ``max_image_pixels``, or not a decodable image.
        """
        from PIL import Image, UnidentifiedImageError

        data = bytes(blob)
        cap = self.values["max_image_bytes"]
        if len(data) > cap:
            raise self._over(f"image {index}", _size(len(data)), "max_image_bytes", _size(cap))
        try:
            img = Image.open(io.BytesIO(data))
            pixels = img.size[0] * img.size[1]  # from the header: nothing decoded yet
            if pixels > self.values["max_image_pixels"]:
                raise self._over(f"image {index}", f"{img.size[0]}x{img.size[1]} = {pixels} pixels",
                                 "max_image_pixels", f"{self.values['max_image_pixels']} pixels")
            return img.convert("RGB")
        except ClientError:
            raise
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise ClientError(f"image {index} cannot be decoded: {exc}") from None

    def audio(self, blob, index: int = 0) -> bytes:
        """Check one encoded audio clip (WAV, FLAC, OGG) before decoding; returns its bytes.

        Raises:
            ClientError: more than ``max_audio_bytes`` or ``max_audio_seconds``, or a header soundfile cannot read.
        """
        data = bytes(blob)
        cap = self.values["max_audio_bytes"]
        if len(data) > cap:
            raise self._over(f"audio {index}", _size(len(data)), "max_audio_bytes", _size(cap))
        import soundfile

        try:
            info = soundfile.info(io.BytesIO(data))
        except (RuntimeError, TypeError, ValueError) as exc:
            raise ClientError(f"audio {index} cannot be decoded: {exc}") from None
        if info.duration > self.values["max_audio_seconds"]:
            raise self._over(f"audio {index}", f"{info.duration:.0f} s long", "max_audio_seconds",
                             f"{self.values['max_audio_seconds']} s")
        return data
