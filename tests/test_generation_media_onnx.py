"""Whisper and VisionEncoderDecoder with ``--backend onnx``: optimum's ``automatic-speech-recognition-with-past``
/ ``image-to-text-with-past`` graphs run by the encoder-decoder engine as the pipeline's ``generate``; wav2vec2 and
HuBERT CTC with ``--backend onnx``: optimum's ``automatic-speech-recognition`` graph (``input_values`` -> ``logits``)
as the forward of the pipeline's model (docs/generation.md, speech and image-to-text).

A tiny random Whisper, a tiny ViT+GPT-2, a tiny wav2vec2-CTC and a tiny HuBERT-CTC (tests/tiny_generative.py) are
added with ``--backend onnx`` (the CTC models with ``--backend python`` too) and served by ONE real tritonserver for
the module. Served texts are compared with transformers' pipeline called as the module calls it (greedy,
``num_beams=1``) AND, for the generative models, with ``model.generate(num_beams=1)`` on the PyTorch checkpoint;
streams must concatenate to the non-streamed text. Clips, images and reference helpers are the python-backend
tests'. The CTC tests record the support matrix's ``automatic-speech-recognition`` cells (``matrix_record``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from test_generation_media import (
    BATCH_CLIPS,
    BATCH_IMAGES,
    IMAGES,
    LONG,
    RATE,
    SHORT,
    _image,
    caption_references,
    caption_text,
    check_batch_in_process,
    check_batched,
    check_captioner,
    served,
    whisper_generate_text,
    whisper_pipeline_text,
)

import tiny_generative as tg

from tritonrepo.add import AddOptions, add_hf
from tritonrepo.config import read_config
from tritonrepo.errors import TritonRepoError
from tritonrepo.server import TritonServer
from tritonrepo.triton_models.audio import decode_audio, encode_wav

MAX = 12
CHUNK_S = 8
CTC_CHUNK_S = 4  # the wav2vec2-CTC model's chunk_length_s: LONG (20 s) is chunked, SHORT clips are not


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tg.make_whisper(tmp_path_factory.mktemp("whisper-onnx-ckpt") / "whisper")


@pytest.fixture(scope="module")
def ved(tmp_path_factory) -> Path:
    return tg.make_vision_encoder_decoder(tmp_path_factory.mktemp("ved-onnx-ckpt") / "ved")


@pytest.fixture(scope="module")
def ved_pipe(ved):
    from transformers import pipeline

    return pipeline("image-to-text", model=str(ved), device="cpu")


@pytest.fixture(scope="module")
def pipe(ckpt):
    from transformers import pipeline

    return pipeline("automatic-speech-recognition", model=str(ckpt), device="cpu")


@pytest.fixture(scope="module")
def ctc(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ctc-onnx-ckpt")
    return {"wav2vec2": tg.make_wav2vec2_ctc(root / "wav2vec2"), "hubert": tg.make_hubert_ctc(root / "hubert")}


@pytest.fixture(scope="module")
def ctc_pipes(ctc):
    from transformers import pipeline

    return {k: pipeline("automatic-speech-recognition", model=str(v), device="cpu") for k, v in ctc.items()}


@pytest.fixture(scope="module")
def repo(ckpt, ved, ctc, tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    from tritonrepo.cli import app

    repo = tmp_path_factory.mktemp("whisper-onnx-repo") / "models"
    run = CliRunner().invoke(app, ["add-hf", str(ckpt), "--repo", str(repo), "--name", "whisper_onnx",
                                   "--backend", "onnx", "--chunk-length-s", str(CHUNK_S)])
    assert run.exit_code == 0, run.output
    add_hf(str(ved), AddOptions(repo=repo, name="captioner_onnx", backend="onnx"))
    for kind, path in ctc.items():  # wav2vec2 chunks audio over CTC_CHUNK_S seconds; HuBERT does not
        run = CliRunner().invoke(app, ["add-hf", str(path), "--repo", str(repo), "--name", f"{kind}_onnx",
                                       "--backend", "onnx", "--task", "automatic-speech-recognition",
                                       *(["--chunk-length-s", str(CTC_CHUNK_S)] if kind == "wav2vec2" else [])])
        assert run.exit_code == 0, run.output
    return repo


@pytest.fixture(scope="module")
def server(repo):
    srv = TritonServer(repo)
    srv.start(timeout=300)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.slow
@pytest.mark.parametrize(("name", "export"), [("whisper_onnx", "automatic-speech-recognition-with-past"),
                                              ("captioner_onnx", "image-to-text-with-past")])
def test_onnx_repository_holds_the_graphs_and_no_weights(repo, name, export):
    """The version folder holds optimum's encoder + merged decoder and the checkpoint WITHOUT its weights (the
    module never loads PyTorch weights); the config selects the ONNX runtime; the manifest says which export."""
    version = repo / name / "1"
    assert sorted(p.name for p in (version / "onnx").iterdir()) == ["decoder_model_merged.onnx", "encoder_model.onnx"]
    assert not [p for p in (version / "hf_model").iterdir() if p.suffix in (".safetensors", ".bin")]
    params = read_config(repo / name).parameters
    assert (params["media_runtime"].string_value, params["onnx_folder"].string_value) == ("onnx", "onnx")
    if name == "whisper_onnx":
        assert params["chunk_length_s"].string_value == str(CHUNK_S)
    assert f"optimum-onnx ({export}: encoder + merged decoder)" in (repo / name / "tritonrepo.json").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["wav2vec2", "hubert"])
def test_ctc_onnx_repository_holds_one_graph_and_no_weights(repo, kind):
    """CTC: optimum's one graph (input_values -> logits), the checkpoint WITHOUT its weights, the CTC module beside
    the generate module (no encoder-decoder engine), the ONNX runtime selected; wav2vec2 keeps its chunk length."""
    name = f"{kind}_onnx"
    version = repo / name / "1"
    assert [p.name for p in (version / "onnx").iterdir()] == ["model.onnx"]
    assert not [p for p in (version / "hf_model").iterdir() if p.suffix in (".safetensors", ".bin")]
    assert (version / "tritonrepo_ctc_onnx.py").is_file() and not (version / "tritonrepo_seq2seq_engine.py").exists()
    params = read_config(repo / name).parameters
    assert (params["media_runtime"].string_value, params["onnx_folder"].string_value) == ("onnx", "onnx")
    assert ("chunk_length_s" in params) == (kind == "wav2vec2")
    manifest = (repo / name / "tritonrepo.json").read_text()
    assert "optimum-onnx (automatic-speech-recognition: input_values -> logits)" in manifest


@pytest.mark.server
@pytest.mark.slow
def test_whisper_onnx_equals_transformers_greedy_and_streams_tokens(server, ckpt, pipe):
    texts = set()
    for name, samples in SHORT.items():
        wav = encode_wav(samples, RATE)
        decoded = decode_audio(wav, RATE)
        want = whisper_pipeline_text(pipe, decoded)
        assert want == whisper_generate_text(ckpt, decoded), name
        body = {"audio": wav, "max_tokens": MAX}
        assert served(server, "whisper_onnx", body, stream=False) == [want], name
        pieces = served(server, "whisper_onnx", body, stream=True)
        assert "".join(pieces) == want, name
        assert len([p for p in pieces if p]) > MAX // 2, (name, pieces)  # token by token
        texts.add(want)
    assert len(texts) == 2


@pytest.mark.server
@pytest.mark.slow
def test_whisper_onnx_long_audio_is_chunked_as_the_pipeline_does(server, pipe):
    wav = encode_wav(LONG, RATE)
    decoded = decode_audio(wav, RATE)
    want = whisper_pipeline_text(pipe, decoded, max_tokens=16)
    assert want != whisper_pipeline_text(pipe, decoded, max_tokens=16, chunk_length_s=0)
    body = {"audio": wav, "max_tokens": 16}
    assert served(server, "whisper_onnx", body, stream=False) == [want]  # (per-chunk streaming: MediaGenerator's,
    # the same code as --backend python, tested in tests/test_generation_media.py)


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"audio": b"not audio at all"}, "audio: cannot decode audio (LibsndfileError: Error opening "),
        ({"audio": encode_wav(SHORT["1.5s"], RATE), "max_tokens": 0}, "max_tokens must be > 0, got 0"),
        ({"audio": encode_wav(SHORT["1.5s"], RATE), "max_tokens": 1000},  # the tiny Whisper has 128 positions
         "max_tokens is 1000: more than the 127 tokens the model's decoder can generate (its 128 positions less "
         "the 2-token decoder prompt)"),
    ],
)
def test_bad_audio_gets_an_error_and_the_next_request_is_answered(server, pipe, body, message):
    for stream in (False, True):
        with pytest.raises(TritonRepoError, match="the server refused the request: " + re.escape(message)):
            served(server, "whisper_onnx", body, stream=stream)
    wav = encode_wav(SHORT["1.5s"], RATE)
    want = whisper_pipeline_text(pipe, decode_audio(wav, RATE))
    assert served(server, "whisper_onnx", {"audio": wav, "max_tokens": MAX}, stream=False) == [want]


@pytest.mark.server
@pytest.mark.slow
def test_image_to_text_onnx_equals_transformers_greedy_and_streams_tokens(server, ved, ved_pipe):
    check_captioner(server, "captioner_onnx", ved, ved_pipe)


@pytest.mark.server
@pytest.mark.slow
def test_bad_image_gets_an_error_and_the_next_request_is_answered(server, ved, ved_pipe):
    for body, message in (({"image": b"\x89PNG broken"}, "image: cannot decode the bytes (UnidentifiedImageError: "),
                          ({"image": _image(8, 8, 0), "max_tokens": 0}, "max_tokens must be > 0, got 0")):
        for stream in (False, True):
            with pytest.raises(TritonRepoError, match="the server refused the request: " + re.escape(message)):
                served(server, "captioner_onnx", body, stream=stream)
    want, _ = caption_references(ved, ved_pipe, IMAGES["portrait"])
    assert served(server, "captioner_onnx", {"image": IMAGES["portrait"], "max_tokens": MAX}, stream=False) == [want]


@pytest.mark.server
@pytest.mark.slow
def test_concurrent_onnx_media_requests_are_batched_and_equal_one_by_one(server, pipe, ved_pipe):
    """8 concurrent requests of different inputs (Whisper, then images) on the ONNX models: exactly the PyTorch
    pipeline's one-by-one texts, in fewer generate calls (engine cohorts) than requests."""
    datas = [encode_wav(c, RATE) for c in BATCH_CLIPS]
    wants = [whisper_pipeline_text(pipe, decode_audio(d, RATE)) for d in datas]
    long_wav = encode_wav(LONG, RATE)
    blocker_want = whisper_pipeline_text(pipe, decode_audio(long_wav, RATE), max_tokens=16)
    check_batched(server, "whisper_onnx", "audio", datas, wants, {"audio": long_wav, "max_tokens": 16}, blocker_want)
    wants = [caption_text(ved_pipe, d) for d in BATCH_IMAGES]
    check_batched(server, "captioner_onnx", "image", BATCH_IMAGES, wants,
                  {"image": IMAGES["landscape"], "max_tokens": 30}, caption_text(ved_pipe, IMAGES["landscape"], 30))


@pytest.mark.server
@pytest.mark.slow
def test_onnx_golden_samples_replay(server, repo, capsys):
    """The manifests' golden samples (the PyTorch pipeline's greedy text, no max_tokens; CTC: its text) replay
    exactly."""
    from tritonrepo.cli._cli_utils import OutputFormat
    from tritonrepo.cli.infer_generate import infer_generation

    for name, stream in (("whisper_onnx", True), ("captioner_onnx", False), ("hubert_onnx", False)):
        assert infer_generation(name, repo / name, server.grpc_url, "grpc", texts=[], images=[], audios=[],
                                stream=stream, max_tokens=None, sampling=None, chat=False, fmt=OutputFormat.text)
    assert capsys.readouterr().out.count("golden sample (transformers' greedy text): matches") == 3


@pytest.mark.slow
@pytest.mark.parametrize(("family", "name"), [("whisper", "whisper_onnx"), ("ved", "captioner_onnx")])
def test_onnx_batched_rows_equal_one_by_one_in_process(repo, ckpt, ved, tmp_path, family, name):
    """The staged graphs, run as the module runs them (in-process), on 8 inputs in one engine cohort: each text is
    the PyTorch pipeline's alone, rows ending at different steps, one client cancelling (see
    ``check_batch_in_process``)."""
    import json
    import shutil

    from tritonrepo.triton_models.media_generate import onnx_pipeline

    task = "automatic-speech-recognition" if family == "whisper" else "image-to-text"

    def make_pipe(eos):
        version = tmp_path / "1"
        shutil.copytree(repo / name / "1", version)
        path = version / "hf_model" / "generation_config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "eos_token_id": eos}))
        return onnx_pipeline(task, str(version / "hf_model"), str(version))

    check_batch_in_process(family, ckpt if family == "whisper" else ved, make_pipe)


@pytest.mark.slow
def test_whisper_onnx_decoder_prompt_follows_language_and_task(repo, ckpt, tmp_path):
    """Multilingual generation configs, run by the staged ONNX graphs as the module runs them (in-process), give
    ``model.generate(num_beams=1)``'s text: language detected per request among two language tokens (as
    ``WhisperGenerationMixin.detect_language``), a set language, a set language + task ``translate``."""
    import shutil

    from transformers import GenerationConfig, WhisperTokenizerFast

    from tritonrepo.triton_models.media_generate import MediaGenerator, onnx_pipeline

    tok = WhisperTokenizerFast.from_pretrained(ckpt)
    en, fr, transcribe, translate = tok.convert_tokens_to_ids(
        ["<|en|>", "<|nocaptions|>", "<|transcribe|>", "<|translate|>"])  # a second "language" token for the test
    variants = {"detect": {}, "fr": {"language": "fr"}, "en-translate": {"language": "en", "task": "translate"}}
    wav = encode_wav(SHORT["4s"], RATE)
    decoded = decode_audio(wav, RATE)
    texts = {}
    for name, extra in variants.items():
        path, version = tmp_path / name / "ckpt", tmp_path / name / "1"
        shutil.copytree(ckpt, path)
        gen = GenerationConfig.from_pretrained(path)
        gen.is_multilingual = True
        gen.lang_to_id = {"<|en|>": en, "<|fr|>": fr}
        gen.task_to_id = {"transcribe": transcribe, "translate": translate}
        for key, value in extra.items():
            setattr(gen, key, value)
        gen.save_pretrained(path)
        shutil.copytree(repo / "whisper_onnx" / "1" / "onnx", version / "onnx")
        shutil.copytree(path, version / "hf_model")
        pipe = onnx_pipeline("automatic-speech-recognition", str(version / "hf_model"), str(version))
        try:
            got = MediaGenerator(pipe, "automatic-speech-recognition", decode_audio=decode_audio).run(wav, MAX)
        finally:
            pipe.tritonrepo_engine.shutdown()
        texts[name] = got
        assert got == whisper_generate_text(path, decoded), name
    assert len(set(texts.values())) == 3, texts  # the prompt changes the text


def _ctc_clip(seconds: float, seed: int) -> np.ndarray:
    """Tone + noise (the tiny CTC models' letters depend on it)."""
    t = np.arange(int(seconds * RATE)) / RATE
    noise = 0.1 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * np.sin(2 * np.pi * 330 * t) + noise).astype(np.float32)


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.parametrize(("kind", "arch"), [("wav2vec2", "Wav2Vec2ForCTC"), ("hubert", "HubertForCTC")])
def test_ctc_onnx_equals_the_pipeline_text(server, ctc_pipes, kind, arch, matrix_record):
    """Served text (the ONNX graph as the pipeline's model) == transformers' pipeline on the PyTorch checkpoint (what
    ``--backend python`` serves) for two clips of different lengths; wav2vec2's 20 s clip is chunked
    (``chunk_length_s`` 4, strides 4/6 s) and chunking changes its text. ``stream`` answers the same text."""
    from tritonrepo.generation import pipeline_text

    pipe = ctc_pipes[kind]
    chunk = CTC_CHUNK_S if kind == "wav2vec2" else 0
    clips = {"1.5s": _ctc_clip(1.5, 0), "long": LONG if kind == "wav2vec2" else _ctc_clip(4.0, 1)}
    texts = set()
    for clip, samples in clips.items():
        wav = encode_wav(samples, RATE)
        want = pipeline_text(pipe, "automatic-speech-recognition", wav, chunk_length_s=chunk)
        assert want, clip
        assert served(server, f"{kind}_onnx", {"audio": wav}, stream=False) == [want], clip
        assert "".join(served(server, f"{kind}_onnx", {"audio": wav}, stream=True)) == want, clip
        texts.add(want)
    assert len(texts) == 2
    if kind == "wav2vec2":  # the long clip was chunked: without chunking the pipeline says something else
        assert want != pipeline_text(pipe, "automatic-speech-recognition", encode_wav(LONG, RATE))
    matrix_record(arch, "automatic-speech-recognition", "onnx", True, model_type=kind)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "arch"), [("wav2vec2", "Wav2Vec2ForCTC"), ("hubert", "HubertForCTC")])
def test_ctc_python_backend_add_hf(ctc, ctc_pipes, kind, arch, tmp_path, matrix_record):
    """``--backend python`` for both CTC families (not served here: the python-backend CTC module is served by
    tests/test_generation.py for wav2vec2, and the pipeline it runs is the reference above): add-hf exits 0, ships
    the weights, and its golden sample is the pipeline's text for the golden audio."""
    from tritonrepo.generation import _sample_media, pipeline_text
    from tritonrepo.manifest import read_manifest, tensor_to_array

    add_hf(str(ctc[kind]), AddOptions(repo=tmp_path, name=kind, backend="python"))
    assert [p.name for p in (tmp_path / kind / "1" / "hf_model").glob("*.safetensors")] == ["model.safetensors"]
    (output,) = read_manifest(tmp_path / kind).versions[0].samples[0].outputs
    text = tensor_to_array(output).reshape(-1)[0].decode()
    want = pipeline_text(ctc_pipes[kind], "automatic-speech-recognition",
                         _sample_media("automatic-speech-recognition", ctc_pipes[kind]))
    assert want and text == want
    matrix_record(arch, "automatic-speech-recognition", "python", True, model_type=kind)


@pytest.mark.server
@pytest.mark.slow
def test_ctc_onnx_bad_audio_gets_an_error_and_the_next_request_is_answered(server, ctc_pipes):
    from tritonrepo.generation import pipeline_text

    for stream in (False, True):
        with pytest.raises(TritonRepoError, match="the server refused the request: " + re.escape(
                "audio: cannot decode audio (LibsndfileError: Error opening ")):
            served(server, "hubert_onnx", {"audio": b"RIFF but not a wav"}, stream=stream)
    wav = encode_wav(_ctc_clip(1.5, 0), RATE)
    want = pipeline_text(ctc_pipes["hubert"], "automatic-speech-recognition", wav)
    assert served(server, "hubert_onnx", {"audio": wav}, stream=False) == [want]


@pytest.mark.slow
def test_ctc_onnx_graph_that_disagrees_with_the_pipeline_is_a_parity_error(repo, ctc_pipes, tmp_path):
    """The add-time parity check runs the staged graph as the module does: a CTC graph whose logits favour one
    letter (its lm_head bias raised by 1000) gives another text than the PyTorch pipeline, and is refused."""
    import shutil

    import onnx
    from onnx import numpy_helper

    from tritonrepo.errors import ParityError
    from tritonrepo.generation import _check_media_parity, _sample_media, pipeline_text

    version = tmp_path / "1"
    shutil.copytree(repo / "hubert_onnx" / "1", version)
    graph = onnx.load(str(version / "onnx" / "model.onnx"))
    (bias,) = [t for t in graph.graph.initializer if t.name == "lm_head.bias"]
    values = numpy_helper.to_array(bias).copy()
    values[ctc_pipes["hubert"].tokenizer.convert_tokens_to_ids("e")] += 1000.0
    bias.CopyFrom(numpy_helper.from_array(values, bias.name))
    onnx.save(graph, str(version / "onnx" / "model.onnx"))
    task = "automatic-speech-recognition"
    data = _sample_media(task, ctc_pipes["hubert"])
    ref = pipeline_text(ctc_pipes["hubert"], task, data)
    with pytest.raises(ParityError) as err:
        _check_media_parity(ctc_pipes["hubert"], task, version, data, ref, 0)
    assert err.value.message.startswith("the ONNX CTC model's text differs from transformers' pipeline for the "
                                        "golden automatic-speech-recognition sample (max_tokens None): 'e")


@pytest.mark.slow
def test_ctc_onnx_feeds_attention_mask_when_the_graph_takes_it(tmp_path):
    """optimum's wav2vec2/HuBERT graphs take ``input_values`` only; a graph that also declares ``attention_mask``
    gets the pipeline's mask (ones when the feature extractor gives none). The graph here: logits =
    input_values * attention_mask, shaped [batch, samples, 1]."""
    import onnx
    import torch
    from onnx import TensorProto, helper

    from tritonrepo.triton_models.ctc_onnx import OrtCTCForward

    graph = helper.make_graph(
        [helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
         helper.make_node("Mul", ["input_values", "mask"], ["product"]),
         helper.make_node("Unsqueeze", ["product", "axis"], ["logits"])],
        "masked", [helper.make_tensor_value_info("input_values", TensorProto.FLOAT, ["b", "s"]),
                   helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "s"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", "s", 1])],
        initializer=[helper.make_tensor("axis", TensorProto.INT64, [1], [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, tmp_path / "model.onnx")
    forward = OrtCTCForward(str(tmp_path / "model.onnx"))
    values = torch.tensor([[1.0, 2.0, 3.0]])
    masked = forward(input_values=values, attention_mask=torch.tensor([[1, 1, 0]])).logits
    assert masked[..., 0].tolist() == [[1.0, 2.0, 0.0]]
    assert forward(input_values=values, attention_mask=None).logits[..., 0].tolist() == [[1.0, 2.0, 3.0]]


@pytest.mark.slow
@pytest.mark.parametrize(("key", "value", "message", "fix"), [
    ("language", "de", "language 'de' is not in this Whisper's generation_config.lang_to_id (languages: en, fr)",
     'set "language" in {gc} to one of those (a code such as "en", a token such as "<|en|>" or a name such as '
     '"english"), or remove it (a multilingual checkpoint then detects the language per request)'),
    ("task", "summarize", "task 'summarize' is not in this Whisper's generation_config.task_to_id "
     "(tasks: transcribe, translate)", 'set "task" in {gc} to one of those, or remove it (transcribe)'),
])
def test_whisper_unknown_language_is_refused_at_add_hf_in_one_line(ckpt, tmp_path, key, value, message, fix):
    """A generation config ``language`` (or ``task``) that is not in ``lang_to_id`` (``task_to_id``) ends add-hf
    with one line naming the file, what it has, and the fix; exit 2; nothing staged (both backends: the check runs
    before the export). Requests carry no language (audio, max_tokens, stream), so add-hf is the only place."""
    import shutil

    from transformers import GenerationConfig, WhisperTokenizerFast
    from typer.testing import CliRunner

    from tritonrepo.cli import app

    path = tmp_path / "ckpt"
    shutil.copytree(ckpt, path)
    tok = WhisperTokenizerFast.from_pretrained(path)
    en, fr, transcribe, translate = tok.convert_tokens_to_ids(
        ["<|en|>", "<|nocaptions|>", "<|transcribe|>", "<|translate|>"])
    gen = GenerationConfig.from_pretrained(path)
    gen.is_multilingual = True
    gen.lang_to_id = {"<|en|>": en, "<|fr|>": fr}
    gen.task_to_id = {"transcribe": transcribe, "translate": translate}
    setattr(gen, key, value)
    gen.save_pretrained(path)
    gc = path / "generation_config.json"
    for backend in ("python", "onnx"):
        run = CliRunner().invoke(app, ["add-hf", str(path), "--repo", str(tmp_path / "models"), "--name", "w",
                                       "--backend", backend])
        assert run.exit_code == 2, run.output
        assert run.output.strip().splitlines() == [f"error: {gc}: {message} (fix: {fix.format(gc=gc)})"]
        assert not (tmp_path / "models" / "w").exists()
