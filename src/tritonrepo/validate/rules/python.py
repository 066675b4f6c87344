"""TR6xx: Python-backend models, read with ``ast`` (never imported)."""

from __future__ import annotations

import ast
import importlib.util
import os
import sys

from tritonrepo.validate.model import ModelContext, Severity, rule
from tritonrepo.validate.rules.layout import model_files

_BUILTIN_OK = {"triton_python_backend_utils", "tritonrepo_runtime", "ort_checks"}


def _model_files(ctx: ModelContext):
    if ctx.backend != "python" or ctx.parse_failed:
        return
    for _, path in model_files(ctx, "model.py"):
        if path.is_file():
            yield path


def _tree(ctx: ModelContext, path):
    """``(ast tree, None)`` or ``(None, SyntaxError)`` for ``path``, parsed once per validation."""
    key = ("ast", path)
    if key not in ctx.memo:
        try:
            ctx.memo[key] = ast.parse(path.read_bytes(), filename=str(path)), None
        except SyntaxError as exc:
            ctx.memo[key] = None, exc
    return ctx.memo[key]


@rule("TR601", "python-model-syntax", Severity.error,
      summary="model.py does not parse as Python.",
      why="The Python backend imports model.py when the model loads.",
      fix="fix the syntax error at the line given",
      source="python_backend/src/pb_stub.cc; PY-02", example="def execute(self, requests)  # missing colon")
def syntax(ctx: ModelContext):
    for path in _model_files(ctx):
        _, err = _tree(ctx, path)
        if err is not None:
            yield ("@", path), f"SyntaxError: {err.msg} ({path.name}, line {err.lineno})"


@rule("TR602", "python-model-class", Severity.error,
      summary="model.py defines no class TritonPythonModel.",
      why="The Python backend instantiates TritonPythonModel from model.py.",
      fix="define class TritonPythonModel with initialize/execute",
      source="python_backend/src/pb_stub.cc; PY-03", example="class Model: ...")
def model_class(ctx: ModelContext):
    for path in _model_files(ctx):
        tree, err = _tree(ctx, path)
        if tree is None:
            continue
        classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        if "TritonPythonModel" not in classes and not any(
            isinstance(n, (ast.Assign, ast.ImportFrom, ast.Import)) and "TritonPythonModel" in ast.dump(n) for n in tree.body
        ):
            # the stub imports <version>/<file> as module '<version>.<file stem>' (pb_stub.cc)
            yield ("@", path), f"AttributeError: module '{path.parent.name}.{path.stem}' has no attribute 'TritonPythonModel'"


@rule("TR603", "python-model-execute", Severity.warning,
      summary="TritonPythonModel defines no execute method.",
      why="The model loads, but every request fails.", fix="define execute(self, requests) returning one response per request",
      source="python_backend/src/pb_stub.cc Execute", example="class TritonPythonModel: def initialize(self, args): ...")
def execute(ctx: ModelContext):
    for path in _model_files(ctx):
        tree, _ = _tree(ctx, path)
        if tree is None:
            continue
        for n in tree.body:
            if isinstance(n, ast.ClassDef) and n.name == "TritonPythonModel":
                methods = {f.name for f in n.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
                if "execute" not in methods and not n.bases:
                    yield ("@", path), "TritonPythonModel has no execute method"


@rule("TR604", "python-import-unavailable", Severity.warning,
      summary="model.py imports a package this Python environment does not have.",
      why="The stub runs model.py in the server's Python environment (or EXECUTION_ENV_PATH); a missing package fails "
          "the load there.", fix="install the package in the serving image, or ship an execution environment",
      source="python_backend/src/pb_stub.cc (ModuleNotFoundError, PY-02)", example="import sentencepiece  # not installed")
def imports(ctx: ModelContext):
    if ctx.config is not None and "EXECUTION_ENV_PATH" in ctx.config.parameters:
        return
    for path in _model_files(ctx):
        tree, _ = _tree(ctx, path)
        if tree is None:
            continue
        try:
            siblings = {n[:-3] for n in os.listdir(path.parent) if n.endswith(".py")}
        except OSError:
            siblings = set()
        for n in tree.body:
            names = [a.name for a in n.names] if isinstance(n, ast.Import) else (
                [n.module] if isinstance(n, ast.ImportFrom) and n.module and n.level == 0 else [])
            for name in names:
                top = name.split(".")[0]
                if top in _BUILTIN_OK or top in siblings or top in sys.stdlib_module_names:
                    continue
                if importlib.util.find_spec(top) is None:
                    yield ("@", path), f"import '{top}' is not available in this Python environment"
