"""The task registry: entries, lookups, fail-fast refusal, clean failure, pad tokens, the tokenizers-only stub."""

import json
import os
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from tritonrepo.add import AddOptions, add_hf
from tritonrepo.checkpoint import resolve_checkpoint
from tritonrepo.errors import ParityError, TritonRepoError
from tritonrepo.tasks import (
    SUPPORTED_TASKS,
    all_specs,
    detect_spec,
    detect_task,
    model_class_for_task,
    resolve_spec,
    spec_for_architecture,
    task_for_architecture,
)
from tritonrepo.tasks.registry import TaskSpec, eval_dim

SRC = str(Path(__file__).resolve().parent.parent / "src")


def test_task_from_architectures(bert_dir, distilbert_dir, vit_dir, minilm_dir):
    assert detect_task(resolve_checkpoint(str(bert_dir))) == "text-classification"
    assert detect_task(resolve_checkpoint(str(distilbert_dir))) == "text-classification"
    assert detect_task(resolve_checkpoint(str(vit_dir))) == "feature-extraction"
    minilm = resolve_checkpoint(str(minilm_dir))
    assert minilm.is_sentence_transformers
    assert detect_task(minilm) == "feature-extraction"
    assert detect_spec(minilm).family == "text" and detect_spec(resolve_checkpoint(str(vit_dir))).family == "image"


@pytest.mark.parametrize(
    ("arch", "task"),
    [("BertForTokenClassification", "token-classification"), ("BertForQuestionAnswering", "question-answering"),
     ("ViTForImageClassification", "image-classification"), ("BertForMaskedLM", "fill-mask"),
     ("BertModel", "feature-extraction"), ("RobertaForMultipleChoice", "multiple-choice")],
)
def test_architecture_mapping(arch, task):
    assert task_for_architecture(arch) == task


def test_explicit_task_and_synonyms(bert_dir):
    ckpt = resolve_checkpoint(str(bert_dir))
    assert detect_task(ckpt, "feature-extraction") == "feature-extraction"
    assert detect_task(ckpt, "sequence-classification") == "text-classification"


def test_bad_tasks_are_refused_with_the_supported_tasks(bert_dir, vit_dir):
    with pytest.raises(TritonRepoError, match="unknown task 'summarize-everything'"):
        detect_task(resolve_checkpoint(str(bert_dir)), "summarize-everything")
    with pytest.raises(TritonRepoError) as err:
        detect_task(resolve_checkpoint(str(vit_dir)), "text-classification")
    assert err.value.message == "task 'text-classification' is not supported for model type 'vit'"
    assert err.value.hint == "tasks supported for model type 'vit': feature-extraction, image-classification"


def test_missing_architectures_needs_task(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(TritonRepoError, match="no 'architectures' to infer the task from"):
        detect_task(resolve_checkpoint(str(tmp_path)))


def test_every_entry_is_complete_and_uses_the_transformers_pipeline_class():
    import transformers
    from transformers.pipelines import SUPPORTED_TASKS as HF_TASKS

    assert set(SUPPORTED_TASKS) == {s.task for s in all_specs()}
    models = resources.files("tritonrepo") / "triton_models"
    for s in all_specs():
        assert isinstance(s, TaskSpec) and s.task and s.family and s.model_types, s.key
        # no architectures: reachable with --task only (summarization and translation share T5's class)
        assert s.architectures or s.task in ("summarization", "translation"), s.key
        assert hasattr(transformers, s.auto_class), s.key
        if s.hf_pipeline is not None:  # the class transformers.pipeline loads (the SegFormer false success)
            hf = HF_TASKS[s.hf_pipeline or s.task]["pt"]
            if (s.hf_pipeline or s.task) == "image-segmentation":
                # the pipeline loads config.architectures[0] and accepts these mappings too (ImageSegmentationPipeline)
                hf = (*hf, transformers.AutoModelForInstanceSegmentation, transformers.AutoModelForUniversalSegmentation)
            assert getattr(transformers, s.auto_class) in hf, (s.key, s.auto_class, hf)
        assert callable(s.load("sample_inputs")), s.key
        if s.kind == "generate":
            continue
        for tensor, rules in s.fixed_dims.items():
            for r in rules:
                assert r is None or isinstance(r, (int, str)), (s.key, tensor, r)
        if s.pipeline is not None:
            p = s.pipeline
            for attr in ("golden_inputs", "reference", "pre_setup") + (("post_setup",) if p.post_setup else ()):
                assert callable(s.pipeline_load(attr)), (s.key, attr)
            assert (models / p.pre_module).is_file() and (models / p.post_module).is_file(), s.key
            assert p.raw_inputs and p.outputs, s.key
            assert all(ref.partition(".")[0] in ("core", "post") for ref in p.outputs), s.key
            assert all(ref.partition(".")[0] in ("core", "pre", "raw") for ref in p.post_inputs), s.key
            assert bool(p.post_kind) == bool(p.post_outputs), s.key


def test_lookups_are_light_and_exact_names_win():
    assert spec_for_architecture("ViTModel", "vit").family == "image"
    assert spec_for_architecture("BertModel", "bert").family == "text"
    assert spec_for_architecture("SomethingUnknown") is None
    assert model_class_for_task("text-classification") == "AutoModelForSequenceClassification"
    assert model_class_for_task("feature-extraction", "vit") == "AutoModel"
    spec = resolve_spec({"model_type": "distilbert", "architectures": ["DistilBertForTokenClassification"]})
    assert (spec.task, spec.family, spec.auto_class) == ("token-classification", "text", "AutoModelForTokenClassification")
    with pytest.raises(TritonRepoError) as err:
        resolve_spec({"model_type": "bert", "architectures": ["BertForPreTraining"]})
    assert err.value.hint.startswith("tasks supported for model type 'bert': feature-extraction, fill-mask")


def test_dim_rules_read_config_values():
    cfg = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "id2label": {"0": "a", "1": "b", "2": "c"},
           "text_config": {"projection_dim": 16}}
    assert eval_dim("(image_size // patch_size) ** 2 + 1", cfg) == 17
    assert eval_dim("num_labels", cfg) == 3 and eval_dim("num_labels", {}) == 2
    assert eval_dim("text_config.projection_dim", cfg) == 16
    assert eval_dim("image_size[0] | image_size", cfg) == 32
    with pytest.raises(TritonRepoError, match="the model config has no such value"):
        eval_dim("num_channels", cfg)


def test_unsupported_architecture_is_refused_fast_without_heavy_imports(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertForPreTraining"]}))
    import resource

    env = {**os.environ, "PYTHONPATH": SRC}
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "tritonrepo", "add-hf", str(ckpt),
                           "--repo", str(tmp_path / "repo")], capture_output=True, text=True, env=env, timeout=60)
    elapsed = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    heavy = [line for line in proc.stderr.splitlines() if line.startswith("import time:")
             and line.rsplit("|", 1)[-1].strip().split(".")[0] in ("torch", "transformers", "optimum")]
    assert proc.returncode == 2
    assert errors == [
        "error: architecture 'BertForPreTraining' (" + str(ckpt / "config.json") + ") has no supported task "
        "(fix: tasks supported for model type 'bert': feature-extraction, fill-mask, multiple-choice, "
        "question-answering, text-classification, token-classification, zero-shot-classification)"
    ]
    # the refusal imports none of the heavy libraries (the cause of the old ~25 s); how long it takes is a
    # benchmark figure, not a test assertion (it depends on the machine's load: 0.7-1.5 s idle, measured)
    assert heavy == [], f"imported {heavy} (took {elapsed:.2f} s, CPU {cpu:.2f} s)"
    assert not (tmp_path / "repo").exists()


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def test_failed_add_leaves_the_repository_byte_for_byte(tmp_path, bert_dir):
    # a repository add-hf would create (with missing parents) is not left behind
    with pytest.raises(ParityError):
        add_hf(str(bert_dir), AddOptions(repo=tmp_path / "new" / "deeper" / "repo", name="bert", atol=1e-15))
    assert list(tmp_path.iterdir()) == []
    # an existing repository: an all-or-nothing pipeline whose last model clashes commits nothing
    from tritonrepo.pipeline import add_pipeline

    repo = tmp_path / "repo"
    (repo / "cls").mkdir(parents=True)
    (repo / ".tritonrepo").write_text("tritonrepo model repository\n")
    (repo / "cls" / "config.pbtxt").write_text('name: "cls"\nbackend: "python"\nmax_batch_size: 4\n')
    (repo / "cls" / "1").mkdir()
    before = _snapshot(tmp_path)
    with pytest.raises(TritonRepoError, match="the new version needs a different model configuration"):
        add_pipeline(str(bert_dir), AddOptions(repo=repo, name="cls"))
    assert _snapshot(tmp_path) == before


def test_a_tokenizer_without_pad_token_pads_with_eos(tmp_path):
    import tiny_models

    from tritonrepo.samples import load_tokenizer, text_inputs

    ckpt = resolve_checkpoint(str(tiny_models.make_bert_without_pad(tmp_path / "eos", eos=True)))
    tok = load_tokenizer(ckpt)
    assert tok.pad_token == tok.eos_token == "[SEP]"
    arrays = text_inputs(ckpt, detect_spec(ckpt), 0)
    assert (arrays["attention_mask"] == 0).any() and (arrays["input_ids"][arrays["attention_mask"] == 0] == tok.eos_token_id).all()
    bare = resolve_checkpoint(str(tiny_models.make_bert_without_pad(tmp_path / "none", eos=False)))
    with pytest.raises(TritonRepoError) as err:
        load_tokenizer(bare)
    assert err.value.message == (f"{bare.path}: the tokenizer has neither a pad token nor an eos token to pad batches with")


_STUB_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import model
params = json.loads(sys.argv[3])
tok = model.load_tokenizers(sys.argv[2], lambda name, default="": params.get(name, default))
cases = json.loads(sys.argv[4])
out = []
for items, pair in cases:
    enc = model.encode_tokenizers(tok, [tuple(i) for i in items] if pair else items, int(params["max_length"]), pair=pair,
                                  side=params.get("truncation_side", "right"))
    out.append({k: v.tolist() for k, v in enc.items()})
heavy = sorted(m for m in ("torch", "transformers") if m in sys.modules)
print(json.dumps({"out": out, "heavy": heavy}))
"""


@pytest.mark.parametrize("which", ["bert", "minilm", "eos-pad", "roberta-bpe"])
def test_tokenizers_stub_gives_the_transformers_ids_without_torch(tmp_path, which, bert_dir, minilm_dir):
    import tiny_models

    from tritonrepo.samples import load_tokenizer
    from tritonrepo.tasks.processors import save_tokenizer

    if which == "roberta-bpe":
        src = tiny_models.make_roberta_tokenizer(tmp_path / "ck")
        (src / "config.json").write_text(json.dumps({"model_type": "roberta", "architectures": ["RobertaModel"],
                                                     "max_position_embeddings": 66}))
    else:
        src = {"bert": bert_dir, "minilm": minilm_dir}.get(which) or tiny_models.make_bert_without_pad(tmp_path / "ck")
    ckpt = resolve_checkpoint(str(src))
    params = save_tokenizer(ckpt, detect_spec(ckpt), tmp_path / "processor")
    assert params["engine"] == "tokenizers"
    max_len = 24 if which == "roberta-bpe" else 12  # short, so that truncation is exercised (byte-level BPE: more ids)
    params["max_length"] = str(max_len)
    stub = tmp_path / "stub"
    stub.mkdir()
    pkg = resources.files("tritonrepo") / "triton_models"
    (stub / "model.py").write_bytes((pkg / "preprocess.py").read_bytes())
    (stub / "tritonrepo_runtime.py").write_bytes((pkg / "runtime.py").read_bytes())
    (stub / "tritonrepo_limits.py").write_bytes((pkg / "limits.py").read_bytes())
    texts = ["Triton serves this model.", "A much longer second sentence that goes past the twelve token limit.", "x"]
    pairs = [["Who serves models?", "Triton serves models from a model repository on disk, a long context."],
             ["What?", "This."]]
    proc = subprocess.run([sys.executable, "-c", _STUB_SCRIPT, str(stub), str(tmp_path / "processor"), json.dumps(params),
                           json.dumps([[texts, False], [pairs, True]])], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["heavy"] == []
    tok = load_tokenizer(ckpt)
    want = [tok(texts, padding=True, truncation=True, max_length=max_len, return_tensors="np"),
            tok(*zip(*pairs), padding=True, truncation="only_second", max_length=max_len, return_tensors="np")]
    for g, w in zip(got["out"], want):
        for name in w:
            np.testing.assert_array_equal(np.array(g[name]), w[name], err_msg=f"{which} {name}")


def test_generate_entries_dispatch_to_their_builder(tmp_path, bert_dir):
    """kind="generate": add-hf stages through TaskSpec.builder (imported lazily) and commits what it staged."""
    from tritonrepo.tasks.registry import register, unregister

    spec = register(TaskSpec(
        task="test-generation", family="test", model_types=("bert",), architectures=(), auto_class="AutoModel",
        sample_inputs="tritonrepo.samples:text_inputs", kind="generate", builder="test_tasks:_stage_generation",
    ))
    try:
        result = add_hf(str(bert_dir), AddOptions(repo=tmp_path / "repo", name="gen", task="test-generation"))
    finally:
        unregister(spec.key)
    assert result.spec is spec and result.task == "test-generation"
    assert (tmp_path / "repo" / "gen" / "1" / "model.py").read_text() == "# staged by the builder\n"
    assert (tmp_path / "repo" / "gen" / "config.pbtxt").is_file()


def _stage_generation(checkpoint, spec, name, options, tmp):
    from tritonclient.grpc import model_config_pb2 as mc

    from tritonrepo.add import AddResult, write_staged_model
    from tritonrepo.config import ModelSettings, TensorSpec, build_config
    from tritonrepo.export.common import ExportResult
    from tritonrepo.manifest import VersionRecord

    (tmp / name / "1").mkdir(parents=True)
    (tmp / name / "1" / "model.py").write_text("# staged by the builder\n")
    specs = [TensorSpec("text", mc.TYPE_STRING, (1,))]
    cfg = build_config(name, backend="python", inputs=specs, outputs=specs, settings=ModelSettings())
    write_staged_model(tmp / name, options.repo / name, cfg, VersionRecord(version=1, task=spec.task))
    export = ExportResult(inputs=specs, outputs=specs, batching=True, samples=({}, {}))
    return AddResult(options.repo / name, 1, cfg, export, checkpoint, spec.task, spec=spec)


def test_post_steps_can_read_raw_inputs_and_extra_pre_outputs():
    """The wiring families use for entity words / original image sizes: raw.X and pre_extra_outputs."""
    from tritonclient.grpc import model_config_pb2 as mc

    from tritonrepo.config import ModelSettings, TensorSpec, build_config
    from tritonrepo.ensemble import plan_ensemble
    from tritonrepo.pipeline import ensemble_maps, ensemble_outputs, post_step_inputs
    from tritonrepo.tasks.registry import PipelineSpec, TensorDecl

    spec = TaskSpec(task="t", family="f", model_types=("bert",), architectures=(), auto_class="AutoModel",
                    sample_inputs="tritonrepo.samples:text_inputs", pipeline=PipelineSpec(
                        pre_kind="text", raw_inputs=(TensorDecl("text", "TYPE_STRING", (1,)),),
                        pre_extra_outputs=(TensorDecl("offsets", "TYPE_INT64", (-1, 2)),),
                        post_kind="k", post_inputs=("core.logits", "pre.offsets", "raw.text", "pre.missing?"),
                        post_outputs=(TensorDecl("words", "TYPE_STRING", (-1,)),), outputs=("post.words",),
                        golden_inputs="tritonrepo.tasks.reference:golden_texts",
                        reference="tritonrepo.tasks.reference:no_reference"))
    cfg = lambda n, i, o: build_config(n, backend="python", inputs=[TensorSpec(*t) for t in i],  # noqa: E731
                                       outputs=[TensorSpec(*t) for t in o], settings=ModelSettings(max_batch_size=8))
    pre = cfg("p", [("text", mc.TYPE_STRING, (1,))], [("input_ids", mc.TYPE_INT64, (-1,)), ("offsets", mc.TYPE_INT64, (-1, 2))])
    core = cfg("m", [("input_ids", mc.TYPE_INT64, (-1,))], [("logits", mc.TYPE_FP32, (-1, 3))])
    inputs = post_step_inputs(spec, core, pre)
    assert [t.name for t in inputs] == ["logits", "offsets", "text"]
    post = cfg("q", [(t.name, t.data_type, t.dims) for t in inputs], [("words", mc.TYPE_STRING, (-1,))])
    plan = plan_ensemble("e", ["p", "m", "q"], {"p": pre, "m": core, "q": post}, maps=ensemble_maps(spec, "q"),
                         outputs=ensemble_outputs(spec, "m", "q", core))
    steps = plan.to_config().ensemble_scheduling.step
    assert dict(steps[2].input_map) == {"logits": "logits", "offsets": "offsets", "text": "text"}


def test_matrix_records_merge_and_render(tmp_path):
    from tritonrepo.tasks.matrix import make_record, merge_records, render_markdown

    path = tmp_path / "m.json"
    merge_records(path, [make_record("BertForMaskedLM", "fill-mask", "onnx", "no such thing"),
                         make_record("BertForMaskedLM", "fill-mask", "python", True)])
    records = merge_records(path, [make_record("BertForMaskedLM", "fill-mask", "onnx", True)])
    assert [(r["mode"], r["ok"]) for r in records] == [("onnx", True), ("python", True)]
    assert "| BertForMaskedLM | fill-mask | ✓ | ✓ | – |" in render_markdown(records)
    assert "| X | t | a \\| b | – | – |" in render_markdown([make_record("X", "t", "onnx", "a | b")])
    with pytest.raises(ValueError, match="mode must be one of"):
        make_record("X", "t", "tensorrt", True)


def test_support_matrix_doc_is_generated_from_the_registry_and_records():
    from tritonrepo.tasks.matrix import PACKAGED, read_records, render_markdown

    doc = Path(__file__).resolve().parent.parent / "docs" / "support-matrix.md"
    assert doc.read_text(encoding="utf-8") == render_markdown(read_records(PACKAGED)), (
        "docs/support-matrix.md is stale: make support-matrix "
        "(or python -m tritonrepo.tasks.matrix --input src/tritonrepo/tasks/support_matrix.json)")


def test_an_unsupported_hub_model_is_refused_before_its_weights_download(tmp_path):
    from hub_standin import serve_folder

    folder = tmp_path / "hub"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2ForTokenClassification"]}))
    (folder / "model.safetensors").write_bytes(b"x" * 1000)
    server = serve_folder(folder, "org/unsupported", "feedfacefeedfacefeedfacefeedfacefeedface")
    env = {**os.environ, "PYTHONPATH": SRC, "HF_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
           "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0"}
    try:
        proc = subprocess.run([sys.executable, "-m", "tritonrepo", "add-hf", "org/unsupported", "--repo",
                               str(tmp_path / "repo")], capture_output=True, text=True, env=env, timeout=120)
    finally:
        server.shutdown()
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: architecture 'GPT2ForTokenClassification': task 'token-classification' is "
                                  "not supported for model type 'gpt2'")
    assert not list((tmp_path / "hf").rglob("model.safetensors")) and not (tmp_path / "repo").exists()


def test_importing_the_registry_is_light():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import tritonrepo.tasks"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": SRC}, timeout=60)
    lines = [line.split("|") for line in proc.stderr.splitlines() if line.startswith("import time:")]
    modules = {parts[-1].strip(): int(parts[1]) for parts in lines if parts[1].strip().isdigit()}
    assert not {m.split(".")[0] for m in modules} & {"torch", "transformers", "optimum", "numpy", "onnx"}, (
        f"tritonrepo.tasks took {modules['tritonrepo.tasks'] / 1000:.0f} ms")


def test_register_refuses_bad_entries():
    from tritonrepo.tasks.registry import PipelineSpec, TensorDecl, register

    base = dict(task="t-bad", family="f", model_types=("zzz",), architectures=(), auto_class="AutoModel",
                sample_inputs="tritonrepo.samples:text_inputs")
    with pytest.raises(ValueError, match="bad pipeline references"):
        register(TaskSpec(**base, pipeline=PipelineSpec(
            pre_kind="text", raw_inputs=(TensorDecl("text", "TYPE_STRING"),), outputs=("post.x",),
            golden_inputs="a:b", reference="a:b")))
    with pytest.raises(ValueError, match="both claim model types"):
        register(TaskSpec(**{**base, "task": "text-classification", "model_types": ("bert",)}))
    with pytest.raises(ValueError, match="'generate' entry needs a builder"):
        TaskSpec(**base, kind="generate")
    assert "t-bad" not in SUPPORTED_TASKS
