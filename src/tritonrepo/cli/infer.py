"""``tritonrepo infer``: one request to a served model, outputs printed as a table."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from tritonrepo.cli._cli_utils import FormatOpt, OutputFormat, RepoOpt, console, emit, run_command, table
from tritonrepo.client import golden_sample, infer as send, max_abs_diff, random_inputs
from tritonrepo.cli.infer_generate import infer_generation, is_generation_model
from tritonrepo.config import read_config
from tritonrepo.errors import TritonRepoError


class Protocol(str, Enum):
    http = "http"
    grpc = "grpc"


def raw_inputs(cfg, texts: list[str], images: list[Path]) -> dict[str, np.ndarray]:
    """BYTES inputs ``[batch, 1]`` for a pipeline ensemble: texts go to its ``text`` input, files to ``image``."""
    names = {t.name for t in cfg.input}
    out = {}
    for flag, key, values in (("--text", "text", [t.encode() for t in texts]), ("--image", "image", images)):
        if not values:
            continue
        if key not in names:
            raise TritonRepoError(f"{flag}: model '{cfg.name}' has no '{key}' input", f"its inputs: {', '.join(sorted(names))}")
        if key == "image":
            try:
                values = [Path(v).read_bytes() for v in values]
            except OSError as exc:
                raise TritonRepoError(f"--image: cannot read {exc.filename}: {exc.strerror}") from None
        out[key] = np.array([[v] for v in values], dtype=object)
    return out


def _load_inputs(specs: list[str]) -> dict[str, np.ndarray]:
    out = {}
    for spec in specs:
        if "=" not in spec:
            raise TritonRepoError(f"--input {spec!r}: expected name=file.npy")
        name, path = spec.split("=", 1)
        try:
            out[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise TritonRepoError(f"--input {name}: cannot read {path}: {exc}") from None
    return out


@run_command
def infer(
    model: Annotated[str, typer.Argument(help="Model name.")],
    repo: RepoOpt = Path("model_repository"),
    url: Annotated[str | None, typer.Option("--url", help="host:port (default 127.0.0.1:8000, gRPC :8001).")] = None,
    protocol: Annotated[Protocol, typer.Option("--protocol")] = Protocol.http,
    inputs: Annotated[list[str] | None, typer.Option("--input", "-i", help="name=file.npy (repeatable).")] = None,
    random: Annotated[bool, typer.Option("--random", help="Random inputs shaped by the config.")] = False,
    text: Annotated[list[str] | None, typer.Option("--text", "-t", help="Raw text for a pipeline (repeatable).")] = None,
    image: Annotated[list[Path] | None, typer.Option("--image", help="Image file for a pipeline (repeatable).")] = None,
    audio: Annotated[list[Path] | None, typer.Option("--audio", help="Audio file (WAV/FLAC/OGG) for a speech model.")] = None,
    stream: Annotated[bool, typer.Option("--stream", help="Generation models: print the text as it is generated.")] = False,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Generation models: new tokens at most.")] = None,
    sampling: Annotated[str | None, typer.Option("--sampling", help='Generation models: sampling_parameters JSON, e.g. \'{"temperature": 0.7, "seed": 1}\'.')] = None,
    chat: Annotated[bool, typer.Option("--chat", help="Generation models: apply the tokenizer's chat template.")] = False,
    fmt: FormatOpt = OutputFormat.text,
) -> None:
    """Send one request: the manifest's golden sample (default), raw --text/--image, --input files, or --random.

    With the golden sample the answer is compared with the PyTorch reference and the command fails (exit 1)
    when the max abs difference exceeds the sample's tolerance.

    Examples:

        tritonrepo infer minilm

        tritonrepo infer classifier --text "great movie" --text "awful plot"

        tritonrepo infer vit --image cat.jpg

        tritonrepo infer gpt2 --text "Once upon a time" --max-tokens 32 --stream

        tritonrepo infer bert --protocol grpc --input input_ids=ids.npy --input attention_mask=mask.npy
    """
    url = url or ("127.0.0.1:8001" if protocol == Protocol.grpc else "127.0.0.1:8000")
    cfg_path = Path(repo) / model
    if not inputs and not random and is_generation_model(cfg_path):
        ok = infer_generation(
            model, cfg_path, url, protocol.value, texts=text or [], images=image or [], audios=audio or [],
            stream=stream, max_tokens=max_tokens, sampling=sampling, chat=chat, fmt=fmt,
        )
        if not ok:
            raise typer.Exit(1)
        return
    if audio or stream:
        raise TritonRepoError("--audio and --stream are for generation models", f"'{model}' is not one")
    golden = None
    if text or image:
        arrays = raw_inputs(read_config(Path(repo) / model), text or [], image or [])
    elif inputs:
        arrays = _load_inputs(inputs)
    elif random:
        arrays = random_inputs(read_config(Path(repo) / model))
    else:
        golden = golden_sample(Path(repo) / model)
        arrays = golden.inputs
    outputs = send(url, model, arrays, protocol=protocol.value)
    diff = max_abs_diff(outputs, golden.outputs, golden.valid) if golden is not None else None
    atol = golden.atol if golden is not None else 0.0
    data = {
        "model": model,
        "outputs": {
            k: {"dtype": str(v.dtype), "shape": list(v.shape), "values": [_plain(x) for x in v.reshape(-1)[:8]]}
            for k, v in outputs.items()
        },
        "max_abs_diff": diff,
        "atol": atol if golden is not None else None,
    }

    def render() -> None:
        rows = [[k, v.dtype, list(v.shape), _preview(v)] for k, v in outputs.items()]
        console.print(table(f"{model} @ {url} ({protocol.value})", ["output", "dtype", "shape", "first values"], rows))
        if diff is not None:
            verdict = "[green]matches[/]" if diff <= atol else "[red]DRIFT[/]"
            console.print(f"golden sample: max abs difference {diff:.3g} (atol {atol:g}) {verdict}")

    emit(fmt, data, render)
    if diff is not None and not diff <= atol:
        raise typer.Exit(1)


def _plain(x):
    return x.decode("utf-8", "replace") if isinstance(x, bytes) else x.item() if hasattr(x, "item") else x


def _preview(v: np.ndarray) -> str:
    if v.dtype == object:
        return ", ".join(str(_plain(x)) for x in v.reshape(-1)[:6])
    return np.array2string(v.reshape(-1)[:6], precision=5)
