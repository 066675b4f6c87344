"""``tritonrepo validate`` without typer: the options (argparse, same names as the typer command in
``cli/validate.py``), the run, the report on stdout and the exit status. Imports only the validate engine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: (flags, argparse keyword arguments) of every option of ``tritonrepo validate`` except --live/--server.
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


class _Refused(Exception):
    """The fast parser does not handle these arguments: the typer command will."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # noqa: D102 - hand unknown/odd arguments to typer (its messages, its exit code)
        raise _Refused(message)


def fast_main(argv: list[str]) -> int | None:
    """Run ``validate`` from ``argv`` (after the command name); ``None`` when the typer command must handle them
    (``--help``, ``--live``, ``--server``, or anything this parser does not accept)."""
    if any(a in ("--help", "-h", "--live") or a.startswith("--server") for a in argv):
        return None
    parser = _Parser(prog="tritonrepo validate", add_help=False)
    parser.add_argument("repo", nargs="?", type=Path, default=Path("model_repository"))
    for flags, kwargs in OPTIONS:
        parser.add_argument(*flags, **kwargs)
    try:
        args = parser.parse_args(argv)
    except _Refused:
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
    from tritonrepo.validate.report import to_github, to_json, to_junit  # noqa: PLC0415

    out = out or sys.stdout
    try:
        if isinstance(options, TritonRepoError):
            raise options
        report = validate_repository(repo, select, ignore, options)
    except TritonRepoError as exc:
        sys.stderr.write(f"error: {exc.one_line()}\n")
        return exc.exit_code
    if fmt == "json":
        out.write(to_json(report) + "\n")
    elif fmt == "github":
        out.write(to_github(report))
    elif fmt == "junit":
        out.write(to_junit(report))
    else:
        out.write(to_text(report))
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
