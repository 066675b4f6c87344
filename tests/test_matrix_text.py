"""The text task matrix on the real Triton server: every (architecture, task) pair in each mode.

Modes: ``onnx`` (the core model exactly as ``add-hf`` exports it: here the ``NAME_model`` step that
``add-hf --pipeline`` writes), ``pipeline`` (the ensemble: raw text in, the pipeline's answer out) and ``python``
(``add-hf --backend python``: PyTorch in the Python backend). For each cell: ``add-hf`` exits 0, ``tritonrepo
validate`` passes the repository, the real server loads the model (so a clean ``validate`` the server refuses
fails the cell), and served outputs equal PyTorch (core outputs <= 1e-3 at real-token positions) or
``transformers.pipeline`` (labels/words/offsets equal, scores <= 1e-3; sentence embeddings cosine >= 0.9999), for
two text lengths.

Every cell is built into one repository, validated once; the models are then served one *group* at a time
(:data:`GROUPS`): first every ONNX and pipeline model (light stubs), then the PyTorch models :data:`PYTHON_GROUP`
at a time. Each group gets its own server (``--model-control-mode explicit``, ``--load-model`` for each of the
group's models), stopped before the next group's starts. Each Python-backend model is a stub process of its own
(~430 MB RSS, ~300 MB PSS, ~8 s CPU to import torch and transformers), so serving the 23 PyTorch models together
with the rest would add ~7 GB; group by group the module peaks at ~2.7 GB. The group is a module-scoped,
indirectly parametrized fixture, so pytest runs the tests group by group. Python and pipeline cells also replay the
golden sample ``add-hf`` recorded. With ``-k`` only the selected cells are built.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tiny_text
from typer.testing import CliRunner

from tritonrepo.add import AddOptions
from tritonrepo.cli import app
from tritonrepo.client import golden_sample, infer, max_abs_diff
from tritonrepo.errors import TritonRepoError
from tritonrepo.pipeline import pipeline_for_model
from tritonrepo.server import TritonServer

pytestmark = [pytest.mark.server, pytest.mark.slow]

#: Head of tiny_text -> registry task.
TASK = {"multi-label": "text-classification", "nli": "zero-shot-classification"}
#: PyTorch (python backend) models loaded at a time (each stub imports torch and transformers).
PYTHON_GROUP = 6
#: Two text lengths (short, long): the second batch pads differently and is longer.
SHORT = ["the movie was good", "John works at Acme corporation in London."]
LONG = ["Paris is the capital of France and Berlin is in Germany, said the cat that sat on the mat today.",
        "hello world", "triton serves models from a repository on disk, and short texts pad in a batch."]
QA = ([("who works at acme?", "John works at Acme corporation in London.")],
      [("what is the capital?", "Paris is the capital of France and Berlin is in Germany, the cat sat on the mat."),
       ("who serves models?", "Triton serves models from a repository on disk.")])
LABELS = ["sport", "music", "weather", "politics"]
CHOICES = (["the mat", "a movie about paris", "london"], ["a repository on disk", "the capital", "john"])
ATOL = 1e-3


def task_of(head: str) -> str:
    return TASK.get(head, head)


@dataclass
class Cell:
    arch: str
    head: str
    mode: str  # onnx | python | pipeline
    name: str = ""
    group: str = "main"  # the models loaded together (see GROUPS)
    built: bool = False
    failure: str = ""  # why the cell failed before inference (add-hf, validate, load)

    @property
    def task(self) -> str:
        return task_of(self.head)

    @property
    def id(self) -> str:
        return f"{self.arch}-{self.head}-{self.mode}"


def _cells() -> list[Cell]:
    """Every pair as a pipeline, its ONNX core and a PyTorch model in the Python backend."""
    cells, python = [], 0
    for arch, head in [*tiny_text.pairs(), ("minilm", "feature-extraction")]:
        cells += [Cell(arch, head, "pipeline"), Cell(arch, head, "onnx"),
                  Cell(arch, head, "python", group=f"python-{python // PYTHON_GROUP}")]
        python += 1
    return cells


CELLS = _cells()
#: Model groups in load order: ``main`` (ONNX cores and pipelines), then ``python-0``, ``python-1``, ...
GROUPS = list(dict.fromkeys(c.group for c in CELLS))


def _checkpoint(arch: str, head: str) -> Path:
    if arch == "minilm":
        import tiny_models

        return tiny_models.minilm_path()
    return tiny_text.cached(arch, head)


def _matrix_key(cell: Cell) -> tuple[str, str, str]:
    """``(architecture, task, model_type)`` for the support matrix (variants named so they do not collide)."""
    cfg = json.loads((_checkpoint(cell.arch, cell.head) / "config.json").read_text())
    arch = cfg["architectures"][0] + (" (sentence-transformers)" if cell.arch == "minilm" else "")
    task = cell.task + (" (multi-label)" if cell.head == "multi-label" else "")
    return arch, task, cfg["model_type"]


def _model_name(arch: str, head: str, mode: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{arch}_{head}_{ {'python': 'py', 'pipeline': 'pl'}.get(mode, 'onnx')}")


def _selected_cells(session) -> set[str]:
    """Ids of the cells this session runs: all of them unless only ``test_cell`` items are selected (``-k``); an
    ONNX cell brings its pipeline (the ONNX cell is the pipeline's core step)."""
    items = [i for i in session.items if getattr(getattr(i, "module", None), "__name__", "") == __name__]
    if any(i.originalname != "test_cell" for i in items):
        return {c.id for c in CELLS}
    ids = {i.callspec.params["cell_id"] for i in items}
    return ids | {i.replace("-onnx", "-pipeline") for i in ids if i.endswith("-onnx")}


@pytest.fixture(scope="module")
def built(request, tmp_path_factory):
    """Build every selected cell into one repository and validate it; returns ``(cells by id, repository, validate
    result)``."""
    import time

    t0 = time.perf_counter()
    repo = tmp_path_factory.mktemp("text-matrix") / "repo"
    runner = CliRunner()
    selected = _selected_cells(request.session)
    by_id = {c.id: c for c in CELLS if c.id in selected}
    for c in by_id.values():
        piped = f"{c.arch}-{c.head}-pipeline" in by_id
        if c.mode == "onnx" and piped:
            continue  # the pipeline's core step
        name = _model_name(c.arch, c.head, c.mode)
        args = ["add-hf", str(_checkpoint(c.arch, c.head)), "--repo", str(repo), "--name", name, "--task", c.task]
        args += {"python": ["--backend", "python"], "pipeline": ["--pipeline"], "onnx": []}[c.mode]
        result = runner.invoke(app, args)
        ok = result.exit_code == 0
        core = by_id.get(f"{c.arch}-{c.head}-onnx") if c.mode == "pipeline" else None
        targets = [c] + ([core] if core else [])
        for t in targets:
            t.name = f"{name}_model" if (t.mode == "onnx" and piped) else name
            t.built = ok
            if not ok:
                t.failure = f"add-hf exit {result.exit_code}: {result.output.strip().splitlines()[-1:]}"
    t1 = time.perf_counter()
    validate = runner.invoke(app, ["validate", str(repo)])
    if validate.exit_code != 0:
        for c in CELLS:
            if c.built and re.search(rf"\b{re.escape(c.name)}\b", validate.output):
                c.failure = f"validate: {validate.output.strip()[:300]}"
    print(f"text matrix: build {t1 - t0:.0f} s, validate {time.perf_counter() - t1:.0f} s")
    return by_id, repo, validate


def _group_models(repo: Path, group: str) -> list[str]:
    """The repository's models of ``group``: the ``python-i`` cells, or (``main``) every model but the PyTorch ones."""
    python = {c.name: c.group for c in CELLS if c.mode == "python" and c.name}
    if group != "main":
        return sorted(n for n, g in python.items() if g == group)
    return sorted(p.name for p in repo.iterdir() if (p / "config.pbtxt").is_file() and p.name not in python)


@pytest.fixture(scope="module")
def matrix(request, built):
    """Serve one group of models (``request.param``, indirect) on the real server in explicit model control;
    yields ``(cells by id, server, validate result)``. Cells of the group the server did not load get a failure."""
    import time

    import tritonclient.http as th

    by_id, repo, validate = built
    group = request.param
    names = _group_models(repo, group)
    server = TritonServer(repo, model_control="explicit", load=names,
                          extra_args=["--exit-on-error=false", "--strict-readiness=false"])
    t0 = time.perf_counter()
    try:
        server.start(timeout=600)  # ~70 light stubs (main) or a few PyTorch ones start in parallel on 2 cores
        print(f"text matrix {group}: {len(names)} models loaded in {time.perf_counter() - t0:.0f} s")
        states = {m["name"]: m for m in th.InferenceServerClient(server.http_url).get_model_repository_index()}
        for c in CELLS:
            if c.group == group and c.built and not c.failure:
                state = states.get(c.name, {})
                if state.get("state") != "READY":
                    c.failure = f"server did not load {c.name}: {state.get('reason', 'not in the index')}"
        yield by_id, server, validate
    finally:
        t1 = time.perf_counter()
        server.stop()  # PyTorch stubs exit at once after finalize (hf_transformers.py)
        print(f"text matrix {group}: stopped in {time.perf_counter() - t1:.1f} s")


# --- references ------------------------------------------------------------------------------------------------------

def _core_batches(tok, task: str) -> list[dict[str, np.ndarray]]:
    """Tokenizer outputs (numpy) for the two text lengths, shaped as the core model takes them."""
    out = []
    for i, texts in enumerate((SHORT, LONG)):
        if task == "question-answering":
            q, c = zip(*QA[i])
            enc = tok(list(q), list(c), padding=True, return_tensors="np")
        elif task == "zero-shot-classification":
            enc = tok([t for t in texts for _ in LABELS], [f"This example is {x}." for _ in texts for x in LABELS],
                      padding=True, return_tensors="np")
        elif task == "multiple-choice":
            cs = CHOICES[i]
            enc = tok([t for t in texts for _ in cs], [x for _ in texts for x in cs], padding=True, return_tensors="np")
            enc = {k: np.asarray(v).reshape(len(texts), len(cs), -1) for k, v in enc.items()}
        elif task == "fill-mask":
            enc = tok([_masked(t, tok.mask_token) for t in texts], padding=True, return_tensors="np")
        else:
            enc = tok(texts, padding=True, return_tensors="np")
        out.append({k: np.asarray(v).astype(np.int64) for k, v in dict(enc).items()})
    return out


def _masked(text: str, mask: str) -> str:
    words = text.split()
    words[len(words) // 2] = mask
    return " ".join(words)


def _torch_outputs(path: Path, task: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import torch
    import transformers

    auto = {"text-classification": "AutoModelForSequenceClassification",
            "zero-shot-classification": "AutoModelForSequenceClassification",
            "token-classification": "AutoModelForTokenClassification",
            "question-answering": "AutoModelForQuestionAnswering", "fill-mask": "AutoModelForMaskedLM",
            "multiple-choice": "AutoModelForMultipleChoice", "feature-extraction": "AutoModel"}[task]
    model = getattr(transformers, auto).from_pretrained(path).eval()
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in out.items() if isinstance(v, torch.Tensor)}


def _pipeline(task: str, path: Path):
    from transformers import pipeline

    warnings.filterwarnings("ignore", message="Tokenizer does not support real words")
    return pipeline(task, model=str(path), device="cpu")


def _raw_batches(task: str, tok) -> list[dict[str, np.ndarray]]:
    def col(values):
        return np.array([[v.encode()] for v in values], dtype=object)

    out = []
    for i, texts in enumerate((SHORT, LONG)):
        if task == "question-answering":
            q, c = zip(*QA[i])
            out.append({"question": col(q), "context": col(c)})
        elif task == "zero-shot-classification":
            out.append({"text": col(texts), "candidate_labels": np.array([x.encode() for x in LABELS], dtype=object)})
        elif task == "multiple-choice":
            out.append({"text": col(texts), "choices": np.array([[x.encode() for x in CHOICES[i]]] * len(texts),
                                                                dtype=object)})
        elif task == "fill-mask":
            out.append({"text": col([_masked(t, tok.mask_token) for t in texts])})
        else:
            out.append({"text": col(texts)})
    return out


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _check_pipeline(cell: Cell, path: Path, raw: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> None:
    """Served ensemble outputs vs transformers' pipeline (or PyTorch where transformers has none)."""
    task = cell.task
    if task == "feature-extraction":
        texts = [_text(t[0]) for t in raw["text"]]
        if cell.arch == "minilm":
            from sentence_transformers import SentenceTransformer

            want = SentenceTransformer(str(path), device="cpu").encode(texts)
        else:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(path)
            enc = tok(texts, padding=True, return_tensors="np")
            hidden = _torch_outputs(path, task, {k: v.astype(np.int64) for k, v in dict(enc).items()})
            mask = enc["attention_mask"][..., None].astype(np.float32)
            want = (hidden["last_hidden_state"] * mask).sum(1) / mask.sum(1)
        emb = got["embedding"]
        cos = (emb * want).sum(-1) / np.linalg.norm(emb, axis=-1) / np.linalg.norm(want, axis=-1)
        assert cos.min() >= 0.9999, cos
        return
    if task == "multiple-choice":
        from transformers import AutoTokenizer

        import torch

        tok = AutoTokenizer.from_pretrained(path)
        texts, choices = [_text(t[0]) for t in raw["text"]], [[_text(x) for x in row] for row in raw["choices"]]
        enc = tok([t for t, cs in zip(texts, choices) for _ in cs], [x for cs in choices for x in cs], padding=True,
                  return_tensors="np")
        enc = {k: np.asarray(v).astype(np.int64).reshape(len(texts), len(choices[0]), -1) for k, v in enc.items()}
        want = torch.softmax(torch.from_numpy(_torch_outputs(path, task, enc)["logits"]), -1).numpy()
        np.testing.assert_allclose(got["scores"], want, atol=ATOL)
        assert (got["choice"].reshape(-1) == want.argmax(-1)).all()
        return
    pipe = _pipeline(task, path)
    if task == "text-classification":
        for i, t in enumerate(raw["text"]):
            want = pipe(_text(t[0]))[0]
            assert _text(got["label"][i, 0]) == want["label"]
            assert abs(float(got["score"][i, 0]) - want["score"]) <= ATOL
    elif task == "zero-shot-classification":
        for i, t in enumerate(raw["text"]):
            want = pipe(_text(t[0]), candidate_labels=LABELS)
            assert [_text(x) for x in got["labels"][i]] == want["labels"]
            np.testing.assert_allclose(got["scores"][i], want["scores"], atol=ATOL)
    elif task == "token-classification":
        for i, t in enumerate(raw["text"]):
            want = pipe(_text(t[0]), aggregation_strategy="simple")
            entities = json.loads(got["entities"][i, 0])
            assert len(entities) == len(want), (entities, want)
            for e, w in zip(entities, want):
                assert (e["entity_group"], e["word"], e["start"], e["end"]) == (
                    w["entity_group"], w["word"], w["start"], w["end"])
                assert abs(e["score"] - float(w["score"])) <= ATOL
    elif task == "question-answering":
        for i, (q, c) in enumerate(zip(raw["question"], raw["context"])):
            want = pipe(question=_text(q[0]), context=_text(c[0]))
            assert (_text(got["answer"][i, 0]), int(got["start"][i, 0]), int(got["end"][i, 0])) == (
                want["answer"], want["start"], want["end"])
            assert abs(float(got["score"][i, 0]) - want["score"]) <= ATOL
    elif task == "fill-mask":
        for i, t in enumerate(raw["text"]):
            want = pipe(_text(t[0]), top_k=got["score"].shape[1])
            assert [int(x) for x in got["token"][i]] == [w["token"] for w in want]
            assert [_text(x) for x in got["token_str"][i]] == [w["token_str"] for w in want]
            assert [_text(x) for x in got["sequence"][i]] == [w["sequence"] for w in want]
            np.testing.assert_allclose(got["score"][i], [w["score"] for w in want], atol=ATOL)
    else:
        raise AssertionError(f"no pipeline check for {task}")


def _check_core(cell: Cell, path: Path, server) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    for inputs in _core_batches(tok, cell.task):
        import tritonclient.http as th

        cfg = th.InferenceServerClient(server.http_url).get_model_config(cell.name)
        names = [t["name"] for t in cfg["input"]]
        # a batching model takes at most max_batch_size rows a request (zero-shot sends texts x labels pairs)
        step = cfg.get("max_batch_size", 0) or len(inputs["input_ids"])
        parts = [infer(server.http_url, cell.name, {n: inputs[n][i:i + step] for n in names})
                 for i in range(0, len(inputs["input_ids"]), step)]
        got = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        want = _torch_outputs(path, cell.task, {n: inputs[n] for n in names})
        valid = inputs["attention_mask"].astype(bool)
        if "embedding" in got:  # an embedding core has pooling (+ normalisation) folded into its graph
            from tritonrepo.checkpoint import resolve_checkpoint
            from tritonrepo.tasks.text import pooling_parameters
            from tritonrepo.triton_models.postprocess import pool

            params = pooling_parameters(resolve_checkpoint(str(path)), None)
            want["embedding"] = pool(want["last_hidden_state"], inputs["attention_mask"], params["pooling"],
                                     params["normalize"] == "true")
        for name, value in got.items():
            ref = want[name]
            assert value.shape == ref.shape, (name, value.shape, ref.shape)
            diff = np.abs(value.astype(np.float64) - ref)
            if ref.ndim >= valid.ndim and ref.shape[: valid.ndim] == valid.shape:
                diff = diff[valid]
            assert diff.max() <= ATOL, (name, float(diff.max()))


def test_validate_accepts_the_whole_repository(built):
    _, _, validate = built
    assert validate.exit_code == 0, validate.output


@pytest.mark.parametrize("matrix", ["main"], indirect=True)
def test_zero_shot_pipeline_refuses_a_batching_core_model(matrix):
    by_id, server, _ = matrix
    repo = Path(server.repository)
    core = by_id["bert-text-classification-onnx"].name  # batches (max_batch_size 8)
    with pytest.raises(TritonRepoError) as err:
        pipeline_for_model(repo, "zs_over_batching", core, AddOptions(repo=repo, task="zero-shot-classification"))
    assert str(err.value) == (
        f"the zero-shot-classification pipeline needs a core model with max_batch_size 0; '{core}' has 8")
    assert not (repo / "zs_over_batching").exists()


@pytest.mark.parametrize(("matrix", "cell_id"), [(c.group, c.id) for c in CELLS], indirect=["matrix"],
                         scope="module",  # group the tests by server group (pytest reorders module-scoped params)
                         ids=[c.id for c in CELLS])
def test_cell(matrix, cell_id, matrix_record):
    by_id, server, _ = matrix
    cell = next(c for c in CELLS if c.id == cell_id)
    try:
        assert cell.built, cell.failure or "not built"
        assert not cell.failure, cell.failure
        path = _checkpoint(cell.arch, cell.head)
        if cell.mode == "pipeline":
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(path)
            for raw in _raw_batches(cell.task, tok):
                try:
                    got = infer(server.http_url, cell.name, raw)
                except TritonRepoError as exc:
                    raise AssertionError(str(exc)) from None
                _check_pipeline(cell, path, raw, got)
        else:
            _check_core(cell, path, server)
        if cell.mode != "onnx":  # the reference add-hf recorded (PyTorch trial run / transformers.pipeline)
            g = golden_sample(Path(server.repository) / cell.name)
            replay = max_abs_diff(infer(server.http_url, cell.name, g.inputs), g.outputs, g.valid)
            assert replay <= ATOL, f"golden sample replay differs by {replay}"
    except (AssertionError, TritonRepoError) as exc:  # a refused request fails the cell too
        arch, task, model_type = _matrix_key(cell)
        reason = (str(exc).splitlines() or ["fails"])[0][:200]
        matrix_record(arch, task, cell.mode, f"fails: {reason}", model_type=model_type)
        raise
    arch, task, model_type = _matrix_key(cell)
    matrix_record(arch, task, cell.mode, True, model_type=model_type)
