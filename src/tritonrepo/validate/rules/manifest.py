"""TR7xx: tritonrepo manifests (tritonrepo.json) beside generated models."""

from __future__ import annotations


from tritonrepo.errors import TritonRepoError
from tritonrepo.validate.model import ModelContext, Severity, rule

MANIFEST_FILENAME = "tritonrepo.json"  # tritonrepo.manifest.MANIFEST_FILENAME (not imported: it imports NumPy)


def _manifest(ctx: ModelContext):
    """``(manifest or None, error message or None)``, read once per validation."""
    if "manifest" not in ctx.memo:
        if not (ctx.dir / MANIFEST_FILENAME).is_file():
            ctx.memo["manifest"] = None, None
            return ctx.memo["manifest"]
        from tritonrepo.manifest import read_manifest  # noqa: PLC0415 - imports NumPy: only for models with one

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
            elif path.stat().st_size != f.size or (ctx.repo.options.verify_hashes and _sha256(path) != f.sha256):
                yield ("@", path), f"{f.path} changed since tritonrepo wrote it (sha256 differs)"


def _sha256(path) -> str:
    """SHA-256 of a file read in 1 MiB chunks (bounded memory)."""
    import hashlib  # noqa: PLC0415 - only with --verify-hashes

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
