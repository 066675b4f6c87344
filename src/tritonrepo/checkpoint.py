"""Where a checkpoint comes from: a local folder or a Hugging Face Hub id (via ``huggingface_hub``).

Hub downloads use :func:`huggingface_hub.snapshot_download`, so ``HF_TOKEN``, ``HF_ENDPOINT``, ``HF_HOME``/the
HF cache and ``HF_HUB_OFFLINE`` behave as in every Hugging Face tool; the commit sha actually resolved is
recorded in the manifest.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tritonrepo.errors import TritonRepoError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")
#: Files a checkpoint folder needs at most; weights in other formats are skipped on download.
_ALLOW = ["*.json", "*.txt", "*.model", "*.safetensors", "*.py", "1_Pooling/*", "*.tiktoken", "merges.txt"]
#: Weight files in Python's pickle format: loading one can run arbitrary code, so tritonrepo never reads them.
PICKLE_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
#: Largest config.json read (bytes); real ones are a few KiB.
MAX_CONFIG_BYTES = 16 << 20


@dataclass(frozen=True)
class Checkpoint:
    """A resolved checkpoint.

    Attributes:
        path: local folder holding ``config.json`` and the weights.
        source: what the user gave (hub id or path as typed).
        kind: ``"hub"`` or ``"local"``.
        revision: the commit sha resolved on the hub (``None`` for local folders).
    """

    path: Path
    source: str
    kind: str
    revision: str | None = None

    @property
    def config(self) -> dict:
        """The parsed ``config.json`` (a JSON object; see :func:`read_config_json` for the errors raised)."""
        return read_config_json(self.path)

    @property
    def is_sentence_transformers(self) -> bool:
        """True for a sentence-transformers folder (it has ``modules.json``)."""
        return (self.path / "modules.json").is_file()


def resolve_checkpoint(model: str, revision: str | None = None, token: str | None = None) -> Checkpoint:
    """Resolve ``model`` (a local folder or a hub id) to a local folder.

    Args:
        model: a directory with ``config.json``, or a hub id such as ``google/vit-base-patch16-224-in21k``.
        revision: branch, tag or commit on the hub (default ``main``).
        token: hub token (default: ``HF_TOKEN`` / the stored login).

    Raises:
        TritonRepoError: a folder without ``config.json``, an id the hub does not have, no network, or an id
            missing from the cache under ``HF_HUB_OFFLINE=1``.
    """
    local = Path(model).expanduser()
    if local.exists():
        if not local.is_dir():
            raise TritonRepoError(f"{model}: not a directory", "give a checkpoint folder or a hub id")
        if not (local / "config.json").is_file():
            raise TritonRepoError(
                f"{model}: no config.json in this folder", "give a Hugging Face checkpoint folder (save_pretrained)"
            )
        check_weights(local)
        read_config_json(local)
        return Checkpoint(path=local.resolve(), source=model, kind="local")
    if not _HUB_ID.match(model):
        raise TritonRepoError(f"{model}: no such folder, and not a Hugging Face Hub id", "check the path or id")
    return _download(model, revision, token)


def _download(repo_id: str, revision: str | None, token: str | None) -> Checkpoint:
    from huggingface_hub import snapshot_download  # noqa: PLC0415
    from huggingface_hub.errors import (  # noqa: PLC0415
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        from tqdm import TqdmExperimentalWarning  # noqa: PLC0415
        from tqdm.rich import tqdm as rich_tqdm  # noqa: PLC0415

        warnings.filterwarnings("ignore", category=TqdmExperimentalWarning)
    except ImportError:  # pragma: no cover
        rich_tqdm = None
    try:
        path = snapshot_download(
            repo_id, revision=revision, token=token, allow_patterns=_ALLOW, tqdm_class=rich_tqdm
        )
    except GatedRepoError:
        raise TritonRepoError(f"{repo_id}: gated repository", "accept its terms on the hub and set HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise TritonRepoError(
            f"{repo_id}: no such repository on the Hugging Face Hub (or it is private)",
            "check the id, or set HF_TOKEN for a private model",
        ) from None
    except RevisionNotFoundError:
        raise TritonRepoError(f"{repo_id}: no revision {revision!r}", "check --revision") from None
    except LocalEntryNotFoundError:
        raise TritonRepoError(
            f"{repo_id}: not in the Hugging Face cache and the hub cannot be reached (offline or HF_HUB_OFFLINE=1)",
            "download it once with network access, or give a local checkpoint folder",
        ) from None
    except OSError as exc:
        raise TritonRepoError(f"{repo_id}: download failed: {exc}", "check the network and HF_ENDPOINT") from None
    p = Path(path)
    if not (p / "config.json").is_file():
        raise TritonRepoError(f"{repo_id}: the repository has no config.json", "is it a transformers model?")
    read_config_json(p)
    check_weights(p)
    return Checkpoint(path=p, source=repo_id, kind="hub", revision=p.name)


def read_config_json(folder: Path) -> dict:
    """``folder/config.json`` parsed; it must be a JSON object of at most :data:`MAX_CONFIG_BYTES`.

    Raises:
        TritonRepoError: the file is missing, too large, not UTF-8, not JSON (with ``line:col``) or not an object.
    """
    path = folder / "config.json"
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise TritonRepoError(
                f"{path}: {path.stat().st_size} bytes, more than a config.json can be ({MAX_CONFIG_BYTES} bytes)",
                "give a Hugging Face checkpoint folder (save_pretrained)",
            )
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise TritonRepoError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                              "re-save the checkpoint with save_pretrained") from None
    except json.JSONDecodeError as exc:
        raise TritonRepoError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}",
                              "fix the file, or re-save the checkpoint with save_pretrained") from None
    except OSError as exc:
        raise TritonRepoError(f"{path}: cannot be read: {exc.strerror or exc}", "check the checkpoint folder") from None
    if not isinstance(data, dict):
        raise TritonRepoError(f"{path}: a JSON {type(data).__name__}, not an object",
                              "re-save the checkpoint with save_pretrained")
    return data


def check_weights(folder: Path) -> None:
    """Refuse a checkpoint whose weights exist only in pickle format (``pytorch_model.bin``, ``*.pt``, ...).

    Unpickling runs code chosen by whoever wrote the file, and a Python-backend model would unpickle it inside the
    server; tritonrepo reads ``*.safetensors`` only (``use_safetensors=True``).

    Raises:
        TritonRepoError: pickle weights and no ``*.safetensors`` file in ``folder``; or a ``*.safetensors`` file
            that is not one (see :func:`check_safetensors`).
    """
    names = [p.name for p in folder.iterdir() if p.is_file()]
    safetensors = sorted(n for n in names if n.endswith(".safetensors"))
    for name in safetensors:
        check_safetensors(folder / name)
    if safetensors:
        return
    pickles = sorted(n for n in names if n.endswith(PICKLE_WEIGHTS) and n not in ("training_args.bin",))
    if pickles:
        raise TritonRepoError(
            f"{folder / pickles[0]}: pickle-only checkpoint (no *.safetensors); loading pickle weights can run "
            "arbitrary code, so tritonrepo refuses them",
            "convert it once on a machine you trust: python -c \"from transformers import AutoModel; "
            f"AutoModel.from_pretrained('{folder}').save_pretrained('{folder}-safetensors')\" (or use the hub's "
            "safetensors conversion), then add that folder",
        )


def check_safetensors(path: Path) -> None:
    """Check a ``.safetensors`` file's framing without loading it: an 8-byte little-endian header length ``N``, ``N``
    bytes of JSON object, and every tensor's ``data_offsets`` inside the file (format: huggingface/safetensors
    README, "Format").

    Raises:
        TritonRepoError: the file is shorter than its header says, or the header is not that JSON.
    """
    size = path.stat().st_size
    problem = None
    with path.open("rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 2 or n > min(size - 8, 100 << 20):
            problem = "header too small" if n < 2 else f"header length {n} beyond the file's {size} bytes"
        else:
            try:
                header = json.loads(f.read(n))
                if not isinstance(header, dict):
                    raise ValueError("not an object")
                data = size - 8 - n
                for name, info in header.items():
                    if name == "__metadata__":
                        continue
                    start, end = info["data_offsets"]
                    if not 0 <= start <= end <= data:
                        problem = f"tensor {name!r} lies outside the file"
                        break
            except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
                problem = f"unreadable header ({type(exc).__name__})"
    if problem:
        raise TritonRepoError(f"{path}: not a valid safetensors file: {problem}",
                              "the file is truncated or corrupt: download or save_pretrained the checkpoint again")


def _inside(target: Path, roots: list[Path]) -> bool:
    return any(target == r or target.is_relative_to(r) for r in roots)


def copy_checkpoint(src: Path, dst: Path, skip: Callable[[str], bool] | None = None) -> list[str]:
    """Copy the checkpoint folder ``src`` to ``dst`` (created), following only links that stay inside it.

    Symbolic links are followed when their target lies inside ``src`` (or, for a hub-cache snapshot
    ``…/models--org--name/snapshots/<sha>``, inside that cache entry: its files are links into ``…/blobs/``); the
    copy holds regular files only. A link pointing anywhere else (``/etc/passwd``, ``~/.aws/credentials``), a
    dangling link, and anything that is not a regular file or folder (FIFO, socket, device) is refused, so nothing
    from outside the checkpoint ever lands in a model repository. Pickle files (:data:`PICKLE_WEIGHTS`) are left
    out: the model loads its ``*.safetensors``, and a pickle in the repository would be code waiting to run.

    Args:
        src: the checkpoint folder.
        dst: the new folder (must not exist).
        skip: called with each entry's name; ``True`` leaves it out (VCS folders, other frameworks' weights).

    Returns:
        The relative POSIX paths of the files copied.

    Raises:
        TritonRepoError: a link leaving the checkpoint, a dangling link, or a special file (the message names it).
    """
    src = Path(src)
    root = src.resolve()
    roots = [root]
    if root.parent.name == "snapshots" and (root.parent.parent / "blobs").is_dir():
        roots.append((root.parent.parent / "blobs").resolve())
    copied: list[str] = []

    def walk(folder: Path, out: Path, seen: frozenset[Path]) -> None:
        out.mkdir(parents=True, exist_ok=False)
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            if skip is not None and skip(entry.name):
                continue
            rel = entry.relative_to(src).as_posix()
            target = entry.resolve()
            if entry.is_symlink():
                if not os.path.exists(entry):
                    raise TritonRepoError(f"{entry}: dangling symbolic link in the checkpoint",
                                          "remove the link or restore its target")
                if not _inside(target, roots):
                    raise TritonRepoError(
                        f"{entry}: symbolic link to {target}, outside the checkpoint; tritonrepo copies only files "
                        "inside the checkpoint folder",
                        "replace the link with a copy of the file if it belongs to the model, or remove it",
                    )
            mode = target.stat().st_mode
            if stat.S_ISDIR(mode):
                if target in seen:
                    raise TritonRepoError(f"{entry}: symbolic link loop in the checkpoint", "remove the link")
                walk(entry, out / entry.name, seen | {target})
            elif stat.S_ISREG(mode):
                if entry.name.endswith(PICKLE_WEIGHTS):  # never shipped: safetensors are what gets loaded
                    continue
                shutil.copyfile(target, out / entry.name)
                copied.append(rel)
            else:
                raise TritonRepoError(f"{entry}: not a regular file (a FIFO, socket or device)",
                                      "remove it from the checkpoint folder")

    walk(src, Path(dst), frozenset({root}))
    return copied
