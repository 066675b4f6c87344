"""TR7xx: tritonrepo manifests (tritonrepo.json) beside generated models."""

from __future__ import annotations

import hashlib

from tritonrepo.errors import TritonRepoError
from tritonrepo.manifest import MANIFEST_FILENAME, read_manifest
from tritonrepo.validate.model import ModelContext, Severity, rule


def _manifest(ctx: ModelContext):
    """``(manifest or None, error message or None)``, read once per validation."""
    if "manifest" not in ctx.memo:
        try:
            ctx.memo["manifest"] = read_manifest(ctx.dir), None
        except TritonRepoError as exc:
            ctx.memo["manifest"] = None, exc.message
    return ctx.memo["manifest"]


@rule("TR701", "manifest-hash-mismatch", Severity.warning,
      summary="A file recorded in tritonrepo.json changed or disappeared since tritonrepo wrote it.",
      why="The model that loads is not the one that was exported and checked against PyTorch.",
      fix="re-run tritonrepo add-hf --force, or restore the file",
      source="tritonrepo manifest (proto/tritonrepo/manifest.proto)", example="1/model.onnx edited by hand")
def hashes(ctx: ModelContext):
    manifest, error = _manifest(ctx)
    if error:
        yield ("@", ctx.dir / MANIFEST_FILENAME), error
        return
    for record in manifest.versions if manifest else []:
        for f in record.files:
            path = ctx.dir / f.path
            if not path.is_file():
                yield ("@", path), f"{f.path} is recorded in the manifest but missing"
            elif path.stat().st_size != f.size or hashlib.sha256(path.read_bytes()).hexdigest() != f.sha256:
                yield ("@", path), f"{f.path} changed since tritonrepo wrote it (sha256 differs)"


@rule("TR702", "manifest-no-golden-sample", Severity.warning,
      summary="A manifest version record has no golden sample to replay.",
      why="validate --live and tritonrepo infer replay golden samples to catch drift.",
      fix="regenerate the model with tritonrepo add-hf",
      source="tritonrepo manifest (proto/tritonrepo/manifest.proto)", example="a record whose samples list is empty")
def golden(ctx: ModelContext):
    manifest, _ = _manifest(ctx)
    if manifest is None:
        return
    for record in manifest.versions:
        if not record.samples and record.exporter != "tritonrepo fixed module":  # pre/post steps have none
            yield ("@", ctx.dir / MANIFEST_FILENAME), f"version {record.version} has no golden sample"
