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
