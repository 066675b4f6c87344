"""Whisper with ``--backend onnx``: optimum's ``automatic-speech-recognition-with-past`` graphs run by the
encoder-decoder engine as the ASR pipeline's ``generate`` (docs/generation.md, speech and image-to-text).

A tiny random Whisper (tests/tiny_generative.py) is added with ``--backend onnx`` and served by ONE real
tritonserver for the module. Served texts are compared with transformers' pipeline called as the module calls it
(greedy, ``num_beams=1``) AND with ``model.generate(num_beams=1)`` on the PyTorch checkpoint; streams must
concatenate to the non-streamed text. The audio clips and reference helpers are the python-backend tests'.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_generation_media import (
    LONG,
    RATE,
    SHORT,
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


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tg.make_whisper(tmp_path_factory.mktemp("whisper-onnx-ckpt") / "whisper")


@pytest.fixture(scope="module")
def pipe(ckpt):
    from transformers import pipeline

    return pipeline("automatic-speech-recognition", model=str(ckpt), device="cpu")


@pytest.fixture(scope="module")
def repo(ckpt, tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    from tritonrepo.cli import app

    repo = tmp_path_factory.mktemp("whisper-onnx-repo") / "models"
    run = CliRunner().invoke(app, ["add-hf", str(ckpt), "--repo", str(repo), "--name", "whisper_onnx",
                                   "--backend", "onnx", "--chunk-length-s", str(CHUNK_S)])
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
def test_onnx_repository_holds_the_graphs_and_no_weights(repo):
    """The version folder holds optimum's encoder + merged decoder and the checkpoint WITHOUT its weights (the
    module never loads PyTorch weights); the config selects the ONNX runtime; the manifest says which exporter."""
    version = repo / "whisper_onnx" / "1"
    assert sorted(p.name for p in (version / "onnx").iterdir()) == ["decoder_model_merged.onnx", "encoder_model.onnx"]
    assert not [p for p in (version / "hf_model").iterdir() if p.suffix in (".safetensors", ".bin")]
    params = read_config(repo / "whisper_onnx").parameters
    assert (params["media_runtime"].string_value, params["onnx_folder"].string_value,
            params["chunk_length_s"].string_value) == ("onnx", "onnx", str(CHUNK_S))
    manifest = json.loads((repo / "whisper_onnx" / "tritonrepo.json").read_text())
    assert "automatic-speech-recognition-with-past" in json.dumps(manifest)


def test_onnx_is_refused_for_image_to_text_in_one_line(tmp_path):
    """VisionEncoderDecoder (optimum exports its GPT-2 decoder with decoder-only past names, which the
    encoder-decoder engine does not run yet) keeps the one-line refusal."""
    ved = tg.make_vision_encoder_decoder(tmp_path / "ved")
    with pytest.raises(TritonRepoError) as err:
        add_hf(str(ved), AddOptions(repo=tmp_path / "models", name="cap", backend="onnx"))
    assert str(err.value).splitlines()[0] == (
        "task 'image-to-text' (vision-encoder-decoder) is served with --backend python only for now "
        "(--backend onnx: Whisper)")
    assert not (tmp_path / "models" / "cap").exists()


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
    assert served(server, "whisper_onnx", body, stream=False) == [want]
    assert "".join(served(server, "whisper_onnx", body, stream=True)) == want


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"audio": b"not audio at all"}, "audio: cannot decode audio (LibsndfileError: Error opening "),
        ({"audio": encode_wav(SHORT["1.5s"], RATE), "max_tokens": 0}, "max_tokens must be > 0, got 0"),
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
def test_onnx_golden_sample_replays(server, repo, capsys):
    """The manifest's golden sample (the PyTorch pipeline's greedy text, no max_tokens) replays exactly."""
    from tritonrepo.cli._cli_utils import OutputFormat
    from tritonrepo.cli.infer_generate import infer_generation

    assert infer_generation("whisper_onnx", repo / "whisper_onnx", server.grpc_url, "grpc", texts=[], images=[],
                            audios=[], stream=True, max_tokens=None, sampling=None, chat=False,
                            fmt=OutputFormat.text)
    assert "golden sample (transformers' greedy text): matches" in capsys.readouterr().out
