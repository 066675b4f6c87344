"""Speech recognition and image-to-text through transformers' pipeline, streamed token by token (copied beside
the generate module as ``tritonrepo_media_generate.py``).

No Triton import: tested in-process and used by :mod:`tritonrepo.triton_models.generate` (runtime
``pipeline``). :class:`MediaGenerator` runs the pipeline's own three steps — ``preprocess`` (for a
``ChunkPipeline`` such as automatic-speech-recognition, one item per audio chunk), ``forward`` (``model.generate``
for Whisper and VisionEncoderDecoder, a CTC forward pass for wav2vec2), ``postprocess`` — exactly as
``Pipeline.run_single`` / ``ChunkPipeline.run_single`` do (transformers ``pipelines/base.py``), with the
parameters ``Pipeline.__call__`` computes (``_sanitize_parameters`` fused with the pipeline's defaults), so the
final text is the pipeline's.

Batching (:meth:`MediaGenerator.run_batch`): requests of one model-input item (any image; audio that is one
window) with the same tensor shapes and ``max_tokens`` share ONE ``forward``: their items are stacked (Whisper's
features are always ``[80, 3000]``, an image processor's ``pixel_values`` one fixed size: nothing is padded), one
greedy ``generate`` runs for the batch, and its output is split back per request as transformers'
``PipelineIterator`` splits a batch, each row cut after its own end-of-sequence token, then post-processed alone.
Greedy decoding of a row reads only that row (same decoder prompt length, no padding), so every request's text is
the one it gets alone (checked for Whisper and VisionEncoderDecoder, both backends, in the tests). Multi-chunk
audio (``chunk_length_s``), beam search and CTC models run one request at a time.

Streaming (generative models: ``model.config.is_encoder_decoder``):

* one chunk (any image; audio without ``chunk_length_s`` or shorter than it): a streamer passed to ``generate``
  (:class:`_RowStreamer`: one text stream per row of the batch) receives every new token; each row's generated
  ids are decoded with ``skip_special_tokens=True`` and the new suffix is emitted to that row's client (an
  incomplete UTF-8 character, ``\\ufffd`` at the end, is held back), one piece per token;
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
Cancellation (``cancelled()`` true) finishes that request's row at the next token (a stopping criterion per row:
the row is no longer streamed, the others go on; ``generate`` ends when every row is finished) and skips the
remaining chunks.
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


class _Row:
    """One request's row in a ``generate`` call: its generated ids (``tokens``, the end-of-sequence token
    included), its text stream, ``ended`` (EOS seen: later ids are padding) and ``stopped`` (the client went away:
    the row is finished for ``generate`` and no longer streamed)."""

    def __init__(self, stream: _TextStream, cancelled: Callable[[], bool]) -> None:
        self.stream, self.cancelled = stream, cancelled
        self.tokens: list[int] = []
        self.prompt: list[int] = []
        self.eos: set[int] = set()
        self.ended = self.stopped = False


class _RowStreamer:
    """transformers' streamer protocol (``put(ids)``, ``end()``) for a batch: the first ``put`` of each
    ``generate`` call holds the decoder's start tokens ``[B, P]``; every later one the new token of each row
    ``[B]``, appended to that row's ``tokens`` until its end-of-sequence token (later ids are padding) or its
    cancellation, and — ``offer`` true (one chunk) — offered to the row's client as text. transformers' own
    streamers take batch 1 only. ``put_row(i, id)``: one row's new token (the ONNX engine's rows advance one by
    one). Module-level classes on purpose: a class defined per request is cyclic garbage that keeps the request's
    response sender alive until a garbage collection, and collecting a sender while the stub exits hung the
    Python backend's unload (Triton 2.51)."""

    def __init__(self, rows: list[_Row], tokenizer, eos, offer: bool = True) -> None:
        self.rows, self.tokenizer, self.eos, self.offer = rows, tokenizer, set(eos), offer
        self.prompt = True
        for row in rows:
            row.eos = self.eos

    def put(self, value) -> None:
        if self.prompt:
            self.prompt = False
            prompt = value.reshape(len(self.rows), -1)
            for row, ids in zip(self.rows, prompt):
                row.prompt = [int(t) for t in ids]
            return
        flat = value.reshape(-1)
        for i in range(len(self.rows)):
            self.put_row(i, int(flat[i]))

    def put_row(self, i: int, token: int) -> None:
        row = self.rows[i]
        if row.ended or row.stopped:
            return
        row.tokens.append(token)
        if token in self.eos:
            row.ended = True
        elif self.offer:
            row.stream.offer(self.tokenizer.decode(row.tokens, skip_special_tokens=True))

    def end(self) -> None:
        self.prompt = True


_CANCEL_CLASS: list = []


def _cancel_criterion():
    """The ``StoppingCriteria`` subclass (built once, transformers imported lazily) whose instances, built on a
    batch's :class:`_Row` list, finish each row whose client is gone (``row.cancelled()``: the row is marked
    ``stopped``, ``generate`` pads it from then on and ends when every row is finished)."""
    if not _CANCEL_CLASS:
        import torch  # noqa: PLC0415
        from transformers import StoppingCriteria  # noqa: PLC0415

        class CancelCriterion(StoppingCriteria):
            def __init__(self, rows) -> None:
                self.rows = rows

            def __call__(self, input_ids, scores, **kwargs):
                for row in self.rows:
                    if not row.stopped and not row.ended and row.cancelled():
                        row.stopped = True
                return torch.tensor([row.stopped for row in self.rows], dtype=torch.bool)

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

    Called as transformers' pipelines call ``generate``: the encoder input (``input_features`` ``[B, 80, 3000]``
    float32 for Whisper, ``pixel_values`` ``[B, 3, H, W]`` for images) positionally or by its name, and
    ``max_new_tokens`` (else ``generation_config.max_length`` minus the decoder prompt), ``streamer`` (gets the
    prompt, then each new token: a :class:`_RowStreamer` row by row, ``put_row(i, id)``, end-of-sequence token
    included; another streamer only with ``B = 1``), ``stopping_criteria`` (a :func:`_cancel_criterion` instance:
    its rows' ``cancelled`` are polled before every step; a cancelled row is marked ``stopped``). The ``B`` rows
    are submitted to the engine together: they decode as one cohort (one decoder run per step for all rows).
    Other arguments (``attention_mask``, ``num_beams=1``, ...) are ignored; ``num_beams > 1`` is refused at
    ``add-hf``. A ``max_new_tokens`` beyond the decoder's position table (less the decoder prompt) raises
    :class:`MediaRequestError`.

    Returns ``[B, n]`` int64 token ids: each row's new tokens, then — ``keep_eos`` — the end-of-sequence token when
    one ended it (transformers' ``generate`` keeps it; Whisper's drops it: ``generate_with_fallback`` "remove eos
    token"), right-padded with ``pad``.

    Args:
        engine: a ``Seq2SeqEngine`` (its ``rules.prompt`` is the decoder prompt).
        input_name: the encoder graph's input (``input_features`` / ``pixel_values``).
        eos: end-of-sequence ids.
        keep_eos: the output keeps a row's end-of-sequence token (false for Whisper).
        pad: the padding id (``None``: the first end-of-sequence id, else 0).
    """

    def __init__(self, engine, input_name: str, eos: list[int], keep_eos: bool = True, pad: int | None = None) -> None:
        self.engine, self.input_name, self.eos = engine, input_name, list(eos)
        self.keep_eos = keep_eos
        self.pad = pad if pad is not None else self.eos[0] if self.eos else 0

    def __call__(self, inputs=None, generation_config=None, max_new_tokens=None, streamer=None,
                 stopping_criteria=None, **kwargs):
        import threading  # noqa: PLC0415

        import torch  # noqa: PLC0415

        eng = _sibling("generate_engine")
        RequestError, Sampling, Sequence = eng.RequestError, eng.Sampling, eng.Sequence  # noqa: N806
        if inputs is None:
            inputs = kwargs.get(self.input_name)
        array = inputs.detach().cpu().numpy() if hasattr(inputs, "detach") else inputs
        n = array.shape[0]
        prompt = self.engine.rules.prompt
        if max_new_tokens is None:
            max_length = getattr(generation_config, "max_length", None) or 20
            max_new_tokens = max(1, int(max_length) - len(prompt))
        rows = next((c.rows for c in (stopping_criteria or []) if hasattr(c, "rows")), None)
        if streamer is not None and n > 1 and not hasattr(streamer, "put_row"):
            raise ValueError("a streamer for a batch needs put_row (see _RowStreamer)")
        eos = self.eos[0] if self.eos else 0
        lock = threading.Lock()
        left = [n]
        done = threading.Event()
        seqs: list = []

        def emitter(i: int):
            pushed = [0]

            def emit(_delta, finished, _error):  # engine thread: every new token to the streamer, in order
                seq = seqs[i]
                with lock:
                    while streamer is not None and pushed[0] < len(seq.tokens):
                        self._put(streamer, i, seq.tokens[pushed[0]])
                        pushed[0] += 1
                    if finished:
                        if seq.finish_reason == "stop" and self.eos and streamer is not None:
                            self._put(streamer, i, eos)
                        if seq.finish_reason == "cancelled" and rows is not None:
                            rows[i].stopped = True
                        left[0] -= 1
                        if not left[0]:
                            done.set()
            return emit

        for i in range(n):
            cancelled = rows[i].cancelled if rows is not None else (lambda: False)
            seq = Sequence([], Sampling(max_tokens=int(max_new_tokens)), emitter(i), cancelled=cancelled, stream=True)
            seq.encoder_inputs = {self.input_name: array[i:i + 1]}
            seqs.append(seq)
        if streamer is not None:
            streamer.put(torch.tensor([[t for t in prompt if t is not None]] * n))  # (None: language, detected later)
        try:
            for seq in seqs:  # all or none: max_tokens is the same for every row
                self.engine.submit(seq)
        except RequestError as exc:  # max_tokens beyond the decoder's positions: these requests' error
            for seq in seqs:  # none ran (same max_tokens): break their callbacks' cycle through ``seqs`` now
                eng.release(seq)
            raise MediaRequestError(str(exc)) from None
        done.wait()
        if streamer is not None:
            streamer.end()
        if any(seq.finish_reason == "error" for seq in seqs):
            raise RuntimeError("the ONNX encoder-decoder failed (see the server log)")
        ids = [list(seq.tokens) + ([eos] if seq.finish_reason == "stop" and self.eos and self.keep_eos else [])
               for seq in seqs]
        width = max(len(r) for r in ids)
        return torch.tensor([r + [self.pad] * (width - len(r)) for r in ids], dtype=torch.long)

    @staticmethod
    def _put(streamer, i: int, token: int) -> None:
        if hasattr(streamer, "put_row"):
            streamer.put_row(i, token)
        else:
            import torch  # noqa: PLC0415

            streamer.put(torch.tensor([token]))


def onnx_pipeline(task: str, folder: str, version_dir: str, onnx_folder: str = "onnx", threads: int = 0,
                  max_batch: int = 8):
    """transformers' ``task`` pipeline whose model is a weightless shell (built on the ``meta`` device from
    ``folder``'s config: preprocessing, chunking and postprocessing read only its config) and whose
    ``generate`` is :class:`EngineGenerate` on optimum's ONNX graphs in ``version_dir/onnx_folder``; the engine
    decodes up to ``max_batch`` rows together. A CTC checkpoint (wav2vec2, HuBERT: not an encoder-decoder) gets
    ``tritonrepo_ctc_onnx.ctc_onnx_pipeline`` instead (the shell's forward is an onnxruntime session on
    ``model.onnx``).

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
    engine = s2s.Seq2SeqEngine(runner, pipe.tokenizer, eos, rules, max_batch=max_batch,
                               decoder_positions=s2s.decoder_positions(cfg))
    pipe.model.generate = EngineGenerate(engine, runner.encoder_inputs[0], eos, keep_eos=_keeps_eos(cfg),
                                         pad=gen.pad_token_id)
    pipe.tritonrepo_engine = engine  # shut down with the model
    return pipe


class MediaJob:
    """One request for :meth:`MediaGenerator.run_batch`.

    Args:
        data: the file's bytes (audio: WAV/FLAC/OGG; image: PNG, JPEG, ...).
        max_tokens: new tokens at most (``None``: the checkpoint's generation config).
        emit: ``emit(piece)`` for each streamed piece of text, or ``None`` (one answer).
        cancelled: polled during generation; true = the client is gone.

    After the run, exactly one of ``text`` (the pipeline's final text) and ``error`` (:class:`MediaRequestError`,
    :class:`Cancelled`, or any other exception of this request) is set.
    """

    def __init__(self, data: bytes, max_tokens: int | None = None, emit: Callable[[str], None] | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> None:
        self.data, self.max_tokens, self.emit, self.cancelled = data, max_tokens, emit, cancelled
        self.text: str | None = None
        self.error: BaseException | None = None


class _Prepared:
    """A job after the pipeline's ``preprocess``: its model-input items (one per audio chunk) and parameters."""

    def __init__(self, job: MediaJob, items: list, post: dict) -> None:
        self.job, self.items, self.post = job, items, post


class MediaGenerator:
    """Runs a speech-recognition or image-to-text ``transformers.pipeline`` on files' bytes, several requests in
    one ``generate`` call (see :meth:`run_batch`).

    Args:
        pipe: the pipeline (``pipeline(task, model=folder, device="cpu")``).
        task: ``"automatic-speech-recognition"`` or ``"image-to-text"``.
        chunk_length_s: audio only; > 0: the pipeline's chunking of long audio (its ``chunk_length_s``, stride
            ``chunk_length_s / 6`` on each side). Whisper needs it for audio over 30 s (its window).
        decode_audio: ``fn(bytes, rate) -> float32 samples`` (``tritonrepo_audio.decode_audio``); raises
            ``ValueError`` for undecodable bytes.
        num_beams: generative models: 1 (default) = greedy decoding, streamable token by token and batched. The
            ASR pipeline's own default for Whisper is 5-beam search (OpenAI's choice,
            ``AutomaticSpeechRecognitionPipeline._default_generation_config``); > 1 gives it back, answered in
            one piece (a beam's tokens are not final until the search ends), one request at a time.
        max_batch: most requests in one ``generate`` call (config parameter ``max_batch``, default 8).

    Attributes:
        batch_sizes: the rows of each ``generate`` call of the last :meth:`run_batch` (multi-chunk audio, beam
            search and CTC: 1 per request), in order.
    """

    def __init__(self, pipe, task: str, chunk_length_s: float = 0.0, decode_audio=None, num_beams: int = 1,
                 max_batch: int = 8) -> None:
        self.pipe, self.task = pipe, task
        self.chunk_length_s = chunk_length_s
        self.num_beams = max(1, int(num_beams))
        self.max_batch = max(1, int(max_batch))
        self.decode_audio = decode_audio
        self.generative = bool(getattr(pipe.model.config, "is_encoder_decoder", False))
        self.batch_sizes: list[int] = []

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

    def _params(self, max_tokens: int | None, hooks: dict | None = None) -> tuple[dict, dict, dict]:
        """The pipeline's ``(preprocess, forward, postprocess)`` parameters, as ``Pipeline.__call__`` computes
        them (``_sanitize_parameters`` fused with the pipeline's defaults); ``hooks`` join ``generate_kwargs``."""
        pipe = self.pipe
        kwargs = self.call_kwargs(max_tokens)
        if hooks:
            kwargs["generate_kwargs"].update(hooks)
        pre, fwd, post = pipe._sanitize_parameters(**kwargs)
        return ({**pipe._preprocess_params, **pre}, {**pipe._forward_params, **fwd},
                {**pipe._postprocess_params, **post})

    def run(self, data: bytes, max_tokens: int | None = None, emit: Callable[[str], None] | None = None,
            cancelled: Callable[[], bool] = lambda: False) -> str:
        """Transcribe/caption one file (a batch of one); call ``emit(piece)`` for each streamed piece (see the
        module docstring).

        Returns:
            The final text (the pipeline's ``text`` / ``generated_text``); what ``emit`` received is a prefix of it.

        Raises:
            MediaRequestError: undecodable bytes, ``max_tokens <= 0``.
            Cancelled: ``cancelled()`` became true.
        """
        job = MediaJob(data, max_tokens, emit, cancelled)
        self.run_batch([job])
        if job.error is not None:
            raise job.error
        return job.text

    def run_batch(self, jobs: list[MediaJob]) -> None:
        """Answer ``jobs`` (sets each one's ``text`` or ``error``; raises nothing).

        Each job is preprocessed by the pipeline's own ``preprocess``. Jobs of one model-input item (an image;
        audio that is one chunk) whose tensors have the same shapes (Whisper's features are always ``[1, 80,
        3000]``, an image processor's ``pixel_values`` one fixed size) and the same ``max_tokens`` run in ONE
        ``forward`` (``model.generate`` on the stacked rows: PyTorch's batch, or the ONNX engine's cohort), at most
        ``max_batch`` at a time; each row is streamed to its own client (:class:`_RowStreamer`), cut after its own
        end-of-sequence token, unbatched as transformers' ``PipelineIterator.loader_batch_item`` does and
        post-processed alone, so its text is the pipeline's for that request alone (greedy decoding of a row does
        not read the other rows: no padding within a batch). Multi-chunk audio, beam search and CTC models run
        one request at a time, as ``Pipeline.run_single`` / ``ChunkPipeline.run_single`` do.
        """
        self.batch_sizes = []
        groups: dict = {}
        alone: list[_Prepared] = []
        for job in jobs:
            try:
                prep = self._prepare(job)
            except Exception as exc:  # noqa: BLE001 - this request's error
                job.error = _detached(exc)
                continue
            key = self._batch_key(prep)
            if key is None:
                alone.append(prep)
            else:
                groups.setdefault(key, []).append(prep)
        for group in groups.values():
            for at in range(0, len(group), self.max_batch):
                self._run_rows(group[at:at + self.max_batch])
        for prep in alone:
            try:
                prep.job.text = self._run_items(prep)
            except Exception as exc:  # noqa: BLE001 - this request's error
                prep.job.error = _detached(exc)
            self.batch_sizes.append(1)

    def _prepare(self, job: MediaJob) -> _Prepared:
        if job.max_tokens is not None and job.max_tokens <= 0:
            raise MediaRequestError(f"max_tokens must be > 0, got {job.max_tokens}")
        value = self.value(job.data)
        pre, _, post = self._params(job.max_tokens)
        from transformers.pipelines.base import ChunkPipeline  # noqa: PLC0415

        if isinstance(self.pipe, ChunkPipeline):
            items = list(self.pipe.preprocess(value, **pre))
        else:
            items = [self.pipe.preprocess(value, **pre)]
        return _Prepared(job, items, post)

    def _batch_key(self, prep: _Prepared):
        """The key of the jobs that can share a ``generate`` call with ``prep``, or ``None`` (run it alone)."""
        import torch  # noqa: PLC0415

        if not self.generative or self.num_beams != 1 or len(prep.items) != 1:
            return None
        item = prep.items[0]
        frames = getattr(getattr(self.pipe, "feature_extractor", None), "nb_max_frames", None)
        features = item.get("input_features") if hasattr(item, "get") else None
        if self.task != IMAGE_TASK and (features is None or (frames and features.shape[-1] != frames)):
            return None  # Whisper long-form (> 30 s without chunk_length_s): its own sequential generate
        shapes = tuple(sorted((k, tuple(v.shape)) for k, v in item.items() if isinstance(v, torch.Tensor)))
        return (prep.job.max_tokens, shapes)

    @staticmethod
    def _collate(items: list) -> dict:
        """Stack same-shape tensors along the batch axis; other values become per-row lists (transformers'
        ``pad_collate_fn`` when nothing needs padding)."""
        import torch  # noqa: PLC0415

        return {k: torch.cat([it[k] for it in items]) if isinstance(items[0][k], torch.Tensor)
                else [it[k] for it in items] for k in items[0].keys()}

    @staticmethod
    def _row(out, i: int, row: _Row, keep_eos: bool):
        """Row ``i`` of the pipeline's batched ``forward`` output, batch-1 shaped (``loader_batch_item``), its
        ids cut after the row's own ``tokens`` (what it generated before its end-of-sequence token; later ids
        are padding that a one-request ``generate`` never produced).

        Raises:
            RuntimeError: the output's row is not the streamed tokens (a layout this code does not know).
        """
        import torch  # noqa: PLC0415

        if isinstance(out, torch.Tensor):
            return _cut_row(out, i, row, keep_eos)
        result = {}
        for k, element in out.items():
            if k == "tokens":
                result[k] = _cut_row(element, i, row, keep_eos)
            elif element is None:
                result[k] = None
            elif isinstance(element, torch.Tensor):
                result[k] = element[i].unsqueeze(0)
            else:
                result[k] = element[i]
        return result

    def _run_rows(self, preps: list[_Prepared]) -> None:
        """One ``forward`` (one ``generate``) for ``preps`` (same shapes and ``max_tokens``), then each row's
        ``postprocess``; sets each job's ``text`` or ``error``."""
        from transformers.pipelines.base import ChunkPipeline  # noqa: PLC0415

        pipe = self.pipe
        rows = [_Row(_TextStream(p.job.emit), p.job.cancelled) for p in preps]
        eos = _eos_ids(pipe)
        hooks = {"streamer": _RowStreamer(rows, pipe.tokenizer, eos),
                 "stopping_criteria": _stopping(rows)}
        _, fwd, _ = self._params(preps[0].job.max_tokens, hooks)
        self.batch_sizes.append(len(preps))
        try:
            for row in rows:  # a client gone before the start is not generated for
                row.stopped = row.cancelled()
            if all(row.stopped for row in rows):
                raise Cancelled()
            out = pipe.forward(self._collate([p.items[0] for p in preps]), **fwd)
        except Exception as exc:  # noqa: BLE001 - the batch failed: each of its requests gets the error
            for p, row in zip(preps, rows):
                p.job.error = Cancelled() if row.stopped else _detached(exc)
            return
        finally:
            for row in rows:  # drop the clients' callbacks now (see _RowStreamer)
                row.cancelled = _never
        for i, (p, row) in enumerate(zip(preps, rows)):
            if row.stopped:
                p.job.error = Cancelled()
                continue
            try:
                one = self._row(out, i, row, _keeps_eos(pipe.model.config))
                result = pipe.postprocess([one] if isinstance(pipe, ChunkPipeline) else one, **p.post)
                p.job.text = _final_text(result, row.stream)
            except Exception as exc:  # noqa: BLE001 - this request's error
                p.job.error = _detached(exc)
            row.stream.emit = None

    def _run_items(self, prep: _Prepared) -> str:
        """One request alone: its items (audio chunks) one ``forward`` each, then the pipeline's ``postprocess``
        (``ChunkPipeline.run_single``); several chunks stream per chunk (:meth:`_offer_chunks`)."""
        from transformers.pipelines.base import ChunkPipeline  # noqa: PLC0415

        pipe, job = self.pipe, prep.job
        stream = _TextStream(job.emit)
        row = _Row(stream, job.cancelled)
        streaming = self.generative and self.num_beams == 1
        chunked = len(prep.items) > 1
        hooks = None
        if streaming:
            hooks = {"streamer": _RowStreamer([row], pipe.tokenizer, _eos_ids(pipe), offer=not chunked),
                     "stopping_criteria": _stopping([row])}
        _, fwd, _ = self._params(job.max_tokens, hooks)
        try:
            if not isinstance(pipe, ChunkPipeline):
                result = pipe.postprocess(pipe.forward(prep.items[0], **fwd), **prep.post)
            else:
                outputs = []
                for k, item in enumerate(prep.items):
                    if job.cancelled():
                        raise Cancelled()
                    row.tokens.clear()
                    row.ended = False
                    outputs.append(pipe.forward(item, **fwd))
                    if row.stopped:
                        raise Cancelled()
                    if chunked and k + 1 < len(prep.items) and streaming:
                        self._offer_chunks(outputs, prep.post, row.tokens, stream)
                result = pipe.postprocess(outputs, **prep.post)
            if row.stopped:
                raise Cancelled()
            return _final_text(result, stream)
        finally:
            row.cancelled, stream.emit = _never, None

    def _offer_chunks(self, outputs: list, post: dict, last_tokens: list[int], stream: _TextStream) -> None:
        """Several chunks: emit the text of the chunks so far up to what merging the next chunk cannot change
        (all but the last chunk's own text length)."""
        partial = self.pipe.postprocess([dict(o) for o in outputs], **post)  # postprocess empties its dicts
        text = partial[0]["generated_text"] if isinstance(partial, list) else partial["text"]
        tail = len(self.pipe.tokenizer.decode(last_tokens, skip_special_tokens=True))
        stream.offer(text, upto=len(text) - tail - 1)


def _detached(exc: BaseException) -> BaseException:
    """``exc`` without its traceback and chained exceptions: a kept traceback holds the frames that hold the jobs
    (hence the requests' response senders) in a reference cycle, freed only by a garbage collection (see
    :class:`_RowStreamer`)."""
    exc.__traceback__ = exc.__context__ = exc.__cause__ = None
    return exc


def _never() -> bool:
    return False


def _stopping(rows: list[_Row]):
    from transformers import StoppingCriteriaList  # noqa: PLC0415

    return StoppingCriteriaList([_cancel_criterion()(rows)])


def _eos_ids(pipe) -> list[int]:
    """The end-of-sequence ids ``generate`` stops on (the pipeline's generation config, else the model's)."""
    gen = getattr(pipe, "generation_config", None) or getattr(pipe.model, "generation_config", None)
    eos = getattr(gen, "eos_token_id", None)
    if eos is None:
        eos = getattr(pipe.model.config, "eos_token_id", None)
    return [] if eos is None else [eos] if isinstance(eos, int) else list(eos)


def _final_text(result, stream: _TextStream) -> str:
    text = result[0]["generated_text"] if isinstance(result, list) else result["text"]
    if stream.emit is not None and stream.sent and not text.startswith(stream.sent):
        raise RuntimeError(f"streamed text {stream.sent!r} is not a prefix of the final text {text!r}")
    return text


def _keeps_eos(config) -> bool:
    """Whether ``generate``'s output keeps the end-of-sequence token that ended a row: transformers' ``generate``
    does, Whisper's removes it (``WhisperGenerationMixin.generate_with_fallback``: "remove eos token")."""
    return getattr(config, "model_type", "") != "whisper"


def _cut_row(ids, i: int, row: _Row, keep_eos: bool = True):
    """Row ``i`` of ``generate``'s ``[B, L]`` ids as ``[1, n]``: the decoder prompt when the output holds it
    (``row.prompt``, as the streamer received it), then the row's own generated ids (``row.tokens``; their
    end-of-sequence token only with ``keep_eos``: Whisper's ``generate`` drops it, see :func:`_keeps_eos`), without
    the padding after them (ids that a one-request ``generate`` never produced).

    Raises:
        RuntimeError: the row's ids are not the streamed tokens (an output layout this code does not know).
    """
    ids_row = ids[i].tolist()
    start = len(row.prompt) if row.prompt and ids_row[:len(row.prompt)] == row.prompt else 0
    n = len(row.tokens) - (1 if row.ended and not keep_eos else 0)
    got = ids_row[start:start + n]
    if got != row.tokens[:n]:
        raise RuntimeError(f"generate's row {i} {ids_row} does not hold the streamed tokens {row.tokens}")
    return ids[i:i + 1, :start + n]
