"""Model repository layout: creation, model names, version folders, atomic placement.

Layout (Triton docs ``model_repository.md``)::

    <repo>/
      <model>/
        config.pbtxt
        tritonrepo.json      # provenance manifest (tritonrepo's own; Triton ignores plain files)
        1/model.onnx
        2/...

Every write is staged in a sibling directory *outside* the repository and renamed into place, because
Triton treats every sub-directory of the repository root, hidden ones included, as a model (rule
CORE-REPO-01 in shared/triton-load-rules.md): a half-written ``.tmp`` folder inside the repository would make
a polling server fail the whole repository.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tritonrepo.errors import TritonRepoError

#: Marker file written by ``tritonrepo init`` (a plain file: Triton ignores files at the repository root).
MARKER = ".tritonrepo"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}$")


def validate_model_name(name: str) -> str:
    """Return ``name`` if it is a safe model name, else raise :class:`TritonRepoError`.

    A model name is one path component of letters, digits, ``_``, ``-`` and ``.``, not starting with ``.``
    or ``-``. Whitespace is refused because the Python backend launches its stub through ``bash -c`` and a
    name with a space makes the 2.51 server hang (PY-06); a leading dot makes a hidden folder, which Triton
    still loads as a model (CORE-REPO-01).
    """
    if not _NAME_RE.match(name or ""):
        raise TritonRepoError(
            f"invalid model name {name!r}: a model name is one path component of letters, digits, '_', '-' and '.',"
            " not starting with '.' or '-'",
            "choose another --name, e.g. 'bert_classifier'",
        )
    return name


def is_repository(path: Path) -> bool:
    """True when ``path`` holds a tritonrepo marker or looks like a model repository (model dirs with configs)."""
    if (path / MARKER).is_file():
        return True
    subdirs = [p for p in path.iterdir() if p.is_dir()]
    return bool(subdirs) and all((p / "config.pbtxt").is_file() for p in subdirs)


def init_repository(path: str | os.PathLike[str] = "model_repository") -> Path:
    """Create an empty model repository at ``path`` and return it.

    An existing empty directory or an existing repository is accepted (idempotent).

    Raises:
        TritonRepoError: when ``path`` is a file, or a non-empty directory that is not a model repository.
    """
    refuse_url(path)
    repo = Path(path)
    if repo.exists() and not repo.is_dir():
        raise TritonRepoError(f"{repo}: exists and is not a directory", "choose another path")
    if repo.is_dir() and any(repo.iterdir()) and not is_repository(repo):
        raise TritonRepoError(
            f"{repo}: directory is not empty and is not a model repository",
            "choose an empty or new directory",
        )
    repo.mkdir(parents=True, exist_ok=True)
    (repo / MARKER).write_text("tritonrepo model repository\n", encoding="utf-8")
    return repo


def refuse_url(path: str | os.PathLike[str]) -> None:
    """Raise :class:`TritonRepoError` when ``path`` is a URL (``s3://b/p`` arrives as ``s3:/b/p`` via ``Path``)."""
    text = os.fspath(path)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:/", text):
        url = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]+):/+", r"\1://", text)
        raise TritonRepoError(
            f"{url}: a URL, not a local model repository",
            f"tritonrepo serve and pull read s3:// URLs; for the rest: tritonrepo pull {url} ./model_repository",
        )


def open_repository(path: str | os.PathLike[str]) -> Path:
    """Return an existing repository directory. Raises :class:`TritonRepoError` when it does not exist."""
    refuse_url(path)
    repo = Path(path)
    if not repo.is_dir():
        raise TritonRepoError(f"{repo}: no such model repository", f"create it with: tritonrepo init {repo}")
    return repo


def existing_versions(model_dir: Path) -> list[int]:
    """Version numbers Triton would see in ``model_dir``: numeric folder names without leading zeros.

    Mirrors model_lifecycle.cc VersionsToLoad (CORE-VER-02/03) for canonical names only.
    """
    if not model_dir.is_dir():
        return []
    out = []
    for p in model_dir.iterdir():
        if p.is_dir() and p.name.isdigit() and (p.name == "0" or not p.name.startswith("0")):
            out.append(int(p.name))
    return sorted(out)


def policy_versions(config, versions) -> list[int]:
    """The versions a config's ``version_policy`` selects among ``versions`` (default: the latest one).

    Mirrors model_lifecycle.cc VersionsToLoad: ``latest { num_versions: n }`` (0 selects nothing), ``all``,
    ``specific { versions }`` (listed versions that do not exist are skipped).
    """
    versions = sorted(versions)
    policy = config.version_policy if config is not None else None
    kind = policy.WhichOneof("policy_choice") if policy is not None else None
    if kind == "all":
        return versions
    if kind == "specific":
        return [v for v in versions if v in set(policy.specific.versions)]
    n = policy.latest.num_versions if kind == "latest" else 1
    return versions[len(versions) - n:] if n > 0 else []


def next_version(model_dir: Path) -> int:
    """1 for a new model, else one more than the highest existing version."""
    versions = existing_versions(model_dir)
    return versions[-1] + 1 if versions else 1


#: Prefixes of the temporary folders tritonrepo creates beside a repository; the owner's pid follows the prefix.
TEMP_PREFIXES = (".tritonrepo-staging-", ".tritonrepo-pull-")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def clean_stale_temp_dirs(parent: Path) -> list[Path]:
    """Remove tritonrepo's temporary folders in ``parent`` whose owner process is gone; returns them.

    Only names tritonrepo makes are touched: ``.tritonrepo-staging-<pid>-…`` and ``.tritonrepo-pull-<pid>-…``,
    with ``<pid>`` no longer running (a run killed by SIGKILL or a power cut). Folders of live processes, and
    anything else, are left alone.
    """
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        prefix = next((x for x in TEMP_PREFIXES if p.name.startswith(x)), None)
        if prefix is None or not p.is_dir() or p.is_symlink():
            continue
        pid = p.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def temp_dir_beside(path: Path, kind: str, label: str = "") -> Path:
    """A new folder ``.tritonrepo-<kind>-<pid>-<label>-XXXX`` beside ``path`` (same filesystem, so a rename is
    atomic), after removing stale ones of dead processes (:func:`clean_stale_temp_dirs`)."""
    parent = path.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temp_dirs(parent)
    return Path(tempfile.mkdtemp(prefix=f".tritonrepo-{kind}-{os.getpid()}-{label + '-' if label else ''}", dir=parent))


@contextmanager
def staging_dir(repo: Path, label: str) -> Iterator[Path]:
    """A temporary directory beside ``repo`` (same filesystem, so a rename is atomic), removed on exit.

    Named ``.tritonrepo-staging-<pid>-<label>-XXXX``: a later run removes it if this process dies before it can.
    """
    tmp = temp_dir_beside(repo, "staging", label)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def place(src: Path, dst: Path, *, force: bool) -> None:
    """Move ``src`` (file or directory) to ``dst`` atomically.

    With ``force`` an existing ``dst`` is first renamed aside and removed only after the move succeeded.

    Raises:
        TritonRepoError: when ``dst`` exists and ``force`` is false.
    """
    if dst.exists():
        if not force:
            raise TritonRepoError(f"{dst}: already exists", "pass --force to overwrite it")
        if src.is_file() and dst.is_file():
            os.replace(src, dst)
            return
        aside = dst.with_name(f".{dst.name}.replaced-{os.getpid()}")
        os.replace(dst, aside)
        try:
            os.replace(src, dst)
        except OSError:
            os.replace(aside, dst)
            raise
        if aside.is_dir():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            aside.unlink(missing_ok=True)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)


def check_version_free(model_dir: Path, version: int, *, force: bool) -> None:
    """Raise :class:`TritonRepoError` when ``model_dir/<version>`` exists and ``force`` is false."""
    if (model_dir / str(version)).exists() and not force:
        raise TritonRepoError(f"{model_dir / str(version)}: version {version} already exists", "pass --force to replace it")


def free_version(model_dir: Path, version: int | None, *, force: bool) -> int:
    """``version`` (default: the next free number) after checking it may be written (see :func:`check_version_free`)."""
    chosen = version if version is not None else next_version(model_dir)
    check_version_free(model_dir, chosen, force=force)
    return chosen


def commit_model(stage: Path, model_dir: Path, version: int, *, force: bool) -> None:
    """Move a staged model folder (``config.pbtxt``, manifest, ``<version>/``) into the repository.

    A new model is renamed into place whole. For an existing model the version folder is moved first, then the
    config and the other top-level files (model files before the config, as Triton Model Navigator does), so a
    polling server never sees a config without its model files.

    Raises:
        TritonRepoError: the version exists, or the config would change, and ``force`` is false.
    """
    from tritonrepo.config import CONFIG_FILENAME, read_config  # noqa: PLC0415

    if not model_dir.exists():
        place(stage, model_dir, force=False)
        return
    check_version_free(model_dir, version, force=force)
    existing = model_dir / CONFIG_FILENAME
    if existing.is_file() and not force and read_config(existing) != read_config(stage):
        raise TritonRepoError(
            f"{existing}: the new version needs a different model configuration",
            "pass --force to replace it, or use another --name",
        )
    place(stage / str(version), model_dir / str(version), force=force)
    for p in sorted(stage.iterdir(), key=lambda p: p.name == CONFIG_FILENAME):
        if p.is_file():
            place(p, model_dir / p.name, force=True)
