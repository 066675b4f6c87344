"""The rule engine's types: rules with codes (as ruff's), findings with locations, and what rules look at."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from tritonrepo.validate._record import factory, record
from enum import Enum
from pathlib import Path

from tritonrepo._proto.model_config import model_config_pb2 as mc  # not tritonclient.grpc: no grpc import

from tritonrepo.validate.backends import effective_backend
from tritonrepo.validate.locate import Locator
from tritonrepo.validate.options import ServerOptions


class Severity(str, Enum):
    """``error``: Triton would refuse to load the model (or the repository). ``warning``: it loads but will
    misbehave or surprise."""

    error = "error"
    warning = "warning"


@record(frozen=True)
class Finding:
    """One violation: where (file, line, column), which rule, what and how to fix it."""

    code: str
    severity: Severity
    model: str
    path: Path
    line: int
    col: int
    message: str
    fix: str

    def location(self) -> str:
        """``path:line:col``."""
        return f"{self.path}:{self.line}:{self.col}"


@record
class ModelContext:
    """A model directory as rules see it.

    Attributes:
        name: directory name.
        dir: the model directory.
        config: the parsed config, or ``None`` when absent or unparseable.
        text: the config text ("" when absent).
        locator: positions of config fields.
        has_config_file: whether ``config.pbtxt`` exists.
        parse_failed: whether it exists but does not parse.
        repo: the repository context (other models, for ensembles).
    """

    name: str
    dir: Path
    config: mc.ModelConfig | None
    text: str
    locator: Locator
    has_config_file: bool
    parse_failed: bool
    repo: RepoContext
    parse_message: str = ""
    #: 1-based line and column of the parse error (when ``parse_failed``).
    parse_position: tuple[int, int] = (1, 1)
    #: Per-model results several rules need (parsed model.py, manifest): computed once.
    memo: dict = factory(dict)

    @property
    def model_name(self) -> str:
        """The name Triton uses in messages: the config's ``name``, else the directory name."""
        return self.config.name or self.name if self.config is not None else self.name

    @property
    def config_path(self) -> Path:
        return self.dir / "config.pbtxt"

    @property
    def backend(self) -> str:
        """The backend after Triton's auto-completion of backend fields (:func:`tritonrepo.validate.backends.effective_backend`)."""
        return effective_backend(self)


@record
class RepoContext:
    """The repository: its root and its model contexts by directory name."""

    root: Path
    models: dict[str, ModelContext] = factory(dict)
    #: model name -> error findings so far (ensembles depend on their steps loading).
    errors: dict[str, list[Finding]] = factory(dict)
    #: the server options the verdict is for (``tritonserver`` flags; see :mod:`tritonrepo.validate.options`).
    options: ServerOptions = factory(ServerOptions)


CheckFn = Callable[[ModelContext], Iterable[tuple[tuple, str]]]


@record(frozen=True)
class Rule:
    """A rule: stable code, severity, one-line summary, docs fields, the Triton source it mirrors, and its check.

    ``check(ctx)`` yields ``(field path, message)`` pairs; the path locates the finding in ``config.pbtxt``
    (``()`` for the file itself, ``("input", 0, "dims")`` for a field), or ``("@", Path)`` / ``("@", Path, line)``
    for another file.
    """

    code: str
    name: str
    severity: Severity
    summary: str
    why: str
    fix: str
    source: str
    example: str
    check: CheckFn
    scope: str = "model"
    stage: str = "poll"

    def findings(self, ctx: ModelContext) -> list[Finding]:
        out = []
        for where, message in self.check(ctx):
            if where[:1] == ("@",):
                path, (line, col) = where[1], ((where[2], 1) if len(where) > 2 else (1, 1))
            elif where[:1] == ("@line",):
                path, line, col = ctx.config_path, where[1], where[2]
            else:
                path = ctx.config_path
                line, col = ctx.locator.find(*where) if ctx.has_config_file else (1, 1)
            out.append(Finding(self.code, self.severity, ctx.name, path, line, col, message, self.fix))
        return out


RULES: dict[str, Rule] = {}


#: Rules Triton applies when a model *loads* (after the repository poll): backend, IO and instance checks.
#: When a model already fails at poll time, Triton never gets there, so their findings are not reported.
LOAD_STAGE = {"TR108", "TR320", "TR321", "TR322", "TR323", "TR330", "TR331", "TR340", "TR341", "TR342", "TR344", "TR350",
              "TR351", "TR360", "TR361", "TR374", "TR501", "TR506", "TR507", "TR502", "TR601", "TR602", "TR603", "TR604", "TR650", "TR651"}


def rule(code: str, name: str, severity: Severity, *, summary: str, why: str, fix: str, source: str, example: str,
         scope: str = "model") -> Callable[[CheckFn], CheckFn]:
    """Register a check function as rule ``code`` (decorator)."""

    def register(fn: CheckFn) -> CheckFn:
        if code in RULES:
            raise ValueError(f"duplicate rule code {code}")
        stage = "load" if code in LOAD_STAGE else "poll"
        RULES[code] = Rule(code, name, severity, summary, why, fix, source, example, fn, scope, stage)
        return fn

    return register
