"""``tritonrepo ensemble``: chain models of the repository into an ensemble."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tritonrepo.cli._cli_utils import FormatOpt, ForceOpt, OutputFormat, RepoOpt, console, emit, run_command, table, tensor_dicts
from tritonrepo.config import config_to_text, write_config
from tritonrepo.ensemble import load_step_configs, parse_map, plan_ensemble
from tritonrepo.errors import TritonRepoError
from tritonrepo.repository import commit_model, open_repository, staging_dir, validate_model_name


@run_command
def ensemble(
    name: Annotated[str, typer.Argument(help="Name of the ensemble model.")],
    steps: Annotated[list[str] | None, typer.Option("--step", "-s", help="A model of the repository, in call order (repeat).")] = None,
    repo: RepoOpt = Path("model_repository"),
    pipeline_for: Annotated[str | None, typer.Option("--pipeline-for", help="Generate pre/post-processing around this model (added by add-hf).")] = None,
    checkpoint: Annotated[str | None, typer.Option("--checkpoint", help="With --pipeline-for: the checkpoint (default: the manifest's source).")] = None,
    maps: Annotated[list[str] | None, typer.Option("--map", help="CONSUMER.INPUT=PRODUCER.OUTPUT (producer 'ensemble' = an ensemble input).")] = None,
    outputs: Annotated[list[str] | None, typer.Option("--output", "-o", help="OUTPUT or STEP.OUTPUT (default: the last step's).")] = None,
    max_batch_size: Annotated[int | None, typer.Option("--max-batch-size", help="Default: the smallest of the steps'.")] = None,
    force: ForceOpt = False,
    fmt: FormatOpt = OutputFormat.text,
) -> None:
    """Wire models into an ensemble (tensors connect by name between steps) and check every connection.

    Examples:

        tritonrepo ensemble classifier --step tok --step bert --step argmax

        tritonrepo ensemble search --step tok --step minilm --step pool --map pool.mask=tok.attention_mask

        tritonrepo ensemble classifier --pipeline-for bert     # NAME_preprocess -> bert -> NAME_postprocess
    """
    root = open_repository(repo)
    validate_model_name(name)
    if pipeline_for:
        _pipeline(root, name, pipeline_for, checkpoint, force, fmt)
        return
    if not steps:
        raise TritonRepoError("give the steps (--step MODEL, repeated) or --pipeline-for MODEL")
    configs = load_step_configs(root, steps)
    explicit = dict(parse_map(m) for m in maps or [])
    plan = plan_ensemble(name, steps, configs, maps=explicit, outputs=outputs, max_batch_size=max_batch_size)
    cfg = plan.to_config()
    model_dir = root / name
    if model_dir.exists() and not force:
        raise TritonRepoError(f"{model_dir}: model already exists", "pass --force to replace the ensemble")
    version = 1  # an ensemble's version folder stays empty; replacing it means replacing its config
    with staging_dir(root, name) as tmp:
        (tmp / name / str(version)).mkdir(parents=True)  # Triton needs a (possibly empty) version folder
        write_config(cfg, tmp / name)
        commit_model(tmp / name, model_dir, version, force=force)
    data = {
        "ensemble": name, "steps": steps, "max_batch_size": cfg.max_batch_size,
        "inputs": tensor_dicts(cfg.input),
        "outputs": tensor_dicts(cfg.output),
        "config_pbtxt": config_to_text(cfg),
    }

    def render() -> None:
        console.print(f"[bold green]ensemble[/] {name}: {' -> '.join(steps)} ({model_dir})")
        rows = [["input", t["name"], t["data_type"], t["dims"]] for t in data["inputs"]]
        rows += [["output", t["name"], t["data_type"], t["dims"]] for t in data["outputs"]]
        console.print(table("ensemble tensors", ["", "name", "data_type", "dims"], rows))
        for step, imap, omap in zip(plan.steps, plan.input_maps, plan.output_maps):
            console.print(f"  {step}: in {dict(imap)} out {dict(omap)}")

    emit(fmt, data, render)


def _pipeline(root: Path, name: str, core: str, checkpoint: str | None, force: bool, fmt: OutputFormat) -> None:
    from tritonrepo.add import AddOptions  # noqa: PLC0415
    from tritonrepo.cli._cli_utils import quiet_libraries  # noqa: PLC0415
    from tritonrepo.pipeline import pipeline_for_model, pipeline_source  # noqa: PLC0415

    options = AddOptions(repo=root, force=force)
    source = pipeline_source(root, core, options, checkpoint)  # a task without a pipeline: refused before heavy imports
    quiet_libraries()
    result = pipeline_for_model(root, name, core, options, checkpoint, source=source)
    cfg = result.config
    data = {
        "ensemble": name, "steps": result.steps, "max_batch_size": cfg.max_batch_size,
        "inputs": tensor_dicts(cfg.input),
        "outputs": tensor_dicts(cfg.output),
    }
    emit(fmt, data, lambda: console.print(f"[bold green]pipeline[/] {name}: {' -> '.join(result.steps)}"))
