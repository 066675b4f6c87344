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

``--backend onnx`` (Whisper, VisionEncoderDecoder): :func:`onnx_pipeline` builds the same pipeline on a weightless
shell of the model whose ``generate`` is :class:`EngineGenerate` (optimum's graphs in the encoder-decoder engine
``tritonrepo_seq2seq_engine.py``); everything above applies unchanged. wav2vec2/HuBERT CTC ``--backend onnx``:
the shell's forward is an onnxruntime session instead (``tritonrepo_ctc_onnx.py``).

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


def _sibling(name: str):
    """The module ``name`` of tritonrepo's fixed modules: ``tritonrepo_<name>`` beside ``model.py`` inside Triton,
    else ``tritonrepo.triton_models.<name>`` (in-process). Imported by name, so that ``tritonrepo package`` (which
    reads the imports of a served model's files) does not list tritonrepo as a requirement of the container."""
    import importlib  # noqa: PLC0415

    try:
        return importlib.import_module(f"tritonrepo_{name}")
    except ImportError:
        return importlib.import_module(f"tritonrepo.triton_models.{name}")


class EngineGenerate:
    """``model.generate`` of an ONNX-served encoder-decoder (``--backend onnx``): the pipeline's steps stay
    transformers' (feature extraction / image processing, chunking, chunk merging, decoding), and its only model
    call, ``self.model.generate(inputs, ...)`` in the pipeline's ``_forward``, runs the encoder-decoder engine
    instead (``tritonrepo_seq2seq_engine.py``: optimum's ``encoder_model.onnx`` + ``decoder_model_merged.onnx`` in
    onnxruntime, the decoder prompt and logits rules of the checkpoint's generation config, greedy).

    Called as transformers' pipelines call ``generate``: the encoder input (``input_features`` ``[1, 80, 3000]``
    float32 for Whisper, ``pixel_values`` ``[1, 3, H, W]`` for images) positionally or by its name, and
    ``max_new_tokens`` (else ``generation_config.max_length`` minus the decoder prompt), ``streamer`` (gets the
    prompt, then each new token), ``stopping_criteria`` (a :func:`_cancel_criterion` instance: its
    ``cancelled`` is polled before every step). Other arguments (``attention_mask``, ``num_beams=1``, ...) are
    ignored; ``num_beams > 1`` is refused at ``add-hf``. A ``max_new_tokens`` beyond the decoder's position table
    (less the decoder prompt) raises :class:`MediaRequestError`.

    Returns ``[1, n]`` int64 token ids: the new tokens, and the end-of-sequence token when one ended it (as
    Whisper's ``generate`` returns them).

    Args:
        engine: a ``Seq2SeqEngine`` (its ``rules.prompt`` is the decoder prompt).
        input_name: the encoder graph's input (``input_features`` / ``pixel_values``).
        eos: end-of-sequence ids.
    """

    def __init__(self, engine, input_name: str, eos: list[int]) -> None:
        self.engine, self.input_name, self.eos = engine, input_name, list(eos)

    def __call__(self, inputs=None, generation_config=None, max_new_tokens=None, streamer=None,
                 stopping_criteria=None, **kwargs):
        import threading  # noqa: PLC0415

        import torch  # noqa: PLC0415

        eng = _sibling("generate_engine")
        RequestError, Sampling, Sequence = eng.RequestError, eng.Sampling, eng.Sequence  # noqa: N806
        if inputs is None:
            inputs = kwargs.get(self.input_name)
        prompt = self.engine.rules.prompt
        if max_new_tokens is None:
            max_length = getattr(generation_config, "max_length", None) or 20
            max_new_tokens = max(1, int(max_length) - len(prompt))
        cancelled = next((c.cancelled for c in (stopping_criteria or []) if hasattr(c, "cancelled")), lambda: False)
        done = threading.Event()
        pushed = [0]

        def push(seq) -> None:  # engine thread: every new token to the streamer, in order
            while streamer is not None and pushed[0] < len(seq.tokens):
                streamer.put(torch.tensor([seq.tokens[pushed[0]]]))
                pushed[0] += 1

        def emit(_delta, finished, _error):
            push(seq)
            if finished:
                done.set()

        seq = Sequence([], Sampling(max_tokens=int(max_new_tokens)), emit, cancelled=cancelled, stream=True)
        seq.encoder_inputs = {self.input_name: inputs.detach().cpu().numpy() if hasattr(inputs, "detach")
                              else inputs}
        if streamer is not None:
            streamer.put(torch.tensor([[t for t in prompt if t is not None]]))  # (None: language, detected later)
        try:
            self.engine.submit(seq)
        except RequestError as exc:  # max_tokens beyond the decoder's positions: this request's error
            raise MediaRequestError(str(exc)) from None
        done.wait()
        if streamer is not None:
            streamer.end()
        if seq.finish_reason == "cancelled":
            raise Cancelled()
        if seq.finish_reason == "error":
            raise RuntimeError("the ONNX encoder-decoder failed (see the server log)")
        ids = list(seq.tokens) + ([self.eos[0]] if seq.finish_reason == "stop" and self.eos else [])
        return torch.tensor([ids], dtype=torch.long)


def onnx_pipeline(task: str, folder: str, version_dir: str, onnx_folder: str = "onnx", threads: int = 0):
    """transformers' ``task`` pipeline whose model is a weightless shell (built on the ``meta`` device from
    ``folder``'s config: preprocessing, chunking and postprocessing read only its config) and whose
    ``generate`` is :class:`EngineGenerate` on optimum's ONNX graphs in ``version_dir/onnx_folder``. A CTC
    checkpoint (wav2vec2, HuBERT: not an encoder-decoder) gets ``tritonrepo_ctc_onnx.ctc_onnx_pipeline`` instead
    (the shell's forward is an onnxruntime session on ``model.onnx``).

    Raises:
        FileNotFoundError: no encoder/decoder graph in the ONNX folder.
    """
    import os  # noqa: PLC0415

    import torch  # noqa: PLC0415
    from transformers import AutoConfig, GenerationConfig, pipeline  # noqa: PLC0415

    cfg = AutoConfig.from_pretrained(folder)
    if task != IMAGE_TASK and not getattr(cfg, "is_encoder_decoder", False):  # wav2vec2 / HuBERT CTC: one forward
        return _sibling("ctc_onnx").ctc_onnx_pipeline(folder, version_dir, onnx_folder, threads=threads)
    s2s = _sibling("seq2seq_engine")
    if task == IMAGE_TASK:
        from transformers import AutoModelForVision2Seq as auto  # noqa: PLC0415, N813
    else:
        from transformers import AutoModelForSpeechSeq2Seq as auto  # noqa: PLC0415, N813
    with torch.device("meta"):
        shell = auto.from_config(cfg)
    try:  # the checkpoint's generation config (max_length, suppressed tokens, ...), as from_pretrained loads it
        shell.generation_config = GenerationConfig.from_pretrained(folder)
    except OSError:
        pass
    # device=-1: the pipeline takes the model's device (meta) and so does not move the weightless shell; its
    # tensors are then kept on the CPU (the engine reads NumPy arrays)
    pipe = pipeline(task, model=shell, tokenizer=folder, feature_extractor=None if task == IMAGE_TASK else folder,
                    image_processor=folder if task == IMAGE_TASK else None, device=-1)
    pipe.device = torch.device("cpu")
    runner = s2s.Seq2SeqOrtRunner(os.path.join(version_dir, onnx_folder), threads=threads)
    gen = pipe.generation_config if getattr(pipe, "generation_config", None) is not None else shell.generation_config
    eos = gen.eos_token_id if gen.eos_token_id is not None else cfg.eos_token_id
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    rules = s2s.GenerationRules.from_pretrained(folder, eos)
    engine = s2s.Seq2SeqEngine(runner, pipe.tokenizer, eos, rules, max_batch=1,
                               decoder_positions=s2s.decoder_positions(cfg))
    pipe.model.generate = EngineGenerate(engine, runner.encoder_inputs[0], eos)
    pipe.tritonrepo_engine = engine  # shut down with the model
    return pipe


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

