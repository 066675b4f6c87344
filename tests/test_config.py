import pytest
from tritonclient.grpc import model_config_pb2 as mc

from tritonrepo.config import ModelSettings, TensorSpec, build_config, config_to_text, parse_config, read_config, write_config
from tritonrepo.errors import TritonRepoError

IDS = TensorSpec("input_ids", mc.TYPE_INT64, (-1,))
LOGITS = TensorSpec("logits", mc.TYPE_FP32, (3,))


def test_batching_config_round_trips_through_text_format(tmp_path):
    cfg = build_config("bert", backend="onnxruntime", platform="onnxruntime_onnx", inputs=[IDS], outputs=[LOGITS],
                       settings=ModelSettings(max_batch_size=8, instance_count=2))
    path = write_config(cfg, tmp_path)
    back = read_config(tmp_path)
    assert back == cfg
    assert back.max_batch_size == 8
    assert back.HasField("dynamic_batching")
    assert back.instance_group[0].count == 2 and back.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
    assert path.read_text().splitlines()[:3] == ['name: "bert"', 'platform: "onnxruntime_onnx"', "max_batch_size: 8"]


def test_non_batching_config_says_max_batch_size_0_explicitly():
    cfg = build_config("m", backend="python", inputs=[TensorSpec("x", mc.TYPE_FP32, (-1, 4))], outputs=[LOGITS],
                       settings=ModelSettings(max_batch_size=0, dynamic_batching=True, device="gpu"))
    text = config_to_text(cfg)
    assert "max_batch_size: 0\n" in text
    assert "dynamic_batching" not in text  # meaningless without a batch dimension
    assert "KIND_GPU" in text
    assert parse_config(text) == cfg


def test_parameters_are_string_values():
    cfg = build_config("m", backend="python", inputs=[IDS], outputs=[LOGITS],
                       settings=ModelSettings(parameters={"task": "text-classification"}))
    assert cfg.parameters["task"].string_value == "text-classification"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name: "m"\nmax_batch_size: 8\nbogus_field: 1\n',
         "cfg.pbtxt:3:1: Message type \"inference.ModelConfig\" has no field named \"bogus_field\"."),
        ('name: "m"\ninput { name: "x" data_type: TYPE_FLOAT32 }\n',
         "cfg.pbtxt:2:30: Enum type \"inference.DataType\" has no value named TYPE_FLOAT32."),
        ('name: "m"\nname: "n"\n',
         "cfg.pbtxt:2:7: Message type \"inference.ModelConfig\" should not have multiple \"name\" fields."),
        ('name: "m"\ninput {\n  name: "x"\n',
         "cfg.pbtxt:3:9: Expected \"}\"."),
    ],
)
def test_parse_errors_carry_path_line_and_column(text, message):
    with pytest.raises(TritonRepoError) as err:
        parse_config(text, "cfg.pbtxt")
    assert err.value.message == message


def test_invalid_settings_are_refused():
    with pytest.raises(TritonRepoError, match="max_batch_size must be >= 0"):
        build_config("m", backend="python", inputs=[IDS], outputs=[LOGITS], settings=ModelSettings(max_batch_size=-1))
    with pytest.raises(TritonRepoError, match="unknown device 'tpu'"):
        build_config("m", backend="python", inputs=[IDS], outputs=[LOGITS], settings=ModelSettings(device="tpu"))


def test_read_config_reports_missing_file(tmp_path):
    with pytest.raises(TritonRepoError, match="cannot read model configuration"):
        read_config(tmp_path / "nope" / "config.pbtxt")


def test_machine_rule_for_instances_and_threads():
    from tritonrepo.config import machine_defaults

    assert machine_defaults("cpu", cores=2) == (1, 2)
    assert machine_defaults("cpu", cores=16) == (2, 8)
    assert machine_defaults("gpu", cores=16) == (1, 0)


def test_onnx_config_gets_threads_and_queue_delay_overrides_win():
    from tritonrepo.config import DEFAULT_QUEUE_DELAY_US, machine_defaults

    cfg = build_config("bert", backend="onnxruntime", inputs=[IDS], outputs=[LOGITS], settings=ModelSettings())
    count, threads = machine_defaults("cpu")
    assert cfg.instance_group[0].count == count
    assert cfg.parameters["intra_op_thread_count"].string_value == str(threads)
    assert cfg.parameters["inter_op_thread_count"].string_value == "1"
    assert cfg.dynamic_batching.max_queue_delay_microseconds == DEFAULT_QUEUE_DELAY_US
    cfg = build_config("bert", backend="onnxruntime", inputs=[IDS], outputs=[LOGITS], settings=ModelSettings(
        instance_count=3, threads=1, max_queue_delay_us=0, preferred_batch_sizes=(4, 8, 16)))
    assert cfg.instance_group[0].count == 3 and cfg.parameters["intra_op_thread_count"].string_value == "1"
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 0
    assert list(cfg.dynamic_batching.preferred_batch_size) == [4, 8]  # 16 > max_batch_size


def test_python_model_with_attention_mask_pads_with_ragged_sequence_inputs():
    mask = TensorSpec("attention_mask", mc.TYPE_INT64, (-1,))
    pixels = TensorSpec("pixel_values", mc.TYPE_FP32, (3, 8, 8))
    cfg = build_config("m", backend="python", inputs=[IDS, mask], outputs=[LOGITS],
                       settings=ModelSettings(pad_token_id=1, parameters={"auto_class": "AutoModel"}))
    assert cfg.parameters["batch_padding"].string_value == "true" and cfg.parameters["pad_token_id"].string_value == "1"
    assert [t.allow_ragged_batch for t in cfg.input] == [True, True]
    assert "torch_threads" in cfg.parameters
    for inputs, mbs in (([pixels], 8), ([IDS, mask], 0)):
        cfg = build_config("m", backend="python", inputs=inputs, outputs=[LOGITS], settings=ModelSettings(max_batch_size=mbs))
        assert "batch_padding" not in cfg.parameters and not any(t.allow_ragged_batch for t in cfg.input)
