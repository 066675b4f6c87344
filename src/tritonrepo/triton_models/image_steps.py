"""Image pipeline steps in Triton's Python backend (copied as ``<version>/model.py``): preprocessing and the
postprocessing of detection, segmentation, depth and image embeddings, as transformers' pipelines do them.

A fixed module; the config ``parameters`` say which step it is (``kind``):

* ``image-preprocess`` — ``image`` (``TYPE_STRING`` ``[batch, 1]``, encoded JPEG/PNG/... bytes) -> the configured
  outputs among ``pixel_values`` ``FP32 [batch, C, H, W]`` (the checkpoint's image processor, in
  ``processor_subfolder``), ``pixel_mask`` ``[batch, H, W]``, ``image_size`` ``INT64 [batch, 2]`` (the
  ORIGINAL height and width, in pixels, for the postprocessing) and ``pixel_size`` ``INT64 [batch, 2]`` (each
  image's height and width in ``pixel_values`` before padding). With ``pixel_size`` configured, each image goes
  through the processor ALONE, as transformers' pipelines do, and the results are zero-padded bottom/right
  to the largest (``pixel_mask`` 1 on the image, 0 on the padding).
* Several images of different sizes in one request (processors that keep the aspect ratio: DETR, YOLOS,
  MaskFormer): the core model has run on the padded batch, which is not what it computes for each image
  alone. With ``per_image_model`` (the core model's name), ``pixel_values`` and ``pixel_size`` as inputs, the
  ``object-detection`` and ``mask-segmentation`` steps run the core model again, alone (Triton BLS,
  ``pb_utils.InferenceRequest.exec``), on each padded image cut back to its own ``pixel_size`` (and
  ``pixel_mask``), so every image gets the answer transformers' pipeline gives for it; unpadded images keep
  the batch's answer.
* ``object-detection`` — ``logits`` ``[batch, queries, labels + 1]``, ``pred_boxes`` ``[batch, queries, 4]``
  (centre x, centre y, width, height, relative) and ``image_size`` -> ``detections`` (``TYPE_STRING``
  ``[batch, 1]``, one JSON list per image: ``{"score", "label", "box": {"xmin", "ymin", "xmax", "ymax"}}``, boxes
  in pixels of the original image, float), plus ``boxes`` ``FP32 [batch, queries, 4]`` (x0, y0, x1, y1 pixels),
  ``scores`` ``FP32 [batch, queries]``, ``label_ids`` ``INT64 [batch, queries]`` for every query. Detections
  scoring ``<= threshold`` (parameter, default 0.5 as in the pipeline) are left out of the JSON. Same as
  ``DetrImageProcessor.post_process_object_detection`` (transformers ``models/detr/image_processing_detr.py``):
  softmax, the last class ("no object") dropped. An optional ``threshold`` input (``FP32 [batch, 1]``, one value
  per image) overrides the parameter for that request.
* ``semantic-segmentation`` — ``logits`` ``[batch, labels, h, w]`` and ``image_size`` -> ``label_map``
  ``INT32 [batch, H, W]`` (bilinear upsampling of the logits to the original size, then argmax, as
  ``SegformerImageProcessor.post_process_semantic_segmentation``; padded with -1 to the largest image of the
  request) and ``segments`` (``TYPE_STRING [batch, 1]``, JSON list ``{"id", "label"}`` of the labels present,
  in id order, as the image-segmentation pipeline lists them).
* ``mask-segmentation`` — MaskFormer-style ``class_queries_logits`` ``[batch, queries, labels + 1]`` and
  ``masks_queries_logits`` ``[batch, queries, h, w]`` and ``image_size`` -> ``label_map`` and ``segments`` as
  ``semantic-segmentation``: per label the sum over queries of the query's label probability (softmax, "no
  object" dropped) times its mask probability (sigmoid), bilinear to the original size, argmax, as
  ``MaskFormerImageProcessor.post_process_semantic_segmentation`` (transformers
  ``models/maskformer/image_processing_maskformer.py``; the image-segmentation pipeline's ``subtask="semantic"``).
* ``depth-estimation`` — ``predicted_depth`` ``[batch, h, w]`` and ``image_size`` -> ``depth`` ``FP32 [batch, H, W]`` (bicubic upsampling to the original size, as
  ``DPTImageProcessor.post_process_depth_estimation``; padded with 0) and ``depth_image`` ``UINT8 [batch, H, W]``
  (min-max scaled to 0..255 as the depth-estimation pipeline's ``depth`` image).
* ``image-embedding`` — ``last_hidden_state`` ``[batch, tokens, hidden]`` -> ``embedding`` ``FP32 [batch, hidden]``,
  the first (CLS) token: DINOv2's ``pooler_output``, and the pipeline's ``image-feature-extraction`` output at
  token 0; and ``token_embeddings`` (the hidden states themselves, when configured: an ensemble output may not
  also feed a later step, see :mod:`tritonrepo.ensemble`).

Labels come from ``labels_file`` (the checkpoint's ``config.json``, ``id2label``). Output dtypes are the
configured ones. numpy + PIL only in the postprocessing (no torch); the preprocessing uses transformers'
image processor (its numpy path). A request that fails gets an error response and the model keeps serving.
"""

import io
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

try:
    from tritonrepo_limits import Limits
    from tritonrepo_runtime import RequestError, execute_batched, media_step_setup
except ImportError:  # imported from the tritonrepo package (tests, docs)
    from tritonrepo.triton_models.limits import Limits
    from tritonrepo.triton_models.runtime import RequestError, execute_batched, media_step_setup

KINDS = ("image-preprocess", "object-detection", "semantic-segmentation", "mask-segmentation", "depth-estimation",
         "image-embedding")
#: The core model's outputs each post kind reads (what a per-image rerun requests).
CORE_OUTPUTS = {"object-detection": ("logits", "pred_boxes"),
                "mask-segmentation": ("class_queries_logits", "masks_queries_logits")}


def softmax(x, axis=-1):
    """Softmax in float64 (``x`` any float array)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def decode_images(array, limits=None):
    """``TYPE_STRING`` array of encoded images -> list of RGB ``PIL.Image``, each checked against ``limits``
    (:class:`tritonrepo_limits.Limits`: bytes, and pixels read from the header before decoding) first.

    Raises:
        RequestError: an image over a limit (HTTP 400) or not decodable.
    """
    limits = limits or Limits()
    images = []
    for i, blob in enumerate(np.asarray(array, dtype=object).reshape(-1)):
        if not isinstance(blob, (bytes, bytearray)):
            raise RequestError(f"image {i} cannot be decoded: expected encoded bytes, got {type(blob).__name__}")
        images.append(limits.image(blob, i))
    return images


def _source_index(out_size, in_size):
    """Source coordinate of each output pixel (``align_corners=False``), as torch's ``area_pixel_compute_source_index``."""
    scale = in_size / out_size
    return (np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5


def linear_weights(out_size, in_size):
    """``[out, in]`` matrix of torch's bilinear interpolation weights along one axis (``align_corners=False``)."""
    src = np.maximum(_source_index(out_size, in_size), 0.0)
    i0 = np.floor(src).astype(np.int64)
    i0 = np.minimum(i0, in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    frac = src - i0
    w = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    np.add.at(w, (rows, i0), 1.0 - frac)
    np.add.at(w, (rows, i1), frac)
    return w


def cubic_weights(out_size, in_size, a=-0.75):
    """``[out, in]`` matrix of torch's bicubic interpolation weights along one axis (``align_corners=False``,
    ``A = -0.75``, border indices clamped), as ``upsample_bicubic2d``."""
    src = _source_index(out_size, in_size)
    i = np.floor(src).astype(np.int64)
    t = src - i

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    coeffs = [far(t + 1), near(t), near(1 - t), far(2 - t)]
    w = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    for k, c in enumerate(coeffs):
        np.add.at(w, (rows, np.clip(i - 1 + k, 0, in_size - 1)), c)
    return w


def resize_maps(maps, height, width, mode="bilinear"):
    """Resize ``maps`` ``[..., h, w]`` to ``[..., height, width]`` like ``torch.nn.functional.interpolate``
    (``align_corners=False``, no antialiasing); ``mode`` ``bilinear`` or ``bicubic``. Float64 result."""
    weights = linear_weights if mode == "bilinear" else cubic_weights
    wh = weights(height, maps.shape[-2])
    ww = weights(width, maps.shape[-1])
    return np.einsum("hi,...ij,wj->...hw", wh, np.asarray(maps, dtype=np.float64), ww)


def detections(logits, pred_boxes, image_size, threshold, id2label):
    """DETR/YOLOS postprocessing for one batch.

    Args:
        logits: ``[batch, queries, labels + 1]`` (last class: no object).
        pred_boxes: ``[batch, queries, 4]`` centre x, centre y, width, height relative to the image.
        image_size: ``[batch, 2]`` original height and width in pixels.
        threshold: detections with a score ``<= threshold`` are dropped from the lists; a number, or one per image.
        id2label: ``{id: label}``.

    Returns:
        ``(items, boxes, scores, label_ids)``: a list per image of ``{"score", "label", "box"}`` dicts (pixels, float),
        and for every query the corner boxes ``[batch, queries, 4]``, scores and label ids.
    """
    probs = softmax(logits)[..., :-1]
    scores, label_ids = probs.max(-1), probs.argmax(-1)
    b = np.asarray(pred_boxes, dtype=np.float64)
    cx, cy, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    corners = np.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)
    size = np.asarray(image_size, dtype=np.float64).reshape(-1, 2)
    scale = np.stack([size[:, 1], size[:, 0], size[:, 1], size[:, 0]], axis=-1)[:, None, :]
    boxes = corners * scale
    items = []
    thresholds = np.broadcast_to(np.asarray(threshold, dtype=np.float64).reshape(-1), (scores.shape[0],))
    for s, lab, box, thr in zip(scores, label_ids, boxes, thresholds):
        keep = s > thr
        items.append([
            {"score": float(sc), "label": id2label.get(int(li), f"LABEL_{int(li)}"),
             "box": dict(zip(("xmin", "ymin", "xmax", "ymax"), (float(v) for v in bx)))}
            for sc, li, bx in zip(s[keep], lab[keep], box[keep])
        ])
    return items, boxes, scores, label_ids


def semantic_label_maps(logits, image_size):
    """``logits`` ``[batch, labels, h, w]`` -> one ``[H, W]`` int label map per image at its original size."""
    out = []
    for lg, (h, w) in zip(np.asarray(logits, dtype=np.float32), np.asarray(image_size).reshape(-1, 2)):
        out.append(resize_maps(lg, int(h), int(w), "bilinear").argmax(0).astype(np.int32))
    return out


def mask_label_maps(class_queries_logits, masks_queries_logits, image_size):
    """MaskFormer-style ``[queries, labels + 1]`` / ``[queries, h, w]`` per image -> one ``[H, W]`` int label map per
    image at its original size (see the module docstring); the arguments are per-image sequences (the mask size
    may differ from image to image)."""
    out = []
    for cls, masks, (h, w) in zip(class_queries_logits, masks_queries_logits, np.asarray(image_size).reshape(-1, 2)):
        probs = softmax(cls)[..., :-1]
        mask_probs = 1.0 / (1.0 + np.exp(-np.asarray(masks, dtype=np.float64)))
        seg = np.einsum("qc,qhw->chw", probs, mask_probs)
        out.append(resize_maps(seg, int(h), int(w), "bilinear").argmax(0).astype(np.int32))
    return out


def depth_maps(predicted_depth, image_size):
    """``predicted_depth`` ``[batch, h, w]`` -> one ``[H, W]`` float map per image, bicubic to the original size."""
    return [resize_maps(d, int(h), int(w), "bicubic")
            for d, (h, w) in zip(np.asarray(predicted_depth, dtype=np.float32), np.asarray(image_size).reshape(-1, 2))]


def depth_image(depth):
    """The pipeline's ``depth`` picture: min-max scaled to 0..255, truncated to ``uint8``."""
    d = np.asarray(depth, dtype=np.float32)
    span = d.max() - d.min()
    scaled = (d - d.min()) / span if span > 0 else np.zeros_like(d)
    return (scaled * 255).astype(np.uint8)


def pad_stack(maps, fill):
    """Stack ``[H_i, W_i]`` maps into ``[batch, max H, max W]`` padded with ``fill``."""
    h = max(m.shape[0] for m in maps)
    w = max(m.shape[1] for m in maps)
    out = np.full((len(maps), h, w), fill, dtype=maps[0].dtype)
    for i, m in enumerate(maps):
        out[i, : m.shape[0], : m.shape[1]] = m
    return out


def load_id2label(path):
    """``{int id: label}`` from a ``config.json`` (empty when ``path`` is empty or has none)."""
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        return {int(k): v for k, v in json.load(f).get("id2label", {}).items()}


class ImageSteps:
    """One image step, independent of Triton (the stub's model and the tests use it).

    Args:
        kind: one of :data:`KINDS`.
        version_dir: the folder holding ``processor_subfolder`` and ``labels_file``.
        params: the config ``parameters`` (``processor_subfolder``, ``labels_file``, ``threshold``).
        outputs: the configured output names (the preprocessing returns exactly these).
        infer_core: the core model for one image (Triton BLS in the server, PyTorch in tests) or ``None`` (no
            per-image rerun).
    """

    def __init__(self, kind, version_dir, params, outputs, infer_core=None):
        if kind not in KINDS:
            raise ValueError(f"unknown image step kind '{kind}'; expected one of {', '.join(KINDS)}")
        self.kind, self.outputs = kind, list(outputs)
        #: ``fn({input: array [1, ...]}, [output names]) -> {output: array [1, ...]}``: the core model on one image
        self.infer_core = infer_core
        self.threshold = float(params.get("threshold", "0.5"))
        labels_file = params.get("labels_file", "")
        self.id2label = load_id2label(os.path.join(version_dir, labels_file) if labels_file else "")
        self.processor = None
        self.limits = Limits(params)
        if kind == "image-preprocess":
            from transformers import AutoImageProcessor

            folder = os.path.join(version_dir, params.get("processor_subfolder", "processor"))
            self.processor = AutoImageProcessor.from_pretrained(folder, use_fast=False)

    def run(self, a):
        """``{input name: array}`` -> ``{output name: array}`` for one request (or a stack of requests)."""
        if self.kind == "image-preprocess":
            images = decode_images(a["image"], self.limits)
            if "pixel_size" in self.outputs:
                out = self._one_by_one(images)
            else:
                enc = self.processor(images=images, return_tensors="np")
                out = {k: np.asarray(v) for k, v in enc.items()}
            out["image_size"] = np.array([[im.height, im.width] for im in images], dtype=np.int64)
            missing = [n for n in self.outputs if n not in out]
            if missing:
                raise RequestError(f"the image processor produced no {missing}")
            return {n: out[n] for n in self.outputs}
        if self.kind == "object-detection":
            rows = self.core_rows(a)
            threshold = self.threshold if a.get("threshold") is None else np.asarray(a["threshold"]).reshape(-1)
            items, boxes, scores, label_ids = detections(np.stack([r["logits"] for r in rows]),
                                                         np.stack([r["pred_boxes"] for r in rows]), a["image_size"],
                                                         threshold, self.id2label)
            js = np.array([[json.dumps(it).encode("utf-8")] for it in items], dtype=object)
            return {"detections": js, "boxes": boxes, "scores": scores, "label_ids": label_ids}
        if self.kind in ("semantic-segmentation", "mask-segmentation"):
            if self.kind == "semantic-segmentation":
                maps = semantic_label_maps(a["logits"], a["image_size"])
            else:
                rows = self.core_rows(a)
                maps = mask_label_maps([r["class_queries_logits"] for r in rows],
                                       [r["masks_queries_logits"] for r in rows], a["image_size"])
            segments = [[{"id": int(i), "label": self.id2label.get(int(i), f"LABEL_{int(i)}")} for i in np.unique(m)]
                        for m in maps]
            js = np.array([[json.dumps(s).encode("utf-8")] for s in segments], dtype=object)
            return {"label_map": pad_stack(maps, -1), "segments": js}
        if self.kind == "depth-estimation":
            maps = depth_maps(a["predicted_depth"], a["image_size"])
            return {"depth": pad_stack([m.astype(np.float32) for m in maps], 0.0),
                    "depth_image": pad_stack([depth_image(m) for m in maps], 0)}
        hidden = np.asarray(a["last_hidden_state"])  # image-embedding
        return {"embedding": hidden[:, 0], "token_embeddings": hidden}


    def _one_by_one(self, images):
        """Each image through the processor alone, zero-padded bottom/right to the largest (see the module doc)."""
        encs = [self.processor(images=[im], return_tensors="np") for im in images]
        pixels = [np.asarray(e["pixel_values"])[0] for e in encs]
        h = max(p.shape[-2] for p in pixels)
        w = max(p.shape[-1] for p in pixels)
        values = np.zeros((len(pixels), pixels[0].shape[0], h, w), dtype=pixels[0].dtype)
        mask = np.zeros((len(pixels), h, w), dtype=np.int64)
        for i, p in enumerate(pixels):
            values[i, :, : p.shape[-2], : p.shape[-1]] = p
            mask[i, : p.shape[-2], : p.shape[-1]] = 1
        size = np.array([p.shape[-2:] for p in pixels], dtype=np.int64)
        return {"pixel_values": values, "pixel_mask": mask, "pixel_size": size}

    def core_rows(self, a):
        """The core outputs per image (``[{output: array without batch dim}]``): the batch's, except for images the
        batch padded, which the core model computes again alone (``infer_core``) on their own pixels."""
        names = CORE_OUTPUTS[self.kind]
        n = np.asarray(a[names[0]]).shape[0]
        rows = [{k: np.asarray(a[k])[i] for k in names} for i in range(n)]
        if self.infer_core is None or a.get("pixel_values") is None or a.get("pixel_size") is None or n < 2:
            return rows
        pixels, sizes = np.asarray(a["pixel_values"]), np.asarray(a["pixel_size"]).reshape(-1, 2)
        for i, (h, w) in enumerate(sizes):
            if (int(h), int(w)) == tuple(pixels.shape[-2:]):
                continue
            inputs = {"pixel_values": np.ascontiguousarray(pixels[i : i + 1, :, :h, :w])}
            if a.get("pixel_mask") is not None:
                inputs["pixel_mask"] = np.ascontiguousarray(np.asarray(a["pixel_mask"])[i : i + 1, :h, :w])
            out = self.infer_core(inputs, list(names))
            rows[i] = {k: np.asarray(out[k])[0] for k in names}
        return rows


class TritonPythonModel:
    """An image pre/postprocessing step (see the module docstring)."""

    def initialize(self, args):
        self.io, version_dir, params = media_step_setup(args)
        self.core = params.get("per_image_model", "")
        self.steps = ImageSteps(self.io.parameter("kind"), version_dir, params, list(self.io.outputs),
                                infer_core=self._infer_core if self.core else None)

    def _infer_core(self, inputs, names):
        """The core model on one image, through Triton (BLS). Raises :class:`RequestError` with the server's error."""
        import triton_python_backend_utils as pb_utils

        request = pb_utils.InferenceRequest(
            model_name=self.core, requested_output_names=list(names),
            inputs=[pb_utils.Tensor(k, v) for k, v in inputs.items()])
        response = request.exec()
        if response.has_error():
            raise RequestError(f"model '{self.core}' on one image: {response.error().message()}")
        return {n: pb_utils.get_output_tensor_by_name(response, n).as_numpy() for n in names}

    def execute(self, requests):
        """One response per request; the preprocessing and the per-image maps never mix requests."""
        return execute_batched(requests, self.io, self.steps.run, stack=self.steps.kind in ("image-embedding",))

    def finalize(self):
        self.steps = None
