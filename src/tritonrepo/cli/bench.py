"""``tritonrepo bench``: throughput, latency percentiles and the server-side split of a served model."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from tritonrepo.cli._cli_utils import RepoOpt, console, err_console, run_command, table
from tritonrepo.errors import TritonRepoError


class Protocol(str, Enum):
    http = "http"
    grpc = "grpc"


class BenchFormat(str, Enum):
    """``--format``: a table for people, or JSON / CSV (perf_analyzer's columns) on stdout."""

    text = "text"
    json = "json"
    csv = "csv"


def _levels(spec: str, kind, flag: str) -> list:
    try:
        values = [kind(x) for x in spec.replace(" ", "").split(",") if x]
    except ValueError:
        raise TritonRepoError(f"{flag} {spec!r}: expected comma-separated numbers", f"e.g. {flag} 1,4,16") from None
    if not values:
        raise TritonRepoError(f"{flag}: no level given", f"e.g. {flag} 1,4,16")
    return values


def payloads(model: str, repo: Path, cfg: dict, texts: list[str], input_files: list[str], batch_size: int) -> list[dict]:
    """Request payloads: ``--text`` (raw pipeline / generation input), ``--input`` files, else the golden sample."""
    from tritonrepo.bench import is_generation, split_rows, texts_payloads  # noqa: PLC0415

    batching = int(cfg.get("max_batch_size", 0)) > 0
    names = [t["name"] for t in cfg.get("input", [])]
    if texts:
        key = "text_input" if is_generation(cfg) else "text"
        if key not in names:
            raise TritonRepoError(f"--text: model '{model}' has no '{key}' input", f"its inputs: {', '.join(names)}")
        return texts_payloads(key, texts, batch_size, batching)
    if input_files:
        from tritonrepo.cli.infer import _load_inputs  # noqa: PLC0415

        arrays = _load_inputs(input_files)
        return split_rows(arrays, batch_size) if batching else [arrays]
    from tritonrepo.client import golden_sample  # noqa: PLC0415

    if not (repo / model).is_dir():
        raise TritonRepoError(f"model '{model}' is not in {repo} (its golden sample is the default payload)",
                              "pass --repo, --text or --input name=file.npy")
    golden = golden_sample(repo / model)
    return split_rows(golden.inputs, batch_size) if batching else [golden.inputs]


@run_command
def bench(
    model: Annotated[str, typer.Argument(help="Served model name.")],
    repo: RepoOpt = Path("model_repository"),
    url: Annotated[str | None, typer.Option("--url", help="host:port (default 127.0.0.1:8001 gRPC, :8000 HTTP).")] = None,
    protocol: Annotated[Protocol, typer.Option("--protocol")] = Protocol.grpc,
    concurrency: Annotated[str, typer.Option("--concurrency", "-c", help="Closed-loop levels, e.g. 1,4,16.")] = "1,4,16",
    request_rate: Annotated[str | None, typer.Option("--request-rate", help="Open-loop levels in requests/s (instead of --concurrency).")] = None,
    duration: Annotated[float, typer.Option("--duration", help="Measurement window per level, seconds.")] = 5.0,
    warmup: Annotated[float, typer.Option("--warmup", help="Warm-up per level, seconds (not counted).")] = 1.0,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Rows (texts) per request.")] = 1,
    text: Annotated[list[str] | None, typer.Option("--text", "-t", help="Raw text for a pipeline or generation model (repeatable).")] = None,
    inputs: Annotated[list[str] | None, typer.Option("--input", "-i", help="name=file.npy, rows sent in turn (repeatable).")] = None,
    fmt: Annotated[BenchFormat, typer.Option("--format", help="text (table), json or csv.")] = BenchFormat.text,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write the latency-throughput curve to this PNG.")] = None,
) -> None:
    """Measure a served model: throughput, p50/p90/p99 latency, Triton's queue/compute split and average batch size.

    Payloads: the manifest's golden sample in --repo (one row per request, padding trimmed), or --text / --input.
    Streaming generation models (decoupled, text_input -> text_output) also get time to first token,
    inter-token latency and tokens/s. Column names follow perf_analyzer / genai-perf (times in microseconds,
    genai-perf's in milliseconds).

    Examples:

        tritonrepo bench minilm --concurrency 1,4,16 --duration 5

        tritonrepo bench cls --text "good movie" --text "a much longer and rather bad movie" --request-rate 20,50

        tritonrepo bench bert_model --protocol http --format csv > bert.csv --plot bert.png
    """
    from tritonrepo.bench import BenchOptions, model_config, run_bench  # noqa: PLC0415

    if batch_size < 1:
        raise TritonRepoError("--batch-size must be >= 1")
    url = url or ("127.0.0.1:8001" if protocol == Protocol.grpc else "127.0.0.1:8000")
    opts = BenchOptions(url=url, protocol=protocol.value, duration=duration, warmup=warmup)
    if request_rate:
        opts.request_rate = _levels(request_rate, float, "--request-rate")
    else:
        opts.concurrency = _levels(concurrency, int, "--concurrency")
    cfg = model_config(opts, model)
    reqs = payloads(model, Path(repo), cfg, text or [], inputs or [], batch_size)
    say = (lambda m: err_console.print(f"[dim]{model}: {m}[/]", highlight=False)) if fmt != BenchFormat.text else \
        (lambda m: console.print(f"[dim]{model}: {m}, {warmup:g}s warm-up + {duration:g}s[/]", highlight=False))
    result = run_bench(model, reqs, opts, progress=say)
    if plot is not None:
        write_plot(result, plot)
    if fmt == BenchFormat.json:
        import json  # noqa: PLC0415

        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
    elif fmt == BenchFormat.csv:
        sys.stdout.write(result.to_csv())
    else:
        render(result)
    if plot is not None and fmt == BenchFormat.text:
        console.print(f"plot: {plot}")


def render(result) -> None:
    """The rich table: one row per level."""
    level = "rate/s" if result.levels and result.levels[0].request_rate else "conc."
    cols = [level, "infer/s", "p50 ms", "p90 ms", "p99 ms", "queue ms", "compute ms", "avg batch", "errors"]
    if result.generation:
        cols[-1:-1] = ["TTFT ms", "ITL ms", "tokens/s"]
    rows = []
    for lv, r in zip(result.levels, result.rows()):
        s = lv.server
        row = [lv.request_rate if lv.request_rate else lv.concurrency, f"{r['Inferences/Second']:.1f}",
               *(f"{r[f'{p} latency'] / 1000:.2f}" for p in ("p50", "p90", "p99")),
               f"{s.queue_us / 1000:.2f}", f"{(s.compute_input_us + s.compute_infer_us + s.compute_output_us) / 1000:.2f}",
               f"{s.avg_batch:.2f}"]
        if result.generation:
            row += [f"{lv.ttft_ms:.2f}", f"{lv.itl_ms:.2f}", f"{lv.tokens_per_second:.1f}"]
        rows.append([*row, r["Errors"]])
    console.print(table(f"{result.model} @ {result.url} ({result.protocol}, batch {result.batch_size}, "
                        f"{result.duration:g}s per level)", cols, rows))
    for lv in result.levels:
        if lv.first_error:
            console.print(f"[yellow]first error at level {lv.concurrency or lv.request_rate}:[/] {lv.first_error}")


def write_plot(result, path: Path) -> None:
    """Latency-throughput curve (p50 and p99 latency against inferences/s, one point per level) as a PNG."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    rows = result.rows()
    x = [r["Inferences/Second"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for p, style in (("p50", "o-"), ("p99", "s--")):
        ax.plot(x, [r[f"{p} latency"] / 1000 for r in rows], style, label=f"{p} latency")
    for r, xi in zip(rows, x):
        ax.annotate(f"c{r['Concurrency']}" if r["Concurrency"] else f"{r['Request Rate']:g}/s",
                    (xi, r["p99 latency"] / 1000), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("throughput (inferences/s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"{result.model} ({result.protocol})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(path, format="png")
    except OSError as exc:
        raise TritonRepoError(f"--plot: cannot write {path}: {exc.strerror}") from None
    finally:
        plt.close(fig)
