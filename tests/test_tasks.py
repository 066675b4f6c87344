import json

import pytest

from tritonrepo.checkpoint import resolve_checkpoint
from tritonrepo.errors import TritonRepoError
from tritonrepo.tasks import detect_task, task_for_architecture


def test_task_from_architectures(bert_dir, distilbert_dir, vit_dir, minilm_dir):
    assert detect_task(resolve_checkpoint(str(bert_dir))) == "text-classification"
    assert detect_task(resolve_checkpoint(str(distilbert_dir))) == "text-classification"
    assert detect_task(resolve_checkpoint(str(vit_dir))) == "feature-extraction"
    minilm = resolve_checkpoint(str(minilm_dir))
    assert minilm.is_sentence_transformers
    assert detect_task(minilm) == "feature-extraction"


@pytest.mark.parametrize(
    ("arch", "task"),
    [("BertForTokenClassification", "token-classification"), ("BertForQuestionAnswering", "question-answering"),
     ("ViTForImageClassification", "image-classification"), ("BertForMaskedLM", "fill-mask")],
)
def test_architecture_mapping(arch, task):
    assert task_for_architecture(arch) == task


def test_explicit_task_and_synonyms(bert_dir):
    ckpt = resolve_checkpoint(str(bert_dir))
    assert detect_task(ckpt, "feature-extraction") == "feature-extraction"
    assert detect_task(ckpt, "sequence-classification") == "text-classification"


def test_bad_tasks_are_refused(bert_dir, vit_dir):
    with pytest.raises(TritonRepoError, match="unknown task 'summarize-everything'"):
        detect_task(resolve_checkpoint(str(bert_dir)), "summarize-everything")
    with pytest.raises(TritonRepoError, match="task 'text-classification' is not supported for model type 'vit'"):
        detect_task(resolve_checkpoint(str(vit_dir)), "text-classification")


def test_missing_architectures_needs_task(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(TritonRepoError, match="no 'architectures' to infer the task from"):
        detect_task(resolve_checkpoint(str(tmp_path)))
