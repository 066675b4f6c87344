"""Runs one model.py's ``auto_complete_config`` the way the Python backend's stub does (pb_stub.cc).

Usage (by tritonrepo.validate.autocomplete only): ``python -I -B runner.py <stub dir> <model file> <version>
<result file>`` with the server's config JSON on stdin. Writes ``{"ok": true, "config": {...}}`` or
``{"ok": false, "error": "<Type>: <message>"}`` to the result file (model.py may print anything on stdout).
"""

import importlib.util
import json
import os
import socket
import sys
import traceback


def _no_network(*args, **kwargs):
    raise OSError("network access is disabled while tritonrepo validate runs auto_complete_config")


def main():
    stub_dir, model_file, version, result_file = sys.argv[1:5]
    config_json = sys.stdin.read()
    socket.socket.connect = _no_network
    socket.socket.connect_ex = _no_network
    socket.create_connection = _no_network
    socket.getaddrinfo = _no_network
    version_dir = os.path.dirname(os.path.abspath(model_file))
    model_dir = os.path.dirname(version_dir)
    sys.path[:0] = [stub_dir]
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


if __name__ == "__main__":
    main()
