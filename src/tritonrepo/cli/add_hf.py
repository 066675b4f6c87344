"""``tritonrepo add-hf``: a Hugging Face checkpoint becomes a model in the repository."""

from __future__ import annotations

from contextlib import nullcontext
from enum import Enum
from typing import Annotated

import typer

from tritonrepo.cli._cli_utils import (
    FormatOpt,
    ForceOpt,
    OutputFormat,
    RepoOpt,
    console,
    emit,
    quiet_libraries,
    run_command,
    table,
    tensor_dicts,
)
from tritonrepo.config import ModelSettings, config_to_text


class Backend(str, Enum):
    onnx = "onnx"
    python = "python"


class Device(str, Enum):
    cpu = "cpu"
    gpu = "gpu"


def _list_tasks(value: bool) -> None:
    if value:
        from tritonrepo.tasks.listing import print_tasks  # noqa: PLC0415

        print_tasks(console)
        raise typer.Exit()


@run_command
def add_hf(
    model: Annotated[str, typer.Argument(help="Hub id (org/name) or local checkpoint folder.")],
    repo: RepoOpt = "model_repository",
    name: Annotated[str | None, typer.Option("--name", "-n", help="Model name (default: from MODEL).")] = None,
    task: Annotated[str | None, typer.Option("--task", help="optimum task (default: from config.json).")] = None,
    backend: Annotated[Backend, typer.Option("--backend", help="onnx: export to ONNX; python: PyTorch.")] = Backend.onnx,
    revision: Annotated[str | None, typer.Option("--revision", help="Hub branch, tag or commit.")] = None,
    version: Annotated[int | None, typer.Option("--version", help="Version number (default: next free).")] = None,
    max_batch_size: Annotated[int, typer.Option("--max-batch-size", help="0 disables batching.")] = 8,
    dynamic_batching: Annotated[bool, typer.Option("--dynamic-batching/--no-dynamic-batching")] = True,
    instance_count: Annotated[int | None, typer.Option("--instance-count", help="Instances per group (default: from the machine, see docs/performance.md).")] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="Intra-op threads per instance (default: cores / instances; 0: the backend's).")] = None,
    device: Annotated[Device, typer.Option("--device", help="instance_group kind.")] = Device.cpu,
    opset: Annotated[int | None, typer.Option("--opset", help="ONNX opset (default: optimum's).")] = None,
    atol: Annotated[float, typer.Option("--atol", help="Max abs difference ONNX vs PyTorch.")] = 1e-4,
    force: ForceOpt = False,
    token: Annotated[str | None, typer.Option("--token", envvar="HF_TOKEN", help="Hub token.")] = None,
    pipeline: Annotated[bool, typer.Option("--pipeline", help="Also add pre/post-processing and an ensemble NAME.")] = False,
    optimize: Annotated[str | None, typer.Option("--optimize", help="ONNX graph optimisation level O1..O4 (O4: GPU, fp16).")] = None,
    quantize: Annotated[str | None, typer.Option("--quantize", help="int8, int8-dynamic, int8-static or fp16 (GPU), behind a quality gate.")] = None,
    min_cosine: Annotated[float, typer.Option("--min-cosine", help="Quality gate: lowest embedding cosine vs PyTorch.")] = 0.99,
    min_agreement: Annotated[float, typer.Option("--min-agreement", help="Quality gate: lowest argmax agreement vs PyTorch.")] = 0.99,
    chunk_length_s: Annotated[float | None, typer.Option("--chunk-length-s", min=0, help="Speech recognition: chunk long audio into windows of this many seconds, as transformers' pipeline (Whisper default: 30).")] = None,
    fmt: FormatOpt = OutputFormat.text,
    list_tasks: Annotated[bool, typer.Option("--list-tasks", is_eager=True, callback=_list_tasks,
                                             help="Print the supported tasks and the support matrix, then exit.")] = False,
) -> None:
    """Add a Hugging Face model to a model repository (ONNX export or Python backend).

    Examples:

        tritonrepo add-hf ./my-bert-classifier --name bert

        tritonrepo add-hf sentence-transformers/all-MiniLM-L6-v2 --backend python

        tritonrepo add-hf google/vit-base-patch16-224-in21k --max-batch-size 16 --device gpu

        tritonrepo add-hf ./my-bert-classifier --name classifier --pipeline   # text in, label + score out

        tritonrepo add-hf --list-tasks                                        # what is supported
    """
    from pathlib import Path  # noqa: PLC0415

    from tritonrepo.add import AddOptions, prepare  # noqa: PLC0415
    from tritonrepo.add import add_hf as run_add  # noqa: PLC0415

    settings = ModelSettings(
        max_batch_size=max_batch_size,
        dynamic_batching=dynamic_batching,
        instance_count=instance_count,
        device=device.value,
        threads=threads,
        parameters={} if chunk_length_s is None else {"chunk_length_s": f"{chunk_length_s:g}"},
    )
    options = AddOptions(
        repo=Path(repo), name=name, task=task, backend=backend.value, revision=revision, version=version,
        settings=settings, opset=opset, atol=atol, force=force, token=token, optimize=optimize, quantize=quantize,
        min_cosine=min_cosine, min_agreement=min_agreement,
    )
    # Refuse an unsupported architecture/task (and bad options) before torch/transformers/optimum are imported.
    prepared = prepare(model, options)
    if pipeline:
        from tritonrepo.pipeline import check_pipeline  # noqa: PLC0415

        check_pipeline(prepared[2])
    quiet_libraries()
    with console.status(f"adding {model} ({backend.value})", spinner="dots") if fmt == OutputFormat.text else nullcontext():
        if pipeline:
            from tritonrepo.pipeline import add_pipeline  # noqa: PLC0415

            piped = add_pipeline(model, options, prepared)
            result = piped.core
        else:
            piped, result = None, run_add(model, options, prepared)
    cfg = result.config
    data = {
        "model": cfg.name,
        "version": result.version,
        "path": str(result.model_dir),
        "task": result.task,
        "backend": cfg.backend,
        "source": result.checkpoint.source,
        "revision": result.checkpoint.revision,
        "max_batch_size": cfg.max_batch_size,
        "parity_max_abs_diff": result.export.parity_max_abs_diff if backend == Backend.onnx else None,
        "inputs": tensor_dicts(cfg.input),
        "outputs": tensor_dicts(cfg.output),
        "notes": result.notes,
    }
    if piped is not None:
        data["pipeline"] = {
            "ensemble": piped.ensemble,
            "steps": piped.steps,
            "inputs": tensor_dicts(piped.config.input),
            "outputs": tensor_dicts(piped.config.output),
        }

    def render() -> None:
        console.print(f"[bold green]added[/] {cfg.name} version {result.version} -> {result.model_dir}")
        console.print(f"task {result.task}, backend {cfg.backend}, max_batch_size {cfg.max_batch_size}")
        if backend == Backend.onnx:
            console.print(
                f"parity onnxruntime vs PyTorch: max abs difference {result.export.parity_max_abs_diff:.3g} "
                f"(atol {atol:g})"
            )
        rows = [["input", t["name"], t["data_type"], t["dims"]] for t in data["inputs"]]
        rows += [["output", t["name"], t["data_type"], t["dims"]] for t in data["outputs"]]
        console.print(table("tensors (dims without the batch dimension)", ["", "name", "data_type", "dims"], rows))
        if piped is not None:
            ins = ", ".join(t.name for t in piped.config.input)
            outs = ", ".join(t.name for t in piped.config.output)
            console.print(f"[bold green]pipeline[/] {piped.ensemble}: {' -> '.join(piped.steps)} ({ins} in, {outs} out)")
        for note in result.notes:
            console.print(f"[yellow]note:[/] {note}")

    emit(fmt, {**data, "config_pbtxt": config_to_text(cfg)} if fmt == OutputFormat.json else data, render)

