"""CTC speech recognition (wav2vec2, HuBERT) on an ONNX graph, inside transformers' pipeline (copied beside the
generate module as ``tritonrepo_ctc_onnx.py``; ``--backend onnx``).

No Triton import and no optimum import: tested in-process, and used by
:func:`tritonrepo.triton_models.media_generate.onnx_pipeline` for CTC checkpoints. The graph is optimum's
``automatic-speech-recognition`` export of ``*ForCTC`` (``optimum/exporters/onnx/model_configs.py``,
``Wav2Vec2OnnxConfig`` / ``HubertOnnxConfig``, both ``AudioOnnxConfig``): input ``input_values``
``[batch, samples]`` float32 (plus ``attention_mask`` ``[batch, samples]`` int64 when the graph declares it), output
``logits`` ``[batch, frames, vocab]`` float32.

:func:`ctc_onnx_pipeline` builds transformers' ``automatic-speech-recognition`` pipeline on a weightless shell of
the model (``AutoModelForCTC`` on the ``meta`` device: the pipeline reads only its config —
``inputs_to_logits_ratio`` for chunk strides, ``main_input_name``) whose ``forward`` is :class:`OrtCTCForward`.
The pipeline's ``_forward`` calls ``self.model(input_values=..., attention_mask=...)`` and takes ``.logits``
(transformers ``pipelines/automatic_speech_recognition.py``), so feature extraction, chunking with strides
(``chunk_length_s``, ``stride_length_s``), argmax and CTC decoding (``tokenizer.decode`` with
``group_tokens``, stride-aware merging of chunks) all stay the pipeline's.
"""

from __future__ import annotations

import os

try:  # inside Triton: the engine copied beside model.py
    from tritonrepo_generate_engine import cpu_session
except ImportError:  # in-process; by name, so that `tritonrepo package` (which reads the imports of a served model's
    # files) does not list tritonrepo as a requirement of the container
    import importlib

    cpu_session = importlib.import_module("tritonrepo.triton_models.generate_engine").cpu_session

#: model types whose ``*ForCTC`` checkpoints ``--backend onnx`` serves (optimum's export task for them).
CTC_MODEL_TYPES = ("wav2vec2", "hubert")
EXPORT_TASK = "automatic-speech-recognition"
ONNX_FILE = "model.onnx"
TASK = "automatic-speech-recognition"


class _Output:
    """What the pipeline reads of a ``CausalLMOutput``: ``logits``."""

    def __init__(self, logits) -> None:
        self.logits = logits


class OrtCTCForward:
    """The ``forward`` of the weightless CTC shell: one onnxruntime session on optimum's graph.

    Called as the ASR pipeline calls the model: ``input_values`` (torch ``[batch, samples]`` float32, the feature
    extractor's normalised audio) and ``attention_mask`` (``[batch, samples]``, or ``None`` when the feature
    extractor returns none: wav2vec2-base / HuBERT). The mask is fed only when the graph has an
    ``attention_mask`` input (ones when the pipeline gave none). Returns an object whose ``logits`` is a torch
    ``[batch, frames, vocab]`` float32 tensor.

    Args:
        path: the ``.onnx`` file.
        threads: onnxruntime's intra-op threads (0: its default).
    """

    def __init__(self, path: str, threads: int = 0) -> None:
        self.session = cpu_session(path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        if "input_values" not in self.input_names:
            raise ValueError(f"{path}: the CTC graph has no 'input_values' input (inputs: {self.input_names})")

    def __call__(self, input_values=None, attention_mask=None, **_kwargs):
        import numpy as np  # noqa: PLC0415
        import torch  # noqa: PLC0415

        values = input_values.detach().cpu().numpy() if hasattr(input_values, "detach") else np.asarray(input_values)
        feeds = {"input_values": np.ascontiguousarray(values, dtype=np.float32)}
        if "attention_mask" in self.input_names:
            if attention_mask is None:
                mask = np.ones(values.shape, dtype=np.int64)
            else:
                mask = attention_mask.detach().cpu().numpy() if hasattr(attention_mask, "detach") else attention_mask
            feeds["attention_mask"] = np.ascontiguousarray(mask, dtype=np.int64)
        (logits,) = self.session.run(["logits"], feeds)
        return _Output(torch.from_numpy(logits))

    def shutdown(self) -> None:
        """Release the session (the module calls this at unload, as it stops the encoder-decoder engine)."""
        self.session = None


def ctc_onnx_pipeline(folder: str, version_dir: str, onnx_folder: str = "onnx", threads: int = 0):
    """transformers' ``automatic-speech-recognition`` pipeline on a weightless ``AutoModelForCTC`` shell (built on
    the ``meta`` device from ``folder``'s config, with ``folder``'s tokenizer and feature extractor) whose forward
    is :class:`OrtCTCForward` on ``version_dir/onnx_folder/model.onnx``. ``pipe.tritonrepo_engine`` is that
    forward (``shutdown()`` at unload).

    Raises:
        onnxruntime's error: the graph is missing or unreadable; ``ValueError``: it has no ``input_values``.
    """
    import torch  # noqa: PLC0415
    from transformers import AutoConfig, AutoModelForCTC, pipeline  # noqa: PLC0415

    cfg = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        shell = AutoModelForCTC.from_config(cfg)
    forward = OrtCTCForward(os.path.join(version_dir, onnx_folder, ONNX_FILE), threads=threads)
    shell.forward = forward  # nn.Module.__call__ -> self.forward: the instance attribute wins
    # device=-1: the pipeline takes the model's device (meta) and so does not move the weightless shell; its
    # tensors are then kept on the CPU (the session reads NumPy arrays)
    pipe = pipeline(TASK, model=shell, tokenizer=folder, feature_extractor=folder, device=-1)
    pipe.device = torch.device("cpu")
    pipe.tritonrepo_engine = forward
    return pipe
