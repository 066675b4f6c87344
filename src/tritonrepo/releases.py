"""Known Triton Inference Server releases: NGC container ``yy.mm`` ↔ server version ``2.x.y``.

NVIDIA ships one NGC container ``nvcr.io/nvidia/tritonserver:<yy.mm>-py3`` a month, each holding one server
version; ``package --triton-version`` and ``validate --triton-version`` accept either name and resolve it here.

Sources (what is verified, what is not):

* NGC release notes, table of contents of docs.nvidia.com/deeplearning/triton-inference-server/release-notes
  (running.html): a container for every month from 23.07 to 25.06, then 25.08, 25.09, 25.10, 25.11 (no 25.07).
* Archived documentation (docs.nvidia.com/deeplearning/sdk/inference-server-archived): server versions 2.38.0 …
  2.44.0 and 2.55.0 … 2.58.0 each released, one per month, no gaps; the 2.44.0 archive's release notes end at 24.03.
* Explicit pairs from the server's GitHub release titles ("Release 2.x.0 corresponding to NGC container yy.mm"):
  2.38.0 ↔ 23.09, 2.40.0 ↔ 23.11, 2.50.0 ↔ 24.09, 2.59.0 ↔ 25.06; 2.51.0 ↔ 24.10 is the server installed here
  (nvidia-pytriton 0.7.0's ``tritonserver``).
* Between those anchors both sequences advance by exactly one a month, so 23.10 ↔ 2.39.0 … 25.06 ↔ 2.59.0 follow.
* NOT included: 25.08 and later. Their containers exist (release notes above) but no source available here
  states their server versions, and 25.07 was skipped, so the monthly step cannot be assumed. Add them to
  ``KNOWN`` once verified (the GitHub release title of each is the source to cite).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from tritonrepo.errors import TritonRepoError


class Release(NamedTuple):
    """One Triton release (a named tuple: immutable, hashable, ordered by ``(ngc, server)``).

    Attributes:
        ngc: NGC container release ``yy.mm`` (``"24.10"``), the tag of ``nvcr.io/nvidia/tritonserver:<ngc>-py3``.
        server: server version ``(major, minor, patch)`` as ``tritonserver`` reports it (``(2, 51, 0)``).
    """

    ngc: str
    server: tuple[int, int, int]

    @property
    def server_version(self) -> str:
        """The server version as text, ``"2.51.0"``."""
        return ".".join(str(part) for part in self.server)

    @property
    def image(self) -> str:
        """The NGC image with the Python backend, ``nvcr.io/nvidia/tritonserver:24.10-py3``."""
        return f"nvcr.io/nvidia/tritonserver:{self.ngc}-py3"

    def __str__(self) -> str:
        return f"{self.ngc} (server {self.server_version})"


def _monthly(first_ngc: str, first_minor: int, count: int) -> tuple[Release, ...]:
    """``count`` consecutive monthly releases from ``first_ngc`` ↔ ``2.<first_minor>.0``."""
    year, month = (int(part) for part in first_ngc.split("."))
    releases = []
    for i in range(count):
        total = (year * 12 + month - 1) + i
        releases.append(Release(f"{total // 12:02d}.{total % 12 + 1:02d}", (2, first_minor + i, 0)))
    return tuple(releases)


#: Every verified release, oldest first: 23.10 (2.39.0) … 25.06 (2.59.0). See the module docstring for sources.
KNOWN: tuple[Release, ...] = _monthly("23.10", 39, 21)

_BY_NGC = {release.ngc: release for release in KNOWN}
_BY_SERVER = {release.server: release for release in KNOWN}

#: The release ``package`` targets (its ``--triton-version`` default) and ``validate`` mirrors by default: the
#: server installed here.
DEFAULT: Release = _BY_NGC["24.10"]

_NGC_RE = re.compile(r"(\d{2})\.(\d{2})")
_SERVER_RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def resolve(text: str) -> Release:
    """The known release named by ``text``.

    Args:
        text: an NGC release ``"24.10"`` (a ``-py3`` suffix is accepted), or a server version ``"2.51"`` /
            ``"2.51.0"`` (a leading ``v`` is accepted). Surrounding blanks are ignored.

    Returns:
        The :class:`Release`.

    Raises:
        TritonRepoError: (exit 2) ``text`` names no known release (``"banana"``, ``"24.13"``, ``"2.99"``, a shell
            fragment …); the message quotes it safely and names the closest known releases.
    """
    raw = text if isinstance(text, str) else str(text)
    value = raw.strip()
    if value.endswith("-py3"):
        value = value[: -len("-py3")]
    if value[:1] in ("v", "V"):
        value = value[1:]
    match = _NGC_RE.fullmatch(value)
    if match and value in _BY_NGC:
        return _BY_NGC[value]
    match = _SERVER_RE.fullmatch(value)
    if match and match.group(1) == "2":
        minor, patch = int(match.group(2)), int(match.group(3) or 0)
        if (2, minor, patch) in _BY_SERVER:
            return _BY_SERVER[(2, minor, patch)]
    closest = ", ".join(str(release) for release in closest_releases(value))
    raise TritonRepoError(
        f"unknown Triton release {_quote(raw)}: known releases are {KNOWN[0].ngc} … {KNOWN[-1].ngc} "
        f"(server {KNOWN[0].server_version} … {KNOWN[-1].server_version}); closest: {closest}",
        f"pass an NGC release like {DEFAULT.ngc} or a server version like {DEFAULT.server_version}",
    )


def closest_releases(text: str, count: int = 3) -> list[Release]:
    """Up to ``count`` known releases nearest to ``text`` (by month or minor version when it parses, else by
    spelling; the newest ones when nothing is near)."""
    value = text.strip()
    ngc = _NGC_RE.fullmatch(value)
    server = _SERVER_RE.fullmatch(value)
    if ngc:
        target = int(ngc.group(1)) * 12 + int(ngc.group(2)) - 1
        return sorted(KNOWN, key=lambda r: (abs(_months(r) - target), -_months(r)))[:count]
    if server and server.group(1) == "2":
        target = int(server.group(2))
        return sorted(KNOWN, key=lambda r: (abs(r.server[1] - target), -r.server[1]))[:count]
    names = {release.ngc: release for release in KNOWN}
    names.update({release.server_version: release for release in KNOWN})
    found: list[Release] = []
    import difflib  # noqa: PLC0415 - only for a name that is not a release

    for name in difflib.get_close_matches(value[:32], list(names), n=count * 2, cutoff=0.5):
        if names[name] not in found:
            found.append(names[name])
    return found[:count] or list(reversed(KNOWN[-count:]))


def _months(release: Release) -> int:
    year, month = (int(part) for part in release.ngc.split("."))
    return year * 12 + month - 1


def _quote(text: str) -> str:
    """``text`` in quotes, shortened to 40 characters, control characters escaped (safe for one log line)."""
    short = text if len(text) <= 40 else text[:40] + "…"
    return repr(short)
