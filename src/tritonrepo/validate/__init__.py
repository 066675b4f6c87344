"""``tritonrepo validate``: the verdict Triton would give a model repository, offline.

Every rule has a code (``TR101``), a severity, a one-line message and a docs entry (docs/rules.md), and mirrors a
check of Triton core, the Python backend or the ONNX Runtime backend (shared/triton-load-rules.md lists them with
their sources). Usage from Python::

    from tritonrepo.validate import validate_repository
    report = validate_repository("model_repository", options=ServerOptions(disable_auto_complete_config=True))
    for f in report.findings:
        print(f.location(), f.code, f.message)

The verdict is for a server started with ``options`` (:class:`~tritonrepo.validate.options.ServerOptions`, the
``tritonserver`` flags of the same names): explicit model control checks only the models it loads; auto-complete
runs Python models' ``auto_complete_config`` (:mod:`tritonrepo.validate.autocomplete`) unless
``exec_model_py`` is off; with auto-complete disabled a missing config is an error and IO checks move to the poll
stage (:mod:`tritonrepo.validate.modes`). Inputs are bounded: a ``config.pbtxt`` larger than
:data:`MAX_CONFIG_BYTES` is refused, ONNX graphs are read without their weights (:mod:`tritonrepo.validate.onnx_graph`).
"""

from __future__ import annotations

import os
import re
from tritonrepo.validate._record import factory, record
from pathlib import Path

from tritonrepo.errors import TritonRepoError
from tritonrepo.validate import autocomplete as _autocomplete
from tritonrepo.validate import modes as _modes
from tritonrepo.validate import rules as _rules  # noqa: F401 - registers the rules
from tritonrepo.validate.locate import Locator
from tritonrepo.validate.model import RULES, Finding, ModelContext, RepoContext, Rule, Severity
from tritonrepo.validate.options import ServerOptions

#: Largest ``config.pbtxt`` read (bytes). Triton itself reads the whole file into memory (ReadTextProto); the
#: largest real configs are far below 1 MiB, so anything bigger than this is refused rather than parsed.
MAX_CONFIG_BYTES = 64 * 1024 * 1024
CONFIG_FILENAME = "config.pbtxt"  # tritonrepo.config.CONFIG_FILENAME (not imported: it pulls in text_format)

__all__ = [
    "MAX_CONFIG_BYTES", "RULES", "Finding", "RepoContext", "Report", "ServerOptions", "Severity", "dependency_order",
    "load_repository", "model_context", "selected_rules", "validate_repository",
]


@record
class Report:
    """Findings for a repository, in model order then rule order."""

    root: Path
    models: list[str]
    findings: list[Finding] = factory(list)
    #: Python models whose ``auto_complete_config`` was not run (``--no-exec``): their verdict may differ.
    not_auto_completed: list[str] = factory(list)
    #: Python models whose ``auto_complete_config`` ran and completed their config.
    auto_completed: list[str] = factory(list)

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
    has_config = cfg_path.is_file()
    if has_config:
        try:
            size = cfg_path.stat().st_size
            if size > MAX_CONFIG_BYTES:
                raise TritonRepoError(
                    f"{cfg_path}: {size} bytes, larger than the {MAX_CONFIG_BYTES // 2**20} MiB a config.pbtxt may have "
                    "for tritonrepo validate", "a model configuration is a few KiB: remove the data embedded in it")
            text = cfg_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            failed, message = True, f"failed to read text proto from {cfg_path}: {exc}"
        if not failed:
            try:
                config = _parse_config_fast(text, cfg_path)
            except TritonRepoError as exc:  # only tritonrepo.config's ConfigParseError (imported on that path)
                from tritonrepo.config import ConfigParseError  # noqa: PLC0415

                if not isinstance(exc, ConfigParseError):
                    raise
                failed, message = True, f"failed to read text proto from {cfg_path}: {exc.detail}"
                position = (max(exc.line, 1), max(exc.col, 1))
    return ModelContext(model_dir.name, model_dir, config, text, Locator(text), has_config, failed, repo,
                        message, position)


#: Configs above this size take the fast path for top-level ``parameters`` (protobuf's Python text parser needs
#: ~5 s for 16 MB of them).
_FAST_PATH_BYTES = 256 * 1024
_STR = r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"'  # unrolled: runs of plain characters in one step
_SCAN = re.compile(
    r'\bparameters\s*:?\s*\{\s*key\s*:\s*(' + _STR + r')\s*value\s*:?\s*\{\s*string_value\s*:\s*('
    + _STR + r')\s*\}\s*\}' + r'|' + _STR + r"|'[^'\\\n]*(?:\\.[^'\\\n]*)*'|#[^\n]*|[{}<>]"
)


def _parse_config_fast(text: str, path: Path):
    """``parse_config`` with a fast path for big configs: top-level ``parameters { key: "k" value { string_value:
    "v" } }`` entries (the usual bulk of a huge config) are read with one regular-expression pass, blanked out
    (line and column positions of everything else are kept) and added to the map in text order (a repeated key:
    the last one wins, as in protobuf's text format); the rest goes through protobuf's parser."""
    if len(text) < _FAST_PATH_BYTES:
        return _parse(text, path)
    from google.protobuf import text_encoding  # noqa: PLC0415

    pieces, params, depth, last = [], [], 0, 0
    for m in _SCAN.finditer(text):
        key = m.group(1)
        if key is not None:
            if depth == 0 and (m.start() == 0 or text[m.start() - 1] != "."):
                params.append((key, m.group(2)))
                pieces.append(text[last:m.start()])
                end = m.end()
                newline = text.find("\n", end)
                rest = text[end:newline if newline >= 0 else len(text)]
                token = m.group()
                lines = token.count("\n")
                if rest.strip() and not rest.lstrip().startswith("#"):
                    # something follows on this line: keep its column
                    width = len(token) - token.rfind("\n") - 1 if lines else len(token)
                    pieces.append("\n" * lines + " " * (width + (m.start() - text.rfind("\n", 0, m.start()) - 1
                                                                  if lines else 0)))
                else:
                    pieces.append("\n" * lines)
                last = end
        else:
            token = m.group()
            if token == "{" or token == "<":
                depth += 1
            elif token == "}" or token == ">":
                depth = max(depth - 1, 0)
    if not params:
        return _parse(text, path)
    pieces.append(text[last:])
    config = _parse("".join(pieces), path)
    unescape = text_encoding.CUnescape
    entries = config.parameters
    for key, value in params:
        k, v = key[1:-1], value[1:-1]
        if "\\" in k:
            k = unescape(k).decode("utf-8", "surrogateescape")
        if "\\" in v:
            v = unescape(v).decode("utf-8", "surrogateescape")
        entries[k].string_value = v
    return config


def _parse(text: str, path: Path):
    """The config in ``text``: :mod:`tritonrepo.validate.textproto` for the common subset, else protobuf's
    text_format through ``tritonrepo.config.parse_config`` (which raises ``ConfigParseError`` with its message)."""
    from tritonrepo._proto.model_config import model_config_pb2 as mc  # noqa: PLC0415
    from tritonrepo.validate.textproto import parse  # noqa: PLC0415

    config = parse(text, mc.ModelConfig())
    if config is not None:
        return config
    from tritonrepo.config import parse_config  # noqa: PLC0415

    return parse_config(text, path)


def model_dirs(root: Path) -> list[Path]:
    """Every sub-directory of ``root`` in name order (Triton treats each one as a model, hidden ones too)."""
    try:
        with os.scandir(root) as it:  # d_type: no stat per entry
            return sorted(root / e.name for e in it if e.is_dir())
    except OSError as exc:
        raise TritonRepoError(f"{root}: cannot list the model repository: {exc.strerror}") from None


def load_repository(root: Path, options: ServerOptions | None = None, names: list[str] | None = None) -> RepoContext:
    """The model contexts of ``root`` (all sub-directories, or only ``names``), for a server with ``options``."""
    repo = RepoContext(root, options=options or ServerOptions())
    for d in model_dirs(root):
        if names is None or d.name in names:
            repo.models[d.name] = model_context(repo, d)
    return repo


def validate_repository(path: str | Path, select: list[str] | None = None, ignore: list[str] | None = None,
                        options: ServerOptions | None = None) -> Report:
    """Check the models of the repository at ``path`` that a server started with ``options`` would load.

    Args:
        path: the model repository.
        select, ignore: rule code prefixes (see :func:`selected_rules`).
        options: the server's flags (default: ``ServerOptions()``, i.e. ``tritonserver --model-repository=path``).

    Raises:
        TritonRepoError: ``path`` is not a directory, a select/ignore prefix matches no rule, or a config.pbtxt is
            larger than :data:`MAX_CONFIG_BYTES`.
    """
    root = Path(path)
    if not root.is_dir():
        raise TritonRepoError(f"{root}: no such model repository", "give the repository directory")
    options = options or ServerOptions()
    chosen = selected_rules(select, ignore)
    dirs = {d.name: d for d in model_dirs(root)}
    repo = RepoContext(root, options=options)

    def context(name: str) -> ModelContext:
        if name not in repo.models:
            repo.models[name] = model_context(repo, dirs[name])
        return repo.models[name]

    names, missing = _modes.models_to_check(list(dirs), options, lambda n: context(n).config)
    for name in names:
        context(name)
    repo.models = {n: repo.models[n] for n in names}
    report = Report(root, list(names))
    if options.auto_complete:
        if options.exec_model_py:
            outcomes = _autocomplete.auto_complete_repository(repo, names)
            report.auto_completed = [n for n, o in outcomes.items() if o.status == "completed"]
        else:
            report.not_auto_completed = [n for n in names if _autocomplete.candidates(repo.models[n])]
    by_model: dict[str, list[Finding]] = {}
    for name, ctx in repo.models.items():
        found = [f for r in chosen if r.scope == "model" for f in r.findings(ctx)]
        if not options.auto_complete:
            found = [f for f in found if f.code != "TR104"]  # TR190 says it as an error
        by_model[name] = _first_failing_stage(found, options)
        repo.errors[name] = [f for f in by_model[name] if f.severity == Severity.error]
    for name in dependency_order(repo):
        ctx = repo.models[name]
        found = [f for r in chosen if r.scope == "repo" for f in r.findings(ctx)]
        by_model[name].extend(found)
        repo.errors[name].extend(f for f in found if f.severity == Severity.error)
    if any(r.code == "TR191" for r in chosen):
        report.findings.extend(_modes.missing_model_finding(root, n) for n in missing)
    for name in repo.models:
        report.findings.extend(by_model[name])
    return report


def _first_failing_stage(found: list[Finding], options: ServerOptions) -> list[Finding]:
    """Triton stops at the first failing stage: poll errors hide load-time checks; a refused auto-complete (TR650)
    hides the load-time checks that run after it."""
    def is_error(f: Finding) -> bool:
        return f.severity == Severity.error

    if any(is_error(f) and _modes.stage(f.code, options) == "poll" for f in found):
        return [f for f in found if _modes.stage(f.code, options) == "poll" or not is_error(f)]
    if any(is_error(f) and f.code == "TR650" for f in found):
        return [f for f in found if _modes.stage(f.code, options) == "poll" or not is_error(f)
                or f.code in ("TR650", "TR108")]
    return found


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
