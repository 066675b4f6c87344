"""Build the examples' model repository without serving it (for `make validate-examples` in CI).

    python examples/build_repositories.py [REPO_DIR]

Writes the three pipelines of the examples into one repository: ``minilm`` (the real all-MiniLM-L6-v2), and a
tiny random BERT classifier (``classifier``) and ViT (``vit``) built locally, as the tests do.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import tiny_models  # noqa: E402

from common import tritonrepo  # noqa: E402


def main(repo: Path) -> None:
    shutil.rmtree(repo, ignore_errors=True)
    ckpts = Path(tempfile.mkdtemp(prefix="example-ckpts-"))
    tritonrepo("init", str(repo))
    tritonrepo("add-hf", str(tiny_models.minilm_path()), "--repo", str(repo), "--name", "minilm", "--pipeline")
    tritonrepo("add-hf", str(tiny_models.make_bert_classifier(ckpts / "bert")), "--repo", str(repo), "--name",
               "classifier", "--pipeline")
    tritonrepo("add-hf", str(tiny_models.make_vit(ckpts / "vit")), "--repo", str(repo), "--name", "vit", "--pipeline",
               "--backend", "python")
    shutil.rmtree(ckpts, ignore_errors=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("build/example_repository"))
