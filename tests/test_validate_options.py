"""validate takes tritonserver's options: strict / disabled auto-complete, explicit model control with --load-model,
backend and repository-agent directories, --backend-config, --triton-version."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corpus.cases import CONFIG, ENSEMBLE, MODEL_PY
from tritonrepo.cli import COMMANDS, app
from tritonrepo.errors import TritonRepoError
from tritonrepo.validate import ServerOptions, validate_repository
from tritonrepo.validate.backends import backend_config, resolve_backend_library, resolve_repoagent
from tritonrepo.validate.options import parse_backend_config

runner = CliRunner()


def python_model(root: Path, name: str, config: str | None = CONFIG) -> Path:
    (root / name / "1").mkdir(parents=True)
    (root / name / "1" / "model.py").write_text(MODEL_PY)
    if config is not None:
        (root / name / "config.pbtxt").write_text(config.replace('name: "m"', f'name: "{name}"'))
    return root / name


def test_missing_config_is_an_error_only_without_auto_complete(tmp_path):
    python_model(tmp_path, "m", None)
    assert [f.code for f in validate_repository(tmp_path).findings] == ["TR104"]
    for options in (ServerOptions(strict_model_config=True), ServerOptions(disable_auto_complete_config=True)):
        (f,) = validate_repository(tmp_path, options=options).findings
        assert (f.code, f.message) == (
            "TR190", f"failed to open text file for read {tmp_path / 'm' / 'config.pbtxt'}: No such file or directory")


def test_io_checks_move_to_the_poll_stage_without_auto_complete(tmp_path):
    # a 0 dim (ValidateIOShape) and a missing label file (load time)
    config = CONFIG.replace("dims: [ 4 ] } ]\ninstance", 'dims: [ 4 ] label_filename: "labels.txt" } ]\ninstance')
    python_model(tmp_path, "m", config.replace('"INPUT0" data_type: TYPE_FP32 dims: [ 4 ]', '"INPUT0" data_type: TYPE_FP32 dims: [ 0 ]'))
    default = {f.code for f in validate_repository(tmp_path).errors}
    strict = {f.code for f in validate_repository(tmp_path, options=ServerOptions(strict_model_config=True)).errors}
    assert default == {"TR320", "TR350"}  # both at load: the server reports... the first; validate lists both
    assert strict == {"TR320"}  # at poll: the model never reaches the load-time label check


def test_explicit_mode_checks_only_the_loaded_models_and_their_steps(tmp_path):
    python_model(tmp_path, "m")
    python_model(tmp_path, "broken", CONFIG.replace("max_batch_size: 4", "max_batch_size: -1"))
    (tmp_path / "ens" / "1").mkdir(parents=True)
    (tmp_path / "ens" / "config.pbtxt").write_text(ENSEMBLE)
    (tmp_path / ".hidden").mkdir()
    everything = validate_repository(tmp_path)
    assert {f.model for f in everything.errors} == {"broken", ".hidden"}
    only = validate_repository(tmp_path, options=ServerOptions(model_control_mode="explicit", load_model=("ens",)))
    assert only.models == ["ens", "m"] and only.errors == []
    nothing = validate_repository(tmp_path, options=ServerOptions(model_control_mode="explicit"))
    assert nothing.models == [] and nothing.findings == []
    star = validate_repository(tmp_path, options=ServerOptions(model_control_mode="explicit", load_model=("*",)))
    assert star.models == everything.models
    missing = validate_repository(tmp_path, options=ServerOptions(model_control_mode="explicit", load_model=("nope", "m")))
    assert [(f.code, f.message) for f in missing.errors] == [
        ("TR191", "failed to poll model 'nope': model not found in any model repository.")]


def test_option_errors_are_one_line():
    with pytest.raises(TritonRepoError, match="unexpected value for --model-control-mode: 'sometimes'"):
        ServerOptions(model_control_mode="sometimes")
    with pytest.raises(TritonRepoError, match="--load-model needs --model-control-mode=explicit"):
        ServerOptions(load_model=("m",))
    with pytest.raises(TritonRepoError, match="unknown Triton release 'banana'"):
        ServerOptions(triton_version="banana")
    assert ServerOptions(triton_version="2.51").release.ngc == "24.10"


def test_backend_config_parsing_and_merging():
    parsed = parse_backend_config(["python,shm-default-byte-size=1048576", "default-max-batch-size=8",
                                   "onnxruntime,default-max-batch-size=2"])
    assert parsed == {"python": {"shm-default-byte-size": "1048576"}, "": {"default-max-batch-size": "8"},
                      "onnxruntime": {"default-max-batch-size": "2"}}
    options = ServerOptions(backend_config=parsed)
    assert backend_config(options, "onnxruntime") == {"default-max-batch-size": "2"}
    assert backend_config(options, "python") == {"default-max-batch-size": "8", "shm-default-byte-size": "1048576"}
    assert backend_config(ServerOptions(), "x") == {"default-max-batch-size": "4"}
    with pytest.raises(TritonRepoError, match="--backend-config option format"):
        parse_backend_config(["python"])


def test_backend_resolution_as_the_server(tmp_path):
    backends = tmp_path / "backends"
    (backends / "python").mkdir(parents=True)
    (backends / "python" / "libtriton_python.so").write_bytes(b"")
    (backends / "pybased").mkdir()
    (backends / "pybased" / "model.py").write_text("")
    model = tmp_path / "repo" / "m"
    (model / "1").mkdir(parents=True)
    (model / "1" / "libtriton_custom.so").write_bytes(b"")
    options = ServerOptions(backend_directory=backends)

    def resolve(backend, runtime=""):
        return resolve_backend_library(options, backend, runtime, model, 1, "m")

    assert resolve("python").library == backends / "python" / "libtriton_python.so"
    assert resolve("custom").library == model / "1" / "libtriton_custom.so"
    based = resolve("pybased")
    assert based.ok and based.python_based and based.library == backends / "python" / "libtriton_python.so"
    missing = resolve("nothere")
    assert not missing.ok and missing.message == (
        "unable to find backend library for backend 'nothere', try specifying runtime on the model configuration.")
    escaping = resolve("python", "../../../etc/libx.so")
    assert not escaping.ok
    no_runtime = resolve("python", "libother.so")
    assert no_runtime.message.startswith("unable to find backend library 'libother.so' for model 'm', searched: ")
    # without --backend-directory: the release's standard backends
    standard = ServerOptions()
    assert resolve_backend_library(standard, "onnxruntime", "", model, 1, "m").ok
    assert not resolve_backend_library(standard, "nothere", "", model, 1, "m").ok
    assert resolve_backend_library(standard, "custom", "", model, 1, "m").ok  # the library is in the model folder
    # runtime model.py of a backend the image does not have: refused although the model folder holds a model.py
    # (tritonserver 2.51; corpus case runtime-model-py-missing)
    (model / "1" / "model.py").write_text("")
    refused = resolve_backend_library(standard, "nosuch", "model.py", model, 1, "m")
    assert not refused.ok and refused.message == (
        "unable to find Python backend based backend library 'model.py' for model 'm', searched: "
        "'/opt/tritonserver/backends/nosuch/model.py'")
    assert resolve_backend_library(standard, "python", "", model, 1, "m").library == Path(
        "/opt/tritonserver/backends/python/libtriton_python.so")


def test_repoagent_resolution(tmp_path):
    assert resolve_repoagent(ServerOptions(), "checksum").ok
    assert not resolve_repoagent(ServerOptions(), "nope").ok
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "libtritonrepoagent_mine.so").write_bytes(b"")
    options = ServerOptions(repoagent_directory=tmp_path)
    assert resolve_repoagent(options, "mine").library == tmp_path / "mine" / "libtritonrepoagent_mine.so"
    # the server names the directory, not the library (tritonserver 2.51 with --repoagent-directory; corpus case
    # repo-agent-unknown-in-directory)
    assert resolve_repoagent(options, "checksum").message == (
        f"unable to find 'libtritonrepoagent_checksum.so' for repo agent 'checksum', searched: {tmp_path}")


def test_cli_takes_the_servers_flags(tmp_path):
    python_model(tmp_path, "m", None)
    python_model(tmp_path, "other", CONFIG.replace("max_batch_size: 4", "max_batch_size: -1"))
    ok = runner.invoke(app, ["validate", str(tmp_path), "--model-control-mode", "explicit", "--load-model", "m",
                             "--triton-version", "2.51", "--backend-config", "python,a=b", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    strict = runner.invoke(app, ["validate", str(tmp_path), "--strict-model-config", "--model-control-mode",
                                 "explicit", "--load-model", "m"])
    assert strict.exit_code == 1 and "TR190" in strict.output
    bad = runner.invoke(app, ["validate", str(tmp_path), "--triton-version", "24.10; rm -rf /"])
    assert bad.exit_code == 2 and "unknown Triton release '24.10; rm -rf /'" in bad.output


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.server
def test_the_real_server_agrees_on_strict_and_explicit_modes(tmp_path, monkeypatch):
    """--disable-auto-complete-config with a model without config, and an explicit --load-model of a missing model:
    the server's log carries validate's messages."""
    from tritonrepo.server import TritonServer  # noqa: PLC0415

    python_model(tmp_path, "m", None)
    monkeypatch.setenv("TRITONREPO_KEEP_SERVER_DIR", "1")
    logs = []
    for extra, load in ((["--disable-auto-complete-config"], []), ([], ["nope"])):
        server = TritonServer(tmp_path, model_control="explicit" if load else "none", load=load, extra_args=extra)
        with pytest.raises(TritonRepoError):
            server.start(timeout=120)
        logs.append(server.log())
        server.stop()
        shutil.rmtree(server._workdir, ignore_errors=True)
    (strict,) = validate_repository(tmp_path, options=ServerOptions(disable_auto_complete_config=True)).errors
    assert strict.message in logs[0]
    (missing,) = validate_repository(tmp_path, options=ServerOptions(model_control_mode="explicit",
                                                                      load_model=("nope",))).errors
    assert missing.message in logs[1]


def test_fast_path_takes_exactly_the_typer_commands_options():
    """`tritonrepo validate` runs without typer (a small parser in cli/_validate_core.py): same option names as the
    typer command, which still handles --help, --live, --server and anything the parser does not take exactly."""
    from tritonrepo.cli import _app  # noqa: PLC0415
    from tritonrepo.cli._validate_core import OPTIONS  # noqa: PLC0415

    command = _app._load("validate")
    typer_flags = {opt for p in command.params for opt in p.opts if opt.startswith("--")}
    assert typer_flags - {"--live", "--server", "--help"} == {f for flags, _ in OPTIONS for f in flags}
    from tritonrepo.cli._validate_core import parse_args  # noqa: PLC0415

    args = parse_args(["repo", "--format=json", "--select", "TR1", "--select=TR3", "--exec-timeout", "-1",
                       "--strict-model-config", "--backend-directory", "b"])
    assert (args.repo, args.fmt, args.select, args.exec_timeout, args.strict_model_config, args.backend_directory) == (
        Path("repo"), "json", ["TR1", "TR3"], -1.0, True, Path("b"))
    for handed_to_typer in (["--sel", "TR1"], ["--format", "xml"], ["a", "b"], ["--exec-timeout", "x"], ["--select"],
                            ["--strict-model-config=maybe"], ["--nope"]):
        assert parse_args(handed_to_typer) is None, handed_to_typer


def test_fast_path_output_and_status(tmp_path):
    python_model(tmp_path, "m", CONFIG.replace("max_batch_size: 4", "max_batch_size: -1"))
    code = (f"import sys\nsys.argv = ['tritonrepo', 'validate', {str(tmp_path)!r}, '--no-exec']\n"
            "from tritonrepo.cli import main\nmain()\n")
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    src = str(Path(__file__).resolve().parent.parent / "src")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": src})
    assert done.returncode == 1
    assert done.stdout.endswith("1 models, 1 errors, 0 warnings: repository would not load\n")
    assert f"{tmp_path / 'm' / 'config.pbtxt'}:3:1 TR304 'max_batch_size' must be non-negative value for m" in done.stdout


def test_server_spelling_of_boolean_flags(tmp_path, monkeypatch):
    """tritonserver writes --strict-model-config=true; validate accepts that spelling too."""
    import sys  # noqa: PLC0415

    from tritonrepo.cli import main  # noqa: PLC0415

    python_model(tmp_path, "m", None)
    for value, status in (("true", 1), ("false", 0)):
        monkeypatch.setattr(sys, "argv", ["tritonrepo", "validate", str(tmp_path), f"--strict-model-config={value}"])
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == status
