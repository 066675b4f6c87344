"""The provenance manifest (``<model>/tritonrepo.json``), schema in ``proto/tritonrepo/manifest.proto``.

Written with protobuf's JSON mapping so people can read it and later commands (``infer``, ``validate``) can
replay its golden samples.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from pathlib import Path

import numpy as np
from google.protobuf import json_format

from tritonrepo._proto.manifest_pb2 import FileHash, GoldenSample, Manifest, Tensor, VersionRecord
from tritonrepo.errors import TritonRepoError

MANIFEST_FILENAME = "tritonrepo.json"
SCHEMA_VERSION = 1

_WIRE = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64,
}

__all__ = [
    "MANIFEST_FILENAME", "FileHash", "GoldenSample", "Manifest", "Tensor", "VersionRecord",
    "array_to_tensor", "tensor_to_array", "hash_files", "read_manifest", "write_manifest", "now_iso",
]


def array_to_tensor(name: str, array: np.ndarray) -> Tensor:
    """A NumPy array (numeric, or object/bytes for strings) as a manifest ``Tensor``."""
    arr = np.asarray(array)
    if arr.dtype.kind in "OSU":
        flat = [x if isinstance(x, bytes) else str(x).encode() for x in arr.reshape(-1)]
        return Tensor(name=name, datatype="BYTES", shape=list(arr.shape), strings=flat)
    for wire, dt in _WIRE.items():
        if np.dtype(dt) == arr.dtype:
            return Tensor(name=name, datatype=wire, shape=list(arr.shape), data=arr.astype(arr.dtype.newbyteorder("<")).tobytes())
    raise TritonRepoError(f"cannot store tensor '{name}' of dtype {arr.dtype} in the manifest")


def tensor_to_array(tensor: Tensor) -> np.ndarray:
    """A manifest ``Tensor`` back as a NumPy array (``object`` array of bytes for ``BYTES``)."""
    shape = tuple(tensor.shape)
    if tensor.datatype == "BYTES":
        return np.array(list(tensor.strings), dtype=object).reshape(shape)
    return np.frombuffer(tensor.data, dtype=np.dtype(_WIRE[tensor.datatype]).newbyteorder("<")).reshape(shape).copy()


def hash_files(model_dir: Path, relative_to: Path | None = None) -> list[FileHash]:
    """SHA-256 of every file below ``model_dir`` (sorted), with paths relative to ``relative_to`` (default: itself)."""
    base = relative_to or model_dir
    out = []
    for p in sorted(model_dir.rglob("*")):
        if p.is_file():
            h = hashlib.sha256()
            with p.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out.append(FileHash(path=p.relative_to(base).as_posix(), sha256=h.hexdigest(), size=p.stat().st_size))
    return out


def read_manifest(model_dir: Path) -> Manifest | None:
    """The model's manifest, or ``None`` when it has none. Raises :class:`TritonRepoError` when unreadable."""
    p = Path(model_dir) / MANIFEST_FILENAME
    if not p.is_file():
        return None
    try:
        return json_format.Parse(p.read_text(encoding="utf-8"), Manifest())
    except (json_format.ParseError, UnicodeDecodeError) as exc:
        raise TritonRepoError(f"{p}: not a tritonrepo manifest: {exc}", "regenerate it with add-hf --force") from None


def write_manifest(manifest: Manifest, path: Path) -> Path:
    """Write ``manifest`` as JSON to ``path`` (a file, or a directory that receives ``tritonrepo.json``)."""
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_FILENAME
    manifest.schema_version = SCHEMA_VERSION
    p.write_text(json_format.MessageToJson(manifest, indent=1) + "\n", encoding="utf-8")
    return p


def now_iso() -> str:
    """Current UTC time, ISO 8601 (seconds)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
