"""What the server's modes change in a verdict (engine level; rules that read options live in ``rules/``).

* Auto-complete disabled (``--strict-model-config``/``--disable-auto-complete-config``): a model without
  ``config.pbtxt`` fails at poll (TR190, CORE-STRICT-01, replaces the TR104 warning) and the IO checks of
  ValidateModelIOConfig run at poll instead of load (CORE-STRICT-02), so they are reported even when a later
  load-stage check would fail first.
* Explicit model control: only the ``--load-model`` models are polled and loaded, with the models their ensembles
  call (recursively); a name that is no model directory fails the start-up (TR191).
"""

from __future__ import annotations

from pathlib import Path

from tritonrepo.validate.model import RULES, Finding, ModelContext, Severity, rule
from tritonrepo.validate.options import ServerOptions

#: ValidateModelIOConfig's rules (core/src/model_config_utils.cc): load stage with auto-complete on, poll without.
IO_RULES = frozenset({"TR320", "TR321", "TR322", "TR323", "TR330", "TR331"})


def stage(code: str, options: ServerOptions) -> str:
    """The stage (``poll`` or ``load``) at which the server applies rule ``code`` under ``options``."""
    if code in IO_RULES and not options.auto_complete:
        return "poll"
    return RULES[code].stage


def models_to_check(names: list[str], options: ServerOptions, config_of) -> tuple[list[str], list[str]]:
    """``(models the server polls and loads, requested names that are no model)``.

    Args:
        names: the repository's model directories, in order.
        options: server options (explicit mode and ``load_model``).
        config_of: ``name -> ModelConfig | None`` (reads a model's config on demand, for ensemble steps).
    """
    startup = options.startup_models(names)
    if startup is None:
        return list(names), []
    present = set(names)
    chosen: set[str] = set()
    missing = [n for n in startup if n not in present]

    def visit(name: str) -> None:
        if name in chosen or name not in present:
            return
        chosen.add(name)
        cfg = config_of(name)
        if cfg is not None and cfg.platform == "ensemble":
            for step in cfg.ensemble_scheduling.step:
                visit(step.model_name)

    for name in startup:
        visit(name)
    return [n for n in names if n in chosen], missing


def missing_model_finding(root: Path, name: str) -> Finding:
    """TR191 for a ``--load-model`` name with no model directory."""
    r = RULES["TR191"]
    return Finding(r.code, r.severity, name, root / name, 1, 1,
                   f"failed to poll model '{name}': model not found in any model repository.", r.fix)


@rule("TR190", "config-required", Severity.error,
      summary="No config.pbtxt while auto-complete is disabled (--strict-model-config / --disable-auto-complete-config).",
      why="Without auto-complete the server needs every model's configuration file and fails the poll.",
      fix="write config.pbtxt (tritonrepo add-hf generates it), or run the server with auto-complete on",
      source="core/src/model_repository_manager/model_repository_manager.cc InitializeModelInfo; CORE-STRICT-01",
      example="tritonserver --disable-auto-complete-config with model_repository/m/1/model.py and no m/config.pbtxt")
def config_required(ctx: ModelContext):
    if not ctx.repo.options.auto_complete and not ctx.has_config_file:
        yield (), f"failed to open text file for read {ctx.config_path}: No such file or directory"


@rule("TR191", "load-model-not-found", Severity.error,
      summary="--load-model names a model that is not in the repository (explicit model control).",
      why="In explicit mode the server polls each --load-model name at start-up and fails when it does not exist.",
      fix="fix the name (it is the model's directory name) or add the model",
      source="core/src/model_repository_manager/model_repository_manager.cc (Poll of the startup models)",
      example="tritonserver --model-control-mode=explicit --load-model=nope", scope="repo")
def load_model_not_found(ctx: ModelContext):
    return ()  # reported by the engine (the model has no context): see missing_model_finding
