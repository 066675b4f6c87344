"""Seed 003's approach 2 / seed 000: ViT as image bytes in -> its hidden states out (``token_embeddings``, the
core's ``last_hidden_state`` passed on by the post step) and the CLS ``embedding``.

    python examples/vit_image_features.py CHECKPOINT [REPO_DIR]

For google/vit-base-patch16-224-in21k (224x224, patch 16, hidden 768) the answer has shape (batch, 197, 768),
as the seed's client prints. The example sends PNG-encoded images of different sizes in one request and
compares with the image processor + ViTModel in PyTorch.
"""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import numpy as np

from common import report, tritonrepo


def main(checkpoint: str, repo: Path = Path("vit_repository")) -> int:
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, ViTModel

    from tritonrepo.client import infer
    from tritonrepo.pipeline import golden_images
    from tritonrepo.server import TritonServer

    shutil.rmtree(repo, ignore_errors=True)
    tritonrepo("add-hf", checkpoint, "--repo", str(repo), "--name", "vit", "--pipeline")
    images = golden_images(3, seed=7)
    proc = AutoImageProcessor.from_pretrained(checkpoint)
    pixels = proc(images=[Image.open(io.BytesIO(b)).convert("RGB") for b in images], return_tensors="pt")["pixel_values"]
    model = ViTModel.from_pretrained(checkpoint, add_pooling_layer=False).eval()
    with torch.no_grad():
        reference = model(pixel_values=pixels).last_hidden_state.numpy()
    with TritonServer(repo) as server:
        got = infer(server.grpc_url, "vit", {"image": np.array([[b] for b in images], dtype=object)}, protocol="grpc")
    hidden = got["token_embeddings"]
    diff = float(np.max(np.abs(hidden - reference)))
    cfg = model.config
    tokens = (cfg.image_size // cfg.patch_size) ** 2 + 1
    return report([
        ("shape (batch, tokens, hidden)", str(hidden.shape), hidden.shape == (3, tokens, cfg.hidden_size)),
        ("token_embeddings vs PyTorch last_hidden_state (max abs)", f"{diff:.3g}", diff <= 1e-4),
    ])


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], Path(sys.argv[2]) if len(sys.argv) > 2 else Path("vit_repository")))
