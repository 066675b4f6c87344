"""TR37x: backend, runtime and repository-agent resolution, mirroring core/src/backend_model.cc
GetBackendLibraryProperties / GetBackendRuntimeLibraryName and core/src/repo_agent.cc (r24.10).

Where the server looks depends on its options: ``--backend-directory`` (default ``/opt/tritonserver/backends``) and
``--repoagent-directory`` (default ``/opt/tritonserver/repoagents``). When a directory is given, it is searched on
disk as the server does; when not, the backends and agents the NGC release ships are assumed present (the lists
in :mod:`tritonrepo.validate.backends`).

These rules do their own search rather than ``backends.resolve_backend_library`` / ``resolve_repoagent``: two
corpus cases recorded from the real server disagree with those helpers (``runtime-model-py-missing``: runtime
``model.py`` of an unknown backend is refused although the model folder holds a model.py; ``repo-agent-unknown``:
the server prints the agent directory, not the library path, after ``searched:``).
"""

from __future__ import annotations

import os
from pathlib import Path

from tritonrepo.validate.backends import (
    DEFAULT_BACKEND_DIRECTORY,
    DEFAULT_REPOAGENT_DIRECTORY,
    standard_backends,
    standard_repoagents,
)
from tritonrepo.validate.model import ModelContext, Severity, rule
from tritonrepo.validate.rules.layout import version_dirs, versions_to_load

E = Severity.error


def _standard_backends(ctx: ModelContext) -> frozenset[str]:
    """The backends the NGC image of the target release ships (one list, in validate/backends.py)."""
    return standard_backends(ctx.repo.options.release)


def _backend_dir(ctx: ModelContext) -> tuple[Path, bool]:
    """``(backend directory, whether it is on disk to search)``."""
    given = ctx.repo.options.backend_directory
    return (Path(given), True) if given else (DEFAULT_BACKEND_DIRECTORY, False)


def _exists_in_backend_dir(ctx: ModelContext, backend: str, filename: str) -> bool:
    bdir, on_disk = _backend_dir(ctx)
    if on_disk:
        return (bdir / backend / filename).is_file()
    parts = Path(os.path.normpath(os.path.join(backend, filename))).parts
    return len(parts) == 2 and parts[0] in _standard_backends(ctx) and parts[1] == f"libtriton_{parts[0]}.so"


def _search_paths(ctx: ModelContext, version: int, backend: str) -> list[Path]:
    """TritonModel::GetBackendLibrarySearchPaths: version dir, model dir, backend dir."""
    return [ctx.dir / str(version), ctx.dir, _backend_dir(ctx)[0] / backend]


def _find(ctx: ModelContext, paths: list[Path], backend_paths: set[Path], filename: str) -> Path | None:
    """The first search path holding ``filename`` (backend directories per the options)."""
    for p in paths:
        if p in backend_paths:
            if _exists_in_backend_dir(ctx, p.name, filename) and not _escapes(p, filename):
                return p
            if _backend_dir(ctx)[1] and (p / filename).is_file():
                return p
        elif (p / filename).is_file():
            return p
    return None


def _escapes(parent: Path, filename: str) -> bool:
    """IsChildPathEscapingParentPath on the joined path."""
    child = os.path.normpath(os.path.join(parent, filename))
    return os.path.commonpath([os.path.normpath(parent), child]) != os.path.normpath(parent)


def _loaded_versions(ctx: ModelContext) -> list[int]:
    dirs = version_dirs(ctx)[0]
    return [v for v in versions_to_load(ctx) if v in dirs]


def _resolvable(ctx: ModelContext) -> bool:
    cfg = ctx.config
    return cfg is not None and not ctx.parse_failed and cfg.platform != "ensemble" and bool(ctx.backend)


@rule("TR370", "backend-not-found", E,
      summary="The backend has no library: neither libtriton_<backend>.so nor a Python-based model.py.",
      why="Triton loads the backend when the model loads; an unknown backend name, or a custom backend whose library "
          "is not shipped with the model or in the backend directory, fails the load.",
      fix="use a backend the server has (python, onnxruntime, ...), ship libtriton_<backend>.so in the model folder, or set runtime",
      source="core/src/backend_model.cc TritonModel::GetBackendRuntimeLibraryName; CORE-AUTO-02",
      example='backend: "onnx"  # the backend is "onnxruntime"')
def backend_not_found(ctx: ModelContext):
    if not _resolvable(ctx) or ctx.config.runtime:
        return
    backend = ctx.backend
    for v in _loaded_versions(ctx)[:1]:
        paths = _search_paths(ctx, v, backend)
        lib = f"libtriton_{backend}.so"
        if _find(ctx, paths, {paths[2]}, lib) is None and not _exists_in_backend_dir(ctx, backend, "model.py"):
            yield ("backend",), (f"unable to find backend library for backend '{backend}', try specifying runtime on "
                                 "the model configuration.")


@rule("TR371", "runtime-not-found", E,
      summary="The config's runtime names a library (or model.py) that is in none of the places Triton searches.",
      why="With runtime set, Triton looks for that file in <model>/<version>/, <model>/ and <backend_dir>/<backend>/ "
          "(runtime model.py: a Python-based backend, <backend_dir>/<backend>/model.py).",
      fix="drop runtime (Triton finds libtriton_<backend>.so itself) or name an existing library",
      source="core/src/backend_model.cc TritonModel::GetBackendLibraryProperties; CORE-BE-02/03",
      example='runtime: "libtriton_custom.so"  # not shipped')
def runtime_not_found(ctx: ModelContext):
    if not _resolvable(ctx) or not ctx.config.runtime:
        return
    backend, runtime = ctx.backend, ctx.config.runtime
    python_based = runtime == "model.py"
    lib = "libtriton_python.so" if python_based else runtime
    bdir = _backend_dir(ctx)[0]
    for v in _loaded_versions(ctx)[:1]:
        paths = _search_paths(ctx, v, backend)
        backend_paths = {paths[2]}
        if python_based:
            paths.append(bdir / "python")
            backend_paths.add(bdir / "python")
        if _find(ctx, paths, backend_paths, lib) is None:
            searched = "".join(f"'{p}' " for p in paths)
            yield ("runtime",), f"unable to find backend library '{lib}' for model '{ctx.model_name}', searched: {searched}"
        elif python_based and not _exists_in_backend_dir(ctx, backend, "model.py"):
            yield ("runtime",), (f"unable to find Python backend based backend library 'model.py' for model "
                                 f"'{ctx.model_name}', searched: '{bdir / backend / 'model.py'}'")


@rule("TR372", "runtime-escapes-directory", E,
      summary="The runtime path leaves the directory Triton found it in ('..').",
      why="Triton refuses a backend library outside the directory it searched, so a model cannot load arbitrary code.",
      fix="put the library in the model folder or the backend directory and name it without '..'",
      source="core/src/backend_model.cc TritonModel::GetBackendLibraryProperties (IsChildPathEscapingParentPath); CORE-BE-04",
      example='runtime: "../config.pbtxt"')
def runtime_escapes(ctx: ModelContext):
    if not _resolvable(ctx) or not ctx.config.runtime or ctx.config.runtime == "model.py":
        return
    backend, runtime = ctx.backend, ctx.config.runtime
    for v in _loaded_versions(ctx)[:1]:
        paths = _search_paths(ctx, v, backend)
        for p in paths[:2]:
            if (p / runtime).is_file():
                if _escapes(p, runtime):
                    yield ("runtime",), (f"backend library name '{runtime}' escapes backend directory '{p}', for model "
                                         f"'{ctx.model_name}', check model config runtime field")
                break


@rule("TR373", "repo-agent-not-found", E,
      summary="model_repository_agents names an agent the server does not have.",
      why="Triton loads each repository agent's library when it polls the model.",
      fix="remove the agent, or install libtritonrepoagent_<name>.so in the repository-agent directory",
      source="core/src/repo_agent.cc TritonRepoAgentManager::CreateAgent; CORE-AGENT-01",
      example='model_repository_agents { agents [ { name: "nope" } ] }')
def repo_agent(ctx: ModelContext):
    cfg = ctx.config
    if cfg is None:
        return
    given = ctx.repo.options.repoagent_directory
    adir = Path(given) if given else DEFAULT_REPOAGENT_DIRECTORY
    for i, agent in enumerate(cfg.model_repository_agents.agents):
        lib = f"libtritonrepoagent_{agent.name}.so"
        found = (adir / agent.name / lib).is_file() if given else agent.name in standard_repoagents(ctx.repo.options.release)
        if not found:
            yield ("model_repository_agents",), (f"unable to find '{lib}' for repo agent '{agent.name}', searched: {adir}")
            return
