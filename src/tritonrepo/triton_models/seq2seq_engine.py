"""Encoder-decoder generation with batching (copied beside ``model.py`` as ``tritonrepo_seq2seq_engine.py``).

T5, BART, Marian, ... (``text2text-generation``): the generate module (:mod:`tritonrepo.triton_models.generate`)
hands each request to :class:`Seq2SeqEngine`, which shares the token/text/sampling logic of the decoder-only
:class:`~tritonrepo.triton_models.generate_engine.Engine` (same :class:`Sequence`, ``select_token``, stop
strings, streaming deltas, cancellation) and changes what a step is:

* **prefill** (each new request alone, no padding): the encoder runs once on the prompt; then the first
  decoder step (the decoder start token) runs with an empty cache and computes the *cross-attention* cache
  (keys/values of the encoder output) and the first *self-attention* entries. Its first token is exactly
  transformers'.
* **decode steps, batched by cohort**: sequences that are at the same decoder length form a cohort (all the
  requests admitted in one pass of the loop: requests that arrive together). One decoder step runs for a
  whole cohort: self-attention caches stacked (same length: no padding), encoder outputs and cross caches
  right-padded to the cohort's longest prompt with ``encoder_attention_mask`` hiding the pads. The cross
  cache is computed once (prefill) and kept; the self cache grows by one entry per step. Each loop
  iteration runs one step of every cohort; a finished sequence leaves its cohort (its rows are dropped).

Why cohorts and not one left-padded batch as the decoder-only engine: optimum's seq2seq decoder graph
(``decoder_model_merged.onnx``) has no decoder attention mask and derives decoder positions from the past
length (BART/Marian absolute positions, T5 relative buckets), so sequences of different decoder lengths
cannot share a step without changing their text. Same-length cohorts keep greedy text exact in both
runtimes with one engine. Requests arriving mid-generation start a new cohort (served in the same loop
iteration, not after the others end).

Runners: :class:`Seq2SeqTorchRunner` (a transformers ``*ForConditionalGeneration`` with an
``EncoderDecoderCache``) and :class:`Seq2SeqOrtRunner` (optimum's ``encoder_model.onnx`` +
``decoder_model_merged.onnx``, or ``decoder_model.onnx`` + ``decoder_with_past_model.onnx``; inputs/outputs
as optimum's ``Seq2SeqDecoderOnnxConfig`` names them: ``past_key_values.N.{decoder,encoder}.{key,value}`` /
``present.N...``; for a VisionEncoderDecoder with a GPT-2-like decoder, ``past_key_values.N.{key,value}`` and
``encoder_hidden_states`` at every step). A cache is a list with one ``(self_key, self_value, cross_key,
cross_value)`` tuple per layer, each ``[batch, heads, length, head_dim]`` (cross entries ``None`` when the graph
has no cross cache). The encoder runs on whatever its graph takes (``input_ids``/``attention_mask``,
``input_features`` for Whisper, ``pixel_values`` for images: :meth:`Seq2SeqOrtRunner.encode_inputs`).

:class:`GenerationRules` applies the logits processors transformers' ``generate`` applies even when greedy
(from ``generation_config.json``): ``forced_bos_token_id``, ``forced_eos_token_id``, ``suppress_tokens``,
``begin_suppress_tokens``, ``bad_words_ids``, ``min_length``/``min_new_tokens``, ``no_repeat_ngram_size``,
``repetition_penalty`` (transformers ``generation/logits_process.py``). Other rules that change greedy text
are caught at export by the parity check (:func:`tritonrepo.generation.stage_generation`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace

import numpy as np

try:  # inside Triton: the engine copied beside model.py
    from tritonrepo_generate_engine import Engine, RequestError, Sequence, cpu_session, release, select_token
except ImportError:  # in-process (export parity check, tests); by name, so that `tritonrepo package` (which reads
    # the imports of a served model's files) does not list tritonrepo as a requirement of the container
    import importlib

    _engine = importlib.import_module("tritonrepo.triton_models.generate_engine")
    Engine, RequestError, Sequence, cpu_session, release, select_token = (
        _engine.Engine, _engine.RequestError, _engine.Sequence, _engine.cpu_session, _engine.release,
        _engine.select_token)

#: files optimum writes for ``text2text-generation-with-past`` (relative to the ONNX folder).
ENCODER_FILE = "encoder_model.onnx"
MERGED_DECODER_FILE = "decoder_model_merged.onnx"
DECODER_FILES = ("decoder_model.onnx", "decoder_with_past_model.onnx")


@dataclass
class GenerationRules:
    """Logits processors transformers applies in greedy decoding too, read from the generation config.

    Attributes:
        decoder_start: the decoder's first input token (``decoder_start_token_id``).
        forced_bos: token forced as the first generated token (``forced_bos_token_id``) or ``None``.
        forced_eos: token forced as the last one (at ``max_tokens``; ``forced_eos_token_id``) or ``None``.
        suppress: tokens never generated (``suppress_tokens`` and single-token ``bad_words_ids``).
        begin_suppress: tokens not generated first (``begin_suppress_tokens``).
        bad_sequences: multi-token ``bad_words_ids`` (last token banned after the others).
        min_new_tokens: EOS banned before this many new tokens (``min_length - 1`` or ``min_new_tokens``).
        no_repeat_ngram_size: n-grams of this size never repeat in the decoder ids (0: off).
        eos: end-of-sequence ids (banned by the min-length rule).
        repetition_penalty: the checkpoint's default (``repetition_penalty``; 1 = none), used when the request
            does not set one.
        decoder_prompt: Whisper: the decoder's forced prompt (see :func:`whisper_decoder_prompt`); empty: the
            decoder start token alone.
        language_ids: Whisper: the language tokens (``lang_to_id``) among which a ``None`` prompt entry is
            detected.
    """

    decoder_start: int = 0
    forced_bos: int | None = None
    forced_eos: int | None = None
    suppress: list[int] = field(default_factory=list)
    begin_suppress: list[int] = field(default_factory=list)
    bad_sequences: list[list[int]] = field(default_factory=list)
    min_new_tokens: int = 0
    no_repeat_ngram_size: int = 0
    eos: list[int] = field(default_factory=list)
    repetition_penalty: float = 1.0
    decoder_prompt: list = field(default_factory=list)
    language_ids: list[int] = field(default_factory=list)

    @property
    def prompt(self) -> list:
        """The decoder's forced first inputs: ``decoder_prompt`` (Whisper: start + language/task/no-timestamps
        tokens; ``None`` = the language token, detected per request among ``language_ids``), else
        ``[decoder_start]``."""
        return list(self.decoder_prompt) or [self.decoder_start]

    @classmethod
    def from_pretrained(cls, folder: str, eos: list[int]) -> GenerationRules:
        """Read ``folder``'s generation config (or derive it from ``config.json`` as transformers does)."""
        from transformers import AutoConfig, GenerationConfig  # noqa: PLC0415

        try:
            gen = GenerationConfig.from_pretrained(folder)
        except OSError:
            gen = GenerationConfig.from_model_config(AutoConfig.from_pretrained(folder))
        cfg = AutoConfig.from_pretrained(folder)
        return cls.from_configs(gen, cfg, eos)

    @classmethod
    def from_configs(cls, gen, cfg, eos: list[int]) -> GenerationRules:
        """From a ``GenerationConfig`` ``gen`` and the model config ``cfg``."""
        start = gen.decoder_start_token_id
        if start is None:
            start = getattr(cfg, "decoder_start_token_id", None)
        if start is None:
            start = gen.bos_token_id if gen.bos_token_id is not None else getattr(cfg, "bos_token_id", 0) or 0
        if isinstance(start, list):
            start = start[0]
        bad = [list(b) for b in (gen.bad_words_ids or []) if list(b) not in ([e] for e in eos)]
        whisper = getattr(cfg, "model_type", "") == "whisper"
        min_new = int(gen.min_new_tokens or 0)
        if gen.min_length:
            min_new = max(min_new, int(gen.min_length) - 1)  # min_length counts the decoder start token
        return cls(
            decoder_start=int(start),
            forced_bos=gen.forced_bos_token_id,
            forced_eos=gen.forced_eos_token_id if not isinstance(gen.forced_eos_token_id, list)
            else gen.forced_eos_token_id[0],
            suppress=list(gen.suppress_tokens or []) + [b[0] for b in bad if len(b) == 1],
            begin_suppress=list(gen.begin_suppress_tokens or []),
            bad_sequences=[b for b in bad if len(b) > 1],
            min_new_tokens=min_new,
            no_repeat_ngram_size=int(gen.no_repeat_ngram_size or 0),
            eos=list(eos),
            repetition_penalty=float(gen.repetition_penalty or 1.0),
            decoder_prompt=whisper_decoder_prompt(gen, int(start), cfg) if whisper else [],
            language_ids=sorted(int(v) for v in (getattr(gen, "lang_to_id", None) or {}).values()) if whisper else [],
        )

    def apply(self, logits, decoder_ids: list[int], max_tokens: int, prompt_length: int = 0):
        """Apply the rules to ``logits`` (``[vocab]`` torch tensor, changed in place and returned) before the
        next token; ``decoder_ids`` = decoder prompt (:attr:`prompt`, ``prompt_length`` tokens; 0: its length)
        + generated tokens; ``max_tokens`` of the request."""
        new = len(decoder_ids) - (prompt_length or len(self.prompt))
        inf = float("-inf")
        if self.no_repeat_ngram_size and len(decoder_ids) + 1 >= self.no_repeat_ngram_size:
            n = self.no_repeat_ngram_size
            prefix = tuple(decoder_ids[len(decoder_ids) - n + 1:]) if n > 1 else ()
            for i in range(len(decoder_ids) - n + 1):
                if tuple(decoder_ids[i:i + n - 1]) == prefix:
                    logits[decoder_ids[i + n - 1]] = inf
        for seq in self.bad_sequences:
            if decoder_ids[len(decoder_ids) - len(seq) + 1:] == seq[:-1]:
                logits[seq[-1]] = inf
        if new < self.min_new_tokens:
            for e in self.eos:
                logits[e] = inf
        if self.forced_bos is not None and new == 0:
            logits.fill_(inf)
            logits[self.forced_bos] = 0
        if self.forced_eos is not None and new == max_tokens - 1:
            logits.fill_(inf)
            logits[self.forced_eos] = 0
        for t in self.suppress:
            logits[t] = inf
        if self.begin_suppress and new == (1 if self.forced_bos is not None else 0):
            for t in self.begin_suppress:
                logits[t] = inf
        return logits


class Seq2SeqTorchRunner:
    """Encoder and one decoder step of a transformers encoder-decoder (``AutoModelForSeq2SeqLM``), PyTorch.

    Args:
        model: the model, in eval mode.
    """

    def __init__(self, model) -> None:
        self.model = model

    def encode(self, input_ids: np.ndarray, attention_mask: np.ndarray):
        """``input_ids``/``attention_mask`` ``[1, S]`` int64 -> encoder output ``[1, S, hidden]`` (torch float)."""
        import torch  # noqa: PLC0415

        with torch.inference_mode():
            out = self.model.get_encoder()(input_ids=torch.from_numpy(input_ids),
                                           attention_mask=torch.from_numpy(attention_mask))
        return out.last_hidden_state

    def decode(self, input_ids: np.ndarray, hidden, encoder_mask: np.ndarray, cache):
        """One decoder step. ``input_ids`` ``[B, 1]``, ``hidden`` ``[B, S, hidden]``, ``encoder_mask`` ``[B, S]``,
        ``cache`` (see the module docstring) or ``None`` for the first step. Returns ``(logits [B, vocab], cache)``."""
        import torch  # noqa: PLC0415
        from transformers import DynamicCache, EncoderDecoderCache  # noqa: PLC0415
        from transformers.modeling_outputs import BaseModelOutput  # noqa: PLC0415

        past = EncoderDecoderCache(cache) if cache else EncoderDecoderCache(DynamicCache(), DynamicCache())
        with torch.inference_mode():
            out = self.model(
                encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
                attention_mask=torch.from_numpy(encoder_mask), decoder_input_ids=torch.from_numpy(input_ids),
                past_key_values=past, use_cache=True,
            )
        pkv = out.past_key_values
        selfc, cross = pkv.self_attention_cache, pkv.cross_attention_cache
        new = [(s.keys, s.values, c.keys, c.values) for s, c in zip(selfc.layers, cross.layers)]
        return out.logits[:, -1, :], new

    @staticmethod
    def cat(parts, dim: int = 0):
        import torch  # noqa: PLC0415

        return torch.cat(parts, dim=dim)

    @staticmethod
    def pad(x, n: int, dim: int):
        """Append ``n`` zeros along ``dim``."""
        import torch  # noqa: PLC0415

        if n == 0:
            return x
        shape = list(x.shape)
        shape[dim] = n
        return torch.cat([x, x.new_zeros(shape)], dim=dim)

    @staticmethod
    def take(x, rows: list[int]):
        import torch  # noqa: PLC0415

        return x.index_select(0, torch.tensor(rows, dtype=torch.long))


class Seq2SeqOrtRunner:
    """Encoder and one decoder step of optimum's ONNX export (``text2text-generation-with-past``), onnxruntime.

    Args:
        folder: the folder holding ``encoder_model.onnx`` and ``decoder_model_merged.onnx`` (or
            ``decoder_model.onnx`` + ``decoder_with_past_model.onnx``).
        threads: intra-op threads (0: onnxruntime's default).

    Raises:
        FileNotFoundError: no encoder or decoder graph in ``folder``.
    """

    def __init__(self, folder: str, threads: int = 0) -> None:
        def session(name):
            return cpu_session(os.path.join(folder, name), threads)

        self.encoder = session(ENCODER_FILE)
        self.encoder_inputs = [i.name for i in self.encoder.get_inputs()]
        self.encoder_types = {i.name: np.int64 if "int64" in i.type else np.float16 if "float16" in i.type
                              else np.float32 for i in self.encoder.get_inputs()}
        if os.path.isfile(os.path.join(folder, MERGED_DECODER_FILE)):
            self.first = self.with_past = session(MERGED_DECODER_FILE)
        else:
            self.first, self.with_past = session(DECODER_FILES[0]), session(DECODER_FILES[1])
        self.merged = self.first is self.with_past
        past = [i for i in self.with_past.get_inputs() if i.name.startswith("past_key_values.")]
        # VisionEncoderDecoder with a GPT-2-like decoder (optimum image-to-text-with-past): decoder-only names
        # past_key_values.N.{key,value}, no cross-attention cache (encoder_hidden_states is fed at every step)
        self.self_only = not any(".decoder." in i.name for i in past)
        self.layers = len(past) // (2 if self.self_only else 4)
        self.heads, self.head_dim = int(past[0].shape[1]), int(past[0].shape[3])
        self.dtype = np.float16 if "float16" in past[0].type else np.float32
        self.first_inputs = {i.name for i in self.first.get_inputs()}
        self.past_inputs = {i.name for i in self.with_past.get_inputs()}
        kv = ("key", "value")
        if self.self_only:
            self.first_outputs = self.past_outputs = ["logits"] + [
                f"present.{i}.{x}" for i in range(self.layers) for x in kv]
        else:
            self.first_outputs = ["logits"] + [
                f"present.{i}.{part}.{x}" for i in range(self.layers) for part in ("decoder", "encoder") for x in kv
            ]
            self.past_outputs = ["logits"] + [f"present.{i}.decoder.{x}" for i in range(self.layers) for x in kv]

    def encode(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """``[1, S]`` int64 ids and mask -> ``last_hidden_state`` ``[1, S, hidden]``."""
        return self.encode_inputs({"input_ids": input_ids, "attention_mask": attention_mask})

    def encode_inputs(self, inputs: dict) -> np.ndarray:
        """The encoder on ``inputs`` (NumPy arrays by name, batch 1), fed as the graph names them: ``input_ids`` /
        ``attention_mask`` (text), ``input_features`` (Whisper ``[1, mel, frames]`` float32), ``pixel_values``
        (images); names the graph does not take are dropped. Returns ``last_hidden_state`` ``[1, S, hidden]``.

        Raises:
            ValueError: an input the encoder graph needs is not in ``inputs``.
        """
        missing = [n for n in self.encoder_inputs if n not in inputs]
        if missing:
            raise ValueError(f"the encoder graph needs {missing}, got {sorted(inputs)}")
        feed = {n: np.asarray(inputs[n], dtype=self.encoder_types[n]) for n in self.encoder_inputs}
        return self.encoder.run(["last_hidden_state"], feed)[0]

    def decode(self, input_ids: np.ndarray, hidden: np.ndarray, encoder_mask: np.ndarray, cache):
        """Same contract as :meth:`Seq2SeqTorchRunner.decode` on NumPy arrays; logits returned as a torch tensor."""
        import torch  # noqa: PLC0415

        b = input_ids.shape[0]
        sess, names, outputs = (self.with_past, self.past_inputs, self.past_outputs) if cache else (
            self.first, self.first_inputs, self.first_outputs)
        feed = {"input_ids": input_ids}
        if "encoder_attention_mask" in names:  # Whisper's decoder has none (no padding in its 30 s window)
            feed["encoder_attention_mask"] = encoder_mask
        if "encoder_hidden_states" in names:
            feed["encoder_hidden_states"] = hidden
        empty = np.zeros((b, self.heads, 0, self.head_dim), dtype=self.dtype)
        if self.self_only:
            for i in range(self.layers):
                feed[f"past_key_values.{i}.key"] = cache[i][0] if cache else empty
                feed[f"past_key_values.{i}.value"] = cache[i][1] if cache else empty
            if "use_cache_branch" in names:
                feed["use_cache_branch"] = np.array([bool(cache)])
            out = sess.run(outputs, feed)
            logits = torch.from_numpy(out[0][:, -1, :].copy())
            return logits, [(out[1 + 2 * i], out[2 + 2 * i], None, None) for i in range(self.layers)]
        for i in range(self.layers):
            parts = cache[i] if cache else (empty,) * 4
            for j, (part, kv) in enumerate((("decoder", "key"), ("decoder", "value"), ("encoder", "key"),
                                            ("encoder", "value"))):
                name = f"past_key_values.{i}.{part}.{kv}"
                if name in names:
                    feed[name] = parts[j]
        if "use_cache_branch" in names:
            feed["use_cache_branch"] = np.array([bool(cache)])
        out = sess.run(outputs, feed)
        logits = torch.from_numpy(out[0][:, -1, :].copy())
        if cache:  # the cross-attention cache is kept from the first step
            return logits, [(out[1 + 2 * i], out[2 + 2 * i], cache[i][2], cache[i][3]) for i in range(self.layers)]
        return logits, [tuple(out[1 + 4 * i:5 + 4 * i]) for i in range(self.layers)]

    @staticmethod
    def cat(parts, dim: int = 0):
        return np.concatenate(parts, axis=dim)

    @staticmethod
    def pad(x, n: int, dim: int):
        """Append ``n`` zeros along ``dim``."""
        if n == 0:
            return x
        shape = list(x.shape)
        shape[dim] = n
        return np.concatenate([x, np.zeros(shape, dtype=x.dtype)], axis=dim)

    @staticmethod
    def take(x, rows: list[int]):
        return x[rows]


class _Cohort:
    """Sequences at the same decoder length, decoded together: stacked caches, padded encoder outputs."""

    def __init__(self, runner, members: list[Sequence]) -> None:
        r = runner
        width = max(s.encoded[0].shape[1] for s in members)
        self.members = members
        self.hidden = r.cat([r.pad(s.encoded[0], width - s.encoded[0].shape[1], 1) for s in members])
        self.mask = np.zeros((len(members), width), dtype=np.int64)
        for i, s in enumerate(members):
            self.mask[i, : s.encoded[0].shape[1]] = 1
        layers = len(members[0].cache)
        self.cache = [  # no cross cache (None) when the decoder re-reads the encoder output (Seq2SeqOrtRunner)
            tuple(None if members[0].cache[layer][j] is None else
                  r.cat([r.pad(s.cache[layer][j], width - s.cache[layer][j].shape[2], 2) if j >= 2
                         else s.cache[layer][j] for s in members]) for j in range(4))
            for layer in range(layers)
        ]
        for s in members:
            s.cache = s.encoded = None

    def keep(self, runner, alive: list[bool]) -> None:
        """Drop the rows of finished members."""
        if all(alive):
            return
        rows = [i for i, a in enumerate(alive) if a]
        self.members = [self.members[i] for i in rows]
        if not rows:
            return
        self.hidden = runner.take(self.hidden, rows)
        self.mask = self.mask[rows]
        self.cache = [tuple(None if x is None else runner.take(x, rows) for x in layer) for layer in self.cache]


class Seq2SeqEngine(Engine):
    """In-flight batching generation loop for encoder-decoders (see the module docstring).

    Args:
        runner: a :class:`Seq2SeqTorchRunner` or :class:`Seq2SeqOrtRunner`.
        tokenizer: the checkpoint's tokenizer (decodes generated ids).
        eos_token_ids: ids that end a sequence.
        rules: :class:`GenerationRules` of the checkpoint (decoder start token, forced/suppressed tokens).
        max_batch: most sequences generating at once (others wait in the queue).
        decoder_positions: the decoder's position table size (BART/Marian ``max_position_embeddings``; 0 for
            relative positions, T5): a request whose ``max_tokens`` exceeds it is refused at submit (the decoder
            reads the start token and ``max_tokens - 1`` generated ones).
    """

    def __init__(self, runner, tokenizer, eos_token_ids: list[int], rules: GenerationRules,
                 max_batch: int = 8, decoder_positions: int = 0) -> None:
        self.rules = rules
        self.decoder_positions = decoder_positions
        self.cohorts: list[_Cohort] = []
        self.fresh: list[Sequence] = []
        super().__init__(runner, tokenizer, eos_token_ids, max_batch=max_batch)

    def submit(self, seq: Sequence) -> None:
        """Queue ``seq`` (see :meth:`Engine.submit`).

        Raises:
            RequestError: ``max_tokens`` does not fit the decoder's positions (this request only).
        """
        prompt = len(self.rules.prompt)
        limit = self.decoder_positions - prompt + 1  # the decoder reads the prompt and max_tokens - 1 tokens
        if self.decoder_positions and seq.sampling.max_tokens > limit:
            why = ("its max_position_embeddings" if prompt == 1 else
                   f"its {self.decoder_positions} positions less the {prompt}-token decoder prompt")
            release(seq)  # never run: drop its callbacks (the caller answers the request)
            raise RequestError(
                f"max_tokens is {seq.sampling.max_tokens}: more than the {limit} tokens the model's decoder can "
                f"generate ({why})"
            )
        super().submit(seq)

    def _reset_batch(self) -> None:
        self.active, self.cohorts, self.fresh = [], [], []

    def _next(self, seq: Sequence, logits) -> int:
        prompt = getattr(seq, "decoder_prompt", None) or self.rules.prompt
        ids = [*prompt, *seq.tokens]
        logits = self.rules.apply(logits.float().clone(), ids, seq.sampling.max_tokens, len(prompt))
        sampling = seq.sampling
        if sampling.repetition_penalty == 1.0 and self.rules.repetition_penalty != 1.0:
            sampling = replace(sampling, repetition_penalty=self.rules.repetition_penalty)
        return select_token(logits, ids, sampling, seq.generator)

    def _prefill(self, seq: Sequence) -> None:
        if seq.cancelled():
            self._finish(seq, reason="cancelled")
            return
        encoder_inputs = getattr(seq, "encoder_inputs", None)  # audio features / pixels (media_generate)
        if encoder_inputs is not None:
            hidden = self.runner.encode_inputs(encoder_inputs)
        else:
            n = len(seq.prompt_ids)
            hidden = self.runner.encode(np.array([seq.prompt_ids], dtype=np.int64), np.ones((1, n), dtype=np.int64))
        mask = np.ones((1, hidden.shape[1]), dtype=np.int64)
        prompt = list(self.rules.prompt)
        if None in prompt:  # Whisper's language detection: the start token alone, most likely language token
            first, _ = self.runner.decode(np.array([prompt[:1]], dtype=np.int64), hidden, mask, None)
            ids = self.rules.language_ids
            prompt[prompt.index(None)] = ids[int(first[0, ids].argmax())]
        seq.decoder_prompt = prompt
        logits, seq.cache = self.runner.decode(np.array([prompt], dtype=np.int64), hidden, mask, None)
        seq.encoded = (hidden, mask)
        seq.first_token_at = time.perf_counter()
        if self._accept(seq, self._next(seq, logits[0])):
            self.active.append(seq)
            self.fresh.append(seq)

    def _decode_step(self) -> None:
        for seq in [s for s in self.active if s.cancelled()]:
            self._finish(seq, reason="cancelled")
        live = {id(s) for s in self.active}
        fresh = [s for s in self.fresh if id(s) in live]
        self.fresh = []
        if fresh:
            self.cohorts.append(_Cohort(self.runner, fresh))
        for cohort in self.cohorts:
            cohort.keep(self.runner, [id(s) in live for s in cohort.members])
        self.cohorts = [c for c in self.cohorts if c.members]
        for cohort in list(self.cohorts):
            ids = np.array([[s.tokens[-1]] for s in cohort.members], dtype=np.int64)
            logits, cohort.cache = self.runner.decode(ids, cohort.hidden, cohort.mask, cohort.cache)
            self.steps += 1
            for i, seq in enumerate(cohort.members):
                self._accept(seq, self._next(seq, logits[i]))
            live = {id(s) for s in self.active}
            cohort.keep(self.runner, [id(s) in live for s in cohort.members])
        self.cohorts = [c for c in self.cohorts if c.members]

    def _finish(self, seq: Sequence, reason: str = "", error: str | None = None) -> None:
        seq.encoded = None
        super()._finish(seq, reason, error)


def build_seq2seq_engine(runtime: str, version_dir: str, folder: str, tokenizer, eos: list[int], *,
                         onnx_folder: str = "onnx", max_batch: int = 8, threads: int = 0) -> Seq2SeqEngine:
    """The engine the generate module runs for an encoder-decoder.

    Args:
        runtime: ``seq2seq`` (PyTorch) or ``seq2seq-onnx`` (onnxruntime on optimum's graphs).
        version_dir: the model version folder.
        folder: the checkpoint folder (config, generation config, tokenizer; weights for PyTorch).
        tokenizer: the loaded tokenizer.
        eos: end-of-sequence ids.
        onnx_folder: the ONNX graphs' folder, relative to ``version_dir`` (config parameter ``onnx_folder``).
        max_batch: sequences generating at once (config parameter ``max_batch``).
        threads: intra-op threads for onnxruntime (0: default).
    """
    from transformers import AutoConfig  # noqa: PLC0415

    rules = GenerationRules.from_pretrained(folder, eos)
    cfg = AutoConfig.from_pretrained(folder)
    if runtime == "seq2seq-onnx":
        runner = Seq2SeqOrtRunner(os.path.join(version_dir, onnx_folder), threads=threads)
    else:
        from transformers import AutoModelForSeq2SeqLM  # noqa: PLC0415

        runner = Seq2SeqTorchRunner(AutoModelForSeq2SeqLM.from_pretrained(folder).eval())
    return Seq2SeqEngine(runner, tokenizer, eos, rules, max_batch=max_batch, decoder_positions=decoder_positions(cfg))


def whisper_decoder_prompt(gen, start: int, cfg=None) -> list:
    """Whisper's forced decoder prompt for transcription without timestamps, as ``WhisperGenerationMixin`` builds
    it (transformers ``models/whisper/generation_whisper.py`` ``_retrieve_init_tokens``):

    * ``decoder_start_token_id`` (``<|startoftranscript|>``);
    * with neither ``gen.task`` nor ``gen.language``: the tokens of ``forced_decoder_ids`` (generation config,
      else model config ``cfg``) at positions 1, 2, ...;
    * the language token: ``gen.language`` (a code ``en``, a token ``<|en|>`` or a name ``english``); else, when the
      config has ``lang_to_id`` and no language token is forced, ``None``: **detected per request** (the engine
      runs the first decoder step on the start token and takes the most likely language token, as
      ``WhisperGenerationMixin.detect_language`` does);
    * the task token: ``gen.task``; else ``transcribe`` when ``gen.language`` is set and no task token is there;
    * ``no_timestamps_token_id``, when the config has one and it is not already last.

    Args:
        gen: the checkpoint's ``GenerationConfig``.
        start: the decoder start token id.
        cfg: the model config (for a legacy ``forced_decoder_ids``).

    Raises:
        ValueError: ``gen.language`` / ``gen.task`` is not in the config's ``lang_to_id`` / ``task_to_id``.
    """
    prompt: list = [int(start)]
    task, language = getattr(gen, "task", None), getattr(gen, "language", None)
    lang_to_id = getattr(gen, "lang_to_id", None) or {}
    task_to_id = getattr(gen, "task_to_id", None) or {}
    if task is None and language is None:
        forced = getattr(gen, "forced_decoder_ids", None) or getattr(cfg, "forced_decoder_ids", None) or []
        position = 1
        for index, token in forced:
            if index != position:
                break
            prompt.append(None if token is None else int(token))
            position += 1
    undefined = len(prompt) <= 1 or prompt[1] is None
    lang: object = "keep"
    if language is not None:
        from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE  # noqa: PLC0415

        name = language.lower()
        token = name if name in lang_to_id else f"<|{TO_LANGUAGE_CODE.get(name, name)}|>"
        if token not in lang_to_id:
            known = ", ".join(k.strip("<|>") for k in lang_to_id) or "none (an English-only checkpoint)"
            raise ValueError(f"language {language!r} is not in this Whisper's generation_config.lang_to_id "
                             f"(languages: {known})")
        lang = int(lang_to_id[token])
    elif lang_to_id and undefined:
        lang = None  # detected per request
    if lang != "keep":
        if len(prompt) > 1:
            prompt[1] = lang
        else:
            prompt.append(lang)
    if task is not None:
        if task not in task_to_id:
            raise ValueError(f"task {task!r} is not in this Whisper's generation_config.task_to_id "
                             f"(tasks: {', '.join(task_to_id) or 'none'})")
        ids = set(task_to_id.values())
        at = next((i for i, t in enumerate(prompt) if t in ids), None)
        if at is None:
            prompt.append(int(task_to_id[task]))
        else:
            prompt[at] = int(task_to_id[task])
    elif language is not None and task_to_id and not any(t in task_to_id.values() for t in prompt):
        prompt.append(int(task_to_id["transcribe"]))
    no_ts = getattr(gen, "no_timestamps_token_id", None)
    if no_ts is not None and not getattr(gen, "return_timestamps", False) and prompt[-1] != no_ts:
        prompt.append(int(no_ts))
    return prompt


def decoder_positions(cfg) -> int:
    """Size of the decoder's position table: ``max_target_positions`` (Whisper), ``max_position_embeddings``
    (BART, Marian, GPT-2's ``n_positions``, ...; a VisionEncoderDecoder's ``decoder`` config); 0 when positions
    are relative (T5: ``relative_attention_num_buckets``) or unknown."""
    if hasattr(cfg, "relative_attention_num_buckets"):
        return 0
    decoder = getattr(cfg, "decoder", None)
    if decoder is not None and hasattr(decoder, "to_dict"):
        return decoder_positions(decoder)
    for key in ("max_target_positions", "max_position_embeddings"):
        if getattr(cfg, key, None):
            return int(getattr(cfg, key))
    return 0
