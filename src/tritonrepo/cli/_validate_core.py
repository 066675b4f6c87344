"""``tritonrepo validate`` without typer: the options (same names as the typer command in ``cli/validate.py``,
read by a small parser: argparse alone costs ~4 ms of start-up), the run, the report on stdout and the exit
status. Imports only the validate engine. Anything the parser does not take exactly (an unknown or abbreviated
flag, a missing value, ``--help``) goes to the typer command, which gives its own answer and messages."""

from __future__ import annotations

import sys
from pathlib import Path

#: (flags, argparse-style keyword arguments) of every option of ``tritonrepo validate`` except --live/--server.
OPTIONS: list[tuple[tuple[str, ...], dict]] = [
    (("--select",), {"action": "append", "default": None}),
    (("--ignore",), {"action": "append", "default": None}),
    (("--format",), {"dest": "fmt", "choices": ["text", "json", "github", "junit"], "default": "text"}),
    (("--warnings-as-errors",), {"action": "store_true"}),
    (("--strict-model-config",), {"action": "store_true"}),
    (("--disable-auto-complete-config",), {"action": "store_true"}),
    (("--backend-directory",), {"type": Path, "default": None}),
    (("--backend-config",), {"action": "append", "default": None}),
    (("--model-control-mode",), {"default": "none"}),
    (("--load-model",), {"action": "append", "default": None}),
    (("--repoagent-directory",), {"type": Path, "default": None}),
    (("--triton-version",), {"default": "24.10"}),
    (("--no-exec",), {"action": "store_true"}),
    (("--exec-timeout",), {"type": float, "default": 30.0}),
    (("--verify-hashes",), {"action": "store_true"}),
]


class _Args:
    """Parsed arguments, as attributes named like argparse's ``dest``."""

    def __init__(self) -> None:
        self.repo = Path("model_repository")
        for flags, kwargs in OPTIONS:
            setattr(self, _dest(flags, kwargs), kwargs.get("default", False if kwargs.get("action") == "store_true" else None))


def _dest(flags: tuple[str, ...], kwargs: dict) -> str:
    return kwargs.get("dest") or flags[0].lstrip("-").replace("-", "_")


_BY_FLAG = {flag: (flags, kwargs) for flags, kwargs in OPTIONS for flag in flags}


def parse_args(argv: list[str]) -> _Args | None:
    """The options in ``argv`` (``--flag value``, ``--flag=value``, store-true flags, one positional repository),
    or ``None`` when the typer command must read them (anything else)."""
    args, positional, i = _Args(), [], 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positional += argv[i:]
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        flag, eq, value = arg.partition("=")
        if flag not in _BY_FLAG:
            return None
        flags, kwargs = _BY_FLAG[flag]
        dest, action = _dest(flags, kwargs), kwargs.get("action")
        if action == "store_true":
            if eq:
                return None
            setattr(args, dest, True)
            continue
        if not eq:
            if i >= len(argv) or argv[i].startswith("--"):
                return None
            value = argv[i]
            i += 1
        if "choices" in kwargs and value not in kwargs["choices"]:
            return None
        if "type" in kwargs:
            try:
                value = kwargs["type"](value)
            except ValueError:
                return None
        if action == "append":
            value = [*(getattr(args, dest) or []), value]
        setattr(args, dest, value)
    if len(positional) > 1:
        return None
    if positional:
        args.repo = Path(positional[0])
    return args


def fast_main(argv: list[str]) -> int | None:
    """Run ``validate`` from ``argv`` (after the command name); ``None`` when the typer command must handle them
    (``--help``, ``--live``, ``--server``, or anything this parser does not accept)."""
    if any(a in ("--help", "-h", "--live") or a.startswith("--server") for a in argv):
        return None
    args = parse_args(argv)
    if args is None:
        return None
    return run(args.repo, args.select, args.ignore, args.fmt, args.warnings_as_errors, _options(args))


def _options(args):
    from tritonrepo.errors import TritonRepoError  # noqa: PLC0415
    from tritonrepo.validate.options import ServerOptions, parse_backend_config  # noqa: PLC0415

    try:
        return ServerOptions(
            strict_model_config=args.strict_model_config,
            disable_auto_complete_config=args.disable_auto_complete_config,
            backend_directory=args.backend_directory,
            backend_config=parse_backend_config(args.backend_config),
            model_control_mode=args.model_control_mode,
            load_model=tuple(args.load_model or ()),
            repoagent_directory=args.repoagent_directory,
            triton_version=args.triton_version,
            exec_model_py=not args.no_exec,
            exec_timeout=args.exec_timeout,
            verify_hashes=args.verify_hashes,
        )
    except TritonRepoError as exc:
        return exc


def run(repo, select, ignore, fmt: str, warnings_as_errors: bool, options, live_result=None, out=None) -> int:
    """Validate, print the report in ``fmt`` (text/json/github/junit) on ``out`` (stdout) and return the exit
    status: 0 clean, 1 violations (or warnings with ``warnings_as_errors``, or a failed live check), 2 usage/I-O."""
    from tritonrepo.errors import TritonRepoError  # noqa: PLC0415
    from tritonrepo.validate import validate_repository  # noqa: PLC0415

    out = out or sys.stdout
    try:
        if isinstance(options, TritonRepoError):
            raise options
        report = validate_repository(repo, select, ignore, options)
    except TritonRepoError as exc:
        sys.stderr.write(f"error: {exc.one_line()}\n")
        return exc.exit_code
    if fmt == "text":
        out.write(to_text(report))
    else:
        from tritonrepo.validate import report as formats  # noqa: PLC0415 - json & co. only when asked

        out.write({"json": lambda r: formats.to_json(r) + "\n", "github": formats.to_github,
                   "junit": formats.to_junit}[fmt](report))
    failed = bool(report.errors) or (warnings_as_errors and bool(report.warnings))
    return 1 if failed else 0


def to_text(report) -> str:
    """The report for people: findings grouped by model, ``path:line:col CODE message`` then the fix."""
    lines, current = [], None
    for f in report.findings:
        if f.model != current:
            current = f.model
            lines.append(f.model)
        lines.append(f"  {f.location()} {f.code} {f.message}")
        lines.append(f"      fix: {f.fix}")
    if report.not_auto_completed:
        lines.append(f"not auto-completed (--no-exec, model.py not run): {', '.join(report.not_auto_completed)}")
    verdict = "loads" if report.loads() else "would not load"
    lines.append(f"{len(report.models)} models, {len(report.errors)} errors, {len(report.warnings)} warnings: "
                 f"repository {verdict}")
    return "\n".join(lines) + "\n"
