"""Speech recognition and image-to-text through transformers' pipeline, streamed token by token (copied beside
the generate module as ``tritonrepo_media_generate.py``).

No Triton import: tested in-process and used by :mod:`tritonrepo.triton_models.generate` (runtime
``pipeline``). :class:`MediaGenerator` runs the pipeline's own three steps — ``preprocess`` (for a
``ChunkPipeline`` such as automatic-speech-recognition, one item per audio chunk), ``forward`` (``model.generate``
for Whisper and VisionEncoderDecoder, a CTC forward pass for wav2vec2), ``postprocess`` — exactly as
``Pipeline.run_single`` / ``ChunkPipeline.run_single`` do (transformers ``pipelines/base.py``), with the
parameters ``Pipeline.__call__`` computes (``_sanitize_parameters`` fused with the pipeline's defaults), so the
final text is the pipeline's.

Streaming (generative models: ``model.config.is_encoder_decoder``):

* one chunk (any image; audio without ``chunk_length_s`` or shorter than it): a streamer passed to ``generate``
  receives every new token; the generated ids are decoded with ``skip_special_tokens=True`` and the new suffix
  is emitted (an incomplete UTF-8 character, ``\\ufffd`` at the end, is held back), one piece per token;
* several audio chunks (Whisper, ``chunk_length_s``): the pipeline merges the chunks' token sequences at the
  end (``_find_longest_common_sequence`` in transformers' ``tokenization_whisper.py``); merging chunk ``k``
  can only rewrite tokens of chunk ``k - 1``'s tail (at most that chunk's own tokens). After each chunk the
  text of the chunks so far (the pipeline's ``postprocess`` on them) is emitted up to that bound, so a piece
  is never taken back; the rest comes with the final response.

The last piece is the final text minus what was sent; the concatenation of the pieces equals the final text.
CTC models (wav2vec2) answer in one response (their text exists only after the whole forward pass).
Cancellation (``cancelled()`` true) stops ``generate`` at the next token and skips the remaining chunks.
"""

from __future__ import annotations

import io
from collections.abc import Callable

IMAGE_TASK = "image-to-text"


class MediaRequestError(ValueError):
    """A problem with one request (undecodable bytes, a bad ``max_tokens``): that request's error response."""


class Cancelled(Exception):
    """The client went away (raised out of the pipeline's generate to stop it)."""


def decode_image(data: bytes):
    """Encoded image bytes (PNG, JPEG, ... anything PIL reads) -> an RGB ``PIL.Image``.

    Raises:
        MediaRequestError: the bytes are not an image PIL can decode.
    """
    from PIL import Image  # noqa: PLC0415

    try:
        img = Image.open(io.BytesIO(bytes(data)))
        img.load()
        return img.convert("RGB")
    except Exception as exc:  # noqa: BLE001 - PIL raises several types
        raise MediaRequestError(f"image: cannot decode the bytes ({type(exc).__name__}: {exc}); "
                                "send the bytes of a PNG, JPEG, ... file") from None


class _TextStream:
    """Incremental detokenization shared by the token and chunk paths: ``sent`` is the text emitted so far."""

    def __init__(self, emit: Callable[[str], None] | None) -> None:
        self.emit = emit
        self.sent = ""

    def offer(self, text: str, upto: int | None = None) -> None:
        """Emit ``text[len(sent):upto]`` if ``text`` extends what was sent (holding back a trailing ``\\ufffd``)."""
        if self.emit is None or not text.startswith(self.sent):
            return
        end = len(text) if upto is None else min(upto, len(text))
        while end > len(self.sent) and text[end - 1] == "\ufffd":
            end -= 1
        if end > len(self.sent):
            piece = text[len(self.sent):end]
            self.sent = text[:end]
            self.emit(piece)


class _TokenStreamer:
    """transformers' streamer protocol (``put(ids)``, ``end()``): the first ``put`` of each ``generate`` call holds
    the decoder's start tokens; every later one a new token, appended to ``tokens`` and, with one chunk, offered
    as text. Module-level classes on purpose: a class defined per request is cyclic garbage that keeps the
    request's response sender alive until a garbage collection, and collecting a sender while the stub exits
    hung the Python backend's unload (Triton 2.51)."""

    def __init__(self, tokens: list[int], stream: _TextStream, tokenizer, chunked: list[bool]) -> None:
        self.tokens, self.stream, self.tokenizer, self.chunked = tokens, stream, tokenizer, chunked
        self.prompt = True

    def put(self, value) -> None:
        if self.prompt:
            self.prompt = False
            return
        self.tokens.append(int(value.reshape(-1)[-1]))
        if not self.chunked[0]:
            self.stream.offer(self.tokenizer.decode(self.tokens, skip_special_tokens=True))

    def end(self) -> None:
        self.prompt = True


_CANCEL_CLASS: list = []


def _cancel_criterion():
    """The ``StoppingCriteria`` subclass (built once, transformers imported lazily) whose instances raise
    :class:`Cancelled` when ``cancelled()`` is true, and otherwise never stop generation."""
    if not _CANCEL_CLASS:
        import torch  # noqa: PLC0415
        from transformers import StoppingCriteria  # noqa: PLC0415

        class CancelCriterion(StoppingCriteria):
            def __init__(self, cancelled) -> None:
                self.cancelled = cancelled

            def __call__(self, input_ids, scores, **kwargs):
                if self.cancelled():
                    raise Cancelled()
                return torch.zeros((input_ids.shape[0],), dtype=torch.bool)

        _CANCEL_CLASS.append(CancelCriterion)
    return _CANCEL_CLASS[0]


class MediaGenerator:
    """Runs a speech-recognition or image-to-text ``transformers.pipeline`` on one file's bytes.

    Args:
        pipe: the pipeline (``pipeline(task, model=folder, device="cpu")``).
        task: ``"automatic-speech-recognition"`` or ``"image-to-text"``.
        chunk_length_s: audio only; > 0: the pipeline's chunking of long audio (its ``chunk_length_s``, stride
            ``chunk_length_s / 6`` on each side). Whisper needs it for audio over 30 s (its window).
        decode_audio: ``fn(bytes, rate) -> float32 samples`` (``tritonrepo_audio.decode_audio``); raises
            ``ValueError`` for undecodable bytes.
        num_beams: generative models: 1 (default) = greedy decoding, streamable token by token. The ASR
            pipeline's own default for Whisper is 5-beam search (OpenAI's choice,
            ``AutomaticSpeechRecognitionPipeline._default_generation_config``); > 1 gives it back, answered in
            one piece (a beam's tokens are not final until the search ends).
    """

    def __init__(self, pipe, task: str, chunk_length_s: float = 0.0, decode_audio=None, num_beams: int = 1) -> None:
        self.pipe, self.task = pipe, task
        self.chunk_length_s = chunk_length_s
        self.num_beams = max(1, int(num_beams))
        self.decode_audio = decode_audio
        self.generative = bool(getattr(pipe.model.config, "is_encoder_decoder", False))

    def value(self, data: bytes):
        """The pipeline's input for the file's bytes: an RGB image, or ``{"raw": samples, "sampling_rate": r}``.

        Raises:
            MediaRequestError: undecodable bytes.
        """
        if self.task == IMAGE_TASK:
            return decode_image(data)
        rate = int(self.pipe.feature_extractor.sampling_rate)
        try:
            return {"raw": self.decode_audio(bytes(data), rate), "sampling_rate": rate}
        except ValueError as exc:
            raise MediaRequestError(f"audio: {exc}") from None

    def call_kwargs(self, max_tokens: int | None) -> dict:
        """Keyword arguments of the pipeline call (the golden reference calls ``pipe(value, **these)``)."""
        kwargs: dict = {}
        if self.task != IMAGE_TASK and self.chunk_length_s:
            kwargs["chunk_length_s"] = self.chunk_length_s
        if self.generative:
            kwargs["generate_kwargs"] = {"num_beams": self.num_beams}
            if max_tokens is not None:
                kwargs["generate_kwargs"]["max_new_tokens"] = int(max_tokens)
        return kwargs

    def run(self, data: bytes, max_tokens: int | None = None, emit: Callable[[str], None] | None = None,
            cancelled: Callable[[], bool] = lambda: False) -> str:
        """Transcribe/caption the file; call ``emit(piece)`` for each streamed piece (see the module docstring).

        Returns:
            The final text (the pipeline's ``text`` / ``generated_text``); what ``emit`` received is a prefix of it.

        Raises:
            MediaRequestError: undecodable bytes, ``max_tokens <= 0``.
            Cancelled: ``cancelled()`` became true.
        """
        if max_tokens is not None and max_tokens <= 0:
            raise MediaRequestError(f"max_tokens must be > 0, got {max_tokens}")
        value = self.value(data)
        pipe = self.pipe
        stream = _TextStream(emit)
        kwargs = self.call_kwargs(max_tokens)
        tokens: list[int] = []  # the current generate call's new tokens
        chunked = [False]  # several audio chunks: text is offered per chunk, not per token
        streaming = self.generative and self.num_beams == 1
        if streaming:
            kwargs["generate_kwargs"].update(self._generate_hooks(tokens, stream, cancelled, chunked))
        pre, fwd, post = pipe._sanitize_parameters(**kwargs)  # as Pipeline.__call__ does
        pre = {**pipe._preprocess_params, **pre}
        fwd = {**pipe._forward_params, **fwd}
        post = {**pipe._postprocess_params, **post}
        from transformers.pipelines.base import ChunkPipeline  # noqa: PLC0415

        if not isinstance(pipe, ChunkPipeline):
            result = pipe.postprocess(pipe.forward(pipe.preprocess(value, **pre), **fwd), **post)
        else:
            items = iter(pipe.preprocess(value, **pre))
            outputs = []
            item = next(items)
            chunked[0] = not item.get("is_last", True)
            while item is not None:
                if cancelled():
                    raise Cancelled()
                tokens.clear()
                outputs.append(pipe.forward(item, **fwd))
                item = next(items, None)
                if chunked[0] and item is not None and streaming:
                    self._offer_chunks(outputs, post, tokens, stream)
            result = pipe.postprocess(outputs, **post)
        text = result[0]["generated_text"] if isinstance(result, list) else result["text"]
        if emit is not None and stream.sent and not text.startswith(stream.sent):
            raise RuntimeError(f"streamed text {stream.sent!r} is not a prefix of the final text {text!r}")
        return text

    def _generate_hooks(self, tokens: list[int], stream: _TextStream, cancelled, chunked: list[bool]) -> dict:
        """``streamer`` (collects each ``generate`` call's new tokens, emits text in one-chunk mode) and a
        ``stopping_criteria`` that raises :class:`Cancelled` when the client is gone."""
        from transformers import StoppingCriteriaList  # noqa: PLC0415

        streamer = _TokenStreamer(tokens, stream, self.pipe.tokenizer, chunked)
        return {"streamer": streamer, "stopping_criteria": StoppingCriteriaList([_cancel_criterion()(cancelled)])}

    def _offer_chunks(self, outputs: list, post: dict, last_tokens: list[int], stream: _TextStream) -> None:
        """Several chunks: emit the text of the chunks so far up to what merging the next chunk cannot change
        (all but the last chunk's own text length)."""
        partial = self.pipe.postprocess([dict(o) for o in outputs], **post)  # postprocess empties its dicts
        text = partial[0]["generated_text"] if isinstance(partial, list) else partial["text"]
        tail = len(self.pipe.tokenizer.decode(last_tokens, skip_special_tokens=True))
        stream.offer(text, upto=len(text) - tail - 1)

