"""Differential fuzzing of ``validate``: mutated repositories nobody wrote a case for, judged offline and by the server.

Each generated case starts from one of a few valid seed repositories (Python-backend models with dynamic batching,
sequence batching with controls and state, a version policy with warmup, optional inputs and reshapes, an ensemble
over a Python model), mutates the target config 1-3 times (tests/corpus/mutate.py) and sometimes its text. The real
server judges every case (tests/corpus/runner.py: shared explicit-mode servers); ``validate_repository`` judges it
offline; a different verdict is a disagreement. Loads the server did not answer within the time limit (a count of
2**31 instances, a queue delay of hours) are inconclusive, reported apart.

    python tests/corpus/differential.py [--cases 200] [--seed 1] [--timeout 30]

Seeded: the same ``--seed`` gives the same repositories. Only Python-backend and ensemble seeds: the server here has
no native ONNX Runtime backend, so an ONNX seed would be judged by tritonrepo's own stand-in, not by Triton.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpus.cases import CONFIG, ENSEMBLE, Case  # noqa: E402
from corpus.mutate import RandomChooser, mutate, text_mutate  # noqa: E402
from tritonrepo._proto.model_config import model_config_pb2 as mc  # noqa: E402

#: valid seed configs of the model ``m`` (each loads on the server here; checked by ``--check-seeds``)
SEEDS: dict[str, str] = {
    "plain": CONFIG,
    "dynamic": CONFIG + (
        "dynamic_batching { preferred_batch_size: [ 2, 4 ] max_queue_delay_microseconds: 100 priority_levels: 2\n"
        "  default_priority_level: 1 default_queue_policy { timeout_action: REJECT default_timeout_microseconds: 1000\n"
        "  max_queue_size: 8 } priority_queue_policy { key: 2 value { max_queue_size: 4 } } }\n"),
    "sequence": CONFIG + (
        'sequence_batching { max_sequence_idle_microseconds: 1000000\n'
        '  control_input [ { name: "START" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] },\n'
        '                  { name: "CORRID" control [ { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 } ] } ]\n'
        '  state [ { input_name: "IN_STATE" output_name: "OUT_STATE" data_type: TYPE_FP32 dims: [ 4 ]\n'
        '            initial_state { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true name: "s" } } ]\n'
        '  oldest { max_candidate_sequences: 4 preferred_batch_size: [ 2 ] } }\n'),
    "versions": CONFIG + (
        "version_policy { specific { versions: [ 1 ] } }\n"
        'model_warmup [ { name: "w" batch_size: 2 inputs { key: "INPUT0" value { data_type: TYPE_FP32 dims: [ 4 ]\n'
        "  zero_data: true } } } ]\n"
        'parameters { key: "FORCE_CPU_ONLY_INPUT_TENSORS" value { string_value: "no" } }\n'
        "response_cache { enable: false }\n"),
    "io": CONFIG.replace(
        'input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]',
        'input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] reshape { shape: [ 2, 2 ] } },\n'
        '        { name: "MASK" data_type: TYPE_INT64 dims: [ -1 ] optional: true allow_ragged_batch: true } ]\n'
        'batch_input [ { kind: BATCH_ELEMENT_COUNT target_name: "N" data_type: TYPE_INT32 source_input: "MASK" } ]'),
    "decoupled": CONFIG + "model_transaction_policy { decoupled: true }\n",
    "ensemble": ENSEMBLE,
    "chain": ENSEMBLE.replace(
        'output_map { key: "OUTPUT0" value: "OUT" } } ]',
        'output_map { key: "OUTPUT0" value: "MID" } },\n'
        '         { model_name: "m" model_version: 1 input_map { key: "INPUT0" value: "MID" } '
        'output_map { key: "OUTPUT0" value: "OUT" } } ]'),
}
#: seeds whose target is the ensemble ``ens`` (over the plain ``m``)
ENSEMBLES = {"ensemble", "chain"}


@dataclass
class Outcome:
    """One generated case: what was done to it, the server's verdict and message, and validate's verdict and codes."""

    case: Case
    mutations: list[str]
    server_loads: bool
    server_message: str
    offline_loads: bool | None  # None: validate crashed (codes[0] says how)
    codes: list[str]
    warnings: list[str]

    @property
    def inconclusive(self) -> bool:
        """The server did not answer the load in time (twice): no verdict."""
        return "no answer within" in self.server_message

    @property
    def host_dependent(self) -> bool:
        """validate warned TR341 (KIND_GPU) and this server, without GPUs, refused for that reason: by design."""
        return (not self.server_loads and self.offline_loads and "TR341" in self.warnings
                and "no GPUs are available" in self.server_message)

    @property
    def agrees(self) -> bool:
        return self.server_loads == self.offline_loads or self.host_dependent


def seed_case(case_id: str, name: str, text: str | bytes) -> Case:
    """A case whose target config (``m``'s, or ``ens``'s for an ensemble seed) is ``text``, for seed ``name``."""
    rel = "ens/config.pbtxt" if name in ENSEMBLES else "m/config.pbtxt"
    return Case(case_id, set(), {rel: text}, ensemble=name in ENSEMBLES)


def generate(n: int, seed: int) -> list[tuple[Case, list[str]]]:
    """``n`` mutated cases from ``seed``: ``(case, mutation descriptions)``; ids ``fuzz-<seed>-<i>-<seed config>``."""
    out = []
    for i in range(n):
        ch = RandomChooser(seed * 100_003 + i)
        name = ch.choice(sorted(SEEDS))
        cfg = text_format.Parse(SEEDS[name], mc.ModelConfig())
        done = [mutate(cfg, ch) for _ in range(ch.integer(1, 3))]
        text = text_format.MessageToString(cfg)
        if ch.integer(0, 3) == 0:
            text, what = text_mutate(text, ch)
            done.append(what)
        out.append((seed_case(f"fuzz-{seed}-{i}-{name}", name, text.encode("utf-8", "surrogateescape")), done))
    return out


def run(n: int, seed: int, workdir: Path, timeout: float = 30.0) -> list[Outcome]:
    """Generate and judge ``n`` cases (server and offline); every outcome, in order."""
    from corpus.runner import judge  # noqa: PLC0415
    from tritonrepo.errors import TritonRepoError  # noqa: PLC0415
    from tritonrepo.validate import validate_repository  # noqa: PLC0415

    made = generate(n, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        verdicts = judge([c for c, _ in made], workdir, load_timeout=timeout)
    outcomes = []
    for case, done in made:
        repo = case.build(workdir / "offline" / case.id)
        try:
            report = validate_repository(repo)
            offline, codes = report.loads(), sorted({f.code for f in report.errors})
            warned = sorted({f.code for f in report.findings} - set(codes))
        except TritonRepoError as exc:
            offline, codes, warned = False, [f"error: {exc.message}"], []
        except Exception as exc:  # noqa: BLE001 - a crash of validate is a finding of this fuzzer
            offline, codes, warned = None, [f"CRASH {type(exc).__name__}: {exc}"], []
        loads, message = verdicts[case.id]
        outcomes.append(Outcome(case, done, loads, message, offline, codes, warned))
    return outcomes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds a load may take before it is inconclusive")
    args = ap.parse_args()
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="differential-") as tmp:
        outcomes = run(args.cases, args.seed, Path(tmp), args.timeout)
    judged = [o for o in outcomes if not o.inconclusive]
    wrong = [o for o in judged if not o.agrees]
    for o in wrong:
        print(f"DISAGREE {o.case.id}: server {'loads' if o.server_loads else 'refuses'}, validate "
              f"{'loads' if o.offline_loads else 'refuses'} {o.codes}\n  mutations: {'; '.join(o.mutations)}\n"
              f"  server: {o.server_message[:400]}")
    for o in outcomes:
        if o.inconclusive:
            print(f"inconclusive {o.case.id}: {'; '.join(o.mutations)}")
    refused = sum(not o.server_loads for o in judged)
    host = sum(o.host_dependent for o in judged)
    print(f"{len(judged) - len(wrong)}/{len(judged)} verdicts agree ({refused} refused, {len(judged) - refused} "
          f"loaded by the server; {host} of the agreements: KIND_GPU refused here, warned TR341 offline; "
          f"{len(outcomes) - len(judged)} inconclusive; seed {args.seed}; "
          f"{time.perf_counter() - t:.0f} s)")
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
