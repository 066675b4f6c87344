"""validate's fast text-format reader gives the message protobuf's text_format gives, or leaves the text to it.

Checked on every config of the corpus, on hand-written texts covering the syntax (lists, maps, comments,
separators, adjacent strings, nested messages) and on 400 mutated configs (the fuzz test's mutations): whenever the
fast reader returns a message, text_format parses the same text into an equal message.
"""

from __future__ import annotations

import pytest
from google.protobuf import text_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus.cases import BROKEN, CONFIG, ENSEMBLE, VALID
from corpus.mutate import DrawChooser, mutate, text_mutate
from test_validate_fuzz import ONNX_CONFIG
from tritonrepo._proto.model_config import model_config_pb2 as mc
from tritonrepo.validate.textproto import parse


def _slow(text: str):
    try:
        return text_format.Parse(text, mc.ModelConfig())
    except text_format.ParseError:
        return None


def _agree(text: str) -> bool:
    """Asserts the two readers agree; True when the fast one read the text itself."""
    fast = parse(text, mc.ModelConfig())
    if fast is None:
        return False
    slow = _slow(text)
    assert slow is not None, f"fast reader accepted what text_format refuses:\n{text}"
    assert fast == slow, text
    assert text_format.MessageToString(fast) == text_format.MessageToString(slow)
    return True


def _corpus_configs() -> list[str]:
    out = []
    for case in BROKEN + VALID:
        out += [v for k, v in case.files.items() if k.endswith("config.pbtxt") and isinstance(v, str)]
    return out


def test_corpus_configs_agree():
    configs = _corpus_configs()
    fast = sum(_agree(text) for text in configs)
    assert fast >= len(configs) // 2  # the subset covers the ordinary configs


SYNTAX = [
    'name: "m" # a comment\nbackend: \'python\'; max_batch_size: 8,\n',
    'name: "a" "b"\n',
    'input: [ { name: "x" data_type: TYPE_FP32 dims: [ -1, 4 ] } ]',
    'input { name: "x" dims: 4 dims: 5 } input { name: "y" dims: [] }',
    'parameters { key: "k" value { string_value: "v" } } parameters { key: "k" value { string_value: "w" } }',
    'parameters: { key: "a" value: { string_value: "1" } }',
    'dynamic_batching { preferred_batch_size: [ 2, 4 ] max_queue_delay_microseconds: 100 priority_queue_policy { key: 1 value { max_queue_size: 3 } } }',
    'sequence_batching { direct { minimum_slot_utilization: 0.5 } max_sequence_idle_microseconds: 18446744073709551615 }',
    'sequence_batching { oldest { max_candidate_sequences: 4 } state [ { input_name: "i" output_name: "o" initial_state { zero_data: true dims: [ 1 ] } } ] }',
    'ensemble_scheduling { step [ { model_name: "m" model_version: -1 input_map { key: "a" value: "b" } } ] }',
    'optimization { input_pinned_memory { enable: true } execution_accelerators { gpu_execution_accelerator [ { name: "tensorrt" parameters { key: "precision_mode" value: "FP16" } } ] } }',
    'response_cache { enable: false } model_transaction_policy { decoupled: true }',
    'version_policy { specific { versions: [ 1, 3 ] } }',
    'instance_group [ { kind: KIND_GPU count: 2 gpus: [ 0, 1 ] } ]',
    'model_warmup [ { name: "w" batch_size: 1 inputs { key: "x" value { data_type: TYPE_FP32 dims: [ 4 ] random_data: true } } } ]',
    'max_batch_size: 2147483647', 'max_batch_size: -0', 'input { dims: [ -1 ] reshape { shape: [ ] } }',
    'optimization { graph { level: -1 } }',
    'platform: "ensemble" ensemble_scheduling { step { model_name: "m" } step { model_name: "n" } }', 'sequence_batching { direct { minimum_slot_utilization: 1e-1 } }',
]
#: left to text_format (it accepts or refuses with its own message)
LEFT = [
    'dims: 1e3', 'max_batch_size: 1.0', 'max_batch_size: 0x10', 'max_batch_size: 010', 'max_batch_size: 2147483648', 'name: "a\\"b"',
    'instance_group [ { kind: 7 } ]', 'response_cache { enable: True }', 'input < name: "x" >',
    'max_batch_size: 1 max_batch_size: 2', 'dynamic_batching { } sequence_batching { }', 'nope: 1', 'name "x"',
    'input [ { name: "x" } { name: "y" } ]', 'sequence_batching { direct { minimum_slot_utilization: inf } }',
    'max_batch_size: 4abc', 'max_batch_size: 4-5', 'dims: [ 1, ]', '{', '}', 'name: "x" }', 'max_batch_size: \u0663',
    'name:\u00a0"x"',
]


@pytest.mark.parametrize("text", SYNTAX)
def test_syntax_is_read_as_text_format_reads_it(text):
    assert _agree(text)


@pytest.mark.parametrize("text", LEFT)
def test_the_rest_is_left_to_text_format(text):
    assert parse(text, mc.ModelConfig()) is None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_configs_agree(data):
    base = data.draw(st.sampled_from([CONFIG, ENSEMBLE, ONNX_CONFIG]))
    cfg = text_format.Parse(base, mc.ModelConfig())
    ch = DrawChooser(data)
    for _ in range(data.draw(st.integers(0, 3))):
        mutate(cfg, ch)
    text = text_format.MessageToString(cfg, as_one_line=data.draw(st.booleans()))
    if data.draw(st.booleans()):
        text, _ = text_mutate(text, ch)
    _agree(text)
