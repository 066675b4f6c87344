"""Python-backend auto-complete, run the way the server runs it.

With auto-complete on (the default; off with ``--strict-model-config``/``--disable-auto-complete-config``), the
Python backend launches a stub that imports ``<model>/<version>/model.py`` and, when ``TritonPythonModel`` has an
``auto_complete_config`` attribute, calls ``TritonPythonModel.auto_complete_config(ModelConfig(<config JSON>))``
(python_backend/src/pb_stub.cc, r24.10). The ``ModelConfig`` methods refuse contradictions with a ``ValueError``
and the load fails with ``Internal: <Type>: <message>``; a return value that is not a ``ModelConfig`` fails with
``auto_complete_config function in model '<m>' must return a valid pb.ModelConfig object.``; a result that does
not parse back into a ModelConfig (unknown field, bad enum name, non-numeric dims) is silently ignored by the
server (the original config stays: observed on tritonserver 2.51).

This module does the same in one sandboxed runner process that forks a child per model (each child a copy of the
runner's clean state, as isolated from the other models as a stub process; the interpreter starts once):

* ``python -I -B`` (no PYTHONPATH, no user site), a minimal environment (PATH, HOME and TMPDIR in a fresh
  temporary directory, LANG), the temporary directory as working directory, no network (a new network namespace
  via ``unshare -rn`` where the kernel allows it; in any case the socket functions raise), ``RLIMIT_CPU`` per
  process and a wall-clock timeout per model (``ServerOptions.exec_timeout``), the runner's process group killed
  at the end;
* the stand-in ``triton_python_backend_utils`` of :mod:`tritonrepo.validate.pbstub` (same checks, same messages);
* only models whose ``model.py`` defines ``auto_complete_config`` (read with ``ast``; a class with base classes may
  inherit it, so it runs too) — others cost nothing.

The completed config replaces ``ModelContext.config`` before the rules run; the outcome is kept in
``ctx.memo["autocomplete"]`` and reported by TR650 (refused) and TR651 (result ignored).
"""

from __future__ import annotations

import ast
import os
import sys
from tritonrepo.validate._record import record
from functools import cache
from pathlib import Path

from google.protobuf.descriptor import FieldDescriptor
from tritonrepo._proto.model_config import model_config_pb2 as mc  # not tritonclient.grpc: no grpc import

from tritonrepo.validate.model import ModelContext, RepoContext, Severity, rule

_PBSTUB = Path(__file__).with_name("pbstub")
_RUNNER = _PBSTUB / "runner.py"
_INT64 = {FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64}


@record
class AutoCompleteOutcome:
    """What running ``auto_complete_config`` gave for one model.

    Attributes:
        status: ``completed`` (config replaced), ``failed`` (the server refuses the model: ``message``),
            ``timeout``, or ``ignored`` (the result does not parse as a ModelConfig; the server keeps the original).
        version: the version folder whose model.py ran.
        message: the server's error text (``ValueError: ...``) or why the result was ignored.
        where: the last frames of model.py's traceback (``file(line): function``).
    """

    status: str
    version: int
    path: Path
    message: str = ""
    where: tuple[str, ...] = ()


def defines_auto_complete(path: Path, tree: ast.Module | None = None) -> bool:
    """Whether ``model.py`` at ``path`` may define ``TritonPythonModel.auto_complete_config`` (read with ``ast``).

    True when the class defines or assigns it, or has base classes (it may inherit it); False when the file does
    not parse or has no ``TritonPythonModel`` class at top level (TR601/TR602 report those).
    """
    if tree is None:
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError, OSError):
            return False
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "TritonPythonModel":
            if node.bases or node.keywords:
                return True
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == "auto_complete_config":
                    return True
                if isinstance(item, (ast.Assign, ast.AnnAssign)):
                    targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                    if any(isinstance(t, ast.Name) and t.id == "auto_complete_config" for t in targets):
                        return True
            return False
    return False


def server_config_dict(config: mc.ModelConfig | None, model_name: str) -> dict:
    """The config as the server hands it to ``ModelConfig``: every field with no presence printed (defaults
    included), proto field names, 64-bit integers as numbers; ``name`` and ``backend`` filled in as the server
    does for a Python model (AutoCompleteBackendFields)."""
    from google.protobuf import json_format  # noqa: PLC0415

    cfg = mc.ModelConfig()
    if config is not None:
        cfg.CopyFrom(config)
    if not cfg.name:
        cfg.name = model_name
    if not cfg.backend:
        cfg.backend = "python"
    data = json_format.MessageToDict(cfg, always_print_fields_with_no_presence=True, preserving_proto_field_name=True)
    return _numbers(data, cfg.DESCRIPTOR)


def _numbers(data, descriptor):
    """Turn the JSON strings protobuf uses for 64-bit integers back into numbers (the server's JSON has numbers)."""
    for fd in descriptor.fields:
        if fd.name not in data:
            continue
        value = data[fd.name]
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            vfd = fd.message_type.fields_by_name["value"]
            if vfd.message_type is not None:
                for k in value:
                    _numbers(value[k], vfd.message_type)
            elif vfd.cpp_type in _INT64:
                for k in value:
                    value[k] = int(value[k])
        elif fd.message_type is not None:
            for item in value if isinstance(value, list) else [value]:
                _numbers(item, fd.message_type)
        elif fd.cpp_type in _INT64:
            data[fd.name] = [int(v) for v in value] if isinstance(value, list) else int(value)
    return data


@cache
def _netns_prefix() -> tuple[str, ...]:
    """``("unshare", "-rn")`` when this kernel lets an unprivileged process get its own network namespace."""
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    exe = shutil.which("unshare")
    if exe is None:
        return ()
    try:
        ok = subprocess.run([exe, "-rn", "true"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return (exe, "-rn") if ok else ()


def _limits(cpu_seconds: int):
    def apply() -> None:
        import resource  # noqa: PLC0415

        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_auto_complete_many(requests: list[tuple[Path, int, dict]], timeout: float, jobs: int = 2) -> list[dict]:
    """Run ``auto_complete_config`` of each ``(model file, version, server config dict)`` in the sandbox: one
    runner process (interpreter start and stand-in import paid once) forking one child per model, ``jobs`` at a
    time (pbstub/runner.py). Returns the runner's result dict per request, in order (``{"ok": True, "config":
    {...}}`` or ``{"ok": False, "error": "...", "where": [...]}``, or ``{"ok": False, "timeout": True}``)."""
    import json  # noqa: PLC0415
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    if not requests:
        return []
    tmp = Path(tempfile.mkdtemp(prefix="tritonrepo-autocomplete-"))
    try:
        home = tmp / "home"
        home.mkdir()
        env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.defpath}", "HOME": str(home),
               "TMPDIR": str(home), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
               "no_proxy": "*", "NO_PROXY": "*"}
        lines = "".join(json.dumps({"model_file": str(path.resolve()), "version": version, "config": json.dumps(config),
                                    "result": str(tmp / f"result-{i}.json")}) + "\n"
                        for i, (path, version, config) in enumerate(requests))
        cmd = [*_netns_prefix(), sys.executable, "-I", "-B", str(_RUNNER), str(_PBSTUB), str(timeout), str(jobs)]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                cwd=home, env=env, start_new_session=True, preexec_fn=_limits(int(timeout) + 1))
        rounds = -(-len(requests) // jobs)
        timed_out: set[int] = set()
        try:
            out, _ = proc.communicate(lines.encode(), timeout=timeout * rounds + 10)
            for line in out.decode("utf-8", "replace").splitlines():
                try:
                    status = json.loads(line)
                except ValueError:
                    continue
                if isinstance(status, dict) and status.get("timeout"):
                    timed_out.add(status.get("index"))
        except subprocess.TimeoutExpired:
            timed_out = set(range(len(requests)))
        finally:
            _kill(proc)
        results = []
        for i in range(len(requests)):
            result_file = tmp / f"result-{i}.json"
            if result_file.is_file():
                try:
                    results.append(json.loads(result_file.read_text(encoding="utf-8")))
                    continue
                except (OSError, ValueError):
                    pass
            results.append({"ok": False, "timeout": True} if i in timed_out else {
                "ok": False, "error": "the Python stub exited before auto_complete_config returned"})
        return results
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_auto_complete(model_file: Path, version: int, config: dict, timeout: float) -> dict:
    """One model's :func:`run_auto_complete_many` result."""
    return run_auto_complete_many([(model_file, version, config)], timeout, 1)[0]


def _kill(proc) -> None:
    import signal  # noqa: PLC0415

    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
    proc.wait()


def candidates(ctx: ModelContext) -> list[tuple[int, Path]]:
    """``[(version, model.py)]`` to auto-complete for a model: the highest loaded version of a Python model whose
    model file defines ``auto_complete_config`` (empty otherwise)."""
    if ctx.parse_failed or ctx.backend != "python":
        return []
    from tritonrepo.validate.rules.layout import model_files  # noqa: PLC0415 - rules import this module's rules

    files = [(v, p) for v, p in model_files(ctx, "model.py") if p.is_file()]
    if not files:
        return []
    version, path = files[-1]
    from tritonrepo.validate.rules.python import _tree  # noqa: PLC0415 - the same parse the TR6xx rules use

    try:
        tree, _ = _tree(ctx, path)
    except (ValueError, OSError):
        tree = None
    return [(version, path)] if tree is not None and defines_auto_complete(path, tree) else []


def auto_complete(ctx: ModelContext, timeout: float) -> AutoCompleteOutcome | None:
    """Run the model's ``auto_complete_config`` and merge the result into ``ctx.config`` (see the module doc).

    Returns the outcome (also stored in ``ctx.memo["autocomplete"]``), or None when there is nothing to run.
    """
    todo = candidates(ctx)
    if not todo:
        return None
    version, path = todo[0]
    result = run_auto_complete(path, version, server_config_dict(ctx.config, ctx.model_name), timeout)
    return _merge(ctx, version, path, result, timeout)


def _merge(ctx: ModelContext, version: int, path: Path, result: dict, timeout: float) -> AutoCompleteOutcome:
    name = ctx.model_name
    if result.get("timeout"):
        outcome = AutoCompleteOutcome("timeout", version, path,
                                      f"auto_complete_config of model '{name}' did not return within {timeout:g} s")
    elif not result.get("ok"):
        outcome = AutoCompleteOutcome("failed", version, path, str(result.get("error", "")),
                                      tuple(result.get("where", ())))
    else:
        from google.protobuf import json_format  # noqa: PLC0415

        completed = mc.ModelConfig()
        try:
            json_format.ParseDict(result["config"], completed, ignore_unknown_fields=False)
        except (json_format.ParseError, TypeError, ValueError, AttributeError) as exc:
            outcome = AutoCompleteOutcome("ignored", version, path, str(exc).splitlines()[0][:300])
        else:
            if ctx.config is None:
                ctx.config = completed
            else:
                ctx.config.CopyFrom(completed)
            for key in [k for k in ctx.memo if k == "versions_to_load" or k[:1] == ("model_files",)]:
                del ctx.memo[key]  # computed from the config before it was completed
            outcome = AutoCompleteOutcome("completed", version, path)
    ctx.memo["autocomplete"] = outcome
    return outcome


def auto_complete_repository(repo: RepoContext, names: list[str]) -> dict[str, AutoCompleteOutcome]:
    """Auto-complete every Python model among ``names`` that needs it: one sandboxed runner for all of them, two
    models at a time (:func:`run_auto_complete_many`)."""
    todo = [(n, *candidates(repo.models[n])[0]) for n in names if candidates(repo.models[n])]
    if not todo:
        return {}
    timeout = repo.options.exec_timeout
    results = run_auto_complete_many(
        [(path, version, server_config_dict(repo.models[n].config, repo.models[n].model_name))
         for n, version, path in todo], timeout)
    return {n: _merge(repo.models[n], version, path, result, timeout)
            for (n, version, path), result in zip(todo, results, strict=True)}


@rule("TR650", "python-auto-complete-refused", Severity.error,
      summary="model.py's auto_complete_config fails: it contradicts the config (dims, data_type, optional, "
              "max_batch_size, scheduler, transaction policy), raises, or returns something else than the config.",
      why="With auto-complete on (the default) the Python backend calls TritonPythonModel.auto_complete_config when "
          "the model loads; a ValueError of pb_utils.ModelConfig or any exception fails the load.",
      fix="make auto_complete_config agree with config.pbtxt (or drop the conflicting field from config.pbtxt), "
          "and return the ModelConfig it received",
      source="python_backend/src/resources/triton_python_backend_utils.py ModelConfig; python_backend/src/pb_stub.cc "
             "AutoCompleteModelConfig; PY-04, PY-05",
      example='input { name: "X" dims: [ 4 ] } while auto_complete_config adds X with dims [ 8 ]')
def refused(ctx: ModelContext):
    outcome = ctx.memo.get("autocomplete")
    if outcome is not None and outcome.status in ("failed", "timeout"):
        line = 1
        for frame in outcome.where:
            head, _, rest = frame.rpartition("(")
            if head == str(outcome.path.resolve()) and rest.split(")")[0].isdigit():
                line = int(rest.split(")")[0])
        yield ("@", outcome.path, line), outcome.message


@rule("TR651", "python-auto-complete-ignored", Severity.warning,
      summary="auto_complete_config returns a config that is not a valid ModelConfig: the server ignores all of it.",
      why="The server parses the returned dict back into a ModelConfig; an unknown field, an unknown enum name or a "
          "non-numeric dim makes it keep the original config silently (observed on tritonserver 2.51).",
      fix="only change the config through ModelConfig's methods (add_input, add_output, set_max_batch_size, ...) "
          "with valid data types (TYPE_FP32, ...) and integer dims",
      source="python_backend/src/python_be.cc (auto-complete result parsed as JSON into the model config)",
      example='c.add_input({"name": "X", "data_type": "TYPE_FOO", "dims": [4]})')
def ignored(ctx: ModelContext):
    outcome = ctx.memo.get("autocomplete")
    if outcome is not None and outcome.status == "ignored":
        yield ("@", outcome.path), f"the auto-completed configuration is ignored by the server: {outcome.message}"
