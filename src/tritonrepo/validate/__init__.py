"""``tritonrepo validate``: the verdict Triton would give a model repository, offline.

Every rule has a code (``TR101``), a severity, a one-line message and a docs entry (docs/rules.md), and mirrors a
check of Triton core, the Python backend or the ONNX Runtime backend (shared/triton-load-rules.md lists them with
their sources). Usage from Python::

    from tritonrepo.validate import validate_repository
    report = validate_repository("model_repository")
    for f in report.findings:
        print(f.location(), f.code, f.message)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tritonrepo.config import CONFIG_FILENAME, ConfigParseError, parse_config
from tritonrepo.errors import TritonRepoError
from tritonrepo.validate import rules as _rules  # noqa: F401 - registers the rules
from tritonrepo.validate.locate import Locator
from tritonrepo.validate.model import RULES, Finding, ModelContext, RepoContext, Rule, Severity

__all__ = [
    "RULES", "Finding", "RepoContext", "Report", "Severity", "dependency_order", "load_repository", "model_context",
    "selected_rules", "validate_repository",
]


@dataclass
class Report:
    """Findings for a repository, in model order then rule order."""

    root: Path
    models: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == Severity.error]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == Severity.warning]

    def loads(self, model: str | None = None) -> bool:
        """The predicted verdict: the model (default: every model, i.e. the repository) loads."""
        return not any(f.model == model or model is None for f in self.errors)


def selected_rules(select: list[str] | None = None, ignore: list[str] | None = None) -> list[Rule]:
    """Rules whose code starts with a ``select`` prefix (default: all) and with no ``ignore`` prefix.

    Raises:
        TritonRepoError: a prefix that matches no rule.
    """
    for prefix in [*(select or []), *(ignore or [])]:
        if not any(code.startswith(prefix) for code in RULES):
            raise TritonRepoError(f"no rule code starts with {prefix!r}", "see docs/rules.md for the codes")
    return [
        r for code, r in sorted(RULES.items())
        if (not select or any(code.startswith(p) for p in select)) and not any(code.startswith(p) for p in ignore or [])
    ]


def model_context(repo: RepoContext, model_dir: Path) -> ModelContext:
    """Read one model directory (config text, parsed config or parse failure with its position)."""
    cfg_path = model_dir / CONFIG_FILENAME
    text, config, failed, message, position = "", None, False, "", (1, 1)
    if cfg_path.is_file():
        try:
            text = cfg_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            failed, message = True, f"failed to read text proto from {cfg_path}: {exc}"
        if not failed:
            try:
                config = parse_config(text, cfg_path)
            except ConfigParseError as exc:
                failed, message = True, f"failed to read text proto from {cfg_path}: {exc.detail}"
                position = (max(exc.line, 1), max(exc.col, 1))
    return ModelContext(model_dir.name, model_dir, config, text, Locator(text), cfg_path.is_file(), failed, repo,
                        message, position)


def load_repository(root: Path) -> RepoContext:
    """Every sub-directory of ``root`` as a model context (Triton treats each one as a model, hidden ones too)."""
    repo = RepoContext(root)
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        repo.models[d.name] = model_context(repo, d)
    return repo


def validate_repository(path: str | Path, select: list[str] | None = None, ignore: list[str] | None = None) -> Report:
    """Check every model of the repository at ``path`` with the selected rules.

    Raises:
        TritonRepoError: ``path`` is not a directory, or a select/ignore prefix matches no rule.
    """
    root = Path(path)
    if not root.is_dir():
        raise TritonRepoError(f"{root}: no such model repository", "give the repository directory")
    chosen = selected_rules(select, ignore)
    repo = load_repository(root)
    report = Report(root, list(repo.models))
    by_model: dict[str, list[Finding]] = {}
    for name, ctx in repo.models.items():
        found = [f for r in chosen if r.scope == "model" for f in r.findings(ctx)]
        if any(f.severity == Severity.error and RULES[f.code].stage == "poll" for f in found):
            # Triton stops at the first failing stage: load-time checks never run for this model
            found = [f for f in found if RULES[f.code].stage == "poll" or f.severity == Severity.warning]
        by_model[name] = found
        repo.errors[name] = [f for f in found if f.severity == Severity.error]
    for name in dependency_order(repo):
        ctx = repo.models[name]
        found = [f for r in chosen if r.scope == "repo" for f in r.findings(ctx)]
        by_model[name].extend(found)
        repo.errors[name].extend(f for f in found if f.severity == Severity.error)
    for name in repo.models:
        report.findings.extend(by_model[name])
    return report


def dependency_order(repo: RepoContext) -> list[str]:
    """Model names with every ensemble after the models it calls (cycles broken arbitrarily; TR405 reports them)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name in visiting or name not in repo.models:
            return
        visiting.add(name)
        cfg = repo.models[name].config
        if cfg is not None and cfg.platform == "ensemble":
            for s in cfg.ensemble_scheduling.step:
                visit(s.model_name)
        visiting.discard(name)
        order.append(name)

    for name in repo.models:
        visit(name)
    return order
