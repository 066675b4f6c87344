"""Runs model.py files' ``auto_complete_config`` the way the Python backend's stub does (pb_stub.cc).

Usage (by tritonrepo.validate.autocomplete only): ``python -I -B runner.py <stub dir> <timeout s> <jobs>`` with
one JSON request per line on stdin (``{"model_file", "version", "config", "result"}``, ``config`` the server's
config JSON as a string). The runner imports the stand-in ``triton_python_backend_utils`` once, then forks one
child per request (at most ``jobs`` at a time): each child is a copy of that clean state, as isolated from the
other models as a stub process of its own, without an interpreter start each. A child imports the model file,
calls ``auto_complete_config`` and writes ``{"ok": true, "config": {...}}`` or ``{"ok": false, "error":
"<Type>: <message>", "where": [...]}`` to the request's result file; its stdout and stderr go to /dev/null (model.py
may print anything). One line per request is printed when it ends: ``{"index": i, "timeout": bool}``; a child
still running after ``timeout`` seconds is killed.
"""

import importlib.util
import json
import os
import signal
import socket
import sys
import time
import traceback


def _no_network(*args, **kwargs):
    raise OSError("network access is disabled while tritonrepo validate runs auto_complete_config")


def run_one(stub_dir, model_file, version, config_json, result_file):
    """In the child: import ``model_file`` and run its ``auto_complete_config`` (see the module doc)."""
    socket.socket.connect = _no_network
    socket.socket.connect_ex = _no_network
    socket.create_connection = _no_network
    socket.getaddrinfo = _no_network
    version_dir = os.path.dirname(os.path.abspath(model_file))
    model_dir = os.path.dirname(version_dir)
    sys.path.extend([version_dir, model_dir])
    result = {"ok": False, "error": ""}
    try:
        import triton_python_backend_utils as pb_utils

        name = f"{version}.{os.path.splitext(os.path.basename(model_file))[0]}"
        spec = importlib.util.spec_from_file_location(name, model_file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        model_class = getattr(module, "TritonPythonModel")
        config = pb_utils.ModelConfig(config_json)
        if hasattr(model_class, "auto_complete_config"):
            config = model_class.auto_complete_config(config)
        if not isinstance(config, pb_utils.ModelConfig):
            name = json.loads(config_json).get("name", "")
            result["error"] = (f"auto_complete_config function in model '{name}' must return a valid "
                               "pb.ModelConfig object.")
        else:
            result = {"ok": True, "config": config._model_config}
    except SystemExit as exc:
        result["error"] = f"SystemExit: {exc.code}"
    except BaseException as exc:  # noqa: BLE001 - everything model.py raises is the model's error
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["where"] = [f"{f.filename}({f.lineno}): {f.name}" for f in traceback.extract_tb(exc.__traceback__)
                           if os.path.dirname(os.path.abspath(f.filename)) != os.path.abspath(stub_dir)][-3:]
    try:
        text = json.dumps(result)
    except (TypeError, ValueError) as exc:
        text = json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    with open(result_file, "w", encoding="utf-8") as f:
        f.write(text)


def _start(stub_dir, request):
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            run_one(stub_dir, request["model_file"], request["version"], request["config"], request["result"])
        finally:
            os._exit(0)
    return pid


def main():
    stub_dir, timeout, jobs = sys.argv[1], float(sys.argv[2]), max(1, int(sys.argv[3]))
    sys.path[:0] = [stub_dir]
    import triton_python_backend_utils  # noqa: F401 - imported once, inherited by every child

    requests = [json.loads(line) for line in sys.stdin if line.strip()]
    pending = list(enumerate(requests))
    running = {}  # pid -> (index, deadline)
    delay = 0.001  # polling interval: short while models finish quickly, up to 50 ms for slow ones (little CPU)
    while pending or running:
        while pending and len(running) < jobs:
            index, request = pending.pop(0)
            running[_start(stub_dir, request)] = (index, time.monotonic() + timeout)
        pid, _ = os.waitpid(-1, os.WNOHANG)
        if pid in running:
            index, _ = running.pop(pid)
            print(json.dumps({"index": index, "timeout": False}), flush=True)
            delay = 0.001
            continue
        now = time.monotonic()
        for pid, (index, deadline) in list(running.items()):
            if now > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                del running[pid]
                print(json.dumps({"index": index, "timeout": True}), flush=True)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


if __name__ == "__main__":
    main()
