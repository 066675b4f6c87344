"""Backends, runtimes and repository agents resolved the way ``tritonserver`` resolves them.

For the rules in ``validate/rules/`` (they decide what is an error; these helpers only say what the server would
find). Everything here is pure file-system look-ups, no import of any backend.

* :func:`effective_backend` — the backend after Triton's AutoCompleteBackendFields (core/src/model_config_utils.cc).
* :func:`resolve_backend_library` — TritonModel::GetBackendLibraryProperties (core/src/backend_model.cc, r24.10):
  search ``<model>/<version>``, ``<model>``, ``<backend_dir>/<backend>`` for ``libtriton_<backend>.so``, else a
  Python-based backend ``<backend_dir>/<backend>/model.py``; an explicit ``runtime`` is looked up the same way, a
  ``model.py`` runtime needs ``libtriton_python.so`` in ``<backend_dir>/python``; a library path escaping the
  directory it was found in is refused. Each failure carries the server's exact message.
* :func:`resolve_repoagent` — TritonRepoAgentManager::CreateAgent (core/src/repo_agent.cc).
* Without ``--backend-directory`` the backend directory is not on this machine: :func:`standard_backends` (what
  the NGC ``-py3`` container of the release ships) stand for it (``<backend>/libtriton_<backend>.so`` each), the
  model folder is still searched on disk, and :func:`resolve_backend_library` reports ``standard=True``.

The TR37x rules (validate/rules/resolve.py) call these helpers: one implementation, checked against the corpus.
"""

from __future__ import annotations

import os
from tritonrepo.validate._record import record
from pathlib import Path
from typing import TYPE_CHECKING

from tritonrepo.releases import Release

if TYPE_CHECKING:
    from tritonrepo.validate.model import ModelContext
    from tritonrepo.validate.options import ServerOptions

#: The backends directory of the NGC ``tritonserver:<yy.mm>-py3`` image (``/opt/tritonserver/backends``) for the
#: 24.10 container: dali, fil, identity, onnxruntime, openvino, python, pytorch, repeat, square, tensorflow,
#: tensorrt. Not verified per release: the same set is assumed for every release in ``releases.KNOWN``.
_NGC_PY3_BACKENDS = frozenset({
    "dali", "fil", "identity", "onnxruntime", "openvino", "python", "pytorch", "repeat", "square", "tensorflow",
    "tensorrt",
})

#: Repository agents of the NGC image (``/opt/tritonserver/repoagents``).
_NGC_REPOAGENTS = frozenset({"checksum"})

#: The default directories of the NGC image (tritonserver's ``--backend-directory`` / ``--repoagent-directory``).
DEFAULT_BACKEND_DIRECTORY = Path("/opt/tritonserver/backends")
DEFAULT_REPOAGENT_DIRECTORY = Path("/opt/tritonserver/repoagents")

_PLATFORM_BACKEND = {
    "tensorflow_graphdef": "tensorflow", "tensorflow_savedmodel": "tensorflow", "tensorrt_plan": "tensorrt",
    "onnxruntime_onnx": "onnxruntime", "pytorch_libtorch": "pytorch",
}
_FILE_BACKEND = {
    "model.savedmodel": "tensorflow", "model.graphdef": "tensorflow", "model.plan": "tensorrt",
    "model.onnx": "onnxruntime", "model.pt": "pytorch", "model.xml": "openvino", "model.py": "python",
}
PYTHON_FILENAME = "model.py"


def standard_backends(release: Release) -> frozenset[str]:
    """Backend names the NGC ``-py3`` image of ``release`` ships (see :data:`_NGC_PY3_BACKENDS` for the caveat)."""
    del release  # one list for every known release (not verified per release)
    return _NGC_PY3_BACKENDS


def standard_repoagents(release: Release) -> frozenset[str]:
    """Repository agent names the NGC image of ``release`` ships."""
    del release
    return _NGC_REPOAGENTS


def effective_backend(ctx: ModelContext) -> str:
    """The backend after AutoCompleteBackendFields: config backend, else from platform, else from
    default_model_filename, else from the model file in the lexicographically first sub-folder, else from a
    ``model.<backend>`` directory name (``""`` for ensembles and when nothing tells).

    Source: core/src/model_config_utils.cc AutoCompleteBackendFields (r24.10); CORE-AUTO-01.
    """
    cfg = ctx.config
    if cfg is not None:
        if cfg.platform == "ensemble":
            return ""
        if cfg.backend:
            return cfg.backend
        if cfg.platform in _PLATFORM_BACKEND:
            return _PLATFORM_BACKEND[cfg.platform]
        if cfg.default_model_filename in _FILE_BACKEND:
            return _FILE_BACKEND[cfg.default_model_filename]
    key = ("effective_backend_subdir",)
    if key not in ctx.memo:
        found = ""
        try:
            subdirs = sorted(p for p in ctx.dir.iterdir() if p.is_dir()) if ctx.dir.is_dir() else []
            if subdirs:
                names = {p.name for p in subdirs[0].iterdir()}
                found = next((b for f, b in _FILE_BACKEND.items() if f in names), "")
        except OSError:
            found = ""
        ctx.memo[key] = found
    if ctx.memo[key]:
        return ctx.memo[key]
    if "." in ctx.name:
        return ctx.name.rsplit(".", 1)[1]
    return ""


@record(frozen=True)
class BackendResolution:
    """Where the server would find a model's backend.

    Attributes:
        ok: the server would find it.
        standard: no backend directory was given: the backend directory is the release's image
            (:data:`DEFAULT_BACKEND_DIRECTORY` holding :func:`standard_backends`), only the model folder is on disk.
        library: the shared library found (``libtriton_<backend>.so``, the runtime, or ``libtriton_python.so`` for a
            Python-based backend); ``None`` when not found. A library of the image (``standard``) is named by its
            path in the image, which is not on this machine.
        python_based: a Python-based backend (``<backend_dir>/<backend>/model.py``, or ``runtime: "model.py"``).
        search_paths: the directories searched, in order.
        message: the server's error message when not ``ok`` (core/src/backend_model.cc), else ``""``.
        failure: ``""``, ``"not-found"`` (no library: TR370 without runtime, TR371 with one) or ``"escapes"`` (the
            library path leaves the directory it was found in: TR372).
    """

    ok: bool
    standard: bool
    library: Path | None
    python_based: bool
    search_paths: tuple[Path, ...]
    message: str = ""
    failure: str = ""


def backend_search_paths(model_dir: Path, version: int, backend_dir: Path, backend: str) -> list[Path]:
    """TritonModel::GetBackendLibrarySearchPaths: ``<model>/<version>``, ``<model>``, ``<backend_dir>/<backend>``."""
    return [model_dir / str(version), model_dir, backend_dir / backend]


def _escapes(child: Path, parent: Path) -> bool:
    """IsChildPathEscapingParentPath: ``child`` normalised lexically is not under ``parent``."""
    child_n, parent_n = os.path.normpath(os.path.abspath(child)), os.path.normpath(os.path.abspath(parent))
    return os.path.commonpath([child_n, parent_n]) != parent_n


class _Finder:
    """FindBackendLibraryPath over the model folder (on disk) and the backend directory (on disk when given, else
    the release's image: ``<backend>/libtriton_<backend>.so`` for each of its standard backends, nothing else)."""

    def __init__(self, options: ServerOptions) -> None:
        self.on_disk = options.backend_directory is not None
        self.backend_dir = Path(options.backend_directory) if self.on_disk else DEFAULT_BACKEND_DIRECTORY
        self.standard = standard_backends(options.release)

    def exists(self, directory: Path, name: str) -> bool:
        # the backend directory's search paths are its children (<backend_dir>/<backend>, <backend_dir>/python)
        if self.on_disk or directory.parent != self.backend_dir:
            return os.path.isfile(directory / name)  # False on any OSError (a 300-character name: ENAMETOOLONG)
        rel = os.path.relpath(os.path.normpath(directory / name), self.backend_dir)
        parts = Path(rel).parts
        return len(parts) == 2 and parts[0] in self.standard and parts[1] == f"libtriton_{parts[0]}.so"

    def find(self, search: list[Path], name: str) -> tuple[Path | None, Path | None]:
        for path in search:
            if self.exists(path, name):
                return path, path / name
        return None, None


def resolve_backend_library(options: ServerOptions, backend: str, runtime: str, model_dir: Path, version: int,
                            model_name: str) -> BackendResolution:
    """Resolve ``backend`` (and the config's ``runtime``) for one model version as the server does
    (TritonModel::GetBackendLibraryProperties / GetBackendRuntimeLibraryName, core/src/backend_model.cc r24.10).

    Without a runtime: ``libtriton_<backend>.so`` in ``<model>/<version>``, ``<model>``, ``<backend_dir>/<backend>``,
    else a Python-based backend ``<backend_dir>/<backend>/model.py`` (then ``libtriton_python.so`` is searched in
    the same places plus ``<backend_dir>/python``). With a runtime: that file in the same places (``model.py``: a
    Python-based backend, which also needs ``<backend_dir>/<backend>/model.py``). A library path leaving the
    directory it was found in (``..``) is refused.

    Args:
        options: the server options (``backend_directory`` ``None`` means the release's image, see :class:`_Finder`).
        backend: the effective backend name (:func:`effective_backend`).
        runtime: the config's ``runtime`` field ("" when unset).
        model_dir: the model directory; version: the version being loaded; model_name: for messages.

    Returns:
        A :class:`BackendResolution` (never raises: ``ok`` is False with the server's message).
    """
    finder = _Finder(options)
    backend_dir = finder.backend_dir
    search = backend_search_paths(model_dir, version, backend_dir, backend)
    standard = not finder.on_disk

    def fail(message: str, python_based: bool, failure: str = "not-found") -> BackendResolution:
        return BackendResolution(False, standard, None, python_based, tuple(search), message, failure)

    python_libdir: Path | None = None
    libname = runtime
    if not libname:
        libdir, libpath = finder.find(search, f"libtriton_{backend}.so")
        if libpath is not None:
            return BackendResolution(True, standard, libpath, False, tuple(search))
        libdir, libpath = finder.find([backend_dir / backend], PYTHON_FILENAME)
        if libpath is None:
            return fail(f"unable to find backend library for backend '{backend}', try specifying runtime on the model "
                        "configuration.", False)
        python_based, python_libdir, libname = True, libdir, PYTHON_FILENAME
    else:
        python_based = libname == PYTHON_FILENAME
    cpp_libname = "libtriton_python.so" if python_based else libname
    if python_based:
        search = [*search, backend_dir / "python"]
    libdir, libpath = finder.find(search, cpp_libname)
    if libpath is None:
        return fail(f"unable to find backend library '{cpp_libname}' for model '{model_name}', searched: "
                    + "".join(f"'{p}' " for p in search), python_based)
    if _escapes(libpath, libdir):
        return fail(f"backend library name '{cpp_libname}' escapes backend directory '{libdir}', for model "
                    f"'{model_name}', check model config runtime field", python_based, "escapes")
    if python_based and python_libdir is None:
        path = backend_dir / backend / PYTHON_FILENAME
        if not finder.exists(backend_dir / backend, PYTHON_FILENAME):
            return fail(f"unable to find Python backend based backend library '{libname}' for model '{model_name}', "
                        f"searched: '{path}'", True)
    return BackendResolution(True, standard, libpath, python_based, tuple(search))


@record(frozen=True)
class AgentResolution:
    """A repository agent: ``ok``, the library path when found on disk, the server's message when not."""

    ok: bool
    library: Path | None
    message: str = ""


def resolve_repoagent(options: ServerOptions, agent: str) -> AgentResolution:
    """TritonRepoAgentManager::CreateAgent: ``<repoagent_dir>/<agent>/libtritonrepoagent_<agent>.so``; the server's
    message names the repository-agent directory after ``searched:`` (observed on tritonserver 2.51, with and
    without ``--repoagent-directory``; corpus case ``repo-agent-unknown-in-directory``).

    Without ``--repoagent-directory`` the agents of the release's NGC image decide (:func:`standard_repoagents`).
    """
    libname = f"libtritonrepoagent_{agent}.so"
    given = options.repoagent_directory
    directory = Path(given) if given is not None else DEFAULT_REPOAGENT_DIRECTORY
    path = directory / agent / libname
    if given is None:
        ok = agent in standard_repoagents(options.release)
    else:
        ok = os.path.isfile(path)
    if ok:
        return AgentResolution(True, path if given is not None else None)
    return AgentResolution(False, None, f"unable to find '{libname}' for repo agent '{agent}', searched: {directory}")


def backend_config(options: ServerOptions, backend: str) -> dict[str, str]:
    """The ``--backend-config`` settings a backend receives: global ones (no backend name) overridden by its own,
    plus ``default-max-batch-size=4`` unless set (TritonModel::ResolveBackendConfigs / SetBackendConfigDefaults)."""
    merged = {"default-max-batch-size": "4"}
    merged.update(options.backend_config.get("", {}))
    merged.update(options.backend_config.get(backend, {}))
    return merged
