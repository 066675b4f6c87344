"""Speech recognition (Whisper) and image-to-text (VisionEncoderDecoder) served with Triton's generate output.

Tiny random checkpoints built offline (tests/tiny_generative.py), added with ``--backend python`` and served by
ONE real tritonserver for the module. Every served text is compared with transformers' pipeline called as the
module calls it (greedy: ``num_beams=1``) AND with ``model.generate(num_beams=1)`` decoded with
``skip_special_tokens=True``; streams (gRPC, ``stream: true``) must concatenate to the non-streamed text.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import tiny_generative as tg

from tritonrepo.add import AddOptions, add_hf
from tritonrepo.client import generate_grpc_stream
from tritonrepo.config import read_config
from tritonrepo.errors import TritonRepoError
from tritonrepo.server import TritonServer
from tritonrepo.triton_models.audio import decode_audio, encode_wav

MAX = 12
CHUNK_S = 8  # the whisper model's chunk_length_s: the 20 s clip is 4 chunks, the short clips one
RATE = 16000


def _clip(parts) -> np.ndarray:
    """Concatenated segments ``(seconds, tone Hz, noise seed, tone amplitude)``: noise makes the tiny model's
    text depend on the audio."""
    out = []
    for sec, hz, seed, amp in parts:
        t = np.arange(int(sec * RATE)) / RATE
        out.append(amp * np.sin(2 * np.pi * hz * t) + 0.1 * np.random.default_rng(seed).standard_normal(t.size))
    return np.concatenate(out).astype(np.float32)


SHORT = {"1.5s": _clip([(1.5, 220, 0, 0.3)]), "4s": _clip([(4.0, 1500, 1, 0.3)])}
LONG = _clip([(5, 220, 0, 0.3), (5, 1500, 1, 0.0), (5, 440, 2, 0.6), (5, 3000, 3, 0.1)])  # 20 s


def _image(h: int, w: int, seed: int, fmt: str = "PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


IMAGES = {"portrait": _image(48, 32, 0), "landscape": _image(32, 64, 1, "JPEG")}
# 8 different inputs for the batching tests: one-window clips (< CHUNK_S) and images of different sizes
BATCH_CLIPS = [_clip([(1 + 0.4 * k, 200 + 300 * k, k, 0.3)]) for k in range(8)]
BATCH_IMAGES = [_image(24 + 4 * k, 40 - 2 * k, 10 + k) for k in range(8)]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media-ckpt")
    return {"whisper": tg.make_whisper(root / "whisper"), "ved": tg.make_vision_encoder_decoder(root / "ved")}


@pytest.fixture(scope="module")
def pipes(ckpts):
    from transformers import pipeline

    return {"whisper": pipeline("automatic-speech-recognition", model=str(ckpts["whisper"]), device="cpu"),
            "ved": pipeline("image-to-text", model=str(ckpts["ved"]), device="cpu")}


@pytest.fixture(scope="module")
def repo(ckpts, tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    from tritonrepo.cli import app

    repo = tmp_path_factory.mktemp("media-repo") / "models"
    run = CliRunner().invoke(app, ["add-hf", str(ckpts["whisper"]), "--repo", str(repo), "--name", "whisper",
                                   "--backend", "python", "--chunk-length-s", str(CHUNK_S)])
    assert run.exit_code == 0, run.output
    assert read_config(repo / "whisper").parameters["chunk_length_s"].string_value == str(CHUNK_S)
    add_hf(str(ckpts["ved"]), AddOptions(repo=repo, name="captioner", backend="python"))
    return repo


@pytest.fixture(scope="module")
def server(repo):
    srv = TritonServer(repo)
    srv.start(timeout=300)
    try:
        yield srv
    finally:
        srv.stop()


def whisper_pipeline_text(pipe, samples, max_tokens=MAX, chunk_length_s=CHUNK_S) -> str:
    """transformers' ASR pipeline, greedy (its own Whisper default is 5 beams)."""
    kwargs = {"chunk_length_s": chunk_length_s} if chunk_length_s else {}
    return pipe({"raw": samples, "sampling_rate": RATE}, generate_kwargs={"num_beams": 1, "max_new_tokens": max_tokens},
                **kwargs)["text"]


def whisper_generate_text(path: Path, samples, max_tokens=MAX) -> str:
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    proc = WhisperProcessor.from_pretrained(path)
    model = WhisperForConditionalGeneration.from_pretrained(path).eval()
    features = proc.feature_extractor(samples, sampling_rate=RATE, return_tensors="pt").input_features
    with torch.no_grad():
        ids = model.generate(features, num_beams=1, do_sample=False, max_new_tokens=max_tokens)
    return proc.tokenizer.decode(ids[0], skip_special_tokens=True)


def caption_references(path: Path, pipe, data: bytes) -> tuple[str, str]:
    """(pipeline greedy text, ``model.generate`` greedy text) for one encoded image."""
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

    img = Image.open(io.BytesIO(data)).convert("RGB")
    via_pipe = pipe(img, generate_kwargs={"num_beams": 1, "max_new_tokens": MAX})[0]["generated_text"]
    model = VisionEncoderDecoderModel.from_pretrained(path).eval()
    pixels = AutoImageProcessor.from_pretrained(path)(img, return_tensors="pt").pixel_values
    with torch.no_grad():
        ids = model.generate(pixels, num_beams=1, do_sample=False, max_new_tokens=MAX)
    return via_pipe, AutoTokenizer.from_pretrained(path).decode(ids[0], skip_special_tokens=True)


def served(server, model: str, body: dict, stream: bool) -> list[str]:
    return list(generate_grpc_stream(server.grpc_url, model, body, stream=stream))


def caption_text(pipe, data: bytes, max_tokens: int = MAX) -> str:
    from PIL import Image

    img = Image.open(io.BytesIO(data)).convert("RGB")
    return pipe(img, generate_kwargs={"num_beams": 1, "max_new_tokens": max_tokens})[0]["generated_text"]


def check_batched(server, model: str, key: str, datas: list[bytes], wants: list[str], blocker: dict,
                  blocker_want: str) -> list[list[int]]:
    """``blocker`` first (alone: the worker was idle), then the 8 ``datas`` concurrently while it runs (half of
    them streamed): every text is exactly ``wants`` (the pipeline's, one request at a time), and the module ran
    them in fewer ``generate`` calls than requests. The record: the module's ``NAME: media batch: generate rows
    [..]`` log lines (the rows of each ``generate`` call). Returns the new lines' row lists."""
    import ast
    import re
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    mark = f"{model}: media batch: generate rows "
    before = server.log().count(mark)
    with ThreadPoolExecutor(9) as pool:
        first = pool.submit(served, server, model, blocker, False)
        time.sleep(0.05)
        start = threading.Barrier(8)

        def one(k):
            start.wait()
            return served(server, model, {key: datas[k], "max_tokens": MAX}, k % 2 == 1)

        got = list(pool.map(one, range(8)))
        assert first.result() == [blocker_want]
    for k, pieces in enumerate(got):
        assert "".join(pieces) == wants[k], k
        if k % 2:
            assert len([p for p in pieces if p]) > MAX // 2, (k, pieces)  # each row streamed token by token
        else:
            assert len(pieces) == 1
    deadline = time.monotonic() + 10  # the stub's log lines reach the server's log on their own channel
    while True:
        lines = [ln for ln in server.log().splitlines() if mark in ln][before:]
        rows = [ast.literal_eval(re.match(r"\[[\d, ]*\]", ln.split(mark)[1]).group()) for ln in lines]
        if sum(sum(r) for r in rows) >= 9 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sum(sum(r) for r in rows) == 9, rows  # every request ran once
    assert max(max(r) for r in rows) >= 2 and len([n for r in rows for n in r]) < 9, rows  # served together
    print(f"{model}: generate rows per batch {rows}")  # (pytest -s)
    return rows


# -- in-process: the module's pipeline steps are the pipeline's ---------------------------------------------------

def test_media_generator_streams_the_pipeline_text_in_process(pipes):
    """The fixed module's runner (no server): the streamed pieces concatenate to the pipeline's greedy text."""
    from tritonrepo.triton_models.media_generate import Cancelled, MediaGenerator

    gen = MediaGenerator(pipes["whisper"], "automatic-speech-recognition", chunk_length_s=CHUNK_S,
                         decode_audio=decode_audio)
    wav = encode_wav(SHORT["4s"], RATE)
    pieces: list[str] = []
    text = gen.run(wav, MAX, emit=pieces.append)
    assert text == whisper_pipeline_text(pipes["whisper"], decode_audio(wav, RATE))
    assert len(pieces) > MAX // 2 and text == "".join(pieces)  # token by token (the last piece may be "")
    cut: list[str] = []  # the client goes away after 3 pieces: generate stops at the next token
    with pytest.raises(Cancelled):
        gen.run(wav, MAX, emit=cut.append, cancelled=lambda: len(cut) >= 3)
    assert cut == pieces[:3]


def _common_token(pipe, values, call) -> int:
    """A token the greedy outputs hold at different positions (made the end-of-sequence token below, rows end
    at different lengths)."""
    from collections import Counter

    ids = [pipe.tokenizer(call(v), add_special_tokens=False).input_ids for v in values]
    firsts = Counter()
    for row in ids:
        for t in set(row):
            firsts[t] += 1
    for t, _ in firsts.most_common():
        at = {row.index(t) if t in row else -1 for row in ids}
        if len(at) >= 3:
            return t
    raise AssertionError("no token to end the rows at different lengths")


def check_batch_in_process(family: str, ckpt: Path, make_pipe=None) -> None:
    """``run_batch`` of 8 different inputs: ONE ``generate`` call, and each text is exactly the PyTorch pipeline's
    for that input alone — with an end-of-sequence token the model does produce (a common token of the greedy
    texts), so rows end at different steps (the others go on; the finished rows' padding must not reach their
    text), rows streamed to their own clients (one not streamed), and one client gone after 3 pieces (its row
    stops, the others are unchanged). ``make_pipe(eos)``: the pipeline the module runs (default: the PyTorch
    one)."""
    from transformers import pipeline

    from tritonrepo.triton_models.media_generate import Cancelled, MediaGenerator, MediaJob

    task = "automatic-speech-recognition" if family == "whisper" else "image-to-text"
    ref = pipeline(task, model=str(ckpt), device="cpu")
    if family == "whisper":
        datas = [encode_wav(c, RATE) for c in BATCH_CLIPS]
        values = [decode_audio(d, RATE) for d in datas]

        def call(v):
            return whisper_pipeline_text(ref, v, max_tokens=24, chunk_length_s=0)
    else:
        datas = values = BATCH_IMAGES

        def call(v):
            return caption_text(ref, v, max_tokens=24)
    eos = _common_token(ref, values, call)
    ref.generation_config.eos_token_id = eos
    wants = [call(v) for v in values]
    assert len(set(wants)) >= 3 and len({len(w) for w in wants}) >= 3, wants
    pipe = make_pipe(eos) if make_pipe else ref
    gen = MediaGenerator(pipe, task, decode_audio=decode_audio)
    pieces: list[list[str]] = [[] for _ in datas]
    jobs = [MediaJob(d, 24, pieces[k].append if k != 2 else None,
                     cancelled=(lambda k=k: k == 5 and len(pieces[5]) >= 3)) for k, d in enumerate(datas)]
    try:
        gen.run_batch(jobs)
    finally:
        if getattr(pipe, "tritonrepo_engine", None) is not None:
            pipe.tritonrepo_engine.shutdown()
    assert gen.batch_sizes == [8]
    for k, job in enumerate(jobs):
        if k == 5:
            assert isinstance(job.error, Cancelled) and len(pieces[5]) == 3, (job.error, pieces[5])
            continue
        assert job.error is None and job.text == wants[k], (k, job.error)
        if k == 2:
            assert not pieces[k]
        else:  # the rest (here: the end-of-sequence token, an ordinary token for this test) comes last
            assert wants[k].startswith("".join(pieces[k])), (k, pieces[k])
    assert sum(len(p) for p in pieces) >= 12, pieces  # streamed token by token


@pytest.mark.parametrize("family", ["whisper", "ved"])
def test_batched_rows_equal_one_by_one_in_process(ckpts, family):
    check_batch_in_process(family, ckpts[family])


def test_run_batch_caps_groups_and_keeps_errors_per_request(pipes):
    """``max_batch`` caps a ``generate`` call; requests with another ``max_tokens`` run in their own call; a broken
    image and ``max_tokens`` 0 are errors of their own requests only; everyone else gets the one-by-one text."""
    from tritonrepo.triton_models.media_generate import MediaGenerator, MediaJob, MediaRequestError

    gen = MediaGenerator(pipes["ved"], "image-to-text", max_batch=3)
    jobs = [MediaJob(d, MAX) for d in BATCH_IMAGES[:5]] + [MediaJob(b"\x89PNG broken", MAX),
                                                           MediaJob(BATCH_IMAGES[5], 0),
                                                           MediaJob(BATCH_IMAGES[6], 5), MediaJob(BATCH_IMAGES[7], 5)]
    gen.run_batch(jobs)
    assert gen.batch_sizes == [3, 2, 2]
    for job, data, n in zip(jobs[:5] + jobs[7:], BATCH_IMAGES[:5] + BATCH_IMAGES[6:], [MAX] * 5 + [5, 5]):
        assert job.error is None and job.text == caption_text(pipes["ved"], data, n)
    assert isinstance(jobs[5].error, MediaRequestError) and str(jobs[5].error).startswith("image: cannot decode")
    assert str(jobs[6].error) == "max_tokens must be > 0, got 0" and jobs[6].text is None


# -- Whisper on the real server -------------------------------------------------------------------------------------

@pytest.mark.server
@pytest.mark.slow
def test_whisper_equals_transformers_greedy_and_streams_tokens(server, ckpts, pipes):
    texts = set()
    for name, samples in SHORT.items():
        wav = encode_wav(samples, RATE)
        decoded = decode_audio(wav, RATE)  # 16-bit WAV: what the server sees
        want = whisper_pipeline_text(pipes["whisper"], decoded)
        assert want == whisper_generate_text(ckpts["whisper"], decoded), name
        body = {"audio": wav, "max_tokens": MAX}
        assert served(server, "whisper", body, stream=False) == [want], name
        pieces = served(server, "whisper", body, stream=True)
        assert "".join(pieces) == want, name
        assert len([p for p in pieces if p]) > MAX // 2, (name, pieces)  # one piece per token, not one answer
        texts.add(want)
    assert len(texts) == 2  # the text depends on the audio


@pytest.mark.server
@pytest.mark.slow
def test_whisper_long_audio_is_chunked_as_the_pipeline_does(server, pipes):
    """20 s with chunk_length_s=8: four chunks, merged as transformers' pipeline merges them; streamed per chunk
    (pieces that merging the next chunk cannot change), the rest in the final response."""
    wav = encode_wav(LONG, RATE)
    decoded = decode_audio(wav, RATE)
    want = whisper_pipeline_text(pipes["whisper"], decoded, max_tokens=16)
    assert want != whisper_pipeline_text(pipes["whisper"], decoded, max_tokens=16, chunk_length_s=0)
    body = {"audio": wav, "max_tokens": 16}
    assert served(server, "whisper", body, stream=False) == [want]
    pieces = served(server, "whisper", body, stream=True)
    assert "".join(pieces) == want
    assert len([p for p in pieces[:-1] if p]) >= 1, pieces  # some text before the last chunk finished


# -- VisionEncoderDecoder on the real server ------------------------------------------------------------------------

@pytest.mark.server
@pytest.mark.slow
def test_image_to_text_equals_transformers_greedy_and_streams_tokens(server, ckpts, pipes):
    check_captioner(server, "captioner", ckpts["ved"], pipes["ved"])


def check_captioner(server, model, ckpt, pipe) -> None:
    """Each of IMAGES (portrait PNG, landscape JPEG): ``model``'s text equals the image-to-text pipeline's greedy
    text and ``model.generate``'s, streamed token by token (the pieces join to it); the two texts differ."""
    texts = set()
    for name, data in IMAGES.items():
        want, via_generate = caption_references(ckpt, pipe, data)
        assert want == via_generate, name
        body = {"image": data, "max_tokens": MAX}
        assert served(server, model, body, stream=False) == [want], name
        pieces = served(server, model, body, stream=True)
        assert "".join(pieces) == want, name
        assert len([p for p in pieces if p]) > MAX // 2, (name, pieces)
        texts.add(want)
    assert len(texts) == 2


@pytest.mark.server
@pytest.mark.slow
def test_concurrent_media_requests_are_batched_and_equal_one_by_one(server, pipes):
    """8 concurrent Whisper requests, then 8 image requests, each of a different input: exactly the texts of
    one-by-one requests, served in fewer generate calls than requests (the module's log of its batches)."""
    datas = [encode_wav(c, RATE) for c in BATCH_CLIPS]
    wants = [whisper_pipeline_text(pipes["whisper"], decode_audio(d, RATE)) for d in datas]
    assert len(set(wants)) >= 3
    long_wav = encode_wav(LONG, RATE)  # four chunks: run alone, while the 8 arrive
    blocker_want = whisper_pipeline_text(pipes["whisper"], decode_audio(long_wav, RATE), max_tokens=16)
    check_batched(server, "whisper", "audio", datas, wants, {"audio": long_wav, "max_tokens": 16}, blocker_want)
    wants = [caption_text(pipes["ved"], d) for d in BATCH_IMAGES]
    assert len(set(wants)) >= 3
    blocker = {"image": IMAGES["landscape"], "max_tokens": 30}
    check_batched(server, "captioner", "image", BATCH_IMAGES, wants, blocker,
                  caption_text(pipes["ved"], IMAGES["landscape"], 30))


# -- bad requests ---------------------------------------------------------------------------------------------------

@pytest.mark.server
@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        ("whisper", {"audio": b"not audio at all"}, "audio: cannot decode audio (LibsndfileError: Error opening "),
        ("whisper", {"audio": b""}, "audio: empty audio: send the bytes of a WAV, FLAC or OGG file"),
        ("captioner", {"image": b"\x89PNG broken"}, "image: cannot decode the bytes (UnidentifiedImageError: "
                                                   "cannot identify image file"),
        ("captioner", {"image": _image(8, 8, 0), "max_tokens": 0}, "max_tokens must be > 0, got 0"),
    ],
)
def test_bad_media_gets_an_error_and_the_next_request_is_answered(server, ckpts, pipes, model, body, message):
    import re

    for stream in (False, True):
        with pytest.raises(TritonRepoError, match="the server refused the request: " + re.escape(message)):
            served(server, model, body, stream=stream)
    if model == "whisper":
        wav = encode_wav(SHORT["1.5s"], RATE)
        want = whisper_pipeline_text(pipes["whisper"], decode_audio(wav, RATE))
        assert served(server, model, {"audio": wav, "max_tokens": MAX}, stream=False) == [want]
    else:
        want, _ = caption_references(ckpts["ved"], pipes["ved"], IMAGES["portrait"])
        assert served(server, model, {"image": IMAGES["portrait"], "max_tokens": MAX}, stream=False) == [want]


@pytest.mark.server
@pytest.mark.slow
def test_golden_samples_replay(server, repo, capsys):
    """``tritonrepo infer NAME`` (its function, in-process: a subprocess costs 15 s here) replays the manifest's
    golden sample — the pipeline's greedy text computed at add time — exactly, streamed and not."""
    from tritonrepo.cli._cli_utils import OutputFormat
    from tritonrepo.cli.infer_generate import infer_generation

    for name, stream in (("whisper", True), ("captioner", False)):
        assert infer_generation(name, repo / name, server.grpc_url, "grpc", texts=[], images=[], audios=[],
                                stream=stream, max_tokens=None, sampling=None, chat=False, fmt=OutputFormat.text)
    out = capsys.readouterr().out
    assert out.count("golden sample (transformers' greedy text): matches") == 2, out


@pytest.mark.server
@pytest.mark.slow
def test_client_disconnect_stops_transcription(server):
    """gRPC: cancelling the stream after the first piece (the 20 s clip: four chunks, a piece after each) stops
    Whisper's generate at the next token (the module's stopping criterion polls ``response_sender.is_cancelled()``)
    and skips the chunks left. (A one-chunk clip raced the cancel on a loaded machine: its 100 tokens could all be
    generated before the cancel arrived.)"""
    import queue
    import time

    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(server.grpc_url)
    got: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: got.put((result, error)))
    inputs = []
    for name, arr, wire in (("audio", np.array([encode_wav(LONG, RATE)], dtype=object), "BYTES"),
                            ("max_tokens", np.array([100], dtype=np.int32), "INT32"),
                            ("stream", np.array([True]), "BOOL")):
        inp = grpcclient.InferInput(name, [1], wire)
        inp.set_data_from_numpy(arr)
        inputs.append(inp)
    mark = "audio-to-text cancelled by the client after "
    before = server.log().count(mark)
    client.async_stream_infer("whisper", inputs)
    result, error = got.get(timeout=60)
    assert error is None
    client.stop_stream(cancel_requests=True)
    client.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and server.log().count(mark) == before:
        time.sleep(0.1)
    lines = [ln for ln in server.log().splitlines() if mark in ln]
    assert len(lines) == before + 1
    assert int(lines[-1].split(mark)[1].split(" pieces")[0]) < 3  # of the 4 chunks' pieces
