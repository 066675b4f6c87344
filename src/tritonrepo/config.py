"""Model configuration (``config.pbtxt``) through Triton's own protobuf schema.

Configs are built as :class:`tritonclient.grpc.model_config_pb2.ModelConfig` messages and written and read
with :mod:`google.protobuf.text_format`; no string templates. Schema: Triton's ``model_config.proto``
(docs: ``docs/user_guide/model_configuration.md`` in triton-inference-server/server).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from tritonrepo._proto.model_config import model_config_pb2 as mc  # not tritonclient.grpc: no grpc import

from tritonrepo.errors import TritonRepoError

CONFIG_FILENAME = "config.pbtxt"


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output as Triton sees it.

    Attributes:
        name: tensor name, exactly as the backend knows it (ONNX graph name, Python-backend name).
        data_type: a ``model_config_pb2.DataType`` value, e.g. ``mc.TYPE_INT64``.
        dims: the shape *without* the batch dimension when the model batches (``max_batch_size > 0``);
            ``-1`` marks a variable-size dimension. Triton requires at least one dim (CORE-IO-03).
    """

    name: str
    data_type: int
    dims: tuple[int, ...]


def machine_cores() -> int:
    """CPU cores this process may use (``sched_getaffinity``, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


#: Default ``dynamic_batching.max_queue_delay_microseconds``: long enough for requests arriving together
#: (a client's concurrent calls) to meet in one batch, short against a model's milliseconds of compute.
DEFAULT_QUEUE_DELAY_US = 100


def machine_defaults(device: str = "cpu", cores: int | None = None) -> tuple[int, int]:
    """``(instance_count, threads per instance)`` for this machine: the rule ``ModelSettings`` applies.

    CPU: one instance below 8 cores (two Python stubs or ONNX Runtime sessions would only contend), else two; each
    instance gets ``cores // instances`` intra-op threads (``inter_op_thread_count`` 1: the graphs are sequential).
    GPU: one instance, threads left to the backend (0).
    """
    if device == "gpu":
        return 1, 0
    cores = cores or machine_cores()
    instances = 1 if cores < 8 else 2
    return instances, max(1, cores // instances)


@dataclass
class ModelSettings:
    """Scheduling and placement choices for a generated config.

    Attributes:
        max_batch_size: ``> 0`` when dim 0 of every tensor is the batch; 0 for a non-batching model.
        dynamic_batching: add ``dynamic_batching {}`` (only meaningful with ``max_batch_size > 0``).
        instance_count: instances per instance group (``instance_group.count``); ``None``: from the machine
            (:func:`machine_defaults`).
        device: ``"cpu"`` -> ``KIND_CPU``, ``"gpu"`` -> ``KIND_GPU``.
        parameters: string ``parameters`` passed to the backend (Python-backend models read them).
        threads: intra-op threads per instance: ONNX Runtime's ``intra_op_thread_count`` parameter (with
            ``inter_op_thread_count`` 1), or ``torch_threads`` for the PyTorch Python-backend model; ``None``: from
            the machine; 0: leave to the backend.
        max_queue_delay_us: ``dynamic_batching.max_queue_delay_microseconds``; ``None``: ``DEFAULT_QUEUE_DELAY_US``.
        preferred_batch_sizes: ``dynamic_batching.preferred_batch_size`` (empty: none).
        pad_token_id: the tokenizer's pad id, written as the ``pad_token_id`` parameter of Python-backend models
            that batch requests of different lengths (``batch_padding``; see ``triton_models/runtime.py``).
        batch_padding: let batching Python-backend models with an ``attention_mask`` input pad within a batch.
    """

    max_batch_size: int = 8
    dynamic_batching: bool = True
    instance_count: int | None = None
    device: str = "cpu"
    parameters: dict[str, str] = field(default_factory=dict)
    threads: int | None = None
    max_queue_delay_us: int | None = None
    preferred_batch_sizes: tuple[int, ...] = ()
    pad_token_id: int | None = None
    batch_padding: bool = True

    def resolved(self) -> tuple[int, int]:
        """``(instance_count, threads)`` with ``None`` replaced by the machine rule (:func:`machine_defaults`)."""
        instances, threads = machine_defaults(self.device)
        count = self.instance_count if self.instance_count is not None else instances
        if self.threads is not None:
            threads = self.threads
        elif self.instance_count is not None and self.device == "cpu":
            threads = max(1, machine_cores() // max(1, count))
        return count, threads


def build_config(
    name: str,
    *,
    backend: str,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    settings: ModelSettings,
    platform: str = "",
    default_model_filename: str = "",
) -> mc.ModelConfig:
    """Build a ``ModelConfig`` for one model.

    Args:
        name: the model name (must equal its directory name, CORE-NAME-01).
        backend: ``"onnxruntime"``, ``"python"``, ...
        inputs, outputs: tensors *without* the batch dim when ``settings.max_batch_size > 0``.
        settings: batching, instances, device and parameters.
        platform: optional platform string (``"onnxruntime_onnx"`` for ONNX).
        default_model_filename: set when the model file is not the backend's default.

    Returns:
        The message; write it with :func:`write_config`.

    Raises:
        TritonRepoError: on a negative ``max_batch_size``, a non-positive instance count or an unknown device.
    """
    if settings.max_batch_size < 0:
        raise TritonRepoError(
            f"max_batch_size must be >= 0, got {settings.max_batch_size}",
            "use 0 for a model that does not batch",
        )
    instance_count, threads = settings.resolved()
    if instance_count < 1:
        raise TritonRepoError(f"instance count must be >= 1, got {instance_count}")
    if threads < 0:
        raise TritonRepoError(f"threads must be >= 0, got {threads}", "0 leaves the thread count to the backend")
    kinds = {"cpu": mc.ModelInstanceGroup.KIND_CPU, "gpu": mc.ModelInstanceGroup.KIND_GPU}
    if settings.device not in kinds:
        raise TritonRepoError(f"unknown device {settings.device!r}", "use cpu or gpu")
    cfg = mc.ModelConfig(name=name, backend=backend, max_batch_size=settings.max_batch_size)
    if platform:
        cfg.platform = platform
    if default_model_filename:
        cfg.default_model_filename = default_model_filename
    for spec in inputs:
        cfg.input.add(name=spec.name, data_type=spec.data_type, dims=list(spec.dims))
    for spec in outputs:
        cfg.output.add(name=spec.name, data_type=spec.data_type, dims=list(spec.dims))
    cfg.instance_group.add(kind=kinds[settings.device], count=instance_count)
    if settings.dynamic_batching and settings.max_batch_size > 0:
        cfg.dynamic_batching.SetInParent()
        delay = DEFAULT_QUEUE_DELAY_US if settings.max_queue_delay_us is None else settings.max_queue_delay_us
        if delay:
            cfg.dynamic_batching.max_queue_delay_microseconds = delay
        cfg.dynamic_batching.preferred_batch_size.extend(
            b for b in settings.preferred_batch_sizes if b <= settings.max_batch_size)
    params = dict(_performance_parameters(backend, settings, inputs, threads))
    params.update(settings.parameters)
    if params.get("batch_padding") == "true":
        # Triton's dynamic batcher puts requests of different shapes in one batch only for ragged inputs
        # (model_config.proto ModelInput.allow_ragged_batch); the runtime pads them within the batch.
        for t in cfg.input:
            if t.dims[:1] == [-1]:
                t.allow_ragged_batch = True
    for key, value in params.items():
        cfg.parameters[key].string_value = value
    return cfg


def _performance_parameters(backend: str, settings: ModelSettings, inputs: Sequence[TensorSpec], threads: int):
    """Thread and padding parameters for the backend (explicit ``settings.parameters`` win).

    ``onnxruntime``: ``intra_op_thread_count`` / ``inter_op_thread_count`` (read by the native backend,
    onnxruntime_backend ``onnxruntime.cc`` ModelState, and by tritonrepo's Python-based one). ``python``: the
    PyTorch model's ``torch_threads``; ``batch_padding`` / ``pad_token_id`` for batching models with an
    ``attention_mask`` sequence input (``triton_models/runtime.py``).
    """
    if threads and settings.device == "cpu":
        if backend == "onnxruntime":
            yield "intra_op_thread_count", str(threads)
            yield "inter_op_thread_count", "1"
        elif backend == "python" and "auto_class" in settings.parameters:
            yield "torch_threads", str(threads)
    if backend == "python" and settings.batch_padding and settings.max_batch_size > 0 and any(
        t.name == "attention_mask" and t.dims[:1] == (-1,) for t in inputs
    ):
        yield "batch_padding", "true"
        if settings.pad_token_id is not None:
            yield "pad_token_id", str(settings.pad_token_id)


def config_to_text(cfg: mc.ModelConfig) -> str:
    """Serialise a config as protobuf text format.

    ``text_format`` omits fields equal to their default, but a non-batching model should say
    ``max_batch_size: 0`` explicitly (readers and Triton's docs expect it), so the message is printed in two
    parts around that field, in field-number order (name, platform, version_policy, max_batch_size, rest).
    """
    head = mc.ModelConfig()
    head.name = cfg.name
    head.platform = cfg.platform
    if cfg.HasField("version_policy"):
        head.version_policy.CopyFrom(cfg.version_policy)
    tail = mc.ModelConfig()
    tail.CopyFrom(cfg)
    tail.ClearField("name")
    tail.ClearField("platform")
    tail.ClearField("version_policy")
    tail.ClearField("max_batch_size")
    middle = f"max_batch_size: {cfg.max_batch_size}\n"
    return text_format.MessageToString(head) + middle + text_format.MessageToString(tail)


class ConfigParseError(TritonRepoError):
    """A config that does not parse; ``line``/``col`` are 1-based (0 when unknown), ``detail`` is protobuf's text."""

    def __init__(self, message: str, hint: str, line: int, col: int, detail: str) -> None:
        super().__init__(message, hint)
        self.line, self.col, self.detail = line, col, detail


def parse_config(text: str, path: str | os.PathLike[str] = CONFIG_FILENAME) -> mc.ModelConfig:
    """Parse protobuf text format into a ``ModelConfig``.

    Raises:
        TritonRepoError: ``path:line:col: message`` for any syntax or schema error (unknown field, bad enum,
            a non-repeated field given twice, two members of a oneof). Triton itself only says
            ``failed to read text proto from <path>`` (core/src/filesystem/api.cc ReadTextProto).
    """
    cfg = mc.ModelConfig()
    try:
        text_format.Parse(text, cfg)
    except text_format.ParseError as exc:
        line, col = exc.GetLine(), exc.GetColumn()
        msg = str(exc)
        prefix = f"{line}:{col} : "
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
        msg = re.sub(r"^'[^\n]*?': (?=Enum type)", "", msg)  # protobuf repeats the offending line for enums
        where = f"{path}:{line}:{col}" if line else f"{path}"
        raise ConfigParseError(
            f"{where}: {msg}", "fix the syntax; Triton refuses configs that do not parse", line or 0, col or 0, msg
        ) from None
    return cfg


def read_config(path: str | os.PathLike[str]) -> mc.ModelConfig:
    """Read ``config.pbtxt`` (or the model directory holding it). Raises :class:`TritonRepoError`."""
    p = Path(path)
    if p.is_dir():
        p = p / CONFIG_FILENAME
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TritonRepoError(f"{p}: cannot read model configuration: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise TritonRepoError(f"{p}: not UTF-8 text at byte {exc.start}") from None
    return parse_config(text, p)


def write_config(cfg: mc.ModelConfig, path: str | os.PathLike[str]) -> Path:
    """Write ``cfg`` to ``path`` (a file, or a directory that receives ``config.pbtxt``). Returns the file."""
    p = Path(path)
    if p.is_dir():
        p = p / CONFIG_FILENAME
    p.write_text(config_to_text(cfg), encoding="utf-8")
    return p


def tensor_specs(tensors: Iterable[mc.ModelInput] | Iterable[mc.ModelOutput]) -> list[TensorSpec]:
    """Config inputs or outputs as :class:`TensorSpec` values (dims as written, batch dim excluded)."""
    return [TensorSpec(t.name, t.data_type, tuple(t.dims)) for t in tensors]


def string_parameters(cfg: mc.ModelConfig) -> Mapping[str, str]:
    """The config's ``parameters`` as a plain ``{key: string_value}`` dict."""
    return {k: v.string_value for k, v in cfg.parameters.items()}
