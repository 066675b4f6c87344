"""Token generation with in-flight batching (copied beside ``model.py`` as ``tritonrepo_generate_engine.py``).

Pure Python + PyTorch (+ onnxruntime for ONNX graphs): no Triton import, so it is tested in-process as well
as inside Triton's Python backend (:mod:`tritonrepo.triton_models.generate`).

How it works:

* :func:`parse_sampling` turns a request's ``sampling_parameters`` JSON (vLLM's keys: ``temperature``,
  ``top_p``, ``top_k``, ``seed``, ``stop``, ``repetition_penalty``, ``max_tokens``) into :class:`Sampling`;
  bad JSON, unknown keys or out-of-range values raise :class:`RequestError`.
* :class:`Engine` owns a background thread. :meth:`Engine.submit` queues a :class:`Sequence`; the loop
  *prefills* each new sequence alone (its prompt, no padding, so its first token is exactly transformers'),
  then runs *one decode step for every active sequence together*: their KV caches are stacked with left
  padding (an attention mask hides the pads, ``position_ids`` give each sequence its own positions). The
  stacked cache is kept from step to step and only rebuilt when a sequence joins or leaves, so the KV cache
  is reused across steps (no re-run of the prefix). Sequences finish on EOS, ``max_tokens``, a stop string,
  or cancellation (``Sequence.cancelled()`` is polled before every step).
* Runners compute one forward pass: :class:`TorchRunner` (a transformers ``*ForCausalLM`` with a
  ``DynamicCache``) and :class:`OrtRunner` (optimum's ONNX decoder with ``past_key_values.N.key/value``
  inputs and ``present.N.key/value`` outputs). Caches are lists of ``(key, value)`` arrays shaped
  ``[batch, kv_heads, length, head_dim]`` in both.
* Text is detokenized incrementally: the generated ids are decoded with ``skip_special_tokens=True`` and the
  new suffix is emitted, holding back an incomplete UTF-8 character (``\\ufffd`` at the end) and any tail that
  could start a stop string; the concatenation of all deltas equals the final text.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

SAMPLING_KEYS = {"temperature", "top_p", "top_k", "seed", "stop", "repetition_penalty", "max_tokens"}


class RequestError(Exception):
    """A problem with one request (becomes that request's error response)."""


@dataclass
class Sampling:
    """Decoding settings of one request (vLLM's ``SamplingParams`` names).

    Attributes:
        max_tokens: new tokens to generate at most (> 0).
        temperature: 0 (default) = greedy; > 0 samples from ``softmax(logits / temperature)``.
        top_p: nucleus sampling mass in (0, 1].
        top_k: keep the k most likely tokens (0 or -1: all).
        seed: seeds this request's own generator (reproducible sampling); ``None``: nondeterministic.
        stop: strings that end generation (not included in the output).
        repetition_penalty: > 0; 1 = none (CTRL's rule, as transformers' ``RepetitionPenaltyLogitsProcessor``).
    """

    max_tokens: int = 16
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    repetition_penalty: float = 1.0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def parse_sampling(text: str | None, max_tokens: int | None, default_max_tokens: int = 16) -> Sampling:
    """Build :class:`Sampling` from the ``sampling_parameters`` JSON and the ``max_tokens`` input.

    Raises:
        RequestError: not a JSON object, an unknown key, a value of the wrong type or range, ``max_tokens <= 0``.
    """
    params: dict = {}
    if text:
        try:
            params = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RequestError(f"sampling_parameters is not valid JSON: {exc}") from None
        if not isinstance(params, dict):
            raise RequestError("sampling_parameters must be a JSON object")
    unknown = sorted(set(params) - SAMPLING_KEYS)
    if unknown:
        raise RequestError(f"unknown sampling parameter(s) {unknown}; known: {sorted(SAMPLING_KEYS)}")
    s = Sampling(max_tokens=default_max_tokens)
    try:
        if "max_tokens" in params:
            s.max_tokens = int(params["max_tokens"])
        if max_tokens is not None:
            s.max_tokens = int(max_tokens)
        s.temperature = float(params.get("temperature", 0.0))
        s.top_p = float(params.get("top_p", 1.0))
        s.top_k = int(params.get("top_k", 0))
        s.seed = None if params.get("seed") is None else int(params["seed"])
        s.repetition_penalty = float(params.get("repetition_penalty", 1.0))
    except (TypeError, ValueError) as exc:
        raise RequestError(f"bad sampling parameter: {exc}") from None
    stop = params.get("stop", [])
    s.stop = [stop] if isinstance(stop, str) else list(stop or [])
    if not all(isinstance(x, str) and x for x in s.stop):
        raise RequestError("stop must be a non-empty string or a list of non-empty strings")
    if s.max_tokens <= 0:
        raise RequestError(f"max_tokens must be > 0, got {s.max_tokens}")
    if s.temperature < 0:
        raise RequestError(f"temperature must be >= 0, got {s.temperature}")
    if not 0.0 < s.top_p <= 1.0:
        raise RequestError(f"top_p must be in (0, 1], got {s.top_p}")
    if s.repetition_penalty <= 0:
        raise RequestError(f"repetition_penalty must be > 0, got {s.repetition_penalty}")
    return s


def select_token(logits, seq_tokens: list[int], s: Sampling, generator) -> int:
    """Next token from a ``[vocab]`` float tensor: greedy argmax, or sampling with the request's generator.

    Order of processors as transformers applies them: repetition penalty, temperature, top-k, top-p.
    """
    import torch  # noqa: PLC0415

    logits = logits.float()
    if s.repetition_penalty != 1.0 and seq_tokens:
        idx = torch.tensor(sorted(set(seq_tokens)), dtype=torch.long)
        picked = logits[idx]
        logits[idx] = torch.where(picked < 0, picked * s.repetition_penalty, picked / s.repetition_penalty)
    if s.greedy:
        return int(torch.argmax(logits))
    logits = logits / s.temperature
    if s.top_k and s.top_k > 0 and s.top_k < logits.shape[-1]:
        kth = torch.topk(logits, s.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if s.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cum = torch.softmax(sorted_logits, -1).cumsum(-1)
        drop = cum - torch.softmax(sorted_logits, -1) >= s.top_p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = torch.softmax(logits, -1)
    return int(torch.multinomial(probs, 1, generator=generator))


@dataclass
class Sequence:
    """One generation request inside the engine.

    Args:
        prompt_ids: the tokenized prompt.
        sampling: decoding settings.
        emit: called from the engine thread as ``emit(delta_text, finished, error)``; ``error`` is a message or
            ``None``. Called once with ``finished=True`` at the end (also after an error or a cancellation).
        cancelled: polled before every step; ``True`` stops the sequence (no more tokens).
        stream: emit deltas as they come (``False``: only the final text, once).
    """

    prompt_ids: list[int]
    sampling: Sampling
    emit: Callable[[str, bool, str | None], None]
    cancelled: Callable[[], bool] = lambda: False
    stream: bool = False
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    sent: int = 0
    cache: list | None = None
    finish_reason: str = ""
    generator: object = None
    first_token_at: float = 0.0
    inputs: dict | None = None

    @property
    def length(self) -> int:
        """Tokens so far (prompt + generated)."""
        return len(self.prompt_ids) + len(self.tokens)


class TorchRunner:
    """One forward pass of a transformers causal LM (``AutoModelForCausalLM``) with a ``DynamicCache``.

    Args:
        model: the model, in eval mode.
    """

    def __init__(self, model) -> None:
        self.model = model

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray, position_ids: np.ndarray, cache):
        """``input_ids``/``position_ids`` ``[B, T]`` int64, ``attention_mask`` ``[B, past + T]``; ``cache`` a list of
        ``(key, value)`` tensors ``[B, kv_heads, past, head_dim]`` or ``None``. Returns ``(logits [B, vocab]`` of
        the last position, new cache)``."""
        import torch  # noqa: PLC0415
        from transformers import DynamicCache  # noqa: PLC0415

        past = DynamicCache(ddp_cache_data=cache, config=self.model.config) if cache else DynamicCache(config=self.model.config)
        with torch.inference_mode():
            out = self.model(
                input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask),
                position_ids=torch.from_numpy(position_ids), past_key_values=past, use_cache=True,
                logits_to_keep=1,
            )
        new = out.past_key_values
        return out.logits[:, -1, :], [(layer.keys, layer.values) for layer in new.layers]

    @staticmethod
    def cat(parts, dim: int = 0):
        import torch  # noqa: PLC0415

        return torch.cat(parts, dim=dim)

    @staticmethod
    def pad_left(x, n: int):
        import torch  # noqa: PLC0415

        if n == 0:
            return x
        b, h, _, d = x.shape
        return torch.cat([x.new_zeros((b, h, n, d)), x], dim=2)


def cpu_session(path: str, threads: int = 0):
    """An onnxruntime ``InferenceSession`` of the graph at ``path`` on the CPU execution provider, with ``threads``
    intra-op threads (0: onnxruntime's default). Raises onnxruntime's error for a missing or unreadable graph."""
    import onnxruntime as ort  # noqa: PLC0415

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


class OrtRunner:
    """One forward pass of optimum's ONNX decoder (``model.onnx`` exported for ``text-generation-with-past``).

    Graph inputs ``input_ids``, ``attention_mask``, optionally ``position_ids``, ``past_key_values.N.key`` /
    ``.value`` (``[B, kv_heads, past, head_dim]``; an empty past has length 0); outputs ``logits`` and
    ``present.N.key`` / ``.value`` (optimum ``exporters/onnx/model_configs.py``, ``TextDecoderOnnxConfig``).
    """

    def __init__(self, path: str, threads: int = 0) -> None:
        self.session = cpu_session(path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        past = [i for i in self.session.get_inputs() if i.name.startswith("past_key_values.")]
        self.layers = len(past) // 2
        shape = past[0].shape if past else [None, 1, None, 1]
        self.kv_heads, self.head_dim = int(shape[1]), int(shape[3])
        self.dtype = np.float16 if past and "float16" in past[0].type else np.float32
        self.output_names = ["logits"] + [f"present.{i}.{kv}" for i in range(self.layers) for kv in ("key", "value")]

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray, position_ids: np.ndarray, cache):
        """Same contract as :meth:`TorchRunner.forward` with NumPy arrays; logits returned as a torch tensor."""
        import torch  # noqa: PLC0415

        b = input_ids.shape[0]
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "position_ids" in self.input_names:
            feed["position_ids"] = position_ids
        for i in range(self.layers):
            if cache:
                k, v = cache[i]
            else:
                k = v = np.zeros((b, self.kv_heads, 0, self.head_dim), dtype=self.dtype)
            feed[f"past_key_values.{i}.key"], feed[f"past_key_values.{i}.value"] = k, v
        if "use_cache_branch" in self.input_names:
            feed["use_cache_branch"] = np.array([bool(cache)])
        out = self.session.run(self.output_names, feed)
        logits = torch.from_numpy(out[0][:, -1, :].copy())
        return logits, [(out[1 + 2 * i], out[2 + 2 * i]) for i in range(self.layers)]

    @staticmethod
    def cat(parts, dim: int = 0):
        return np.concatenate(parts, axis=dim)

    @staticmethod
    def pad_left(x, n: int):
        if n == 0:
            return x
        b, h, _, d = x.shape
        return np.concatenate([np.zeros((b, h, n, d), dtype=x.dtype), x], axis=2)


class Engine:
    """In-flight batching generation loop over one runner (see the module docstring).

    Args:
        runner: a :class:`TorchRunner` or :class:`OrtRunner`.
        tokenizer: the checkpoint's tokenizer (decodes generated ids).
        eos_token_ids: ids that end a sequence (from ``generation_config.json`` / ``config.json``).
        max_batch: most sequences decoded together in one step (others wait in the queue).
    """

    def __init__(self, runner, tokenizer, eos_token_ids: list[int], max_batch: int = 8) -> None:
        self.runner, self.tokenizer = runner, tokenizer
        self.eos = set(eos_token_ids)
        self.max_batch = max(1, max_batch)
        self.queue: queue.Queue[Sequence | None] = queue.Queue()
        self.active: list[Sequence] = []
        self.batch_cache = None
        self.batch_members: list[Sequence] = []
        self.steps = 0
        self._stop = False
        self.thread = threading.Thread(target=self._loop, name="tritonrepo-generate", daemon=True)
        self.thread.start()

    def submit(self, seq: Sequence) -> None:
        """Queue ``seq``; its ``emit`` callback reports progress from the engine thread."""
        if seq.sampling.seed is not None:
            import torch  # noqa: PLC0415

            seq.generator = torch.Generator().manual_seed(seq.sampling.seed)
        self.queue.put(seq)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the loop (sequences still running are finished with an error)."""
        self._stop = True
        self.queue.put(None)
        self.thread.join(timeout)

    # -- loop ---------------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop:
            try:
                self._admit()
                if self.active:
                    self._decode_step()
            except Exception as exc:  # noqa: BLE001 - a failed step ends its sequences, the engine keeps serving
                for seq in list(self.active):
                    self._finish(seq, error=f"{type(exc).__name__}: {exc}")
                self._reset_batch()
        for seq in list(self.active):
            self._finish(seq, error="the model is being unloaded")

    def _reset_batch(self) -> None:
        """Forget every active sequence and the batch state built for them (after a failed step)."""
        self.active, self.batch_cache, self.batch_members = [], None, []

    def _admit(self) -> None:
        block = not self.active
        while len(self.active) < self.max_batch:
            try:  # an idle loop wakes up twice a second (a thread blocked forever can stall the stub's unload)
                seq = self.queue.get(block=block, timeout=0.5 if block else 0)
            except queue.Empty:
                return
            block = False
            if seq is None:
                self._stop = True
                return
            try:
                self._prefill(seq)
            except Exception as exc:  # noqa: BLE001 - this request's error only
                self._finish(seq, error=f"{type(exc).__name__}: {exc}")

    def _prefill(self, seq: Sequence) -> None:
        if seq.cancelled():
            self._finish(seq, reason="cancelled")
            return
        n = len(seq.prompt_ids)
        ids = np.array([seq.prompt_ids], dtype=np.int64)
        logits, cache = self.runner.forward(
            ids, np.ones((1, n), dtype=np.int64), np.arange(n, dtype=np.int64)[None, :], None
        )
        seq.cache = cache
        seq.first_token_at = time.perf_counter()
        if self._accept(seq, select_token(logits[0], seq.prompt_ids, seq.sampling, seq.generator)):
            self.active.append(seq)

    def _decode_step(self) -> None:
        for seq in [s for s in self.active if s.cancelled()]:
            self._finish(seq, reason="cancelled")
        if not self.active:
            return
        members = list(self.active)
        if members != self.batch_members:
            self._rebuild(members)
        lengths = [s.length - 1 for s in members]  # tokens whose keys/values are cached
        width = self.batch_cache[0][0].shape[2]
        mask = np.zeros((len(members), width + 1), dtype=np.int64)
        for i, n in enumerate(lengths):
            mask[i, width - n:] = 1
        ids = np.array([[s.tokens[-1]] for s in members], dtype=np.int64)
        pos = np.array([[n] for n in lengths], dtype=np.int64)
        logits, self.batch_cache = self.runner.forward(ids, mask, pos, self.batch_cache)
        self.steps += 1
        for i, seq in enumerate(members):
            self._accept(seq, select_token(logits[i], seq.prompt_ids + seq.tokens, seq.sampling, seq.generator))

    def _rebuild(self, members: list[Sequence]) -> None:
        """Stack the members' caches (left-padded to the longest); split the previous stack back first."""
        r = self.runner
        if self.batch_cache is not None:
            width = self.batch_cache[0][0].shape[2]
            for i, seq in enumerate(self.batch_members):
                n = seq.length - 1 if seq in members else 0
                if n:
                    seq.cache = [(k[i:i + 1, :, width - n:], v[i:i + 1, :, width - n:]) for k, v in self.batch_cache]
        width = max(s.length - 1 for s in members)
        layers = len(members[0].cache)
        self.batch_cache = [
            tuple(
                r.cat([r.pad_left(s.cache[layer][kv], width - (s.length - 1)) for s in members])
                for kv in (0, 1)
            )
            for layer in range(layers)
        ]
        for s in members:
            s.cache = None
        self.batch_members = members

    # -- tokens and text ----------------------------------------------------------------------------------
    def _accept(self, seq: Sequence, token: int) -> bool:
        """Record ``token``; emit text; return ``False`` when the sequence is finished."""
        if token in self.eos:
            self._finish(seq, reason="stop")
            return False
        seq.tokens.append(token)
        text = self.tokenizer.decode(seq.tokens, skip_special_tokens=True)
        for stop in seq.sampling.stop:
            at = text.find(stop)
            if at >= 0:
                seq.text = text[:at]
                self._finish(seq, reason="stop")
                return False
        seq.text = text
        if len(seq.tokens) >= seq.sampling.max_tokens:
            self._finish(seq, reason="length")
            return False
        if seq.stream:
            hold = max((len(x) - 1 for x in seq.sampling.stop), default=0)
            end = len(text) - hold
            while end > seq.sent and text[end - 1] == "\ufffd":
                end -= 1
            if end > seq.sent:
                seq.emit(text[seq.sent:end], False, None)
                seq.sent = end
        return True

    def _finish(self, seq: Sequence, reason: str = "", error: str | None = None) -> None:
        seq.finish_reason = reason or "error"
        seq.cache = None
        if seq in self.active:
            self.active.remove(seq)
        try:
            seq.emit("" if error else seq.text[seq.sent:], True, error)
        except Exception:  # noqa: BLE001, S110 - the client is gone; nothing else to do
            pass
        seq.sent = len(seq.text)
        release(seq)


def _emit_nothing(delta: str, finished: bool, error: str | None) -> None:
    """The ``emit`` of a finished :class:`Sequence` (see :func:`release`)."""


def _not_cancelled() -> bool:
    return False


def release(seq: Sequence) -> None:
    """Drop a finished sequence's callbacks, so that what they hold is freed now, by reference counting.

    In Triton they hold the request's ``response_sender`` (``emit`` is a closure over the sender *and* the
    sequence: a reference cycle; ``cancelled`` is ``sender.is_cancelled``). A sender left in a cycle is only freed
    by Python's garbage collector, which may first run in the stub's ``Py_FinalizeEx``, after ``finalize``: there
    ``ResponseSender::~ResponseSender`` (freeing its ``is_cancelled`` message, ``PbCancel``) waits forever on a
    shared-memory lock (seen with gdb, Triton 2.51), the model never unloads (``Found N live models``) and
    ``tritonserver`` waits until it is killed (the stub may then abort with ``boost::interprocess::lock_exception``).
    """
    seq.emit, seq.cancelled = _emit_nothing, _not_cancelled


class SerialEngine(Engine):
    """Encoder-decoder generation (T5, BART, Marian, ...): one request at a time through transformers' own
    ``model.generate`` (so greedy text is transformers' by construction), streamed token by token.

    ``Sequence.inputs`` holds the model's keyword inputs (``input_ids``, ``attention_mask``, or
    ``input_features`` ...) as tensors. A streamer feeds each new token to the same text logic as
    :class:`Engine`; a stopping criterion ends ``generate`` on a stop string, ``max_tokens`` or cancellation.
    Seeded sampling seeds torch's global generator right before ``generate`` (requests run one at a time).
    """

    def __init__(self, model, tokenizer, eos_token_ids: list[int]) -> None:
        self.model = model
        super().__init__(None, tokenizer, eos_token_ids, max_batch=1)

    def _loop(self) -> None:
        while not self._stop:
            try:
                seq = self.queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if seq is None:
                break
            try:
                self._run(seq)
            except Exception as exc:  # noqa: BLE001 - this request's error only
                if not seq.finish_reason:
                    self._finish(seq, error=f"{type(exc).__name__}: {exc}")

    def _run(self, seq: Sequence) -> None:
        import torch  # noqa: PLC0415
        from transformers import StoppingCriteria, StoppingCriteriaList  # noqa: PLC0415

        engine = self

        class Streamer:
            first = True

            def put(self, value):
                if self.first:  # the decoder's start tokens
                    self.first = False
                    return
                if not seq.finish_reason:
                    if not seq.tokens:
                        seq.first_token_at = time.perf_counter()
                    engine._accept(seq, int(value.reshape(-1)[-1]))

            def end(self):
                pass

        class Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                if not seq.finish_reason and seq.cancelled():
                    engine._finish(seq, reason="cancelled")
                return torch.full((input_ids.shape[0],), bool(seq.finish_reason), dtype=torch.bool)

        s = seq.sampling
        kwargs = {"max_new_tokens": s.max_tokens, "do_sample": not s.greedy, "num_beams": 1}
        if not s.greedy:
            kwargs.update(temperature=s.temperature, top_p=s.top_p, top_k=s.top_k if s.top_k > 0 else None)
            if s.seed is not None:
                torch.manual_seed(s.seed)
        if s.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = s.repetition_penalty
        if seq.cancelled():
            self._finish(seq, reason="cancelled")
            return
        with torch.inference_mode():
            self.model.generate(**seq.inputs, **kwargs, streamer=Streamer(),
                                stopping_criteria=StoppingCriteriaList([Stop()]))
        if not seq.finish_reason:
            self._finish(seq, reason="length")
