"""``tritonrepo add-hf --list-tasks``: the registry's tasks and the support matrix as rich tables."""

from __future__ import annotations

from tritonrepo.tasks.matrix import MODES, PACKAGED, read_records


def print_tasks(console) -> None:
    """Print the registered tasks (family, model types, pipeline) and the recorded support matrix."""
    from rich.table import Table  # noqa: PLC0415

    from tritonrepo.tasks import all_specs  # noqa: PLC0415

    tasks = Table(title="tasks (tritonrepo add-hf --task TASK)")
    for col in ("task", "family", "model types", "pipeline", "notes"):
        tasks.add_column(col)
    for s in all_specs():
        tasks.add_row(s.task, s.family, ", ".join(s.model_types), "yes" if s.pipeline else "no", s.notes)
    console.print(tasks)
    records = read_records(PACKAGED)
    if not records:
        console.print("no support matrix recorded (make support-matrix)")
        return
    cells = {(r["arch"], r["task"], r["mode"]): r for r in records}
    matrix = Table(title="support matrix (tested: ✓, or the reason; docs/support-matrix.md)")
    for col in ("architecture", "task", *MODES):
        matrix.add_column(col)
    for arch, task in sorted({(r["arch"], r["task"]) for r in records}):
        row = []
        for m in MODES:
            r = cells.get((arch, task, m))
            row.append("–" if r is None else ("✓" if r["ok"] else r["reason"]))
        matrix.add_row(arch, task, *row)
    console.print(matrix)
