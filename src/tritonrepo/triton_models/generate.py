"""Text generation in Triton's Python backend, Triton's generate convention (copied as ``<version>/model.py``).

A fixed, decoupled module (``model_transaction_policy { decoupled: true }``): every request is answered
through its ``request.get_response_sender()`` from the generation engine's thread
(``tritonrepo_generate_engine.py``, in-flight batching), so ``execute`` returns at once and requests that
arrive while others generate join the running batch.

The tensor contract is the one Triton's vLLM backend declares (``vllm_backend/src/model.py``
``_auto_complete_inputs_and_outputs``), so ``/v2/models/NAME/generate``, ``/generate_stream`` and
genai-perf work unchanged (``max_batch_size: 0``, every input ``dims: [1]``):

* ``text_input`` (TYPE_STRING): the prompt;
* ``max_tokens`` (TYPE_INT32, optional; default: parameter ``default_max_tokens``);
* ``stream`` (TYPE_BOOL, optional): one response per new piece of text, the last one flagged final;
  otherwise one response with the whole text;
* ``sampling_parameters`` (TYPE_STRING JSON, optional): ``temperature`` (0 = greedy, the default), ``top_p``,
  ``top_k``, ``seed``, ``stop``, ``repetition_penalty``, ``max_tokens``;
* ``exclude_input_in_output`` (TYPE_BOOL, optional): as vLLM's backend, a non-streamed answer starts with the
  prompt unless this is true; streamed answers never include the prompt (``false`` with ``stream`` is an
  error, as in vLLM's backend);
* ``apply_chat_template`` (TYPE_BOOL, optional, tritonrepo's addition): format ``text_input`` with the
  tokenizer's chat template (``add_generation_prompt=True``); ``text_input`` is the user message, or a JSON
  list of ``{"role", "content"}`` messages;
* output ``text_output`` (TYPE_STRING, ``dims: [-1]``).

Config ``parameters``: ``runtime`` (``torch`` or ``onnx``: decoder-only; ``seq2seq`` or ``seq2seq-onnx``:
encoder-decoder, batched by ``tritonrepo_seq2seq_engine.py``; ``seq2seq-generate``: transformers'
``generate()``, one request at a time), ``model_subfolder`` (checkpoint + tokenizer,
default ``hf_model``), ``onnx_file`` (ONNX runtime: the decoder graph, relative to the version folder),
``onnx_folder`` (``seq2seq-onnx``: the folder of ``encoder_model.onnx`` + ``decoder_model_merged.onnx``),
``max_batch`` (sequences decoded together, default 8), ``default_max_tokens`` (16), ``context_length``
(default: the checkpoint's), ``torch_threads``.

Speech recognition and image-to-text (``runtime`` = ``pipeline``): input ``audio`` (TYPE_STRING, WAV/FLAC/OGG
bytes) or ``image`` (TYPE_STRING, encoded bytes), optional ``max_tokens`` and ``stream``, output ``text_output``;
run by ``tritonrepo_media_generate.py`` (transformers' pipeline steps, greedy, streamed token by token for
Whisper and image-to-text; long audio chunked with config parameter ``chunk_length_s``; ``num_beams``) in a worker
thread: the requests waiting when it is free (up to ``max_batch``, default 8) run together, one ``generate`` for
the ones of one image or one audio window (``MediaGenerator.run_batch``; multi-chunk audio, beam search and CTC
one at a time), each logged as ``NAME: media batch: generate rows [..]``. With config parameter ``media_runtime`` =
``onnx`` (Whisper / VisionEncoderDecoder ``--backend onnx``) the pipeline's ``generate`` is the encoder-decoder
engine on optimum's graphs in ``onnx_folder`` (``tritonrepo_media_generate.onnx_pipeline``), a batch one cohort.

A bad request (bad JSON, ``max_tokens <= 0``, a prompt that with ``max_tokens`` exceeds the context,
undecodable audio or image bytes) gets an error response of its own; the model keeps serving. A cancelled
request (client gone: ``response_sender.is_cancelled()``) stops generating at the next step.
"""

import json
import os
import queue
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402
from tritonrepo_generate_engine import (  # noqa: E402
    Engine,
    OrtRunner,
    RequestError,
    Sequence,
    SerialEngine,
    TorchRunner,
    parse_sampling,
)

FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL


def _param(config: dict, key: str, default: str) -> str:
    value = config.get("parameters", {}).get(key, {}).get("string_value", "")
    return value or default


def _scalar(request, name):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    arr = tensor.as_numpy().reshape(-1)
    if arr.size != 1:
        raise RequestError(f"input '{name}' must hold one element, got {arr.size}")
    value = arr[0]
    return value.decode("utf-8") if isinstance(value, bytes) else value.item() if hasattr(value, "item") else value


class TritonPythonModel:
    """Serves a causal LM with token streaming and in-flight batching on the CPU."""

    def initialize(self, args):
        """Load tokenizer and model (PyTorch or the ONNX decoder) and start the generation engine."""
        import torch  # noqa: PLC0415
        from transformers import AutoConfig, AutoTokenizer, GenerationConfig  # noqa: PLC0415

        self.config = json.loads(args["model_config"])
        self.model_name = args["model_name"]
        if not pb_utils.using_decoupled_model_transaction_policy(self.config):
            raise pb_utils.TritonModelException("this model needs model_transaction_policy { decoupled: true }")
        out_cfg = pb_utils.get_output_config_by_name(self.config, "text_output")
        self.out_dtype = pb_utils.triton_string_to_numpy(out_cfg["data_type"])
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        folder = os.path.join(version_dir, _param(self.config, "model_subfolder", "hf_model"))
        threads = _param(self.config, "torch_threads", "")
        if threads:
            torch.set_num_threads(int(threads))
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        hf_config = AutoConfig.from_pretrained(folder)
        runtime = _param(self.config, "runtime", "torch")
        # encoder-decoder: batched tritonrepo_seq2seq_engine.py, or transformers' generate() one at a time
        self.seq2seq = runtime in ("seq2seq", "seq2seq-onnx", "seq2seq-generate")
        self.pipeline = None
        if runtime == "pipeline":  # speech / image to text: transformers' pipeline, streamed (media_generate)
            from tritonrepo_audio import decode_audio  # noqa: PLC0415
            from tritonrepo_media_generate import MediaGenerator  # noqa: PLC0415
            from transformers import pipeline  # noqa: PLC0415

            self.task = _param(self.config, "task", "automatic-speech-recognition")
            max_batch = int(_param(self.config, "max_batch", "8"))
            if _param(self.config, "media_runtime", "torch") == "onnx":  # Whisper --backend onnx
                from tritonrepo_media_generate import onnx_pipeline  # noqa: PLC0415

                self.pipeline = onnx_pipeline(self.task, folder, version_dir,
                                              _param(self.config, "onnx_folder", "onnx"), threads=int(threads or 0),
                                              max_batch=max_batch)
            else:
                self.pipeline = pipeline(self.task, model=folder, device="cpu")
            self.media = MediaGenerator(
                self.pipeline, self.task, chunk_length_s=float(_param(self.config, "chunk_length_s", "0")),
                decode_audio=decode_audio, num_beams=int(_param(self.config, "num_beams", "1")), max_batch=max_batch,
            )
            # one worker thread runs the requests, the ones waiting together (as the engine thread does for text):
            # execute returns at once, and response_sender.is_cancelled() is polled from this thread, never execute's
            self.media_jobs = queue.Queue()
            self.media_thread = threading.Thread(target=self._media_loop, name="tritonrepo-media", daemon=True)
            self.media_thread.start()
            return
        if runtime == "onnx":
            runner = OrtRunner(os.path.join(version_dir, _param(self.config, "onnx_file", "model.onnx")),
                               threads=int(threads or 0))
        elif self.seq2seq:
            runner = None  # built by build_seq2seq_engine below
        else:
            from transformers import AutoModelForCausalLM  # noqa: PLC0415

            runner = TorchRunner(AutoModelForCausalLM.from_pretrained(folder).eval())
        try:
            gen_cfg = GenerationConfig.from_pretrained(folder)
            eos = gen_cfg.eos_token_id
        except OSError:
            eos = None
        eos = eos if eos is not None else hf_config.eos_token_id
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        self.context = int(_param(self.config, "context_length", "0")) or int(
            getattr(hf_config, "max_position_embeddings", None) or getattr(hf_config, "n_positions", 0) or 1 << 30
        )
        self.default_max_tokens = int(_param(self.config, "default_max_tokens", "16"))
        if runtime == "seq2seq-generate":
            from transformers import AutoModelForSeq2SeqLM  # noqa: PLC0415

            self.engine = SerialEngine(AutoModelForSeq2SeqLM.from_pretrained(folder).eval(), self.tokenizer, eos)
        elif self.seq2seq:
            from tritonrepo_seq2seq_engine import build_seq2seq_engine  # noqa: PLC0415

            self.engine = build_seq2seq_engine(
                runtime, version_dir, folder, self.tokenizer, eos,
                onnx_folder=_param(self.config, "onnx_folder", "onnx"),
                max_batch=int(_param(self.config, "max_batch", "8")), threads=int(threads or 0),
            )
        else:
            self.engine = Engine(runner, self.tokenizer, eos, max_batch=int(_param(self.config, "max_batch", "8")))

    def _prompt(self, request):
        text = _scalar(request, "text_input")
        if text is None:
            raise RequestError("missing input 'text_input'")
        if _scalar(request, "apply_chat_template"):
            if not getattr(self.tokenizer, "chat_template", None):
                raise RequestError("apply_chat_template: this tokenizer has no chat template")
            try:
                messages = json.loads(text)
            except json.JSONDecodeError:
                messages = None
            if not isinstance(messages, list):
                messages = [{"role": "user", "content": text}]
            ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            if hasattr(ids, "keys"):
                ids = ids["input_ids"]
            return text, list(ids)
        return text, self.tokenizer(text).input_ids

    def _start(self, request, sender):
        try:
            text, ids = self._prompt(request)
            max_tokens = _scalar(request, "max_tokens")
            sampling = parse_sampling(_scalar(request, "sampling_parameters"), max_tokens, self.default_max_tokens)
            stream = bool(_scalar(request, "stream") or False)
            exclude = _scalar(request, "exclude_input_in_output")
            prepend = (not exclude) if exclude is not None else not stream
            if prepend and stream:
                raise RequestError("when streaming, exclude_input_in_output = false is not allowed")
            if not ids:
                raise RequestError("text_input is empty")
            if len(ids) + (0 if self.seq2seq else sampling.max_tokens) > self.context:
                raise RequestError(
                    f"the prompt has {len(ids)} tokens and max_tokens is {sampling.max_tokens}: more than the "
                    f"model's context of {self.context} tokens"
                )
        except RequestError as exc:
            sender.send(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(str(exc))),
                        flags=FINAL)
            return
        prefix = text if prepend else ""
        out_dtype = self.out_dtype

        def emit(delta, finished, error):
            if finished and seq.finish_reason == "cancelled":
                pb_utils.Logger.log_info(f"generation cancelled by the client after {len(seq.tokens)} tokens")
                sender.send(flags=FINAL)
                return
            if error:
                sender.send(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(error)),
                            flags=FINAL)
                return
            if not stream:
                if not finished:
                    return
                delta = prefix + seq.text
            tensor = pb_utils.Tensor("text_output", np.array([delta.encode("utf-8")], dtype=out_dtype))
            sender.send(pb_utils.InferenceResponse(output_tensors=[tensor]), flags=FINAL if finished else 0)

        seq = Sequence(ids, sampling, emit, cancelled=sender.is_cancelled, stream=stream)
        if self.seq2seq:  # the prompt is the encoder's input; the decoder's length is max_tokens
            import torch  # noqa: PLC0415

            seq.inputs = {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones((1, len(ids)), dtype=torch.long)}
        self.engine.submit(seq)

    def _transcribe(self, request, sender):
        """``audio`` (WAV/FLAC/OGG bytes) or ``image`` (encoded bytes) -> ``text_output``: reads the request's inputs
        and queues the job for the worker thread (:meth:`_media_loop`). Raises ``RequestError`` for missing or
        malformed inputs."""
        key = "image" if self.task == "image-to-text" else "audio"
        tensor = pb_utils.get_input_tensor_by_name(request, key)
        if tensor is None:
            raise RequestError(f"missing input '{key}'")
        data = tensor.as_numpy().reshape(-1)
        if data.size != 1:
            raise RequestError(f"input '{key}' must hold one element (one file), got {data.size}")
        max_tokens = _scalar(request, "max_tokens")
        stream = bool(_scalar(request, "stream") or False)
        self.media_jobs.put((key, bytes(data[0]), max_tokens, stream, sender))

    def _media_loop(self):
        """Worker thread: take the first queued job and every job queued behind it (up to ``max_batch``) and answer
        them together (``MediaGenerator.run_batch``: one ``generate`` for the requests that can share one) — one
        response each, or with ``stream`` one per new piece of text and a final one with the rest; errors and
        cancellations are each request's own. Logs ``NAME: media batch: generate rows [..]`` (the rows of each
        ``generate`` call of the batch), the record of what ran together."""
        from tritonrepo_media_generate import Cancelled, MediaJob, MediaRequestError  # noqa: PLC0415

        stop = False
        while not stop:
            first = self.media_jobs.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.media.max_batch:
                try:
                    job = self.media_jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            jobs, sent = [], []
            for key, data, max_tokens, stream, sender in batch:
                pieces: list[str] = []

                def emit(piece: str, pieces=pieces, sender=sender) -> None:
                    pieces.append(piece)
                    self._media_respond(sender, piece, 0)

                jobs.append(MediaJob(data, max_tokens, emit if stream else None, cancelled=sender.is_cancelled))
                sent.append(pieces)
            try:
                self.media.run_batch(jobs)  # sets each job's text or error
            except Exception as exc:  # noqa: BLE001 - not expected: the worker must go on serving
                for job in jobs:
                    if job.text is None and job.error is None:
                        job.error = RuntimeError(f"{type(exc).__name__}: {exc}")
            pb_utils.Logger.log_info(f"{self.model_name}: media batch: generate rows {self.media.batch_sizes}")
            for (key, _, _, _, sender), job, pieces in zip(batch, jobs, sent):
                try:
                    if job.error is None and job.text is not None:
                        self._media_respond(sender, job.text[len("".join(pieces)):], FINAL)
                    elif isinstance(job.error, Cancelled):
                        pb_utils.Logger.log_info(f"{key}-to-text cancelled by the client after {len(pieces)} pieces")
                        sender.send(flags=FINAL)
                    else:
                        exc = job.error or RuntimeError("no answer")
                        message = str(exc) if isinstance(exc, MediaRequestError) else f"{type(exc).__name__}: {exc}"
                        sender.send(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message)),
                                    flags=FINAL)
                except Exception:  # noqa: BLE001, S110 - the client is gone
                    pass
            del batch, jobs, sent
        engine = getattr(self.pipeline, "tritonrepo_engine", None)  # unloading: stop the ONNX pipeline's engine too
        if engine is not None:
            engine.shutdown()

    def _media_respond(self, sender, text: str, flags: int) -> None:
        out = pb_utils.Tensor("text_output", np.array([text.encode("utf-8")], dtype=self.out_dtype))
        sender.send(pb_utils.InferenceResponse(output_tensors=[out]), flags=flags)

    def execute(self, requests):
        """Queue every request; responses come from the engine thread. Returns ``None`` (decoupled)."""
        for request in requests:
            sender = request.get_response_sender()
            try:
                if self.pipeline is not None:
                    self._transcribe(request, sender)
                    continue
                self._start(request, sender)
            except Exception as exc:  # noqa: BLE001 - this request's error only
                try:
                    sender.send(
                        pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(str(exc))),
                        flags=FINAL,
                    )
                except Exception:  # noqa: BLE001, S110 - sender already used
                    pass
        return None

    def finalize(self):
        """Stop the engine (or media worker) thread, free every garbage reference cycle while the stub can still
        talk to the server (a ``response_sender`` freed by the collector at the stub's exit blocks the stub: see
        ``tritonrepo_generate_engine.release``), and make the stub's exit immediate.

        After ``finalize`` the stub answers the server, then tears its interpreter down (``Py_FinalizeEx``: the
        atexit hooks and garbage collection of torch/transformers/onnxruntime objects): seconds per stub on a
        busy CPU, several stubs at once, while ``tritonserver`` waits for each stub to exit (measured: 8-10 s with
        three stubs on 2 loaded cores, past a 20 s stop with six). Nothing in that teardown matters to the
        server, so an atexit hook, registered last hence run first, ends the process with status 0."""
        import atexit  # noqa: PLC0415
        import gc  # noqa: PLC0415

        if self.pipeline is None:
            self.engine.shutdown()
        else:
            self.media_jobs.put(None)
            self.media_thread.join(10)
        gc.collect()
        atexit.register(os._exit, 0)
