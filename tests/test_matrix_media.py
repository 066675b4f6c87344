"""Support matrix for the vision, audio and multimodal families on the real Triton server.

Every (architecture, task) pair of :data:`tiny_media.BUILDERS` x every mode (``onnx``, ``python``,
``pipeline``): ``add-hf`` exits 0, ``validate`` reports nothing for the pair's models, the real server loads them,
and served outputs equal PyTorch (core models: two trials of different batch and input sizes, max abs diff
<= 1e-3) or transformers' pipeline (``--pipeline``: a portrait AND a landscape image, two audio lengths; labels
equal, scores <= 1e-3, embeddings cosine >= 0.9999, boxes <= 1e-3 relative). The SegFormer false success
(validate clean, server refuses) is covered by ``test_validate_clean_means_the_server_loads_it`` for every pair.

One repository per mode and one server per repository (module-scoped, parametrized by mode, so the three servers
run one after the other and never at the same time): 15 torch stubs plus 45 pipeline steps at once would need
~9 GB; one mode at a time stays under ~6 GB.
"""

from __future__ import annotations

import io
import json
import urllib.request

import numpy as np
import pytest
from typer.testing import CliRunner

import tiny_media
from tritonrepo.checkpoint import resolve_checkpoint
from tritonrepo.cli import app
from tritonrepo.client import infer
from tritonrepo.server import TritonServer
from tritonrepo.tasks import spec_for
from tritonrepo.validate import validate_repository

pytestmark = [pytest.mark.server, pytest.mark.slow]

PAIRS = [(name, task) for name, (_, tasks) in tiny_media.BUILDERS.items() for task in tasks]
MODES = ("onnx", "python", "pipeline")
IDS = [f"{n}-{t}" for n, t in PAIRS]
ATOL = 1e-3


def model_name(name: str, task: str) -> str:
    return f"{name}_{task.replace('-', '_')}"


def _models(name, task, mode) -> list[str]:
    base = model_name(name, task)
    if mode != "pipeline":
        return [base]
    spec = spec_for(task, _model_type(name))
    steps = [f"{base}_preprocess", f"{base}_model"] + ([f"{base}_postprocess"] if spec.pipeline.post_kind else [])
    return [base, *steps]


_MODEL_TYPES: dict[str, str] = {}


def _model_type(name: str) -> str:
    return _MODEL_TYPES[name]


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    ckpts = tiny_media.build_all(tmp_path_factory.mktemp("media"))
    for n, p in ckpts.items():
        cfg = json.loads((p / "config.json").read_text())
        _MODEL_TYPES[n], _ARCHS[n] = cfg["model_type"], cfg["architectures"][0]
    return ckpts


@pytest.fixture(scope="module", params=MODES)
def served(request, media, tmp_path_factory):
    """``(mode, repo, server, {pair: add-hf CliResult}, {model: [findings]}, validate exit code)``."""
    mode = request.param
    repo = tmp_path_factory.mktemp(f"matrix-{mode}") / "repo"
    runner = CliRunner()
    added = {}
    for name, task in PAIRS:
        args = ["add-hf", str(media[name]), "--repo", str(repo), "--name", model_name(name, task), "--task", task]
        args += {"onnx": [], "python": ["--backend", "python"], "pipeline": ["--pipeline"]}[mode]
        added[(name, task)] = runner.invoke(app, args)
    validate_exit = runner.invoke(app, ["validate", str(repo)]).exit_code
    findings: dict[str, list] = {}
    for f in validate_repository(repo).findings:
        findings.setdefault(f.model, []).append(f)
    server = TritonServer(repo, extra_args=["--exit-on-error=false", "--strict-readiness=false"])
    server.start(timeout=600)  # 15 PyTorch stubs on 2 shared cores take minutes to load
    try:
        yield mode, repo, server, added, findings, validate_exit
    finally:
        server.stop()


def _ready(server, model: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{server.http_url}/v2/models/{model}/ready", timeout=5) as resp:  # noqa: S310
            return resp.status == 200
    except OSError:
        return False


_ARCHS: dict[str, str] = {}


def _record(matrix_record, name, task, mode, ok_or_reason):
    """One support-matrix cell (docs/support-matrix.md): ``True`` or the reason it failed."""
    matrix_record(_ARCHS[name], task, mode, ok_or_reason, model_type=_MODEL_TYPES[name])


def _check_added(served, name, task):
    mode, repo, server, added, findings, _ = served
    result = added[(name, task)]
    assert result.exit_code == 0, result.output
    for m in _models(name, task, mode):
        assert not findings.get(m), [str(f.message) for f in findings[m]]
    return mode, repo, server


def test_validate_exits_0_on_the_whole_repository(served):
    mode, repo, server, added, findings, validate_exit = served
    assert all(r.exit_code == 0 for r in added.values()), {k: r.output[-300:] for k, r in added.items() if r.exit_code}
    assert validate_exit == 0, findings


@pytest.mark.parametrize(("name", "task"), PAIRS, ids=IDS)
def test_validate_clean_means_the_server_loads_it(served, name, task, matrix_record):
    """add-hf exits 0, validate reports nothing for the pair's models, and the real server loads every one."""
    mode, repo, server, added, findings, _ = served
    try:
        _check_added(served, name, task)
        not_loaded = [m for m in _models(name, task, mode) if not _ready(server, m)]
        assert not not_loaded, f"validate was clean but the server did not load {not_loaded}: {server.failure_summary()}"
    except AssertionError as exc:
        _record(matrix_record, name, task, mode, f"fails: {str(exc).splitlines()[0][:160]}")
        raise


# --- served outputs -------------------------------------------------------------------------------------------


def _png(h, w, seed):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


PORTRAIT, LANDSCAPE = _png(48, 30, 11), _png(30, 52, 12)


def _cos(a, b):
    a, b = np.asarray(a, np.float64).reshape(len(a), -1), np.asarray(b, np.float64).reshape(len(b), -1)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _assert_close(got, want, names=None, valid=None):
    for k in names or want:
        g, w = got[k], want[k]
        assert g.shape == w.shape, (k, g.shape, w.shape)
        if w.dtype == object:
            assert [bytes(x) for x in g.reshape(-1)] == [bytes(x) for x in w.reshape(-1)], k
        elif k in ("embedding", "image_embeds", "text_embeds"):
            assert _cos(g, w).min() >= 0.9999, k
        elif k == "boxes":
            np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-3 * max(1.0, float(np.abs(w).max())), err_msg=k)
        elif k in ("label_map", "label_ids"):
            np.testing.assert_array_equal(g, w, err_msg=k)
        else:
            d = np.abs(g.astype(np.float64) - w.astype(np.float64))
            if valid is not None and w.ndim >= 2 and w.shape[:2] == valid.shape:
                d = d[valid.astype(bool)]
            assert d.size == 0 or d.max() <= ATOL, (k, float(d.max()))


@pytest.mark.parametrize(("name", "task"), PAIRS, ids=IDS)
def test_served_outputs_equal_pytorch_or_the_pipeline(served, media, name, task, matrix_record):
    """The served answers equal PyTorch (core models) or transformers' pipeline (ensembles); records the cell."""
    mode = served[0]
    try:
        _, repo, server = _check_added(served, name, task)
        model = model_name(name, task)
        assert all(_ready(server, m) for m in _models(name, task, mode)), server.failure_summary()
        checkpoint = resolve_checkpoint(str(media[name]))
        spec = spec_for(task, _model_type(name))
        if mode == "pipeline":
            _check_pipeline(server, model, checkpoint, spec, repo)
        else:
            _check_core(server, model, checkpoint, spec, repo)
    except AssertionError as exc:
        _record(matrix_record, name, task, mode, f"fails: {str(exc).splitlines()[0][:160]}")
        raise
    _record(matrix_record, name, task, mode, True)


def _check_core(server, model, checkpoint, spec, repo):
    """Trial 0 and trial 1 (other batch size and input size) against the PyTorch model."""
    from tritonrepo.config import read_config
    from tritonrepo.export.common import load_torch_model, torch_outputs
    from tritonrepo.samples import sample_inputs

    cfg = read_config(repo / model)
    torch_model = load_torch_model(checkpoint, spec)
    names_in, names_out = [t.name for t in cfg.input], [t.name for t in cfg.output]
    shapes = []
    for trial in (0, 1):
        inputs = sample_inputs(checkpoint, spec, names_in, trial)
        want = torch_outputs(torch_model, inputs, names_out)
        got = infer(server.http_url, model, inputs)
        _assert_close(got, want, names_out, inputs.get("attention_mask"))
        shapes.append({k: v.shape for k, v in inputs.items()})
    assert shapes[0] != shapes[1], "the two trials should differ in batch or input size"


def _raw_requests(spec, checkpoint):
    """Raw requests for the pipeline: a portrait and a landscape image, two audio lengths, two documents."""
    from tritonrepo.tasks.audio import tone
    from tritonrepo.triton_models.audio import encode_wav

    if spec.family == "audio":
        return [{"audio": [encode_wav(tone(0.6, 16000, 1), 16000)]}, {"audio": [encode_wav(tone(1.3, 8000, 2), 8000)]}]
    if spec.task == "zero-shot-image-classification":
        return [{"image": [PORTRAIT, LANDSCAPE], "candidate_labels": ["cat", "a dog", "a small bird", "car"]}]
    if spec.family == "multimodal" and spec.task == "feature-extraction":
        return [{"image": [PORTRAIT, LANDSCAPE], "text": ["a photo of a cat", "two dogs playing in the snow", "x"]}]
    if spec.task == "token-classification":
        return [{"words": [["hello", "world", "triton"]], "boxes": [[[10, 10, 60, 30], [70, 10, 140, 30], [10, 50, 90, 70]]]},
                {"words": [["good"]], "boxes": [[[5, 5, 50, 20]]]}]
    if spec.task in ("object-detection", "image-segmentation"):  # aspect kept: one request with both sizes too
        return [{"image": [PORTRAIT]}, {"image": [LANDSCAPE]}, {"image": [PORTRAIT, LANDSCAPE]}]
    return [{"image": [PORTRAIT]}, {"image": [LANDSCAPE]}]


def _check_pipeline(server, model, checkpoint, spec, repo):
    from tritonrepo.config import read_config
    from tritonrepo.pipeline import golden_array

    pre = read_config(repo / f"{model}_preprocess")
    max_len = int(pre.parameters["max_length"].string_value) if "max_length" in pre.parameters else None
    decls = {t.name: t for t in spec.pipeline.raw_inputs}
    reference = spec.pipeline_load("reference")
    for raw in _raw_requests(spec, checkpoint):
        want, valid = reference(checkpoint, spec, raw, max_len)
        got = infer(server.http_url, model, {k: golden_array(v, spec, k, pre.max_batch_size) for k, v in raw.items()})
        _assert_close(got, want, valid=valid)
        if spec.task == "object-detection":
            _check_detections_json(checkpoint, spec, raw, got)
        if spec.task in ("semantic-segmentation", "image-segmentation"):
            for i in range(len(raw["image"])):
                segments = json.loads(got["segments"][i, 0])
                assert [s["id"] for s in segments] == sorted(np.unique(want["label_map"][i][want["label_map"][i] >= 0]))


def _check_detections_json(checkpoint, spec, raw, got, **knobs):
    """Each image's JSON list equals the object-detection pipeline's for that image alone, at its default threshold
    0.5 or the given ``threshold`` (int boxes there)."""
    from PIL import Image

    from tritonrepo.tasks.vision import _pipe

    pipe = _pipe(checkpoint, spec, "object-detection")
    for i, blob in enumerate(raw["image"]):
        ref = pipe(Image.open(io.BytesIO(blob)).convert("RGB"), **knobs)
        mine = json.loads(got["detections"][i, 0])
        assert len(mine) == len(ref), (i, mine, ref)
        for m, r in zip(sorted(mine, key=lambda d: -d["score"]), sorted(ref, key=lambda d: -d["score"])):
            assert m["label"] == r["label"] and abs(m["score"] - r["score"]) <= ATOL
            assert all(abs(int(m["box"][k]) - r["box"][k]) <= 1 for k in r["box"])


@pytest.mark.parametrize(("name", "bad", "good_input", "message"), [
    ("wav2vec2", {"audio": np.array([[b"RIFF not audio"]], dtype=object)}, "audio", "audio 0 cannot be decoded"),
    ("detr", {"image": np.array([[b"not a png"]], dtype=object)}, "image", "image 0 cannot be decoded"),
])
def test_a_bad_request_gets_its_error_and_the_next_one_succeeds(served, name, bad, good_input, message):
    """Undecodable audio / image bytes: an error response naming the cause; the pipeline keeps serving."""
    from tritonrepo.errors import TritonRepoError
    from tritonrepo.tasks.audio import tone
    from tritonrepo.triton_models.audio import encode_wav

    mode, _, server, *_ = served
    if mode != "pipeline":
        pytest.skip("raw inputs exist only in pipeline mode")
    task = tiny_media.BUILDERS[name][1][0]
    model = model_name(name, task)
    with pytest.raises(TritonRepoError, match=message):
        infer(server.http_url, model, bad)
    good = encode_wav(tone(0.5, 16000), 16000) if good_input == "audio" else LANDSCAPE
    assert infer(server.http_url, model, {good_input: np.array([[good]], dtype=object)})


KNOBS = [  # (checkpoint, knob input, value): the pipelines' per-request arguments
    ("detr", "threshold", 0.05),
    ("hubert", "top_k", 2),
    ("siglip", "hypothesis_template", "a picture of {} here"),
]


@pytest.mark.parametrize(("name", "knob", "value"), KNOBS, ids=[k[1] for k in KNOBS])
def test_request_knobs_override_the_config_default(served, media, name, knob, value):
    """An optional ensemble input (``optional: true``, passed through to the step by Triton 2.51) overrides the
    config default for that request only: the same request with and without it equals transformers' pipeline
    called without and with the argument, and the two answers differ."""
    from PIL import Image

    from tritonrepo.config import read_config
    from tritonrepo.pipeline import golden_array
    from tritonrepo.tasks.audio import tone
    from tritonrepo.triton_models.audio import decode_audio, encode_wav

    mode, repo, server, *_ = served
    if mode != "pipeline":
        pytest.skip("request knobs are ensemble inputs")
    task = tiny_media.BUILDERS[name][1][0]
    model = model_name(name, task)
    assert next(t for t in read_config(repo / model).input if t.name == knob).optional
    checkpoint = resolve_checkpoint(str(media[name]))
    spec = spec_for(task, _model_type(name))
    mbs = read_config(repo / f"{model}_preprocess").max_batch_size
    if name == "detr":
        raw = {"image": [PORTRAIT, LANDSCAPE]}
    elif name == "hubert":
        raw = {"audio": [encode_wav(tone(0.9, 16000, 4), 16000)]}
    else:
        raw = {"image": [LANDSCAPE], "candidate_labels": ["cat", "a dog", "a small bird", "car"]}
    request = {k: golden_array(v, spec, k, mbs) for k, v in raw.items()}
    batch = len(next(iter(raw.values())))
    dtype = {"threshold": np.float32, "top_k": np.int32, "hypothesis_template": object}[knob]
    v = value.encode() if isinstance(value, str) else value
    knob_value = np.array([[v]] * batch if mbs > 0 else [v], dtype=dtype)
    plain = infer(server.http_url, model, request)
    tuned = infer(server.http_url, model, {**request, knob: knob_value})
    if name == "detr":
        _check_detections_json(checkpoint, spec, raw, plain)
        _check_detections_json(checkpoint, spec, raw, tuned, threshold=value)
        assert [len(json.loads(d)) for d in plain["detections"][:, 0]] != \
            [len(json.loads(d)) for d in tuned["detections"][:, 0]]
        return
    if name == "hubert":
        from transformers import AutoFeatureExtractor, pipeline

        from tritonrepo.export.common import load_torch_model

        fe = AutoFeatureExtractor.from_pretrained(str(checkpoint.path))
        pipe = pipeline("audio-classification", model=load_torch_model(checkpoint, spec), feature_extractor=fe)
        clip = {"raw": decode_audio(raw["audio"][0], 16000), "sampling_rate": 16000}
        n_labels = len(tiny_media.AUDIO_LABELS)
        pairs = [(plain, pipe(clip, top_k=n_labels)), (tuned, pipe(clip, top_k=value))]
        assert plain["labels"].shape == (1, n_labels) and tuned["labels"].shape == (1, value)
    else:
        from transformers import AutoImageProcessor, AutoTokenizer, pipeline

        from tritonrepo.export.common import load_torch_model

        pipe = pipeline("zero-shot-image-classification", model=load_torch_model(checkpoint, spec),
                        tokenizer=AutoTokenizer.from_pretrained(str(checkpoint.path)),
                        image_processor=AutoImageProcessor.from_pretrained(str(checkpoint.path), use_fast=False))
        im = Image.open(io.BytesIO(raw["image"][0])).convert("RGB")
        labels = raw["candidate_labels"]
        pairs = [(plain, pipe(im, candidate_labels=labels)), (tuned, pipe(im, candidate_labels=labels, hypothesis_template=value))]
    for got, ref in pairs:
        assert [bytes(x).decode() for x in got["labels"][0]] == [r["label"] for r in ref]
        np.testing.assert_allclose(got["scores"][0], [r["score"] for r in ref], atol=ATOL)
    if name == "siglip":
        assert np.abs(plain["scores"] - tuned["scores"]).max() > 1e-3  # the template changed the texts


def test_mask2former_is_refused_and_the_matrix_says_why(matrix_record):
    """MaskFormer-style segmentation where optimum exports it: MaskFormer is in the matrix above; Mask2Former has no
    ONNX config in optimum, and the Python backend takes its tensor contract from that config, so no mode can be
    built: add-hf refuses the pair before heavy imports, and the support matrix records the reason."""
    import optimum.exporters.onnx.model_configs  # noqa: F401 - registers the ONNX configs
    from optimum.exporters.tasks import TasksManager

    from tritonrepo.errors import TritonRepoError
    from tritonrepo.tasks import resolve_spec

    assert "image-segmentation" in TasksManager.get_supported_tasks_for_model_type(
        "maskformer", exporter="onnx", library_name="transformers")
    with pytest.raises(KeyError, match="mask2former is not supported yet"):
        TasksManager.get_supported_tasks_for_model_type("mask2former", exporter="onnx", library_name="transformers")
    config = {"model_type": "mask2former", "architectures": ["Mask2FormerForUniversalSegmentation"]}
    with pytest.raises(TritonRepoError, match="task 'image-segmentation' is not supported for model type 'mask2former'"):
        resolve_spec(config, "image-segmentation")
    reason = "not supported: optimum has no ONNX config for mask2former (the Python backend takes its I/O from it too)"
    for mode in MODES:
        matrix_record("Mask2FormerForUniversalSegmentation", "image-segmentation", mode, reason, model_type="mask2former")
