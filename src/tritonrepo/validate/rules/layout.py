"""TR1xx: repository layout (core model_repository_manager.cc, model_lifecycle.cc, model_config_utils.cc)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tritonrepo.validate.model import ModelContext, Severity, rule

E, W = Severity.error, Severity.warning
_STOLL = re.compile(r"^\s*[+-]?\d+")


def version_dirs(ctx: ModelContext) -> tuple[dict[int, str], list[str], list[str]]:
    """``({version: dirname}, ignored non-numeric, ignored leading-zero)`` as model_lifecycle.cc VersionsToLoad sees them.

    The number is ``std::stoll(dirname)``: a prefix parse, so ``1abc`` is 1 and ``-1`` is -1; a name with a leading
    ``0`` and more characters is ignored; ``warmup``, ``initial_state`` and ``configs`` are skipped.
    """
    if "version_dirs" in ctx.memo:  # one directory listing per model and validation
        return ctx.memo["version_dirs"]
    versions, non_numeric, zeros = {}, [], []
    try:
        with os.scandir(ctx.dir) as it:  # d_type: no stat per entry
            names = sorted(e.name for e in it if e.is_dir())
    except OSError:
        names = []
    for name in names:
        if name in ("warmup", "initial_state", "configs"):
            continue
        if len(name) > 1 and name.startswith("0"):
            zeros.append(name)
            continue
        m = _STOLL.match(name)
        if not m:
            non_numeric.append(name)
            continue
        versions.setdefault(int(m.group()), name)
    ctx.memo["version_dirs"] = versions, non_numeric, zeros
    return versions, non_numeric, zeros


def policy_versions(config, versions) -> list[int]:
    """The versions a config's ``version_policy`` selects among ``versions`` (default: the latest one).

    Mirrors model_lifecycle.cc VersionsToLoad: ``latest { num_versions: n }`` (0 selects nothing), ``all``,
    ``specific { versions }`` (listed versions that do not exist are skipped). The same function as
    ``tritonrepo.repository.policy_versions`` (a test keeps them equal), here so that ``validate`` does not import
    that module's file-handling dependencies (shutil, tempfile) at start-up.
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


def versions_to_load(ctx: ModelContext) -> list[int]:
    """Versions the version policy selects among the existing ones (latest 1 by default)."""
    if "versions_to_load" not in ctx.memo:
        ctx.memo["versions_to_load"] = policy_versions(ctx.config, version_dirs(ctx)[0])
    return ctx.memo["versions_to_load"]


def model_files(ctx: ModelContext, default: str) -> list[tuple[int, Path]]:
    """``[(version, path of the model file)]`` for the versions the policy loads whose folder name is canonical.

    The file is ``default_model_filename`` or ``default``; a directory of that name means ``<dir>/model.onnx``
    for ONNX (onnxruntime_backend LoadModel). Paths are returned whether or not they exist.
    """
    filename = (ctx.config.default_model_filename if ctx.config is not None else "") or default
    key = ("model_files", filename, default)
    if key in ctx.memo:  # several rules ask; one look per validation
        return ctx.memo[key]
    dirs = version_dirs(ctx)[0]
    out = []
    for v in versions_to_load(ctx):
        if dirs[v] == str(v):
            path = ctx.dir / dirs[v] / filename
            if path.is_dir() and default == "model.onnx":
                path = path / "model.onnx"
            out.append((v, path))
    ctx.memo[key] = out
    return out


@rule("TR101", "hidden-model-directory", E,
      summary="A hidden folder at the repository root is loaded as a model and fails the whole repository.",
      why="Triton treats every sub-directory of the repository root as a model, hidden ones included "
          "(.ipynb_checkpoints, .git); it has no config and no model file, so loading fails.",
      fix="remove the folder or move it out of the repository",
      source="core/src/model_repository_manager/model_repository_manager.cc Poll (GetDirectorySubdirs); CORE-REPO-01",
      example="model_repository/.ipynb_checkpoints/")
def hidden_dir(ctx: ModelContext):
    if ctx.name.startswith("."):
        if not version_dirs(ctx)[0]:  # the usual case (.ipynb_checkpoints, .git): Triton's own words
            yield ("@", ctx.dir), f"at least one version must be available under the version policy of model '{ctx.name}'"
        else:
            yield ("@", ctx.dir), f"hidden folder '{ctx.name}' at the repository root is loaded as a model"


@rule("TR102", "name-mismatch", E,
      summary="The config's name differs from the model directory's name.",
      why="Triton requires the model name to equal its directory name (case-sensitive).",
      fix="make config 'name' equal the directory name, or drop 'name' (Triton fills it in)",
      source="core/src/model_repository_manager/model_repository_manager.cc InitializeModelInfo; CORE-NAME-01",
      example='model_repository/bert/config.pbtxt says name: "BERT"')
def name_mismatch(ctx: ModelContext):
    if ctx.config is not None and ctx.config.name and ctx.config.name != ctx.name:
        yield ("name",), (f"unexpected directory name '{ctx.name}' for model '{ctx.config.name}', "
                          "directory name must equal model name")


@rule("TR103", "backend-undetermined", E,
      summary="No config says which backend, and the model files do not tell either.",
      why="Without backend/platform Triton infers the backend from the model file in the first version folder.",
      fix="write a config.pbtxt with backend (e.g. \"python\", \"onnxruntime\"), or add the model file",
      source="core/src/model_config_utils.cc AutoCompleteBackendFields; CORE-AUTO-01, ORT-19",
      example="model_repository/m/1/ holds only weights.bin and there is no config.pbtxt")
def backend_undetermined(ctx: ModelContext):
    if ctx.parse_failed or ctx.name.startswith("."):
        return
    cfg = ctx.config
    if cfg is not None and (cfg.backend or cfg.platform):
        return
    if not ctx.backend:
        yield (), (f"Invalid model name: Could not determine backend for model '{ctx.name}' with no backend in model "
                   "configuration. Expected model name of the form 'model.<backend_name>'.")


@rule("TR104", "config-missing", W,
      summary="No config.pbtxt: Triton auto-completes one (and refuses the model with --disable-auto-complete-config).",
      why="An auto-completed config depends on the backend's guesses (max_batch_size, dims) and fails in strict mode.",
      fix="generate the config (tritonrepo add-hf) or write it",
      source="core/src/model_repository_manager/model_repository_manager.cc InitializeModelInfo; CORE-STRICT-01",
      example="model_repository/m/1/model.py without model_repository/m/config.pbtxt")
def config_missing(ctx: ModelContext):
    if not ctx.has_config_file and not ctx.name.startswith(".") and ctx.backend:
        yield (), "no config.pbtxt: Triton will auto-complete the configuration"


@rule("TR105", "ignored-version-directory", W,
      summary="A version folder Triton ignores: its name is not a number, or has leading zeros.",
      why="Triton silently skips it (only a warning in its log); the version you meant is not served.",
      fix="rename it to a plain number without leading zeros (1, 2, 10)",
      source="core/src/model_repository_manager/model_lifecycle.cc VersionsToLoad; CORE-VER-02/03",
      example="model_repository/m/v1/ or model_repository/m/01/")
def ignored_versions(ctx: ModelContext):
    _, non_numeric, zeros = version_dirs(ctx)
    for d in non_numeric:
        yield ("@", ctx.dir / d), f"ignore version directory '{d}' which fails to convert to integral number"
    for d in zeros:
        yield ("@", ctx.dir / d), f"ignore version directory '{d}' which contains leading zeros in its directory name"


@rule("TR106", "version-prefix-parse", E,
      summary="A version folder such as '1abc', '+2' or '-1' is read as a number but its files are not found (ensembles excepted).",
      why="Triton parses the name with std::stoll (a prefix parse) and then looks for <model>/<number>/; the "
          "Python backend's stub dies and the 2.51 server hangs in loading.",
      fix="rename the folder to the plain number",
      source="core/src/model_repository_manager/model_lifecycle.cc VersionsToLoad (std::stoll); CORE-VER-06",
      example="model_repository/m/1abc/model.py")
def prefix_versions(ctx: ModelContext):
    if ctx.config is not None and ctx.config.platform == "ensemble":
        return  # an ensemble reads no files from its version folder: '1abc/' is version 1 and loads
    for number, d in version_dirs(ctx)[0].items():
        if d != str(number):
            yield ("@", ctx.dir / d), f"version folder '{d}' is read as version {number}, but '{number}/' does not exist"
        elif number < 0:
            yield ("@", ctx.dir / d), f"version folder '{d}' is read as version {number}, which no backend can load"


@rule("TR107", "no-version-available", E,
      summary="The version policy selects no existing version folder.",
      why="Triton needs at least one version to load (ensembles too need an empty version folder).",
      fix="add a version folder (1/) or fix version_policy",
      source="core/src/model_repository_manager/model_lifecycle.cc AsyncLoad; CORE-VER-01/04/05",
      example="model_repository/m/config.pbtxt with no 1/ folder")
def no_version(ctx: ModelContext):
    if ctx.name.startswith(".") or ctx.parse_failed:
        return
    if not versions_to_load(ctx):
        yield ("version_policy",), f"at least one version must be available under the version policy of model '{ctx.name}'"


@rule("TR108", "model-file-missing", E,
      summary="A version folder lacks the file its backend loads (model.py, model.onnx or default_model_filename).",
      why="The backend cannot load the version; for the Python backend the 2.51 server even hangs in loading.",
      fix="add the model file, or set default_model_filename to the file's name",
      source="python_backend/src/pb_stub.cc (PY-01); onnxruntime_backend/src/onnxruntime.cc LoadModel (ORT-01)",
      example="model_repository/m/1/ is empty while config.pbtxt says backend: \"python\"")
def model_file_missing(ctx: ModelContext):
    default = {"python": "model.py", "onnxruntime": "model.onnx"}.get(ctx.backend)
    if not default or ctx.parse_failed:
        return
    for v, path in model_files(ctx, default):
        if not path.exists():
            if ctx.backend == "onnxruntime":  # ModelState::LoadModel (ORT-01): Name() there is the model's name
                yield ("default_model_filename",), f"unable to find '{path}' for model instance '{ctx.model_name}'"
            else:
                yield ("default_model_filename",), f"model file {path} not found for version {v}"


@rule("TR109", "whitespace-in-model-name", E,
      summary="A model name with whitespace breaks the Python backend's stub launch.",
      why="The stub is launched through 'bash -c' with the name unquoted; std::stol fails and the server hangs.",
      fix="rename the model directory without spaces",
      source="python_backend/src/stub_launcher.cc; PY-06",
      example="model_repository/my model/")
def whitespace_name(ctx: ModelContext):
    if re.search(r"\s", ctx.name) and ctx.backend == "python":
        yield ("@", ctx.dir), f"model name '{ctx.name}' contains whitespace"


@rule("TR110", "first-subfolder-detection", W,
      summary="Backend detection would look at a folder that is not the model's version folder.",
      why="Without backend/platform Triton inspects only the lexicographically first sub-folder ('10' sorts before "
          "'9', '.ipynb_checkpoints' before '1').",
      fix="set backend in config.pbtxt",
      source="core/src/model_config_utils.cc AutoCompleteBackendFields; CORE-AUTO-01",
      example="model_repository/m/.ipynb_checkpoints/ next to 1/model.py, no backend in config")
def first_subfolder(ctx: ModelContext):
    cfg = ctx.config
    if cfg is not None and (cfg.backend or cfg.platform):
        return
    subdirs = sorted(p.name for p in ctx.dir.iterdir() if p.is_dir()) if ctx.dir.is_dir() else []
    versions = version_dirs(ctx)[0]
    if subdirs and versions and subdirs[0] != versions[max(versions)]:
        yield ("@", ctx.dir / subdirs[0]), (
            f"backend detection inspects '{subdirs[0]}/', not the newest version folder '{versions[max(versions)]}/'")

