"""Hostile or broken input without a server: checkpoint links and files, package inputs, CLI texts (issue 13)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tritonrepo.checkpoint import copy_checkpoint, resolve_checkpoint
from tritonrepo.cli import app
from tritonrepo.errors import TritonRepoError

runner = CliRunner()


# --- item 1: symbolic links -------------------------------------------------------------------------------------


@pytest.fixture
def linked_ckpt(tmp_path, bert_dir):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(bert_dir, ckpt)
    (tmp_path / "secret.txt").write_text("AWS_SECRET_ACCESS_KEY=hunter2\n")
    return ckpt


def test_link_outside_the_checkpoint_is_refused_naming_the_link(linked_ckpt, tmp_path):
    (linked_ckpt / "notes.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(TritonRepoError) as err:
        copy_checkpoint(linked_ckpt, tmp_path / "out")
    assert err.value.message.startswith(f"{linked_ckpt / 'notes.txt'}: symbolic link to {tmp_path / 'secret.txt'}, "
                                        "outside the checkpoint")
    assert not any("hunter2" in p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*") if p.is_file())


def test_linked_folder_outside_and_dangling_links_are_refused(linked_ckpt, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "id_rsa").write_text("PRIVATE")
    (linked_ckpt / "sub").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(TritonRepoError, match=r"/ckpt/sub: symbolic link to .*/elsewhere, outside the checkpoint"):
        copy_checkpoint(linked_ckpt, tmp_path / "out1")
    (linked_ckpt / "sub").unlink()
    (linked_ckpt / "gone.json").symlink_to(tmp_path / "nothing-here")
    with pytest.raises(TritonRepoError, match=r"/ckpt/gone.json: dangling symbolic link"):
        copy_checkpoint(linked_ckpt, tmp_path / "out2")
    (linked_ckpt / "gone.json").unlink()
    os.mkfifo(linked_ckpt / "pipe")  # copying a FIFO would block forever
    with pytest.raises(TritonRepoError, match=r"/ckpt/pipe: not a regular file"):
        copy_checkpoint(linked_ckpt, tmp_path / "out3")


def test_links_inside_the_checkpoint_and_hub_cache_blobs_are_copied_as_files(tmp_path, bert_dir):
    entry = tmp_path / "hub" / "models--org--bert"
    snap = entry / "snapshots" / "abc"
    (entry / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    for f in bert_dir.iterdir():
        shutil.copyfile(f, entry / "blobs" / f.name)
        (snap / f.name).symlink_to(os.path.relpath(entry / "blobs" / f.name, snap))
    (snap / "alias.txt").symlink_to("vocab.txt")
    copied = copy_checkpoint(snap, tmp_path / "out", skip=lambda n: n == "tokenizer.json")
    assert sorted(copied) == sorted([f.name for f in bert_dir.iterdir() if f.name != "tokenizer.json"] + ["alias.txt"])
    assert not any(p.is_symlink() for p in (tmp_path / "out").iterdir())
    assert (tmp_path / "out" / "alias.txt").read_bytes() == (bert_dir / "vocab.txt").read_bytes()


@pytest.mark.slow
def test_add_hf_python_backend_refuses_a_secret_link(linked_ckpt, tmp_path):
    (linked_ckpt / "notes.txt").symlink_to(tmp_path / "secret.txt")
    repo = tmp_path / "repo"
    result = runner.invoke(app, ["add-hf", str(linked_ckpt), "--repo", str(repo), "--backend", "python"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {linked_ckpt / 'notes.txt'}: symbolic link to"), result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not any("hunter2" in p.read_text(errors="replace") for p in tmp_path.rglob("*")
                   if p.is_file() and not p.is_symlink() and p.name != "secret.txt")
    assert not list(tmp_path.glob(".tritonrepo-staging-*"))


# --- item 7: broken checkpoint files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "config.json:1:2: not valid JSON: Expecting property name enclosed in double quotes"),
        (b"[1, 2]", "config.json: a JSON list, not an object"),
        (b"\xff\xfe{}", "config.json: not UTF-8 text (invalid start byte at byte 0)"),
    ],
)
def test_config_json_that_is_not_a_json_object_is_one_line(tmp_path, bert_dir, content, message):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(bert_dir, ckpt)
    (ckpt / "config.json").write_bytes(content)
    result = runner.invoke(app, ["add-hf", str(ckpt), "--repo", str(tmp_path / "repo")])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {ckpt}/{message}"), result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not [p for p in (tmp_path / "repo").glob("*") if p.is_dir()] and not list(tmp_path.glob(".tritonrepo-*"))


def test_pickle_only_checkpoint_is_refused_with_the_way_out(tmp_path, bert_dir):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(bert_dir, ckpt)
    (ckpt / "model.safetensors").rename(ckpt / "pytorch_model.bin")  # the name is what matters: never unpickled
    with pytest.raises(TritonRepoError) as err:
        resolve_checkpoint(str(ckpt))
    assert err.value.message == (f"{ckpt / 'pytorch_model.bin'}: pickle-only checkpoint (no *.safetensors); loading "
                                 "pickle weights can run arbitrary code, so tritonrepo refuses them")
    assert "save_pretrained" in err.value.hint
    result = runner.invoke(app, ["add-hf", str(ckpt), "--repo", str(tmp_path / "repo"), "--backend", "python"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output


# --- item 8: package inputs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["banana", "24.10; rm -rf /", "24.10-py3\nRUN curl evil", "24.13", "2.99"])
def test_package_refuses_an_unknown_triton_version_before_writing(tmp_path, version):
    from corpus.cases import Case

    repo = Case("base", set()).build(tmp_path / "repo")
    result = runner.invoke(app, ["package", str(repo), "--out", str(tmp_path / "deploy"), "--triton-version", version])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: unknown Triton release "), result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "deploy").exists() and not list(tmp_path.glob(".tritonrepo-*"))


@pytest.mark.parametrize("out", ["deploy", "elsewhere/deep/deploy"])
def test_package_build_line_uses_a_context_holding_every_copy_source(tmp_path, out):
    from corpus.cases import Case
    from test_package import assert_build_context_works

    repo = Case("base", set()).build(tmp_path / "models" / "model_repository")
    result = runner.invoke(app, ["package", str(repo), "--out", str(tmp_path / out), "--triton-version", "2.51.0"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / out / "Dockerfile").read_text().splitlines()[1] == "FROM nvcr.io/nvidia/tritonserver:24.10-py3"
    assert_build_context_works(tmp_path / out)
    inside = runner.invoke(app, ["package", str(repo), "--out", str(repo / "deploy")])
    assert inside.exit_code == 2 and "inside the model repository" in inside.output


def test_force_help_says_what_it_replaces():
    def force_help(cmd):
        import typer.main

        command = typer.main.get_command(app).get_command(None, cmd)  # the CLI imports commands lazily
        return next(p.help for p in command.params if "--force" in p.opts)

    assert force_help("pull") == "Replace DEST if it exists and is not empty."
    assert force_help("package") == "Replace the artefacts in --out if it is not empty."
    assert "versions that already exist remotely" in force_help("push")


def test_package_refuses_a_build_context_of_the_whole_disk(tmp_path):
    from corpus.cases import Case

    repo = Case("base", set()).build(tmp_path / "repo")
    out = Path("/var/tmp") / f"tritonrepo-test-deploy-{os.getpid()}"
    if Path(os.path.commonpath([repo, out])) != Path("/"):
        pytest.skip("the temp dir shares a folder with /var/tmp")
    result = runner.invoke(app, ["package", str(repo), "--out", str(out)])
    assert result.exit_code == 2 and "docker would send the whole disk as build context" in result.output
    assert not out.exists()


def test_pickle_files_beside_safetensors_are_not_copied(tmp_path, bert_dir):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(bert_dir, ckpt)
    (ckpt / "pytorch_model.bin").write_bytes(b"pickle")
    (ckpt / "training_args.bin").write_bytes(b"pickle")
    copied = copy_checkpoint(ckpt, tmp_path / "out")
    assert "model.safetensors" in copied and not [c for c in copied if c.endswith(".bin")]
