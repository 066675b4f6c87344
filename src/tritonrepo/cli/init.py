"""``tritonrepo init``: a new, empty model repository."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tritonrepo.cli._cli_utils import console, run_command
from tritonrepo.repository import init_repository


@run_command
def init(
    path: Annotated[Path, typer.Argument(help="Directory of the new repository.")] = Path("model_repository"),
) -> None:
    """Create an empty model repository (refuses a non-empty directory that is not one).

    Examples:

        tritonrepo init

        tritonrepo init /srv/models
    """
    repo = init_repository(path)
    console.print(f"model repository ready: {repo}")
