"""TR4xx: ensembles, mirroring ValidateEnsembleSchedulingConfig (model_config_utils.cc), the dependency graph
(model_repository_manager.cc) and ValidateTensorMapping/Consistency (ensemble_scheduler/ensemble_utils.cc)."""

from __future__ import annotations

from tritonrepo._proto.model_config import model_config_pb2 as mc  # not tritonclient.grpc: no grpc import

from tritonrepo.dtypes import triton_type_name
from tritonrepo.validate.model import RULES, ModelContext, Severity, rule
from tritonrepo.validate.rules.layout import versions_to_load

E = Severity.error


def _meta(code, name, summary, why, fix, source, example, scope="model"):
    return rule(code, name, E, summary=summary, why=why, fix=fix, source=source, example=example, scope=scope)


def _ens(ctx):
    cfg = ctx.config
    return cfg if cfg is not None and cfg.platform == "ensemble" else None


@_meta("TR401", "ensemble-scheduling-mismatch", "platform 'ensemble' without ensemble_scheduling, or ensemble_scheduling on another platform.",
       "The two go together.", "add ensemble_scheduling { step [...] } or set platform: \"ensemble\"",
       "core/src/model_config_utils.cc ValidateModelConfig / ValidateEnsembleSchedulingConfig; CORE-ENS-02/03", 'platform: "ensemble" with no ensemble_scheduling')
def scheduling(ctx: ModelContext):
    cfg = ctx.config
    if cfg is None:
        return
    if cfg.platform == "ensemble" and not cfg.HasField("ensemble_scheduling"):
        yield ("platform",), f"ensemble scheduling must be set for ensemble {ctx.model_name} whose platform is ensemble"
    elif cfg.platform != "ensemble" and cfg.HasField("ensemble_scheduling"):
        yield ("ensemble_scheduling",), (f"ensemble scheduling cannot be set for model '{ctx.model_name}' whose platform is "
                                         "not ensemble")


@_meta("TR402", "ensemble-forbidden-field", "An ensemble sets instance_group, optimization or model_warmup.",
       "Ensembles have no instances of their own.", "remove the field from the ensemble",
       "core/src/model_config_utils.cc ValidateEnsembleSchedulingConfig; CORE-ENS-04/05/06", "platform: \"ensemble\" instance_group { count: 1 }")
def forbidden(ctx: ModelContext):
    cfg = _ens(ctx)
    if cfg is None or not cfg.HasField("ensemble_scheduling"):
        return
    if len(cfg.instance_group):
        yield ("instance_group",), f"instance group should not be specified for ensemble '{ctx.model_name}'"
    elif cfg.HasField("optimization"):
        yield ("optimization",), f"optimization should not be specified for ensemble '{ctx.model_name}'"
    elif len(cfg.model_warmup):
        yield ("model_warmup",), f"model_warmup can not be specified for ensemble '{ctx.model_name}'"


@_meta("TR403", "ensemble-step-incomplete", "An ensemble has no step, or a step without model_name, input_map or output_map.",
       "Every step names a model and maps its inputs and outputs.", "complete the step",
       "core/src/model_config_utils.cc BuildEnsembleGraph; CORE-ENS-07..10", 'step { model_name: "m" input_map { key: "x" value: "x" } }')
def step_incomplete(ctx: ModelContext):
    cfg = _ens(ctx)
    if cfg is None or not cfg.HasField("ensemble_scheduling"):
        return
    steps = cfg.ensemble_scheduling.step
    if not len(steps):
        yield ("ensemble_scheduling",), f"must specify 'step' for ensemble '{ctx.model_name}'"
    for i, s in enumerate(steps):
        where = ("ensemble_scheduling", 0, "step", i)
        if not s.model_name:
            yield where, f"must specify 'model_name' in step {i} of ensemble '{ctx.model_name}'"
        elif not len(s.input_map):
            yield where, f"must specify 'input_map' in step {i} of ensemble '{ctx.model_name}'"
        elif not len(s.output_map):
            yield where, f"must specify 'output_map' in step {i} of ensemble '{ctx.model_name}'"
        else:
            continue
        return


def _complete(cfg) -> bool:
    steps = cfg.ensemble_scheduling.step
    return bool(len(steps)) and all(s.model_name and len(s.input_map) and len(s.output_map) for s in steps)


@_meta("TR404", "ensemble-dataflow", "Ensemble tensors do not flow: a tensor written twice, an unused input, an unwritten output, an unused tensor.",
       "Triton builds the data-flow graph of the ensemble and refuses dead or ambiguous tensors.",
       "map each tensor once, consume every ensemble input and intermediate tensor, produce every output",
       "core/src/model_config_utils.cc BuildEnsembleGraph / ValidateEnsembleSchedulingConfig; CORE-ENS-11..15",
       'two steps with output_map { value: "logits" }')
def dataflow(ctx: ModelContext):
    cfg = _ens(ctx)
    if cfg is None or not cfg.HasField("ensemble_scheduling") or not _complete(cfg):
        return
    name = ctx.model_name
    writers: dict[str, int] = {}
    for i, s in enumerate(cfg.ensemble_scheduling.step):
        for t in s.output_map.values():
            if t in writers:
                yield ("ensemble_scheduling", 0, "step", i), (
                    f"ensemble tensor '{t}' can appear in an output map only once for ensemble '{name}' step {i}")
                return
            writers[t] = i
    consumed = {t for s in cfg.ensemble_scheduling.step for t in s.input_map.values()}
    outputs = {o.name for o in cfg.output}
    for i, inp in enumerate(cfg.input):
        if inp.name not in consumed:
            yield ("input", i), f"ensemble input '{inp.name}' for ensemble {name}' is not used"
            return
    for i, out in enumerate(cfg.output):
        if out.name not in writers:
            yield ("output", i), f"ensemble output '{out.name}' for ensemble {name}' is not used"
            return
    # reachability from the ensemble inputs (ValidateEnsembleSchedulingConfig l.244)
    ready = {i.name for i in cfg.input}
    pending = list(cfg.ensemble_scheduling.step)
    progress = True
    while progress:
        progress = False
        for s in list(pending):
            if all(t in ready for t in s.input_map.values()):
                ready |= set(s.output_map.values())
                pending.remove(s)
                progress = True
    for i, out in enumerate(cfg.output):
        if out.name not in ready:
            missing = next((t for s in pending for t in s.input_map.values() if t not in ready), None)
            extra = f": at least one of its depending tensors, '{missing}', is not connected" if missing else ""
            yield ("output", i), f"output '{out.name}' for ensemble '{name}' is not written{extra}"
            return
    for t in writers:
        if t not in outputs and t not in consumed:
            yield ("ensemble_scheduling",), f"ensemble tensor '{t}' is unused in ensemble '{name}'"
            return


@_meta("TR405", "ensemble-step-unavailable", "A step's model is not in the repository, fails to load, is the ensemble itself (a cycle), or lacks a pinned version.",
       "The ensemble loads only after every composing model has loaded.", "add or fix the composing model; use model_version: -1 for the latest",
       "core/src/model_repository_manager/model_repository_manager.cc ConnectDependencyGraph / CircularDependencyCheck / CheckNode; CORE-DEP-01..04",
       'step { model_name: "not_there" ... }', scope="repo")
def step_unavailable(ctx: ModelContext):
    cfg = _ens(ctx)
    if cfg is None or not cfg.HasField("ensemble_scheduling") or not _complete(cfg):
        return
    repo, name = ctx.repo, ctx.model_name
    for i, s in enumerate(cfg.ensemble_scheduling.step):
        where = ("ensemble_scheduling", 0, "step", i)
        other = repo.models.get(s.model_name)
        if other is None or other.parse_failed or other.name.startswith("."):
            yield where, f"ensemble {name} contains models that are not available or ambiguous: {s.model_name}"
            return
        cycle = _cycle(repo, ctx.name, s.model_name, [ctx.name])
        if cycle:
            # DependencyGraph::CircularDependencyCheck names the start, elides the middle, and the node closing the loop
            yield where, f"circular dependency between ensembles: {ctx.name} -> ... -> {cycle[-2]} -> {ctx.name}"
            return
        if any(RULES[f.code].stage == "poll" for f in repo.errors.get(s.model_name, [])):
            # a model that fails the poll is not in the dependency graph at all
            yield where, f"ensemble {name} contains models that are not available or ambiguous: {s.model_name}"
            return
        if repo.errors.get(s.model_name):
            first = repo.errors[s.model_name][0]
            yield where, (f"ensemble '{name}' depends on '{s.model_name}' which has no loaded version. Model "
                          f"'{s.model_name}' loading failed with error: {_load_failure(other, first)}")
            return
        if s.model_version != -1 and s.model_version not in versions_to_load(other):
            yield where, f"ensemble '{name}' depends on '{s.model_name}' whose required version {s.model_version} is not loaded."
            return


#: Triton status code (Status::AsString) of the load-stage failures a composing model can have, by rule: the
#: ensemble's message quotes the model's failure as "version <v> is at UNAVAILABLE state: <Code>: <message>"
#: (model_lifecycle.cc). Observed on tritonserver 2.51: TR350 (label file, ReadTextFile) and TR320 (IO checks,
#: ValidateModelIOConfig) in tests/corpus; the Python backend's failures are Internal (autocomplete.py).
_LOAD_STATUS = {"TR350": "Internal", "TR601": "Internal", "TR602": "Internal", "TR603": "Internal", "TR604": "Internal",
                "TR650": "Internal", "TR320": "Invalid argument", "TR321": "Invalid argument",
                "TR322": "Invalid argument", "TR323": "Invalid argument", "TR330": "Invalid argument",
                "TR331": "Invalid argument", "TR340": "Invalid argument", "TR342": "Invalid argument",
                "TR344": "Invalid argument"}


def _load_failure(other: ModelContext, finding) -> str:
    """How the server quotes a composing model's failure: poll-stage failures as their message, load-stage ones
    (the model's versions are UNAVAILABLE) with the version and status code."""
    code = _LOAD_STATUS.get(finding.code)
    versions = versions_to_load(other)
    if RULES[finding.code].stage != "load" or code is None or not versions:
        return finding.message
    return f"version {max(versions)} is at UNAVAILABLE state: {code}: {finding.message}"


def _cycle(repo, start, current, path):
    if current == start:
        return [*path, start]
    ctx = repo.models.get(current)
    if ctx is None or ctx.config is None or ctx.config.platform != "ensemble" or current in path:
        return None
    for s in ctx.config.ensemble_scheduling.step:
        found = _cycle(repo, start, s.model_name, [*path, current])
        if found:
            return found
    return None


@_meta("TR406", "ensemble-mapping", "A step maps a tensor its model does not have, leaves a model input unmapped, or joins tensors of different type or shape.",
       "Triton checks every map against the composing model's config and every tensor for one data type and compatible shapes.",
       "map existing inputs/outputs; make data types equal and dims compatible (-1 matches any)",
       "core/src/ensemble_scheduler/ensemble_utils.cc ValidateTensorMapping / ValidateTensorConsistency / ValidateEnsembleConfig; CORE-MAP-01..08",
       'step { model_name: "bert" input_map { key: "ids" value: "input_ids" } } where bert has no input "ids"', scope="repo")
def mapping(ctx: ModelContext):
    cfg = _ens(ctx)
    if cfg is None or not cfg.HasField("ensemble_scheduling") or not _complete(cfg):
        return
    repo, name = ctx.repo, ctx.model_name
    mbs = cfg.max_batch_size
    # first declaration wins: ensemble inputs, then outputs, then steps in order (ValidateTensorConsistency)
    seen: dict[str, tuple[str, int, list[int], int]] = {}  # tensor -> (model, data_type, dims, max_batch_size)
    for io in [*cfg.input, *cfg.output]:
        dims = list(io.reshape.shape) if io.HasField("reshape") else list(io.dims)
        seen.setdefault(io.name, (name, io.data_type, dims, mbs))
    for i, s in enumerate(cfg.ensemble_scheduling.step):
        where = ("ensemble_scheduling", 0, "step", i)
        other = repo.models.get(s.model_name)
        if other is None or other.config is None or repo.errors.get(s.model_name):
            return
        mcfg = other.config
        m_in = {t.name: t for t in mcfg.input}
        m_out = {t.name: t for t in mcfg.output}
        if mcfg.max_batch_size != 0 and mcfg.max_batch_size < mbs:
            yield where, (f"ensemble {name} allows maximum batch size {mbs}, but it contains model {s.model_name} which "
                          f"only allows maximum batch size to be {mcfg.max_batch_size}")
            return
        for key, tensor in s.input_map.items():
            if key not in m_in:
                yield where, (f"in ensemble {name}, ensemble tensor {tensor} is mapping to non-existing input {key} in "
                              f"model {s.model_name}")
                return
        for key, t in m_in.items():
            if key not in s.input_map and not t.optional:
                yield where, f"in ensemble {name}, input {key} in model {s.model_name} is not mapped to any ensemble tensors"
                return
        for key, tensor in s.output_map.items():
            if key not in m_out:
                yield where, (f"in ensemble {name}, ensemble tensor {tensor} is mapped from non-existing output {key} in "
                              f"model {s.model_name}")
                return
        pairs = [(tensor, m_in[k]) for k, tensor in s.input_map.items()] + [(tensor, m_out[k]) for k, tensor in s.output_map.items()]
        for tensor, io in pairs:
            dims = list(io.dims)
            if tensor not in seen:
                seen[tensor] = (s.model_name, io.data_type, dims, mcfg.max_batch_size)
                continue
            first_model, first_type, first_dims, first_mbs = seen[tensor]
            if first_type != io.data_type:
                yield where, (f"in ensemble {name}, ensemble tensor {tensor}: inconsistent data type: "
                              f"{triton_type_name(first_type)} is inferred from model {first_model} while "
                              f"{triton_type_name(io.data_type)} is inferred from model {s.model_name}")
                return
            from tritonrepo.ensemble import full_shape, shape_str, shapes_consistent  # noqa: PLC0415 - imports text_format

            if not shapes_consistent(first_dims, first_mbs, dims, mcfg.max_batch_size):
                a, b = full_shape(first_dims, first_mbs), full_shape(dims, mcfg.max_batch_size)
                yield where, (f"in ensemble {name}, ensemble tensor {tensor}: inconsistent shape: {shape_str(a)} is "
                              f"inferred from model {first_model} while {shape_str(b)} is inferred from model {s.model_name}")
                return


def _decoupled(repo, model: str) -> bool:
    other = repo.models.get(model)
    return bool(other is not None and other.config is not None and other.config.model_transaction_policy.decoupled)


@_meta("TR407", "ensemble-decoupled-mix", "A step combines tensors from a decoupled model with tensors of another origin (another decoupled model or the request).",
       "A decoupled model sends any number of responses per request; Triton cannot pair them with other tensors in one "
       "request of a later step. A chain through one decoupled step is fine.",
       "feed the step only from the decoupled model's outputs (or make it non-decoupled)",
       "core/src/ensemble_scheduler/ensemble_utils.cc ValidateEnsembleConfig; CORE-MAP-09",
       "steps d1 and d2 (decoupled) both feed step m", scope="repo")
def decoupled_mix(ctx: ModelContext):
    cfg = _ens(ctx)
    if cfg is None or not cfg.HasField("ensemble_scheduling") or not _complete(cfg):
        return
    repo, name = ctx.repo, ctx.model_name
    if any(repo.errors.get(s.model_name) or s.model_name not in repo.models for s in cfg.ensemble_scheduling.step):
        return
    # where each tensor's responses come from: the ensemble request ("") or a decoupled step's model
    origin: dict[str, set[str]] = {i.name: {""} for i in cfg.input}
    # Triton names the model that first declared the step's output tensor (ensemble IO first, then steps in order)
    declared: dict[str, str] = {}
    for io in [*cfg.input, *cfg.output]:
        declared.setdefault(io.name, name)
    for s in cfg.ensemble_scheduling.step:
        for t in [*s.input_map.values(), *s.output_map.values()]:
            declared.setdefault(t, s.model_name)
    pending = list(enumerate(cfg.ensemble_scheduling.step))
    progress = True
    while pending and progress:
        progress = False
        for i, s in list(pending):
            if not all(t in origin for t in s.input_map.values()):
                continue
            sources = set().union(*(origin[t] for t in s.input_map.values()))
            if len(sources) > 1:
                first_out = next(iter(s.output_map.values()))
                yield ("ensemble_scheduling", 0, "step", i), (
                    f"in ensemble {name}, step of model '{declared.get(first_out, s.model_name)}' receives inputs "
                    "originated from different decoupled models")
                return
            out = {s.model_name} if _decoupled(repo, s.model_name) else sources
            for t in s.output_map.values():
                origin[t] = out
            pending.remove((i, s))
            progress = True
