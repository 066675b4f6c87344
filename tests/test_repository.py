import pytest

from tritonrepo.errors import TritonRepoError
from tritonrepo.repository import existing_versions, init_repository, next_version, place, validate_model_name


def test_init_creates_marker_and_is_idempotent(tmp_path):
    repo = init_repository(tmp_path / "repo")
    assert (repo / ".tritonrepo").is_file()
    assert init_repository(repo) == repo


def test_init_accepts_empty_dir_and_refuses_foreign_content(tmp_path):
    (tmp_path / "empty").mkdir()
    init_repository(tmp_path / "empty")
    foreign = tmp_path / "foreign"
    (foreign / "src").mkdir(parents=True)
    with pytest.raises(TritonRepoError) as err:
        init_repository(foreign)
    assert err.value.message == f"{foreign}: directory is not empty and is not a model repository"
    (tmp_path / "file").write_text("x")
    with pytest.raises(TritonRepoError, match="exists and is not a directory"):
        init_repository(tmp_path / "file")


def test_init_accepts_handwritten_repository(tmp_path):
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "config.pbtxt").write_text('name: "m"')
    assert init_repository(tmp_path) == tmp_path


@pytest.mark.parametrize("name", ["bert", "all-MiniLM-L6-v2", "vit_base.v2", "a"])
def test_valid_names(name):
    assert validate_model_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", ".hidden", "a/b", "a\\b", "with space", "-x", "tab\tname", "x" * 201])
def test_invalid_names(name):
    with pytest.raises(TritonRepoError, match="invalid model name"):
        validate_model_name(name)


def test_versions_follow_tritons_numbering(tmp_path):
    m = tmp_path / "m"
    assert next_version(m) == 1
    for d in ("1", "2", "007", "10", "abc", "3x"):
        (m / d).mkdir(parents=True)
    (m / "5").write_text("a file, not a version")
    assert existing_versions(m) == [1, 2, 10]
    assert next_version(m) == 11


def test_place_refuses_to_overwrite_without_force(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir(), dst.mkdir()
    (src / "new").write_text("new")
    (dst / "old").write_text("old")
    with pytest.raises(TritonRepoError, match="already exists"):
        place(src, dst, force=False)
    assert (dst / "old").is_file()
    place(src, dst, force=True)
    assert sorted(p.name for p in dst.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst"]
