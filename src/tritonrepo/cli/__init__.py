"""The ``tritonrepo`` command line (typer). Each command lives in its own module, imported only when that command
runs (``tritonrepo validate`` never imports torch, transformers, optimum or onnxruntime; ``tritonrepo --help``
imports every command module to list them).

Adding a command is one line in :data:`COMMANDS`: ``"name": "module:function"`` (module in ``tritonrepo.cli``).

``tritonrepo validate`` (without ``--live``/``--help``) takes a fast path that does not import typer, click, rich
or pydantic (~0.3 s of start-up on this machine): :mod:`tritonrepo.cli._validate_core` parses the same options with
a small parser (a test keeps both option lists equal; anything else goes to typer) and prints the same report.
"""

from __future__ import annotations

import sys

#: command name -> "module:function" in tritonrepo.cli, in the order ``--help`` lists them.
COMMANDS: dict[str, str] = {
    "init": "init:init",
    "add-hf": "add_hf:add_hf",
    "ensemble": "ensemble:ensemble",
    "serve": "serve:serve",
    "infer": "infer:infer",
    "validate": "validate:validate",
    "push": "push:push",
    "pull": "push:pull",
    "package": "package:package",
    "bench": "bench:bench",
    "tune": "tune:tune",
}


def __getattr__(name: str):
    if name == "app":
        from tritonrepo.cli._app import app  # noqa: PLC0415

        return app
    raise AttributeError(name)


def _server_booleans(argv: list[str]) -> list[str]:
    """tritonserver spells its boolean flags ``--strict-model-config=true``: accept that form for ``validate``
    (``=true``/``=1``/``=yes`` -> the flag, ``=false``/``=0``/``=no`` -> dropped)."""
    out = []
    for arg in argv:
        flag, eq, value = arg.partition("=")
        if eq and flag in ("--strict-model-config", "--disable-auto-complete-config") \
                and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            if value.lower() in ("true", "1", "yes", "on"):
                out.append(flag)
            continue
        out.append(arg)
    return out


def main() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    if argv[:1] == ["validate"]:
        argv = sys.argv[1:] = _server_booleans(argv)
        from tritonrepo.cli._validate_core import fast_main  # noqa: PLC0415

        code = fast_main(argv[1:])
        if code is not None:
            sys.exit(code)
    from tritonrepo.cli._app import app  # noqa: PLC0415

    app()
