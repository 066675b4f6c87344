"""Helpers shared by the examples: run the tritonrepo CLI, and compare answers."""

from __future__ import annotations

import subprocess
import sys


def tritonrepo(*args: str) -> None:
    """Run ``tritonrepo ARGS`` (as ``python -m tritonrepo``), echoing the command; raises on failure."""
    print("$ tritonrepo " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "tritonrepo", *args], check=True)


def report(rows: list[tuple[str, str, bool]]) -> int:
    """Print ``(what, measured, ok)`` rows; return the exit status (0 when all are ok)."""
    for what, measured, ok in rows:
        print(f"{what:<44} {measured:<28} {'ok' if ok else 'FAIL'}")
    failed = sum(not ok for _, _, ok in rows)
    print("example passed" if not failed else f"example FAILED ({failed} checks)")
    return 1 if failed else 0
