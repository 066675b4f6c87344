"""``validate --live``: load the repository in a real Triton server and replay golden samples.

The server runs in explicit model-control mode; each model is loaded through the repository API, ensembles after
their steps. For errors found at poll time Triton's load API says only ``failed to poll from model repository``;
the reason is in the server log, so the log lines that name the model are reported with it. Models whose offline
findings say the 2.51 server would hang (TR106, TR108 on a Python model, TR109) are not sent to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tritonrepo.errors import TritonRepoError

HANGS = {"TR106", "TR108", "TR109"}


@dataclass
class LiveResult:
    """Per-model load results and golden-sample replays from the real server."""

    loaded: dict[str, bool] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    replays: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(self.loaded.values()) and not self.skipped and all(d <= a for _, d, a in self.replays)

    def render(self, console) -> None:
        console.print("[bold]live: real Triton server[/]")
        for model, ok in self.loaded.items():
            status = "[green]loaded[/]" if ok else f"[red]refused:[/] {self.errors.get(model, '')}"
            console.print(f"  {model}: {status}", highlight=False, soft_wrap=True)
        for model, why in self.skipped.items():
            console.print(f"  {model}: [red]not loaded[/] ({why})", highlight=False)
        for model, diff, atol in self.replays:
            verdict = "[green]ok[/]" if diff <= atol else "[red]DRIFT[/]"
            console.print(f"  {model}: golden sample max abs difference {diff:.3g} (atol {atol:g}) {verdict}", highlight=False)


def server_verdict(repo: Path, timeout: float = 60.0, engine=None) -> tuple[bool, str]:
    """Does the real server load every model of ``repo``? ``(loads, the server's error summary)``.

    The server starts with model-control ``none`` (load everything) and ``--exit-on-error``; not being ready within
    ``timeout`` seconds counts as not loading (the 2.51 server hangs on some Python-backend failures).
    """
    from tritonrepo.server import TritonServer  # noqa: PLC0415

    server = TritonServer(repo, engine=engine)
    try:
        server.start(timeout=timeout)
    except TritonRepoError as exc:
        return False, exc.message
    server.stop()
    return True, ""


def live_check(repo: Path, server_binary=None, timeout: float = 120.0) -> LiveResult:
    """Load each model of ``repo`` in a real server (explicit mode) and replay manifests' golden samples."""
    import tritonclient.http as http  # noqa: PLC0415
    from tritonclient.utils import InferenceServerException  # noqa: PLC0415

    from tritonrepo.client import golden_sample, infer, max_abs_diff  # noqa: PLC0415
    from tritonrepo.manifest import read_manifest  # noqa: PLC0415
    from tritonrepo.server import TritonServer, find_engine  # noqa: PLC0415
    from tritonrepo.validate import dependency_order, load_repository, validate_repository  # noqa: PLC0415

    repo = Path(repo)
    offline = validate_repository(repo)
    result = LiveResult()
    hanging = {f.model for f in offline.errors if f.code in HANGS}
    for model in sorted(hanging):
        result.skipped[model] = "offline checks say the server would hang loading it"
    order = [m for m in dependency_order(load_repository(repo)) if m not in hanging]
    with TritonServer(repo, engine=find_engine(server_binary), model_control="explicit") as server:
        client = http.InferenceServerClient(server.http_url, network_timeout=timeout, connection_timeout=timeout)
        for model in order:
            try:
                client.load_model(model)
                result.loaded[model] = True
            except InferenceServerException as exc:
                result.loaded[model] = False
                lines = [ln.split("] ", 1)[-1] for ln in server.log().splitlines() if ln.startswith("E") and model in ln]
                result.errors[model] = " | ".join([exc.message(), *lines[-2:]])
        for model in order:
            if not result.loaded.get(model) or read_manifest(repo / model) is None:
                continue
            try:
                g = golden_sample(repo / model)
            except TritonRepoError:
                continue
            got = infer(server.http_url, model, g.inputs)
            result.replays.append((model, max_abs_diff(got, g.outputs, g.valid), g.atol))
    return result
