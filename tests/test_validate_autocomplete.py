"""Python-backend auto-complete as the server does it: model.py's auto_complete_config run in a sandbox with a
stand-in triton_python_backend_utils, merged into the config, then validated; checked against the real server."""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest

from tritonrepo.validate import ServerOptions, validate_repository
from tritonrepo.validate.autocomplete import defines_auto_complete, server_config_dict
from tritonrepo.validate.pbstub import triton_python_backend_utils as standin

HEAD = "import triton_python_backend_utils as pb_utils\n\n\nclass TritonPythonModel:\n"
TAIL = """
    def initialize(self, args):
        pass

    def execute(self, requests):
        return []
"""


def model_py(body: str) -> str:
    """A model.py whose auto_complete_config runs ``body`` (indented 8) and returns the config."""
    return HEAD + "    @staticmethod\n    def auto_complete_config(c):\n" + textwrap.indent(textwrap.dedent(body), " " * 8) + TAIL


#: name -> (config.pbtxt or None, auto_complete_config body, server's message or None when the model loads)
CASES = {
    "adds_io": (None, """
        c.add_input({"name": "X", "data_type": "TYPE_FP32", "dims": [4]})
        c.add_output({"name": "Y", "data_type": "TYPE_FP32", "dims": [4]})
        c.set_max_batch_size(8)
        c.set_dynamic_batching()
        return c""", None),
    "adds_output": ('backend: "python"\nmax_batch_size: 2\ninput [ { name: "A" data_type: TYPE_INT32 dims: [ -1 ] } ]\n', """
        c.add_output({"name": "B", "data_type": "TYPE_INT32", "dims": [-1]})
        return c""", None),
    "dims": ('backend: "python"\ninput [ { name: "X" data_type: TYPE_FP32 dims: [ 4 ] } ]\n', """
        c.add_input({"name": "X", "data_type": "TYPE_FP32", "dims": [8]})
        return c""", "ValueError: model 'dims', tensor 'X': the model expects dims [8] but the model configuration "
                     "specifies dims [4]"),
    "dtype": ('backend: "python"\ninput [ { name: "X" data_type: TYPE_INT32 dims: [ 4 ] } ]\n', """
        c.add_input({"name": "X", "data_type": "TYPE_FP32", "dims": [4]})
        return c""", "ValueError: unable to load model 'dtype', configuration expects datatype TYPE_INT32 for input "
                     "'X', model provides TYPE_FP32"),
    "mbs": ('backend: "python"\nmax_batch_size: 8\n', """
        c.set_max_batch_size(4)
        return c""", "ValueError: configuration specified max_batch_size 8, but in auto-complete-config function for "
                     "model 'mbs' specified max_batch_size 4"),
    "policy": ('backend: "python"\nmodel_transaction_policy { decoupled: true }\n', """
        c.set_model_transaction_policy(dict(decoupled=False))
        return c""", "ValueError: trying to change decoupled property in auto-complete-config for model 'policy', "
                     "which is already set to 'True'."),
    "sched": ('backend: "python"\nmax_batch_size: 2\nsequence_batching { }\n', """
        c.set_dynamic_batching()
        return c""", "ValueError: Configuration specified scheduling_choice as 'sequence_batching', but "
                     "auto-complete-config function for model 'sched' tries to set scheduling_choice as "
                     "'dynamic_batching'"),
    "none": ('backend: "python"\n', """
        return None""", "auto_complete_config function in model 'none' must return a valid pb.ModelConfig object."),
    "raises": ('backend: "python"\n', """
        raise RuntimeError("boom")""", "RuntimeError: boom"),
}


def build(root: Path, names=None) -> Path:
    for name, (config, body, _) in CASES.items():
        if names and name not in names:
            continue
        (root / name / "1").mkdir(parents=True)
        (root / name / "1" / "model.py").write_text(model_py(body))
        if config is not None:
            (root / name / "config.pbtxt").write_text(config)
    return root


@pytest.fixture(scope="module")
def report():
    root = build(Path(tempfile.mkdtemp(prefix="autocomplete-")))
    yield root, validate_repository(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("name", list(CASES))
def test_offline_verdict_and_message(report, name):
    root, rep = report
    expected = CASES[name][2]
    errors = [f for f in rep.errors if f.model == name]
    if expected is None:
        assert errors == [] and name in rep.auto_completed
    else:
        assert [(f.code, f.message) for f in errors] == [("TR650", expected)]
        assert errors[0].path == root / name / "1" / "model.py"
        assert errors[0].line == (1 if name == "none" else 8)  # the line of model.py that raised


def test_completed_config_is_what_rules_and_ensembles_see(tmp_path):
    build(tmp_path, ["adds_output"])
    (tmp_path / "ens" / "1").mkdir(parents=True)
    (tmp_path / "ens" / "config.pbtxt").write_text(
        'name: "ens"\nplatform: "ensemble"\nmax_batch_size: 2\ninput [ { name: "IN" data_type: TYPE_INT32 dims: [ -1 ] } ]\n'
        'output [ { name: "OUT" data_type: TYPE_INT32 dims: [ -1 ] } ]\nensemble_scheduling { step [ { model_name: '
        '"adds_output" model_version: -1 input_map { key: "A" value: "IN" } output_map { key: "B" value: "OUT" } } ] }\n')
    rep = validate_repository(tmp_path)
    assert rep.errors == [] and rep.auto_completed == ["adds_output"]
    # without running model.py the ensemble's step has no output B: validate says which model was not completed
    rep = validate_repository(tmp_path, options=ServerOptions(exec_model_py=False))
    assert rep.not_auto_completed == ["adds_output"] and rep.auto_completed == []
    assert {f.model for f in rep.errors} == {"ens"}


def test_auto_complete_disabled_does_not_run_model_py(tmp_path):
    build(tmp_path, ["dims"])
    rep = validate_repository(tmp_path, options=ServerOptions(disable_auto_complete_config=True))
    assert rep.errors == [] and rep.auto_completed == rep.not_auto_completed == []


def test_invalid_result_is_ignored_like_the_server(tmp_path):
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "1" / "model.py").write_text(model_py("""
        c.add_input({"name": "X", "data_type": "TYPE_FOO", "dims": [4]})
        c.set_max_batch_size(4)
        return c"""))
    rep = validate_repository(tmp_path)
    (f,) = [f for f in rep.warnings if f.code != "TR104"]  # TR104: no config.pbtxt
    assert f.code == "TR651" and "Invalid enum value TYPE_FOO" in f.message and rep.auto_completed == []


def test_sandbox_no_network_minimal_env_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("TRITONREPO_SECRET_FOR_TEST", "s3cr3t")
    (tmp_path / "net" / "1").mkdir(parents=True)
    (tmp_path / "net" / "1" / "model.py").write_text(model_py("""
        import os, socket
        assert "TRITONREPO_SECRET_FOR_TEST" not in os.environ, "environment leaked"
        socket.create_connection(("127.0.0.1", 9), timeout=1)
        return c"""))
    (tmp_path / "loop" / "1").mkdir(parents=True)
    (tmp_path / "loop" / "1" / "model.py").write_text(model_py("""
        while True:
            pass"""))
    rep = validate_repository(tmp_path, options=ServerOptions(exec_timeout=2))
    messages = {f.model: f.message for f in rep.errors}
    assert messages["net"].startswith("OSError: network access is disabled") or "Network is unreachable" in messages["net"]
    assert messages["loop"] == "auto_complete_config of model 'loop' did not return within 2 s"


def test_only_models_defining_auto_complete_are_run(tmp_path):
    plain = tmp_path / "plain.py"
    plain.write_text(HEAD + TAIL)
    inherits = tmp_path / "inherits.py"
    inherits.write_text("from base import Base\n\n\nclass TritonPythonModel(Base):\n    pass\n")
    broken = tmp_path / "broken.py"
    broken.write_text("class TritonPythonModel(:\n")
    defines = tmp_path / "defines.py"
    defines.write_text(model_py("return c"))
    assert [defines_auto_complete(p) for p in (plain, inherits, broken, defines)] == [False, True, False, True]


def test_config_dict_is_the_servers_shape():
    d = server_config_dict(None, "m")
    assert (d["name"], d["backend"], d["max_batch_size"], d["input"], d["output"]) == ("m", "python", 0, [], [])
    assert "dynamic_batching" not in d and "sequence_batching" not in d


def _real_utils():
    """The triton_python_backend_utils.py the 2.51 server ships (nvidia-pytriton), if installed."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None:
        pytest.skip("nvidia-pytriton is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "tritonserver/backends/python/triton_python_backend_utils.py"
    module_spec = importlib.util.spec_from_file_location("real_pb_utils", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


OPS = [
    ("set_max_batch_size", (4,)), ("set_max_batch_size", (16,)), ("set_dynamic_batching", ()),
    ("add_input", ({"name": "X", "data_type": "TYPE_FP32", "dims": [4]},)),
    ("add_input", ({"name": "X", "data_type": "TYPE_FP16", "dims": [4]},)),
    ("add_input", ({"name": "X", "data_type": "TYPE_FP32", "dims": [5]},)),
    ("add_input", ({"name": "X", "data_type": "TYPE_FP32", "dims": [4], "optional": True},)),
    ("add_input", ({"name": "Z", "data_type": "TYPE_FP32", "dims": [4], "format": "x"},)),
    ("add_input", ({"data_type": "TYPE_FP32", "dims": [4]},)),
    ("add_input", ({"name": "Z", "dims": [4]},)),
    ("add_input", ({"name": "Z", "data_type": "TYPE_FP32"},)),
    ("add_output", ({"name": "Y", "data_type": "TYPE_FP32", "dims": [2]},)),
    ("add_output", ({"name": "Y", "data_type": "TYPE_INT8", "dims": [2]},)),
    ("add_output", ({"name": "W", "data_type": "TYPE_FP32", "dims": [2], "optional": True},)),
    ("add_output", ({"name": "W", "data_type": "TYPE_FP32"},)),
    ("set_model_transaction_policy", ({"decoupled": True},)),
    ("set_model_transaction_policy", ({"decoupled": False},)),
    ("set_model_transaction_policy", ({"other": 1},)),
]
BASES = [
    {"name": "m", "max_batch_size": 8, "input": [{"name": "X", "data_type": "TYPE_FP32", "dims": [4], "optional": False}],
     "output": [{"name": "Y", "data_type": "TYPE_FP32", "dims": [2]}], "model_transaction_policy": {"decoupled": False}},
    {"name": "m", "max_batch_size": 0, "input": [], "output": [], "sequence_batching": {}},
    {"name": "m", "max_batch_size": 0, "input": [{"name": "X", "data_type": "TYPE_INVALID", "dims": []}], "output": []},
]


@pytest.mark.parametrize("base", range(len(BASES)))
def test_standin_model_config_behaves_as_the_real_one(base):
    """Every method on every base config: same result, or the same exception type and message."""
    real = _real_utils()

    def outcome(module, name, args):
        config = module.ModelConfig(json.dumps(BASES[base]))
        try:
            getattr(config, name)(*json.loads(json.dumps(args)))
        except Exception as exc:  # noqa: BLE001 - comparing what both raise
            return type(exc).__name__, str(exc)
        return "ok", config.as_dict()

    for name, args in OPS:
        assert outcome(standin, name, args) == outcome(real, name, args), (name, args)


@pytest.mark.server
def test_the_real_server_agrees(report, monkeypatch):
    """One server start on the whole case repository: each model loads or fails with the message validate gives."""
    from tritonrepo.errors import TritonRepoError  # noqa: PLC0415
    from tritonrepo.server import TritonServer  # noqa: PLC0415

    root, _ = report
    monkeypatch.setenv("TRITONREPO_KEEP_SERVER_DIR", "1")  # keep the log of a failed start
    server = TritonServer(root)
    try:
        server.start(timeout=240)
    except TritonRepoError:
        pass  # expected: some models fail, --exit-on-error stops the server
    finally:
        server.stop()
        log = server.log().replace('\\"', '"')
        shutil.rmtree(server._workdir, ignore_errors=True)
    for name, (_, _, expected) in CASES.items():
        if expected is None:
            assert f"successfully loaded '{name}'" in log
        else:
            assert f"failed to load '{name}' version 1: Internal: {expected}" in log
