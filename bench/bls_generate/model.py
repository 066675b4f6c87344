"""Bench-only BLS generation loop (NOT part of the product): the design issue 10 item 1 names first.

A fixed, non-decoupled Python-backend module that generates greedily by calling the decoder graph, served as a
Triton model of its own (``backend: "onnxruntime"``), once per token through ``pb_utils.InferenceRequest(...).exec()``,
the KV cache passed as tensors both ways at every step. ``bench/generation_design.py`` builds the configs and
compares it with the product (``triton_models/generate.py``: the same graph in an onnxruntime session inside the
generation module). Batch 1: one request per ``execute`` (``max_batch_size: 0``, one instance), no batching.

Config ``parameters``:

* ``mode``: ``loop`` (default) or ``probe``;
* ``loop``: ``decoder`` (the decoder model's name), ``tokenizer_dir`` (absolute path), ``layers``, ``kv_heads``,
  ``head_dim`` (shape of ``past_key_values.N.key/value``: ``[1, kv_heads, past, head_dim]`` float32, optimum's
  ``text-generation-with-past`` graph), ``position_ids`` (``true`` if the graph takes them).
  Inputs ``text_input`` (TYPE_STRING [1]), optional ``max_tokens`` (TYPE_INT32 [1]), ``exclude_input_in_output`` and
  ``stream`` (TYPE_BOOL [1], read and ignored: the answer is the generated text only, one response).
  Outputs ``text_output`` (TYPE_STRING [-1]); ``exec_seconds`` (TYPE_FP64 [-1]): wall time of each ``exec()`` call
  (prefill first); ``step_seconds`` (TYPE_FP64 [-1]): wall time of each whole step (tensor wrapping, ``exec()``,
  reading the outputs, argmax).
* ``probe``: inputs ``target`` (TYPE_STRING [1], a model name), ``kv_shape`` (TYPE_INT64 [4]), ``tensors``
  (TYPE_INT32 [1], n), ``repeat`` (TYPE_INT32 [1]), ``onnx_path`` (TYPE_STRING [1], optional); outputs ``seconds``
  and ``local_seconds`` (TYPE_FP64 [-1]). Without ``onnx_path``, ``target`` is an identity model (inputs ``kv.0`` ..
  ``kv.{n-1}``, outputs ``kv_out.N``) and ``seconds`` is the wall time of each of ``repeat`` BLS calls sending n
  float32 tensors of ``kv_shape`` and reading them back (``as_numpy``). With ``onnx_path`` (the decoder graph that
  ``target`` serves), every repeat runs ONE decode step on a random past of ``kv_shape`` twice, alternately: as a
  BLS call to ``target`` (``seconds``) and in an onnxruntime session opened on ``onnx_path`` inside this stub, as
  the product's module does (``local_seconds``, 1 intra-op thread).
"""

import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


def _param(config, key, default=""):
    return config.get("parameters", {}).get(key, {}).get("string_value", "") or default


def _scalar(request, name):
    t = pb_utils.get_input_tensor_by_name(request, name)
    return None if t is None else t.as_numpy().reshape(-1)[0]


def _call(model, inputs, outputs):
    """One BLS call; ``{name: array}`` out. Raises on an error response."""
    resp = pb_utils.InferenceRequest(model_name=model, requested_output_names=outputs,
                                     inputs=[pb_utils.Tensor(k, v) for k, v in inputs.items()]).exec()
    if resp.has_error():
        raise pb_utils.TritonModelException(f"{model}: {resp.error().message()}")
    return {n: pb_utils.get_output_tensor_by_name(resp, n).as_numpy() for n in outputs}


class TritonPythonModel:
    def initialize(self, args):
        self.config = json.loads(args["model_config"])
        self.mode = _param(self.config, "mode", "loop")
        if self.mode == "probe":
            return
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(_param(self.config, "tokenizer_dir"))
        self.decoder = _param(self.config, "decoder")
        self.layers = int(_param(self.config, "layers"))
        self.kv_heads = int(_param(self.config, "kv_heads"))
        self.head_dim = int(_param(self.config, "head_dim"))
        self.position_ids = _param(self.config, "position_ids", "true") == "true"
        kv = [f"{i}.{k}" for i in range(self.layers) for k in ("key", "value")]
        self.past_names = [f"past_key_values.{n}" for n in kv]
        self.present_names = [f"present.{n}" for n in kv]

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                responses.append(self._probe(request) if self.mode == "probe" else self._generate(request))
            except Exception as exc:  # noqa: BLE001 - this request's error
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"{type(exc).__name__}: {exc}")))
        return responses

    def _generate(self, request):
        text = _scalar(request, "text_input")
        text = text.decode() if isinstance(text, bytes) else str(text)
        max_tokens = _scalar(request, "max_tokens")
        max_tokens = int(max_tokens) if max_tokens is not None else 16
        ids = self.tokenizer(text).input_ids
        n = len(ids)
        past = [np.zeros((1, self.kv_heads, 0, self.head_dim), np.float32)] * len(self.past_names)
        feed_ids = np.array([ids], np.int64)
        positions = np.arange(n, dtype=np.int64)[None, :]
        out_ids, exec_s, step_s = [], [], []
        for _ in range(max_tokens):
            t0 = time.perf_counter()
            inputs = {"input_ids": feed_ids, "attention_mask": np.ones((1, n), np.int64)}
            if self.position_ids:
                inputs["position_ids"] = positions
            inputs.update(zip(self.past_names, past))
            t1 = time.perf_counter()
            out = _call(self.decoder, inputs, ["logits"] + self.present_names)
            exec_s.append(time.perf_counter() - t1)
            token = int(np.argmax(out["logits"][0, -1]))
            past = [out[p] for p in self.present_names]
            out_ids.append(token)
            feed_ids = np.array([[token]], np.int64)
            positions = np.array([[n]], np.int64)
            n += 1
            step_s.append(time.perf_counter() - t0)
        answer = self.tokenizer.decode(out_ids, skip_special_tokens=True)
        return pb_utils.InferenceResponse(output_tensors=[
            pb_utils.Tensor("text_output", np.array([answer.encode()], dtype=np.object_)),
            pb_utils.Tensor("exec_seconds", np.array(exec_s, np.float64)),
            pb_utils.Tensor("step_seconds", np.array(step_s, np.float64)),
        ])

    def _probe(self, request):
        target = _scalar(request, "target")
        target = target.decode() if isinstance(target, bytes) else str(target)
        shape = tuple(int(d) for d in pb_utils.get_input_tensor_by_name(request, "kv_shape").as_numpy().reshape(-1))
        n = int(_scalar(request, "tensors"))
        repeat = int(_scalar(request, "repeat"))
        onnx_path = _scalar(request, "onnx_path")
        rng = np.random.default_rng(0)
        seconds, local = [], []
        if onnx_path is None:
            arrays = {f"kv.{i}": rng.random(shape, dtype=np.float32) for i in range(n)}
            names = [f"kv_out.{i}" for i in range(n)]
            for _ in range(repeat):
                t = time.perf_counter()
                out = _call(target, arrays, names)
                seconds.append(time.perf_counter() - t)
            assert all(out[f"kv_out.{i}"].shape == shape for i in range(n))
        else:
            session = self._session(onnx_path.decode() if isinstance(onnx_path, bytes) else str(onnx_path))
            graph_inputs = {i.name for i in session.get_inputs()}
            past_len = shape[2]
            feed = {"input_ids": np.array([[1]], np.int64), "attention_mask": np.ones((1, past_len + 1), np.int64)}
            if "position_ids" in graph_inputs:
                feed["position_ids"] = np.array([[past_len]], np.int64)
            for i in range(n // 2):
                for kv in ("key", "value"):
                    feed[f"past_key_values.{i}.{kv}"] = (rng.random(shape, dtype=np.float32) - 0.5)
            names = ["logits"] + [f"present.{i}.{kv}" for i in range(n // 2) for kv in ("key", "value")]
            for _ in range(repeat):
                t = time.perf_counter()
                out = _call(target, feed, names)
                seconds.append(time.perf_counter() - t)
                t = time.perf_counter()
                ref = session.run(names, feed)
                local.append(time.perf_counter() - t)
            assert np.allclose(out["logits"], ref[0], atol=1e-3), "BLS and in-stub logits differ"
        return pb_utils.InferenceResponse(output_tensors=[
            pb_utils.Tensor("seconds", np.array(seconds, np.float64)),
            pb_utils.Tensor("local_seconds", np.array(local or [0.0], np.float64))])

    def _session(self, path):
        """An onnxruntime session on ``path`` (1 intra-op thread, as the product's ``OrtRunner`` with threads=1)."""
        sessions = self.__dict__.setdefault("sessions", {})
        if path not in sessions:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            sessions[path] = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        return sessions[path]
