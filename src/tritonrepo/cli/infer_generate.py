"""``tritonrepo infer`` for generation models (decoupled, ``text_output``): golden replay, --text, --stream."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tritonrepo.cli._cli_utils import OutputFormat, console, emit
from tritonrepo.client import generate, generate_grpc_stream, generate_request, generate_stream
from tritonrepo.config import read_config
from tritonrepo.errors import TritonRepoError
from tritonrepo.manifest import read_manifest, tensor_to_array


def is_generation_model(model_dir: Path) -> bool:
    """A decoupled model answering ``text_output`` (built by :mod:`tritonrepo.generation`)."""
    if not (Path(model_dir) / "config.pbtxt").is_file():
        return False
    cfg = read_config(model_dir)
    return cfg.model_transaction_policy.decoupled and any(o.name == "text_output" for o in cfg.output)


def _golden(model_dir: Path) -> list[tuple[dict, str]]:
    manifest = read_manifest(model_dir)
    if manifest is None or not manifest.versions or not manifest.versions[-1].samples:
        raise TritonRepoError(f"{model_dir}: no tritonrepo manifest with golden samples", "pass --text")
    out = []
    for sample in manifest.versions[-1].samples:
        ins = {t.name: tensor_to_array(t).reshape(-1)[0] for t in sample.inputs}
        body = {k: (v if k in ("audio", "image") else v.decode() if isinstance(v, bytes)
                    else v.item() if hasattr(v, "item") else v) for k, v in ins.items()}
        want = tensor_to_array(sample.outputs[0]).reshape(-1)[0].decode()
        out.append((body, want))
    return out


def infer_generation(model: str, model_dir: Path, url: str, protocol: str, *, texts: list[str], images: list[Path],
                     audios: list[Path], stream: bool, max_tokens: int | None, sampling: str | None, chat: bool,
                     fmt: OutputFormat) -> bool:
    """Send generation requests and print the text; returns ``False`` when a golden sample's text differs.

    Without ``texts``/``images``/``audios`` the manifest's golden samples (transformers' greedy text) are
    replayed and compared exactly. Files (``--image``/``--audio``) go over gRPC (binary ``BYTES`` inputs);
    text goes to ``/generate`` (``/generate_stream`` with ``stream``) over HTTP, or the gRPC stream.

    Raises:
        TritonRepoError: bad ``--sampling`` JSON, unreadable files, or the server's error.
    """
    params = None
    if sampling:
        try:
            params = json.loads(sampling)
        except json.JSONDecodeError as exc:
            raise TritonRepoError(f"--sampling is not valid JSON: {exc}") from None
    jobs: list[tuple[str, dict, str | None]] = []
    for text in texts:
        jobs.append((text, generate_request(text, max_tokens=max_tokens, sampling=params, chat=chat), None))
    for flag, key, files in (("--image", "image", images), ("--audio", "audio", audios)):
        for f in files:
            try:
                data = Path(f).read_bytes()
            except OSError as exc:
                raise TritonRepoError(f"{flag}: cannot read {f}: {exc.strerror}") from None
            body = {key: data}
            if max_tokens is not None:
                body["max_tokens"] = max_tokens
            jobs.append((str(f), body, None))
    if not jobs:
        jobs = [(body.get("text_input", "golden sample"), body, want) for body, want in _golden(model_dir)]
    results = []
    live = stream and fmt == OutputFormat.text
    for label, body, want in jobs:
        binary = any(isinstance(v, bytes) for v in body.values())
        if binary and protocol != "grpc":  # raw bytes do not fit the generate extension's JSON
            raise TritonRepoError(f"{label}: audio/image bytes are sent over gRPC", "pass --protocol grpc")
        if live:
            console.print(f"[bold]{label}[/] ->", end=" ")
        if stream or binary or protocol == "grpc":
            if protocol == "http" and not binary:
                pieces = generate_stream(url, model, body)
            else:
                pieces = generate_grpc_stream(url, model, body, stream=stream)
            text = ""
            for piece in pieces:
                text += piece
                if live:
                    sys.stdout.write(piece)
                    sys.stdout.flush()
            if live:
                sys.stdout.write("\n")
        else:
            text = generate(url, model, body)
        results.append({"input": label, "text_output": text, "expected": want,
                        "matches": None if want is None else text == want})

    def render() -> None:
        for r in results:
            if not live:
                console.print(f"[bold]{r['input']}[/] -> {r['text_output']!r}")
            if r["matches"] is not None:
                verdict = "[green]matches[/]" if r["matches"] else f"[red]DIFFERS[/] (expected {r['expected']!r})"
                console.print(f"golden sample (transformers' greedy text): {verdict}")

    emit(fmt, {"model": model, "results": results}, render)
    return all(r["matches"] is not False for r in results)
