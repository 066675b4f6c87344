"""Which Triton release the rules apply: ``ServerOptions.triton_version`` as a server minor version (2.51 -> 51).

Uses ``ServerOptions.release`` (the table in :mod:`tritonrepo.releases`); for an options object without it, NGC
``yy.mm`` releases are numbered monthly from 24.10 = 2.51 (24.11 = 2.52, 25.01 = 2.54).
"""

from __future__ import annotations

import re

from tritonrepo.validate.model import ModelContext


def server_minor(ctx: ModelContext) -> int:
    """The server minor version of the release the verdict is for (51 for 24.10 / 2.51)."""
    options = ctx.repo.options
    try:
        return int(options.release.server[1])  # tritonrepo.releases: the known release table
    except Exception:  # noqa: BLE001 - an options object without a release table: parse the text
        pass
    text = str(options.triton_version).strip()
    m = re.fullmatch(r"v?2\.(\d+)(?:\.\d+)?", text)
    if m:
        return int(m.group(1))
    m = re.fullmatch(r"(\d\d)\.(\d\d)(?:-py3)?", text)
    if m:
        return 51 + (int(m.group(1)) - 24) * 12 + int(m.group(2)) - 10
    return 51


#: ModelConfig fields newer than r24.10, with the first server minor whose proto has them (tritonclient 2.52 adds
#: ``model_metrics``); older servers refuse the config as unparseable.
NEW_FIELDS = {"model_metrics": 52}
