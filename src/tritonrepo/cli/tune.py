"""``tritonrepo tune``: search instances, threads, batch sizes and queue delay on the real server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tritonrepo.cli._cli_utils import FormatOpt, ForceOpt, OutputFormat, RepoOpt, ServerOpt, console, emit, run_command, table
from tritonrepo.errors import TritonRepoError


@run_command
def tune(
    model: Annotated[str, typer.Argument(help="Model to tune (not an ensemble: tune its steps).")],
    repo: RepoOpt = Path("model_repository"),
    p99_ms: Annotated[float | None, typer.Option("--p99-ms", help="Latency budget: p99 latency at most this (ms).")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Concurrency of every measurement.")] = 8,
    duration: Annotated[float, typer.Option("--duration", help="Measurement window per trial, seconds.")] = 3.0,
    warmup: Annotated[float, typer.Option("--warmup", help="Warm-up per trial, seconds.")] = 1.0,
    search: Annotated[str | None, typer.Option("--search", help="Settings to search, comma-separated (default all: instance_count,threads,max_queue_delay_us,max_batch_size,preferred).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the config diff; write nothing.")] = False,
    force: ForceOpt = False,
    server: ServerOpt = None,
    fmt: FormatOpt = OutputFormat.text,
) -> None:
    """Measure the model's current config and a quick search of instance count, threads, queue delay,
    max_batch_size and preferred batch sizes on a tritonserver this command starts; write the best as a new
    version (its config replaces the current one, so --force is required), or print the diff with --dry-run.

    Examples:

        tritonrepo tune minilm_model --p99-ms 50 --dry-run

        tritonrepo tune bert --concurrency 16 --duration 5 --force
    """
    from tritonrepo.server import find_engine  # noqa: PLC0415
    from tritonrepo.config import read_config  # noqa: PLC0415
    from tritonrepo.tune import current, search_space, to_json, tune as run_tune, write_tuned  # noqa: PLC0415

    if duration <= 0 or concurrency < 1:
        raise TritonRepoError("--duration must be > 0 and --concurrency >= 1")
    space = None
    if search:
        full = dict(search_space(current(read_config(Path(repo) / model))))
        wanted = [x.strip() for x in search.split(",") if x.strip()]
        unknown = [w for w in wanted if w not in full]
        if unknown:
            raise TritonRepoError(f"--search {', '.join(unknown)}: not a setting of this model", f"use: {', '.join(full)}")
        space = [(w, full[w]) for w in wanted]
    say = (lambda m: console.print(f"[dim]{model}: {m}[/]", highlight=False)) if fmt == OutputFormat.text else None
    result = run_tune(Path(repo), model, p99_ms=p99_ms, concurrency=concurrency, duration=duration, warmup=warmup,
                      engine=find_engine(server), progress=say, space=space)
    written = None
    changed = result.best.candidate != result.base.candidate
    if not dry_run and changed and result.budget_met:
        written = write_tuned(Path(repo), result, force=force)
    data = {**to_json(result), "written_version": written, "dry_run": dry_run}

    def render() -> None:
        rows = [[i + 1, t.candidate.instance_count, t.candidate.threads or "-", t.candidate.max_queue_delay_us,
                 t.candidate.max_batch_size, ",".join(map(str, t.candidate.preferred)) or "-",
                 f"{t.throughput:.1f}", f"{t.p99_ms:.2f}", f"{t.avg_batch:.2f}", t.error[:40] or ""]
                for i, t in enumerate(result.trials)]
        console.print(table(f"{model}: trials at concurrency {concurrency}",
                            ["#", "inst", "threads", "delay us", "max batch", "preferred", "infer/s", "p99 ms",
                             "avg batch", "error"], rows))
        b, base = result.best, result.base
        console.print(f"best: {b.throughput:.1f} infer/s, p99 {b.p99_ms:.2f} ms "
                      f"(current: {base.throughput:.1f} infer/s, p99 {base.p99_ms:.2f} ms)")
        if not result.budget_met:
            console.print(f"[red]no trial met the p99 budget of {p99_ms:g} ms[/]: nothing written")
        elif not changed:
            console.print("the current config is the best measured: nothing to write")
        elif dry_run:
            console.print(result.diff(), highlight=False, markup=False)
        else:
            console.print(f"[green]wrote[/] version {written} with the tuned config")

    emit(fmt, data, render)
    if not result.budget_met:
        raise typer.Exit(1)
