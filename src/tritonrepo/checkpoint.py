"""Where a checkpoint comes from: a local folder or a Hugging Face Hub id (via ``huggingface_hub``).

Hub downloads use :func:`huggingface_hub.snapshot_download`, so ``HF_TOKEN``, ``HF_ENDPOINT``, ``HF_HOME``/the
HF cache and ``HF_HUB_OFFLINE`` behave as in every Hugging Face tool; the commit sha actually resolved is
recorded in the manifest.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from tritonrepo.errors import TritonRepoError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")
#: Files a checkpoint folder needs at most; weights in other formats are skipped on download.
_ALLOW = ["*.json", "*.txt", "*.model", "*.safetensors", "*.py", "1_Pooling/*", "*.tiktoken", "merges.txt"]


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
        """The parsed ``config.json``."""
        return json.loads((self.path / "config.json").read_text(encoding="utf-8"))

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
    return Checkpoint(path=p, source=repo_id, kind="hub", revision=p.name)
