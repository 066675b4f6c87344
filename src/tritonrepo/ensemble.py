"""Ensembles: chain models of a repository into one ``platform: "ensemble"`` model.

Wiring, for each step in order and each of its inputs:

1. an explicit map ``CONSUMER.INPUT=PRODUCER.OUTPUT`` (``PRODUCER`` may be ``ensemble`` for an ensemble input);
2. else the output of the same name of the nearest earlier step;
3. else, for the first step only, an ensemble input of that name.

The ensemble's outputs are the last step's outputs unless named (``OUTPUT`` or ``STEP.OUTPUT``). An ensemble output
may not also be an input of a later step: Triton's ensemble scheduler prunes the steps a request does not need by
walking back from the *unrequested* ensemble outputs, and treats such a tensor as unneeded although a step consumes
it (and a requested one as unneeded once its consumers are pruned), so it prunes the step that produces it and a
client asking for only some outputs gets "unexpected deadlock, at least one output is not set while no more ensemble
steps can be made" (core ``ensemble_scheduler.cc``, ``EnsembleContext`` constructor, "Prune ensemble"). Each edge is
checked as Triton checks it when it loads the ensemble (core ``ensemble_utils.cc`` ``ValidateTensorConsistency``
and ``ValidateEnsembleConfig``; rules CORE-MAP-06/07/08 in shared/triton-load-rules.md): the same data type, shapes
equal with ``-1`` as a wildcard (compared with the batch dim when one side batches and the other does not), and
the ensemble's ``max_batch_size`` no larger than any step's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tritonrepo._proto.model_config import model_config_pb2 as mc  # not tritonclient.grpc: no grpc import

from tritonrepo.config import read_config
from tritonrepo.dtypes import triton_type_name
from tritonrepo.errors import TritonRepoError

ENSEMBLE_INPUT = "ensemble"


@dataclass
class _Tensor:
    """An ensemble tensor: who declared it first (for messages) and its type and full shape."""

    name: str
    model: str
    data_type: int
    dims: tuple[int, ...]
    max_batch_size: int


def full_shape(dims, max_batch_size: int) -> tuple[int, ...]:
    """``dims`` with the batch dimension (``-1``) in front when the model batches."""
    return (-1, *dims) if max_batch_size > 0 else tuple(dims)


def shape_str(dims) -> str:
    """``[-1,4]``, as Triton prints shapes."""
    return "[" + ",".join(str(d) for d in dims) + "]"


def _compatible(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return len(a) == len(b) and all(x == y or x == -1 or y == -1 for x, y in zip(a, b))


def shapes_consistent(a_dims, a_max_batch_size: int, b_dims, b_max_batch_size: int) -> bool:
    """Two uses of one ensemble tensor agree: dims equal (``-1`` matches anything) without the batch dimension,
    or else with it (core ``ensemble_utils.cc`` ValidateTensorConsistency, rule CORE-MAP-07)."""
    return _compatible(tuple(a_dims), tuple(b_dims)) or _compatible(
        full_shape(a_dims, a_max_batch_size), full_shape(b_dims, b_max_batch_size))


@dataclass
class EnsemblePlan:
    """A wired ensemble before it becomes a config.

    Attributes:
        name: ensemble name.
        steps: step model names in order.
        input_maps, output_maps: per step ``{model tensor: ensemble tensor}``.
        inputs, outputs: ensemble inputs/outputs as ``(name, data_type, dims)`` (dims without batch when batching).
        max_batch_size: the ensemble's ``max_batch_size``.
    """

    name: str
    steps: list[str]
    input_maps: list[dict[str, str]] = field(default_factory=list)
    output_maps: list[dict[str, str]] = field(default_factory=list)
    inputs: list[tuple[str, int, tuple[int, ...]]] = field(default_factory=list)
    outputs: list[tuple[str, int, tuple[int, ...]]] = field(default_factory=list)
    max_batch_size: int = 0
    #: ensemble inputs every consumer takes as ``optional`` (they become ``optional: true`` inputs)
    optional_inputs: set[str] = field(default_factory=set)

    def to_config(self) -> mc.ModelConfig:
        """The ensemble's ``ModelConfig`` (``platform: "ensemble"``, ``ensemble_scheduling``)."""
        cfg = mc.ModelConfig(name=self.name, platform="ensemble", max_batch_size=self.max_batch_size)
        for n, t, d in self.inputs:
            cfg.input.add(name=n, data_type=t, dims=list(d), optional=n in self.optional_inputs)
        for n, t, d in self.outputs:
            cfg.output.add(name=n, data_type=t, dims=list(d))
        for model, imap, omap in zip(self.steps, self.input_maps, self.output_maps):
            step = cfg.ensemble_scheduling.step.add(model_name=model, model_version=-1)
            for k, v in imap.items():
                step.input_map[k] = v
            for k, v in omap.items():
                step.output_map[k] = v
        return cfg


def parse_map(spec: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """``"post.mask=pre.attention_mask"`` -> ``(("post", "mask"), ("pre", "attention_mask"))``.

    Raises:
        TritonRepoError: the spec is not ``MODEL.TENSOR=MODEL.TENSOR``.
    """
    left, sep, right = spec.partition("=")
    parts = [p.partition(".") for p in (left, right)]
    if not sep or any(not a or not b for a, _, b in parts):
        raise TritonRepoError(f"--map {spec!r}: expected CONSUMER.INPUT=PRODUCER.OUTPUT", "e.g. --map post.mask=pre.attention_mask")
    (a, _, b), (c, _, d) = parts
    return (a, b), (c, d)


def plan_ensemble(
    name: str,
    steps: list[str],
    configs: dict[str, mc.ModelConfig],
    *,
    maps: dict[tuple[str, str], tuple[str, str]] | None = None,
    outputs: list[str] | None = None,
    max_batch_size: int | None = None,
) -> EnsemblePlan:
    """Wire ``steps`` (model names, in order) into an ensemble and check every edge.

    Args:
        name: ensemble name.
        steps: the models, first to last (a model may appear once).
        configs: the step models' configs by name.
        maps: explicit wiring ``{(consumer, input): (producer, output)}``.
        outputs: ensemble outputs, ``OUTPUT`` or ``STEP.OUTPUT`` (default: the last step's outputs).
        max_batch_size: the ensemble's (default: the smallest of the steps').

    Raises:
        TritonRepoError: a missing tensor, a dtype or shape mismatch, an unknown map target, a batch size rule.
    """
    maps = dict(maps or {})
    if not steps:
        raise TritonRepoError(f"ensemble '{name}' needs at least one --step")
    if len(set(steps)) != len(steps):
        raise TritonRepoError(f"ensemble '{name}': a model may be a step only once", "list each model once")
    if name in steps:
        raise TritonRepoError(f"ensemble '{name}' cannot be one of its own steps")
    for (consumer, inp), (producer, out) in maps.items():
        if consumer not in steps:
            raise TritonRepoError(f"--map {consumer}.{inp}: '{consumer}' is not a step", f"steps are: {', '.join(steps)}")
        if inp not in {t.name for t in configs[consumer].input}:
            raise TritonRepoError(f"--map {consumer}.{inp}: model '{consumer}' has no input '{inp}'")
        if producer != ENSEMBLE_INPUT and (producer not in steps or steps.index(producer) >= steps.index(consumer)):
            raise TritonRepoError(f"--map {consumer}.{inp}={producer}.{out}: '{producer}' is not an earlier step")
        if producer != ENSEMBLE_INPUT and out not in {t.name for t in configs[producer].output}:
            raise TritonRepoError(f"--map {consumer}.{inp}={producer}.{out}: model '{producer}' has no output '{out}'")

    mbs_values = [configs[s].max_batch_size for s in steps]
    if any(m > 0 for m in mbs_values) and any(m == 0 for m in mbs_values):
        raise TritonRepoError(
            f"ensemble '{name}': steps mix batching and non-batching models "
            f"({', '.join(f'{s}: {m}' for s, m in zip(steps, mbs_values))})",
            "give every step the same batching (--max-batch-size 0 for all, or > 0 for all)",
        )
    smallest = min(mbs_values)
    mbs = smallest if max_batch_size is None else max_batch_size
    for s, m in zip(steps, mbs_values):
        if m != 0 and m < mbs:
            raise TritonRepoError(
                f"ensemble {name} allows maximum batch size {mbs}, but it contains model {s} which only allows "
                f"maximum batch size to be {m}",
                f"use --max-batch-size {smallest} or less",
            )

    plan = EnsemblePlan(name=name, steps=list(steps), max_batch_size=mbs)
    tensors: dict[str, _Tensor] = {}
    produced: dict[tuple[str, str], str] = {}  # (step, output) -> ensemble tensor, once used

    def use(tensor: _Tensor, model: str, io: mc.ModelInput | mc.ModelOutput, mbs_: int) -> None:
        if tensor.data_type != io.data_type:
            raise TritonRepoError(
                f"in ensemble {name}, ensemble tensor {tensor.name}: inconsistent data type: "
                f"{triton_type_name(tensor.data_type)} is inferred from model {tensor.model} while "
                f"{triton_type_name(io.data_type)} is inferred from model {model}",
                "convert in a pre/post-processing step or fix the producing model's output data_type",
            )
        if not shapes_consistent(tensor.dims, tensor.max_batch_size, io.dims, mbs_):
            a, b = full_shape(tensor.dims, tensor.max_batch_size), full_shape(io.dims, mbs_)
            raise TritonRepoError(
                f"in ensemble {name}, ensemble tensor {tensor.name}: inconsistent shape: {shape_str(a)} is "
                f"inferred from model {tensor.model} while {shape_str(b)} is inferred from model {model}",
                "make the dims agree (-1 matches any size)",
            )

    def produce(step_index: int, out: str) -> _Tensor:
        step = steps[step_index]
        key = (step, out)
        if key not in produced:
            tname = out if out not in tensors else f"{step}.{out}"
            io = next(t for t in configs[step].output if t.name == out)
            tensors[tname] = _Tensor(tname, step, io.data_type, tuple(io.dims), configs[step].max_batch_size)
            produced[key] = tname
        return tensors[produced[key]]

    for i, step in enumerate(steps):
        cfg = configs[step]
        imap: dict[str, str] = {}
        for inp in cfg.input:
            explicit = maps.get((step, inp.name))
            if explicit and explicit[0] == ENSEMBLE_INPUT:
                tensor = _ensemble_input(plan, tensors, explicit[1], inp, step, cfg.max_batch_size)
            elif explicit:
                tensor = produce(steps.index(explicit[0]), explicit[1])
            else:
                earlier = [j for j in range(i) if inp.name in {o.name for o in configs[steps[j]].output}]
                if earlier:
                    tensor = produce(earlier[-1], inp.name)
                elif i == 0 or inp.name in {n for n, _, _ in plan.inputs}:
                    tensor = _ensemble_input(plan, tensors, inp.name, inp, step, cfg.max_batch_size)
                elif inp.optional:
                    continue
                else:
                    raise TritonRepoError(
                        f"ensemble '{name}': input '{inp.name}' of step '{step}' is not produced by an earlier step "
                        f"and is not an ensemble input",
                        f"map it: --map {step}.{inp.name}=<earlier step>.<output>",
                    )
            use(tensor, step, inp, cfg.max_batch_size)
            imap[inp.name] = tensor.name
        plan.input_maps.append(imap)
        plan.output_maps.append({})

    wanted = outputs or [f"{steps[-1]}.{o.name}" for o in configs[steps[-1]].output]
    for spec in wanted:
        step, _, out = spec.rpartition(".")
        candidates = [j for j, s in enumerate(steps) if (not step or s == step) and out in {o.name for o in configs[s].output}]
        if not candidates:
            raise TritonRepoError(f"ensemble '{name}': no step has an output '{spec}'", "name OUTPUT or STEP.OUTPUT")
        j = candidates[-1]
        if (steps[j], out) in produced and produced[(steps[j], out)] != out:
            raise TritonRepoError(f"ensemble '{name}': output name '{out}' is already an ensemble tensor")
        tensor = produce(j, out)
        if tensor.name in {n for n, _, _ in plan.inputs}:
            raise TritonRepoError(f"ensemble '{name}': '{tensor.name}' would be both an ensemble input and output")
        plan.outputs.append((tensor.name, tensor.data_type, tensor.dims))
    consumed = {t: steps[i] for i, imap in enumerate(plan.input_maps) for t in imap.values()}
    for tname, _, _ in plan.outputs:
        if tname in consumed:
            producer = tensors[tname].model
            raise TritonRepoError(
                f"ensemble '{name}': output '{tname}' of step '{producer}' is also an input of step "
                f"'{consumed[tname]}'; Triton then answers requests for only some outputs with 'unexpected deadlock' "
                f"(its ensemble pruning drops step '{producer}')",
                f"drop this output (clients can call model '{producer}' directly for it)",
            )
    for (step, out), tname in produced.items():
        plan.output_maps[steps.index(step)][out] = tname
    for i, step in enumerate(steps):
        if not plan.output_maps[i]:
            raise TritonRepoError(
                f"ensemble '{name}': no output of step '{step}' is used by a later step or as an ensemble output",
                "Triton requires every step to have an output_map; drop the step or add --output",
            )
    return plan


def _ensemble_input(plan: EnsemblePlan, tensors: dict, tname: str, io, model: str, mbs: int) -> _Tensor:
    """The ensemble input ``tname`` (created at its first consumer); optional while every consumer's input is."""
    if tname not in tensors:
        tensors[tname] = _Tensor(tname, model, io.data_type, tuple(io.dims), mbs)
        plan.inputs.append((tname, io.data_type, tuple(io.dims)))
        if getattr(io, "optional", False):
            plan.optional_inputs.add(tname)
    elif not getattr(io, "optional", False):
        plan.optional_inputs.discard(tname)
    return tensors[tname]


def load_step_configs(repo: Path, steps: list[str]) -> dict[str, mc.ModelConfig]:
    """Read each step's ``config.pbtxt``. Raises :class:`TritonRepoError` for a model not in ``repo``."""
    out = {}
    for s in steps:
        if not (repo / s / "config.pbtxt").is_file():
            raise TritonRepoError(f"step model '{s}' is not in {repo}", "add it first (tritonrepo add-hf ...)")
        out[s] = read_config(repo / s)
    return out
