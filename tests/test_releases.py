"""tritonrepo.releases: NGC yy.mm <-> server version, resolve() and its errors."""

import pytest

from tritonrepo import releases
from tritonrepo.errors import TritonRepoError


@pytest.mark.parametrize("text", ["24.10", "2.51", "2.51.0", "v2.51.0", "24.10-py3", " 24.10 "])
def test_resolve_names_of_the_installed_server(text):
    release = releases.resolve(text)
    assert release == releases.DEFAULT
    assert (release.ngc, release.server, release.server_version) == ("24.10", (2, 51, 0), "2.51.0")
    assert release.image == "nvcr.io/nvidia/tritonserver:24.10-py3"


def test_known_is_monthly_and_covers_the_verified_range():
    assert releases.KNOWN[0] == releases.Release("23.10", (2, 39, 0))
    assert releases.KNOWN[-1] == releases.Release("25.06", (2, 59, 0))
    assert releases.resolve("24.09").server == (2, 50, 0)  # GitHub release title "2.50.0 ... NGC 24.09"
    assert releases.resolve("23.11").server == (2, 40, 0)
    assert releases.resolve("24.12").server == (2, 53, 0)
    assert releases.resolve("25.01").server == (2, 54, 0)
    assert [r.server[1] for r in releases.KNOWN] == list(range(39, 60))


@pytest.mark.parametrize("text, closest", [
    ("banana", "25.06 (server 2.59.0)"),
    ("24.13", "25.01 (server 2.54.0)"),
    ("2.51.1", "24.10 (server 2.51.0)"),
    ("25.08", "25.06 (server 2.59.0)"),
    ("24.10; rm -rf /", None),
    ("$(touch /tmp/x)", None),
])
def test_resolve_refuses_unknown_text_with_the_closest_releases(text, closest):
    with pytest.raises(TritonRepoError) as info:
        releases.resolve(text)
    message = info.value.one_line()
    assert message.startswith(f"unknown Triton release {text!r}: known releases are 23.10 … 25.06")
    assert "closest: " in message and info.value.exit_code == 2
    if closest:
        assert message.split("closest: ")[1].startswith(closest)


def test_package_default_is_the_release_default():
    from tritonrepo.package import PackageOptions
    assert PackageOptions.__dataclass_fields__["triton_version"].default == releases.DEFAULT.ngc
