"""Tiny random generative checkpoints built offline (the hub cannot be reached from CI).

Decoder-only models (GPT-2, Llama, Qwen2) share a byte-level BPE tokenizer trained here with the
``tokenizers`` library on a small corpus, so prompts tokenize into real multi-character tokens and decoding
round-trips any text. Weights are random but a little "sharpened" so that greedy decoding is not dominated
by near ties.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "hello world, triton serves models",
    "the good movie and the bad movie",
    "a model generates text one token at a time",
    "streaming responses arrive as server sent events",
    "The quick brown fox jumps over the lazy dog.",
    "0123456789 !?.,;:-'\"()[]{}",
]

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def make_bpe_tokenizer(path: Path, vocab_size: int = 300, chat: bool = False):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on :data:`CORPUS`, saved to ``path``.

    Special tokens: ``<|endoftext|>`` (id 0: bos, eos and pad), and with ``chat`` ``<|im_start|>`` /
    ``<|im_end|>`` plus a ChatML template.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>"] + (["<|im_start|>", "<|im_end|>"] if chat else [])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>",
        model_max_length=128,
    )
    if chat:
        fast.chat_template = CHAT_TEMPLATE
    path.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(path)
    return fast


def _sharpen(model, factor: float = 3.0) -> None:
    import torch

    with torch.no_grad():
        emb = model.get_output_embeddings()
        if emb is not None:
            emb.weight.mul_(factor)


def make_gpt2(path: Path, seed: int = 0, positions: int = 128) -> Path:
    """GPT-2 (``GPT2LMHeadModel``): hidden 32, 2 layers, 2 heads, ``positions`` positions."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    tok = make_bpe_tokenizer(path)
    cfg = GPT2Config(
        vocab_size=len(tok), n_positions=positions, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0,
        initializer_range=0.2,
    )
    model = GPT2LMHeadModel(cfg)
    model.save_pretrained(path)
    return path


def make_llama(path: Path, seed: int = 0) -> Path:
    """Llama (``LlamaForCausalLM``): hidden 32, 2 layers, 4 heads / 2 KV heads (GQA), 128 positions."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tok = make_bpe_tokenizer(path)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, bos_token_id=0, eos_token_id=0, pad_token_id=0,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg)
    _sharpen(model)
    model.save_pretrained(path)
    return path


def make_qwen2_chat(path: Path, seed: int = 0) -> Path:
    """Qwen2 (``Qwen2ForCausalLM``) with a ChatML chat template: hidden 32, 2 layers, 128 positions."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    tok = make_bpe_tokenizer(path, chat=True)
    cfg = Qwen2Config(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, bos_token_id=0, eos_token_id=0,
        tie_word_embeddings=False,
    )
    model = Qwen2ForCausalLM(cfg)
    _sharpen(model)
    model.save_pretrained(path)
    return path


def greedy_text(path: Path, prompt: str, max_new_tokens: int, *, chat: bool = False) -> str:
    """transformers' reference: ``model.generate(do_sample=False)`` decoded with ``skip_special_tokens=True``
    (new tokens only)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    if chat:
        ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                      return_tensors="pt")
    else:
        ids = tok(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def make_seq2seq(path: Path, family: str, seed: int = 0) -> Path:
    """Tiny encoder-decoder ``family`` (``"bart"``, ``"t5"`` or ``"marian"``) with the byte-level BPE tokenizer
    (id 0 = pad/eos/decoder start): hidden 32, 2+2 layers. Initialisation scales chosen so that greedy text
    differs between prompts and is not one repeated token (random tiny models easily collapse to one)."""
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    tok = make_bpe_tokenizer(path)
    n = len(tok)
    common = {"vocab_size": n, "pad_token_id": 0, "eos_token_id": 0, "decoder_start_token_id": 0}
    if family == "bart":
        cfg = tf.BartConfig(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                            decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                            max_position_embeddings=128, bos_token_id=0, forced_eos_token_id=None, init_std=0.2,
                            **common)
        model = tf.BartForConditionalGeneration(cfg)
    elif family == "t5":
        cfg = tf.T5Config(d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
                          initializer_factor=3.0, **common)
        model = tf.T5ForConditionalGeneration(cfg)
    else:
        cfg = tf.MarianConfig(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                              decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                              max_position_embeddings=128, init_std=0.5, **common)
        model = tf.MarianMTModel(cfg)
    model.save_pretrained(path)
    return path


def seq2seq_greedy_text(path: Path, prompt: str, max_new_tokens: int) -> str:
    """transformers' greedy text of an encoder-decoder (``skip_special_tokens=True``)."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSeq2SeqLM.from_pretrained(path).eval()
    ids = tok(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, num_beams=1,
                             max_new_tokens=max_new_tokens)
    return tok.decode(out[0], skip_special_tokens=True)


def _make_ctc(path: Path, seed: int, arch: str, *, return_attention_mask: bool, **config) -> Path:
    """A tiny CTC checkpoint of ``arch`` (``Wav2Vec2`` or ``Hubert``): letters vocabulary, hidden 32, 2 layers,
    16 kHz feature extractor returning an ``attention_mask`` or not; ``config``: extra config fields."""
    import json

    import torch
    import transformers
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, **{chr(c): 3 + i for i, c in enumerate(range(ord("a"), ord("z") + 1))}}
    (path / "vocab.json").write_text(json.dumps(vocab))
    tok = Wav2Vec2CTCTokenizer(str(path / "vocab.json"), pad_token="<pad>", unk_token="<unk>", word_delimiter_token="|")
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                  return_attention_mask=return_attention_mask)
    cfg = getattr(transformers, f"{arch}Config")(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        conv_dim=(16, 16, 16), conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, pad_token_id=0, **config,
    )
    model = getattr(transformers, f"{arch}ForCTC")(cfg)
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)
    model.save_pretrained(path)
    Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(path)
    return path


def make_wav2vec2_ctc(path: Path, seed: int = 0) -> Path:
    """wav2vec2 CTC (``Wav2Vec2ForCTC``): letters vocabulary, hidden 32, 2 layers, 16 kHz feature extractor."""
    return _make_ctc(path, seed, "Wav2Vec2", return_attention_mask=False, ctc_loss_reduction="mean",
                     do_stable_layer_norm=False)


def make_hubert_ctc(path: Path, seed: int = 1) -> Path:
    """HuBERT CTC (``HubertForCTC``): the letters vocabulary of :func:`make_wav2vec2_ctc`, hidden 32, 2 layers,
    layer-norm feature encoder with the stable-layer-norm transformer, and a feature extractor that returns an
    ``attention_mask`` (as large wav2vec2/HuBERT checkpoints do: the pipeline passes it to the model)."""
    return _make_ctc(path, seed, "Hubert", return_attention_mask=True, feat_extract_norm="layer",
                     do_stable_layer_norm=True)


def printable_token_ids(tok) -> list[int]:
    """Ids of the byte-level tokens that do not decode to printable ASCII (bytes of multi-byte characters and
    control characters): a tiny random model's generation config suppresses them, so generated text is
    readable and holds no partial UTF-8 characters."""
    out = []
    for token, i in tok.get_vocab().items():
        text = tok.convert_tokens_to_string([token])
        if i not in tok.all_special_ids and not all(32 <= ord(c) < 127 for c in text):
            out.append(i)
    return sorted(out)


def make_whisper(path: Path, seed: int = 0) -> Path:
    """Whisper (``WhisperForConditionalGeneration``): d_model 32, 2+2 layers, 80 mel bins, 30 s windows
    (1500 encoder positions), a ``WhisperTokenizerFast`` built on the byte-level BPE of :func:`make_bpe_tokenizer`
    with Whisper's special tokens appended after the text tokens (``<|notimestamps|>`` last, so no text token
    reads as a timestamp), and a 16 kHz ``WhisperFeatureExtractor``. The generation config starts from
    ``<|startoftranscript|>`` (no language/task tokens: not multilingual) and suppresses the unprintable byte
    tokens; ``<|endoftext|>`` (id 0) ends."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    torch.manual_seed(seed)
    base = make_bpe_tokenizer(path / "_bpe")
    specials = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>", "<|nocaptions|>",
                "<|notimestamps|>"]
    tok = WhisperTokenizerFast(tokenizer_object=base.backend_tokenizer, bos_token="<|endoftext|>",
                               eos_token="<|endoftext|>", unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": specials})
    ids = dict(zip(specials, tok.convert_tokens_to_ids(specials)))
    cfg = WhisperConfig(
        vocab_size=len(tok), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80, max_source_positions=1500,
        max_target_positions=128, pad_token_id=0, bos_token_id=0, eos_token_id=0,
        decoder_start_token_id=ids["<|startoftranscript|>"], init_std=0.3,
    )
    model = WhisperForConditionalGeneration(cfg)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=cfg.decoder_start_token_id, bos_token_id=0, eos_token_id=0, pad_token_id=0,
        no_timestamps_token_id=ids["<|notimestamps|>"], max_length=48, begin_suppress_tokens=[0],
        suppress_tokens=printable_token_ids(tok),
    )
    model.save_pretrained(path)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80, sampling_rate=16000),
                     tokenizer=tok).save_pretrained(path)
    import shutil

    shutil.rmtree(path / "_bpe")
    return path


def make_vision_encoder_decoder(path: Path, seed: int = 0) -> Path:
    """VisionEncoderDecoder (image-to-text): a ViT encoder (32x32 images, patch 8, hidden 32, 2 layers) and a
    GPT-2 decoder with cross-attention (``add_cross_attention=True``, ``is_decoder=True``; hidden 32, 2 layers,
    64 positions), the byte-level BPE tokenizer (id 0 = bos/eos/pad/decoder start) and a ``ViTImageProcessor``
    resizing to 32x32. The combination that works with transformers 4.57: ``decoder_start_token_id`` and
    ``pad_token_id`` set on the composite config (generate needs both), and a generation ``max_length`` (32)
    within the decoder's positions — without one, the image-to-text pipeline generates up to its default of
    256 new tokens and GPT-2 runs past its position table (``IndexError: index out of range``)."""
    import torch
    from transformers import (
        GenerationConfig,
        GPT2Config,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    torch.manual_seed(seed)
    tok = make_bpe_tokenizer(path)
    enc = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=64)
    dec = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=2, bos_token_id=0,
                     eos_token_id=0, add_cross_attention=True, is_decoder=True, initializer_range=0.2)
    cfg = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg.decoder_start_token_id = cfg.pad_token_id = cfg.eos_token_id = 0
    model = VisionEncoderDecoderModel(config=cfg)
    model.generation_config = GenerationConfig(decoder_start_token_id=0, bos_token_id=0, eos_token_id=0,
                                               pad_token_id=0, max_length=32,
                                               suppress_tokens=printable_token_ids(tok))
    model.save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def run_engine(engine, tok, prompts, max_tokens: int) -> tuple[list[str], list]:
    """Queue one streamed greedy ``Sequence`` per prompt before the engine's loop admits them (so they decode
    together: one batch or cohort), wait for all, shut the engine down; returns ``(texts, sequences)``."""
    import threading  # noqa: PLC0415

    from tritonrepo.triton_models.generate_engine import Sampling, Sequence  # noqa: PLC0415

    done = [threading.Event() for _ in prompts]
    pieces: dict[int, list[str]] = {i: [] for i in range(len(prompts))}
    seqs = []
    for i, p in enumerate(prompts):
        def emit(delta, finished, error, i=i):
            assert error is None
            pieces[i].append(delta)
            if finished:
                done[i].set()
        seqs.append(Sequence(tok(p).input_ids, Sampling(max_tokens=max_tokens), emit, stream=True))
    for s in seqs:
        engine.queue.put(s)
    assert all(e.wait(60) for e in done)
    engine.shutdown()
    return ["".join(pieces[i]) for i in range(len(prompts))], seqs


def assert_stops_cleanly_after_mixed_requests(server, models, prompt: str, max_tokens: int,
                                              unloaded_models=None) -> None:
    """Send each of ``models`` 3 concurrent requests (plain ``/generate``, SSE ``/generate_stream``, a gRPC stream),
    stop ``server`` (SIGINT; SIGKILL after 20 s) and assert that every model of ``unloaded_models`` (default
    ``models``) logged its unload and the server stopped in under 10 s. Stops the server."""
    import os  # noqa: PLC0415
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415

    from tritonrepo.client import generate, generate_grpc_stream, generate_request, generate_stream  # noqa: PLC0415

    body = generate_request(prompt, max_tokens=max_tokens)
    calls = (lambda m: generate(server.http_url, m, body), lambda m: "".join(generate_stream(server.http_url, m, body)),
             lambda m: "".join(generate_grpc_stream(server.grpc_url, m, body)))
    threads = [threading.Thread(target=calls[i % 3], args=(m,)) for m in models for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    start = time.monotonic()
    server.stop(timeout=20, keep_log=True)  # a model that never unloads: SIGKILL after 20 s, no "unloaded" line
    took = time.monotonic() - start
    log = server.kept_log.read_text(errors="replace") if server.kept_log else ""
    if server.kept_log and not os.environ.get("TRITONREPO_KEEP_SERVER_DIR"):
        server.kept_log.unlink(missing_ok=True)
    models = list(unloaded_models or models)
    unloaded = sorted(m for m in models if f"successfully unloaded '{m}'" in log)
    assert unloaded == sorted(models), f"not unloaded: {sorted(set(models) - set(unloaded))}"
    lines = "\n".join(ln for ln in log.splitlines() if "Signal (2)" in ln or "unloaded" in ln)
    assert took < 10, f"the server took {took:.1f}s to stop:\n{lines}"
