"""Vision, audio and multimodal pipeline steps run in-process against transformers' pipelines (the reference).

The step classes are the ones the Python-backend models run (:mod:`tritonrepo.triton_models.image_steps`, ...);
here they are fed the PyTorch model's outputs so that only the pre/postprocessing is compared.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

import tiny_media
from tritonrepo.triton_models.image_steps import ImageSteps


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    return tiny_media.build_all(tmp_path_factory.mktemp("media"))


def png(h, w, seed=0) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


#: a portrait and a landscape image
IMAGES = [png(40, 30, 1), png(30, 52, 2)]


def _pil(blob):
    from PIL import Image

    return Image.open(io.BytesIO(blob)).convert("RGB")


def _pre(ckpt, outputs):
    return ImageSteps("image-preprocess", str(ckpt.parent), {"processor_subfolder": ckpt.name}, outputs)


def _post(kind, ckpt, **params):
    return ImageSteps(kind, str(ckpt.parent), {"labels_file": f"{ckpt.name}/config.json", **params}, [])


def _forward(model, arrays):
    import torch

    with torch.no_grad():
        return model(**{k: torch.from_numpy(v) for k, v in arrays.items()}, return_dict=True)


@pytest.mark.parametrize("name", ["detr", "yolos"])
@pytest.mark.parametrize("blob", IMAGES, ids=["portrait", "landscape"])
def test_object_detection_equals_the_pipeline(media, name, blob):
    from transformers import AutoModelForObjectDetection, pipeline

    model = AutoModelForObjectDetection.from_pretrained(media[name]).eval()
    pre = _pre(media[name], ["pixel_values", "image_size"]).run({"image": np.array([[blob]], dtype=object)})
    assert pre["image_size"].tolist() == [[_pil(blob).height, _pil(blob).width]]
    out = _forward(model, {"pixel_values": pre["pixel_values"]})
    got = _post("object-detection", media[name], threshold="0.0").run(
        {"logits": out.logits.numpy(), "pred_boxes": out.pred_boxes.numpy(), "image_size": pre["image_size"]})
    items = json.loads(got["detections"][0, 0])
    ref = pipeline("object-detection", model=model, image_processor=str(media[name]))(_pil(blob), threshold=0.0)
    assert len(items) == len(ref) == out.logits.shape[1]
    for mine, theirs in zip(sorted(items, key=lambda d: -d["score"]), sorted(ref, key=lambda d: -d["score"])):
        assert mine["label"] == theirs["label"]
        assert mine["score"] == pytest.approx(theirs["score"], abs=1e-5)
        for k in ("xmin", "ymin", "xmax", "ymax"):  # the pipeline truncates to int
            assert abs(int(mine["box"][k]) - theirs["box"][k]) <= 1, (k, mine, theirs)
    # float boxes: equal to the image processor's own post-processing
    proc = pipeline("object-detection", model=model, image_processor=str(media[name])).image_processor
    ref_f = proc.post_process_object_detection(out, threshold=0.0, target_sizes=[tuple(pre["image_size"][0])])[0]
    np.testing.assert_allclose(got["boxes"][0], ref_f["boxes"].numpy(), rtol=1e-3, atol=1e-3)
    strict = _post("object-detection", media[name], threshold="0.5").run(
        {"logits": out.logits.numpy(), "pred_boxes": out.pred_boxes.numpy(), "image_size": pre["image_size"]})
    kept = json.loads(strict["detections"][0, 0])
    assert len(kept) == len([r for r in ref if r["score"] > 0.5])


@pytest.mark.parametrize("blob", IMAGES, ids=["portrait", "landscape"])
def test_semantic_segmentation_label_map_equals_the_processor(media, blob):
    from transformers import AutoModelForSemanticSegmentation, pipeline

    ckpt = media["segformer"]
    model = AutoModelForSemanticSegmentation.from_pretrained(ckpt).eval()
    pre = _pre(ckpt, ["pixel_values", "image_size"]).run({"image": np.array([[blob]], dtype=object)})
    out = _forward(model, {"pixel_values": pre["pixel_values"]})
    got = _post("semantic-segmentation", ckpt).run({"logits": out.logits.numpy(), "image_size": pre["image_size"]})
    pipe = pipeline("image-segmentation", model=model, image_processor=str(ckpt))
    ref = pipe.image_processor.post_process_semantic_segmentation(out, target_sizes=[tuple(pre["image_size"][0])])[0]
    h, w = pre["image_size"][0]
    assert got["label_map"].shape == (1, h, w)
    mismatch = (got["label_map"][0] != ref.numpy()).mean()
    assert mismatch == 0.0, f"{mismatch:.2%} of pixels differ"
    segments = json.loads(got["segments"][0, 0])
    ref_segments = pipe(_pil(blob))
    assert [s["label"] for s in segments] == [r["label"] for r in ref_segments]
    for seg, r in zip(segments, ref_segments):
        np.testing.assert_array_equal(got["label_map"][0] == seg["id"], np.asarray(r["mask"]) > 0)


@pytest.mark.parametrize("blob", IMAGES, ids=["portrait", "landscape"])
def test_depth_equals_the_pipeline(media, blob):
    from transformers import AutoModelForDepthEstimation, pipeline

    ckpt = media["dpt"]
    model = AutoModelForDepthEstimation.from_pretrained(ckpt).eval()
    pre = _pre(ckpt, ["pixel_values", "image_size"]).run({"image": np.array([[blob]], dtype=object)})
    out = _forward(model, {"pixel_values": pre["pixel_values"]})
    got = _post("depth-estimation", ckpt).run({"predicted_depth": out.predicted_depth.numpy(),
                                               "image_size": pre["image_size"]})
    ref = pipeline("depth-estimation", model=model, image_processor=str(ckpt))(_pil(blob))
    np.testing.assert_allclose(got["depth"][0], ref["predicted_depth"].numpy(), atol=1e-5, rtol=1e-4)
    assert np.abs(got["depth_image"][0].astype(int) - np.asarray(ref["depth"]).astype(int)).max() <= 1


@pytest.mark.parametrize("name", ["vit", "dinov2"])
def test_image_embedding_is_the_pipelines_cls_token(media, name):
    from transformers import AutoModel, pipeline

    model = AutoModel.from_pretrained(media[name]).eval()
    pre = _pre(media[name], ["pixel_values"]).run({"image": np.array([[b] for b in IMAGES], dtype=object)})
    out = _forward(model, pre)
    got = _post("image-embedding", media[name]).run({"last_hidden_state": out.last_hidden_state.numpy()})
    pipe = pipeline("image-feature-extraction", model=model, image_processor=str(media[name]))
    for emb, blob in zip(got["embedding"], IMAGES):
        ref = np.asarray(pipe(_pil(blob)))[0, 0]
        assert np.dot(emb, ref) / np.linalg.norm(emb) / np.linalg.norm(ref) >= 0.9999
        np.testing.assert_allclose(emb, ref, atol=1e-5)
    if name == "dinov2":
        np.testing.assert_allclose(got["embedding"], out.pooler_output.numpy(), atol=1e-6)


def wav(seconds, rate=16000, seed=0) -> bytes:
    from tritonrepo.triton_models.audio import encode_wav

    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    samples = 0.3 * np.sin(2 * np.pi * (220 + 200 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    return encode_wav(samples.astype(np.float32), rate)


#: two lengths (the second at 8 kHz, so it is resampled)
CLIPS = [wav(0.6, seed=1), wav(1.3, rate=8000, seed=2)]


@pytest.mark.parametrize("name", ["wav2vec2", "hubert", "ast"])
@pytest.mark.parametrize("clip", CLIPS, ids=["short-16k", "long-8k"])
def test_audio_classification_equals_the_pipeline(media, name, clip):
    from transformers import AutoModelForAudioClassification, pipeline

    from tritonrepo.triton_models.audio import decode_audio
    from tritonrepo.triton_models.audio_steps import AudioSteps

    ckpt = media[name]
    model = AutoModelForAudioClassification.from_pretrained(ckpt).eval()
    pre = AudioSteps("audio-preprocess", str(ckpt.parent), {"processor_subfolder": ckpt.name}, ["input_values"])
    enc = pre.run({"audio": np.array([[clip]], dtype=object)})
    logits = _forward(model, enc).logits.numpy()
    post = AudioSteps("audio-classification", str(ckpt.parent), {"labels_file": f"{ckpt.name}/config.json"}, [])
    got = post.run({"logits": logits})
    pipe = pipeline("audio-classification", model=model, feature_extractor=str(ckpt))
    ref = pipe({"raw": decode_audio(clip, 16000), "sampling_rate": 16000})
    assert [x.decode() for x in got["labels"][0]] == [r["label"] for r in ref]
    np.testing.assert_allclose(got["scores"][0], [r["score"] for r in ref], atol=1e-5)


def test_undecodable_audio_is_a_request_error(media):
    from tritonrepo.triton_models.audio_steps import AudioSteps
    from tritonrepo.triton_models.runtime import RequestError

    ckpt = media["wav2vec2"]
    pre = AudioSteps("audio-preprocess", str(ckpt.parent), {"processor_subfolder": ckpt.name}, ["input_values"])
    with pytest.raises(RequestError, match="audio 0 cannot be decoded"):
        pre.run({"audio": np.array([[b"RIFF but not really"]], dtype=object)})


ZERO_SHOT = {  # pre outputs, pre parameters, post parameters: what the registry's setup functions write
    "clip": (["input_ids", "pixel_values", "attention_mask"], {}, {"activation": "softmax"}),
    "siglip": (["input_ids", "pixel_values"], {"padding": "max_length", "max_length": "64"}, {"activation": "sigmoid"}),
}


@pytest.mark.parametrize("name", ["clip", "siglip"])
@pytest.mark.parametrize("blob", IMAGES, ids=["portrait", "landscape"])
@pytest.mark.parametrize("template", [None, "a picture of {} here"], ids=["default-template", "request-template"])
def test_zero_shot_equals_the_pipeline(media, name, blob, template):
    """CLIP softmax / SigLIP sigmoid (texts padded to 64); the optional ``hypothesis_template`` input as the
    pipeline's ``hypothesis_template`` argument."""
    from transformers import AutoModelForZeroShotImageClassification, pipeline

    from tritonrepo.triton_models.multimodal_steps import MultimodalSteps

    ckpt = media[name]
    outputs, pre_params, post_params = ZERO_SHOT[name]
    model = AutoModelForZeroShotImageClassification.from_pretrained(ckpt).eval()
    labels = ["cat", "a dog", "a small bird", "car"]
    pre = MultimodalSteps("image-text-preprocess", str(ckpt.parent),
                          {"processor_subfolder": ckpt.name, "hypothesis_template": "This is a photo of {}.",
                           **pre_params}, outputs)
    request = {"image": np.array([blob], dtype=object),
               "candidate_labels": np.array([x.encode() for x in labels], dtype=object)}
    if template:
        request["hypothesis_template"] = np.array([template.encode()], dtype=object)
    enc = pre.run(request)
    if name == "siglip":
        assert enc["input_ids"].shape == (4, 64) and "attention_mask" not in enc
    out = _forward(model, enc)
    post = MultimodalSteps("zero-shot-image-classification", str(ckpt.parent), post_params, [])
    got = post.run({"logits_per_image": out.logits_per_image.numpy(),
                    "candidate_labels": np.array([x.encode() for x in labels], dtype=object)})
    kwargs = {"hypothesis_template": template} if template else {}
    ref = pipeline("zero-shot-image-classification", model=str(ckpt))(_pil(blob), candidate_labels=labels, **kwargs)
    assert [x.decode() for x in got["labels"][0]] == [r["label"] for r in ref]
    np.testing.assert_allclose(got["scores"][0], [r["score"] for r in ref], atol=1e-5)
    if name == "siglip":  # sigmoid per label: the scores do not sum to 1
        assert abs(float(got["scores"][0].sum()) - 1.0) > 0.05


def test_clip_image_and_text_embeddings_share_one_space(media):
    import torch
    from transformers import CLIPModel

    from tritonrepo.triton_models.multimodal_steps import MultimodalSteps

    ckpt = media["clip"]
    model = CLIPModel.from_pretrained(ckpt).eval()
    texts = ["a photo of a cat", "dog"]
    pre = MultimodalSteps("image-text-preprocess", str(ckpt.parent), {"processor_subfolder": ckpt.name},
                          ["input_ids", "pixel_values", "attention_mask"])
    enc = pre.run({"image": np.array(IMAGES, dtype=object), "text": np.array([t.encode() for t in texts], dtype=object)})
    out = _forward(model, enc)
    with torch.no_grad():
        img = model.get_image_features(pixel_values=torch.from_numpy(enc["pixel_values"])).numpy()
        txt = model.get_text_features(input_ids=torch.from_numpy(enc["input_ids"]),
                                      attention_mask=torch.from_numpy(enc["attention_mask"])).numpy()
    for got, ref in ((out.image_embeds.numpy(), img), (out.text_embeds.numpy(), txt)):
        cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
        assert cos.min() >= 0.9999
    # the CLIP logits are the scaled cosine of these two embeddings
    sims = out.image_embeds.numpy() @ out.text_embeds.numpy().T * model.logit_scale.exp().item()
    np.testing.assert_allclose(sims, out.logits_per_image.numpy(), rtol=1e-5, atol=1e-5)


def test_layoutlm_words_and_boxes(media):
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from tritonrepo.triton_models.multimodal_steps import MultimodalSteps

    ckpt = media["layoutlm"]
    model = AutoModelForTokenClassification.from_pretrained(ckpt).eval()
    docs = [(["hello", "world", "triton"], [[10, 10, 60, 30], [70, 10, 140, 30], [10, 50, 90, 70]]),
            (["good", "models"], [[5, 5, 50, 20], [60, 5, 200, 20]])]
    words = np.array([[w.encode() for w in ws] + [b""] * (3 - len(ws)) for ws, _ in docs], dtype=object)
    boxes = np.array([bs + [[0, 0, 0, 0]] * (3 - len(bs)) for _, bs in docs], dtype=np.int64)
    names = ["input_ids", "bbox", "attention_mask", "token_type_ids", "word_ids"]
    pre = MultimodalSteps("layout-preprocess", str(ckpt.parent), {"processor_subfolder": ckpt.name, "max_length": "64"},
                          names)
    enc = pre.run({"words": words, "boxes": boxes})
    logits = _forward(model, {k: v for k, v in enc.items() if k != "word_ids"}).logits.numpy()
    post = MultimodalSteps("layout-token-classification", str(ckpt.parent), {"labels_file": f"{ckpt.name}/config.json"}, [])
    got = post.run({"logits": logits, "word_ids": enc["word_ids"]})
    tok = AutoTokenizer.from_pretrained(ckpt)
    for b, (ws, bs) in enumerate(docs):  # reference: one document alone, boxes per token as LayoutLM's docs do
        e = tok(ws, is_split_into_words=True, return_tensors="pt")
        ids = e.word_ids(0)
        bbox = [[0] * 4 if w is None else bs[w] for w in ids]
        bbox[-1] = [1000] * 4
        with torch.no_grad():
            probs = model(**e, bbox=torch.tensor([bbox])).logits.softmax(-1)[0]
        first = [ids.index(w) for w in range(len(ws))]
        assert [x.decode() for x in got["labels"][b][: len(ws)]] == [model.config.id2label[int(probs[t].argmax())] for t in first]
        np.testing.assert_allclose(got["scores"][b][: len(ws)], [float(probs[t].max()) for t in first], atol=1e-5)
        assert all(x == b"" for x in got["labels"][b][len(ws):])


def test_ast_fbank_without_torch_equals_transformers(media):
    from transformers import AutoFeatureExtractor

    from tritonrepo.triton_models.audio_steps import ast_fbank

    fe = AutoFeatureExtractor.from_pretrained(media["ast"])
    for seconds in (0.4, 1.5):  # padded, then truncated to max_length frames
        wave = np.random.default_rng(0).standard_normal(int(16000 * seconds)).astype(np.float32) * 0.1
        ref = fe._extract_fbank_features(wave, fe.max_length)
        got = ast_fbank(fe, wave, fe.max_length)
        assert got.shape == ref.shape == (100, 16) and got.dtype == ref.dtype
        np.testing.assert_array_equal(got, ref)


def test_preprocessing_runs_without_torch_and_gives_the_same_arrays(media, tmp_path):
    """The stubs run transformers with USE_TORCH=0 (no torch import): same arrays as in this (torch) process."""
    import subprocess
    import sys

    from tritonrepo.triton_models.audio_steps import AudioSteps

    script = tmp_path / "run.py"
    script.write_text(
        "import sys, numpy as np\n"
        "from tritonrepo.triton_models.audio_steps import AudioSteps\n"
        "from tritonrepo.triton_models.image_steps import ImageSteps\n"
        f"clip = open({str(tmp_path / 'clip.wav')!r}, 'rb').read()\n"
        f"img = open({str(tmp_path / 'img.png')!r}, 'rb').read()\n"
        f"a = AudioSteps('audio-preprocess', {str(media['ast'].parent)!r}, {{'processor_subfolder': 'tiny-ast'}},"
        " ['input_values']).run({'audio': np.array([[clip]], dtype=object)})\n"
        f"i = ImageSteps('image-preprocess', {str(media['detr'].parent)!r}, {{'processor_subfolder': 'tiny-detr'}},"
        " ['pixel_values', 'image_size']).run({'image': np.array([[img]], dtype=object)})\n"
        f"np.savez({str(tmp_path / 'out.npz')!r}, ast=a['input_values'], detr=i['pixel_values'])\n"
        "print('torch' in sys.modules)\n"
    )
    (tmp_path / "clip.wav").write_bytes(CLIPS[1])
    (tmp_path / "img.png").write_bytes(IMAGES[1])
    import os

    env = {**os.environ, "USE_TORCH": "0"}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False", "torch was imported"
    out = np.load(tmp_path / "out.npz")
    ast = AudioSteps("audio-preprocess", str(media["ast"].parent), {"processor_subfolder": "tiny-ast"}, ["input_values"])
    np.testing.assert_allclose(out["ast"], ast.run({"audio": np.array([[CLIPS[1]]], dtype=object)})["input_values"],
                               atol=1e-6)
    detr = _pre(media["detr"], ["pixel_values"]).run({"image": np.array([[IMAGES[1]]], dtype=object)})
    np.testing.assert_allclose(out["detr"], detr["pixel_values"], atol=1e-6)


@pytest.mark.parametrize("blob", IMAGES, ids=["portrait", "landscape"])
def test_mask_segmentation_label_map_equals_the_pipeline(media, blob):
    """MaskFormer: the semantic label map equals the pipeline's ``subtask="semantic"`` masks, pixel for pixel."""
    from transformers import AutoModelForInstanceSegmentation, pipeline

    ckpt = media["maskformer"]
    model = AutoModelForInstanceSegmentation.from_pretrained(ckpt).eval()
    pre = _pre(ckpt, ["pixel_values", "image_size"]).run({"image": np.array([[blob]], dtype=object)})
    out = _forward(model, {"pixel_values": pre["pixel_values"]})
    got = _post("mask-segmentation", ckpt).run({"class_queries_logits": out.class_queries_logits.numpy(),
                                                "masks_queries_logits": out.masks_queries_logits.numpy(),
                                                "image_size": pre["image_size"]})
    h, w = pre["image_size"][0]
    assert got["label_map"].shape == (1, h, w)
    segments = json.loads(got["segments"][0, 0])
    ref = pipeline("image-segmentation", model=model, image_processor=str(ckpt))(_pil(blob), subtask="semantic")
    assert [s["label"] for s in segments] == [r["label"] for r in ref]
    for seg, r in zip(segments, ref):
        np.testing.assert_array_equal(got["label_map"][0] == seg["id"], np.asarray(r["mask"]) > 0)


CORE = {"detr": "AutoModelForObjectDetection", "yolos": "AutoModelForObjectDetection",
        "maskformer": "AutoModelForInstanceSegmentation"}


@pytest.mark.parametrize("name", ["detr", "yolos", "maskformer"])
def test_two_images_of_different_sizes_each_get_the_pipelines_answer(media, name):
    """A portrait and a landscape image in one request: the core model runs on the padded batch, and the post step
    runs it again alone on each padded image (in the server through BLS; here the PyTorch model), so every image
    gets what transformers' pipeline gives for it. Without the rerun the padded image's answer differs."""
    import transformers

    ckpt = media[name]
    model = getattr(transformers, CORE[name]).from_pretrained(ckpt).eval()
    kind = "mask-segmentation" if name == "maskformer" else "object-detection"
    outs = ["class_queries_logits", "masks_queries_logits"] if name == "maskformer" else ["logits", "pred_boxes"]
    inputs = ["pixel_values"] + (["pixel_mask"] if name == "detr" else [])
    pre = _pre(ckpt, [*inputs, "image_size", "pixel_size"]).run({"image": np.array([[b] for b in IMAGES], dtype=object)})
    assert pre["image_size"].tolist() == [[40, 30], [30, 52]]
    assert pre["pixel_size"][0].tolist() != pre["pixel_size"][1].tolist()
    batch = _forward(model, {k: pre[k] for k in inputs})
    a = {**{k: getattr(batch, k).numpy() for k in outs}, **pre}
    calls = []

    def infer_core(arrays, names):
        calls.append({k: v.shape for k, v in arrays.items()})
        out = _forward(model, arrays)
        return {n: getattr(out, n).numpy() for n in names}

    got = ImageSteps(kind, str(ckpt.parent), {"labels_file": f"{ckpt.name}/config.json", "threshold": "0.0"}, [],
                     infer_core=infer_core).run(a)
    padded = [tuple(sz) != pre["pixel_values"].shape[-2:] for sz in pre["pixel_size"].tolist()]
    assert len(calls) == sum(padded) >= 1  # only padded images run again
    naive = _post(kind, ckpt, threshold="0.0").run(a)
    pipe = transformers.pipeline("image-segmentation" if name == "maskformer" else "object-detection", model=model,
                                 image_processor=str(ckpt))
    padded_differs = False
    for i, blob in enumerate(IMAGES):
        im = _pil(blob)
        ref_out = pipe.forward(pipe.preprocess(im))
        if name == "maskformer":
            want = pipe.image_processor.post_process_semantic_segmentation(ref_out, target_sizes=[(im.height, im.width)])[0]
            mine = got["label_map"][i, : im.height, : im.width]
            np.testing.assert_array_equal(mine, want.numpy())
            padded_differs |= not np.array_equal(naive["label_map"][i, : im.height, : im.width], want.numpy())
        else:
            want = pipe.image_processor.post_process_object_detection(ref_out, threshold=-1.0,
                                                                      target_sizes=[(im.height, im.width)])[0]
            np.testing.assert_allclose(got["boxes"][i], want["boxes"].numpy(), rtol=1e-3, atol=1e-3)
            np.testing.assert_allclose(got["scores"][i], want["scores"].numpy(), atol=1e-4)
            padded_differs |= not np.allclose(naive["boxes"][i], want["boxes"].numpy(), rtol=1e-3, atol=1e-3)
    assert padded_differs, "the padded batch gave the per-image answers already: the test shows nothing"


def test_request_threshold_and_top_k_override_the_parameters(media):
    """The optional ``threshold`` (detection) and ``top_k`` (audio) inputs as the pipelines' arguments."""
    from transformers import AutoModelForAudioClassification, AutoModelForObjectDetection, pipeline

    from tritonrepo.triton_models.audio import decode_audio
    from tritonrepo.triton_models.audio_steps import AudioSteps
    from tritonrepo.triton_models.runtime import RequestError

    ckpt = media["detr"]
    model = AutoModelForObjectDetection.from_pretrained(ckpt).eval()
    pre = _pre(ckpt, ["pixel_values", "image_size"]).run({"image": np.array([[IMAGES[1]]], dtype=object)})
    out = _forward(model, {"pixel_values": pre["pixel_values"]})
    a = {"logits": out.logits.numpy(), "pred_boxes": out.pred_boxes.numpy(), "image_size": pre["image_size"]}
    post = _post("object-detection", ckpt, threshold="0.5")
    pipe = pipeline("object-detection", model=model, image_processor=str(ckpt))
    counts = []
    for threshold in (None, 0.1, 0.9):
        got = post.run({**a, **({"threshold": np.array([[threshold]], np.float32)} if threshold is not None else {})})
        ref = pipe(_pil(IMAGES[1]), **({"threshold": threshold} if threshold is not None else {}))
        items = json.loads(got["detections"][0, 0])
        assert sorted((d["label"], round(d["score"], 4)) for d in items) == \
            sorted((r["label"], round(r["score"], 4)) for r in ref)
        counts.append(len(items))
    assert len(set(counts)) > 1, counts  # the knob changes the answer
    two = {k: np.concatenate([v, v]) for k, v in a.items()}  # one value per image
    got = post.run({**two, "threshold": np.array([[0.1], [0.9]], np.float32)})
    assert [len(json.loads(d)) for d in got["detections"][:, 0]] == [counts[1], counts[2]]

    ckpt = media["wav2vec2"]
    model = AutoModelForAudioClassification.from_pretrained(ckpt).eval()
    logits = _forward(model, AudioSteps("audio-preprocess", str(ckpt.parent), {"processor_subfolder": ckpt.name},
                                        ["input_values"]).run({"audio": np.array([[CLIPS[0]]], dtype=object)})).logits
    post = AudioSteps("audio-classification", str(ckpt.parent), {"labels_file": f"{ckpt.name}/config.json"}, [])
    apipe = pipeline("audio-classification", model=model, feature_extractor=str(ckpt))
    for k in (None, 1, 2):
        got = post.run({"logits": logits.numpy(), **({"top_k": np.array([[k]], np.int32)} if k else {})})
        ref = apipe({"raw": decode_audio(CLIPS[0], 16000), "sampling_rate": 16000}, **({"top_k": k} if k else {}))
        assert [x.decode() for x in got["labels"][0]] == [r["label"] for r in ref]
        np.testing.assert_allclose(got["scores"][0], [r["score"] for r in ref], atol=1e-5)
    with pytest.raises(RequestError, match="top_k must be one value >= 1"):
        post.run({"logits": logits.numpy(), "top_k": np.array([[0]], np.int32)})
