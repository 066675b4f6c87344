"""TR37x: backend, runtime and repository-agent resolution, mirroring core/src/backend_model.cc
GetBackendLibraryProperties / GetBackendRuntimeLibraryName and core/src/repo_agent.cc (r24.10).

Where the server looks depends on its options: ``--backend-directory`` (default ``/opt/tritonserver/backends``) and
``--repoagent-directory`` (default ``/opt/tritonserver/repoagents``). When a directory is given, it is searched on
disk as the server does; when not, the backends and agents the NGC release ships are assumed present. The search
itself is :func:`tritonrepo.validate.backends.resolve_backend_library` / ``resolve_repoagent``.
"""

from __future__ import annotations

from tritonrepo.validate.backends import resolve_backend_library, resolve_repoagent
from tritonrepo.validate.model import ModelContext, Severity, rule
from tritonrepo.validate.rules.layout import version_dirs, versions_to_load

E = Severity.error


def _loaded_versions(ctx: ModelContext) -> list[int]:
    dirs = version_dirs(ctx)[0]
    return [v for v in versions_to_load(ctx) if v in dirs]


def _resolution(ctx: ModelContext):
    """The backend resolution of the first version the server loads (``None`` without one), computed once."""
    key = ("backend_resolution",)
    if key not in ctx.memo:
        versions = _loaded_versions(ctx)
        ctx.memo[key] = None if not versions else resolve_backend_library(
            ctx.repo.options, ctx.backend, ctx.config.runtime, ctx.dir, versions[0], ctx.model_name)
    return ctx.memo[key]


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
    found = _resolution(ctx)
    if found is not None and found.failure == "not-found":
        yield ("backend",), found.message


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
    found = _resolution(ctx)
    if found is not None and found.failure == "not-found":
        yield ("runtime",), found.message


@rule("TR372", "runtime-escapes-directory", E,
      summary="The runtime path leaves the directory Triton found it in ('..').",
      why="Triton refuses a backend library outside the directory it searched, so a model cannot load arbitrary code.",
      fix="put the library in the model folder or the backend directory and name it without '..'",
      source="core/src/backend_model.cc TritonModel::GetBackendLibraryProperties (IsChildPathEscapingParentPath); CORE-BE-04",
      example='runtime: "../config.pbtxt"')
def runtime_escapes(ctx: ModelContext):
    if not _resolvable(ctx):
        return
    found = _resolution(ctx)
    if found is not None and found.failure == "escapes":
        yield ("runtime",), found.message


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
    for agent in cfg.model_repository_agents.agents:
        found = resolve_repoagent(ctx.repo.options, agent.name)
        if not found.ok:
            yield ("model_repository_agents",), found.message
            return


@rule("TR374", "config-not-provided", E,
      summary="No config.pbtxt for a model whose backend library never sets a configuration (a custom C++ backend "
              "without auto-complete).",
      why="Without config.pbtxt the model starts from a minimal configuration that the backend must complete through "
          "TRITONBACKEND_ModelSetConfig; a library that does not even import that function cannot, and Triton "
          "refuses the model once the backend initialized it.",
      fix="write config.pbtxt for the model (name, backend, max_batch_size, inputs, outputs)",
      source="core/src/model.cc Model::Init ('model configuration is not provided for model'); CORE-CFG-01. The "
             "library's dynamic symbols are read from its ELF .dynsym (validate/elf.py), nothing is loaded",
      example="m.custom/libtriton_custom.so and no m.custom/config.pbtxt")
def config_not_provided(ctx: ModelContext):
    if ctx.has_config_file or ctx.parse_failed or not ctx.repo.options.auto_complete:
        return
    backend = ctx.backend
    versions = _loaded_versions(ctx)
    if not backend or not versions:
        return
    found = resolve_backend_library(ctx.repo.options, backend, "", ctx.dir, versions[0], ctx.model_name)
    if not found.ok or found.python_based or found.library is None:
        return
    if found.standard and not found.library.is_relative_to(ctx.dir):
        return  # a backend of the release's image: the standard backends auto-complete
    from tritonrepo.validate.elf import dynamic_symbols  # noqa: PLC0415

    symbols = dynamic_symbols(found.library)
    if symbols is not None and "TRITONBACKEND_ModelSetConfig" not in symbols[0] | symbols[1]:
        yield (), f"model configuration is not provided for model '{ctx.model_name}'"
