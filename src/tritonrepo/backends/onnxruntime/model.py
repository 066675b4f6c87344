"""tritonrepo's Python-based ``onnxruntime`` backend (``<backend-dir>/onnxruntime/model.py``).

For Triton servers without the native ONNX Runtime backend (the ``nvidia-pytriton`` wheel's server has only
the Python backend): Triton loads this file through the Python backend for every model whose config says
``backend: "onnxruntime"``. It runs ``<model>/<version>/<default_model_filename or model.onnx>`` with
onnxruntime's Python API on the CPU and, at load time, refuses a config the native backend would refuse,
with the native backend's messages (:mod:`ort_checks`). Development and CI only: production should use the
NGC container's native backend, which reads the same configs.

Config ``parameters`` honoured: ``intra_op_thread_count`` and ``inter_op_thread_count`` (as the native backend).

The intra-op workers do not spin between runs (``session.intra_op.allow_spinning = 0``): this stub is a process of
its own that shares the cores with tritonserver's threads (which deliver each request and response) and with the
other stubs, and a worker spinning after a run takes a core from exactly those. Measured on the served MiniLM core
(2 threads, concurrency 1, 2 vCPUs): Triton's ``compute_infer`` exceeded the time spent in ``execute`` by 2.4 ms per
request with spinning (the stub's own message handling waited for a core), by 0.2-0.35 ms without; client latency
6.7 ms instead of 10.6-12.3 ms (docs/performance.md, "Where the time of a served request goes").
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402
from ort_checks import ORT_TYPE_TO_TRITON, check_config  # noqa: E402
from tritonrepo_runtime import ModelIO, execute_batched  # noqa: E402


def _tensors(args) -> dict:
    return {
        a.name: (ORT_TYPE_TO_TRITON.get(a.type, a.type), [d if isinstance(d, int) else -1 for d in a.shape])
        for a in args
    }


class TritonPythonModel:
    """Serves one ONNX model version with onnxruntime (CPUExecutionProvider)."""

    def initialize(self, args):
        """Open the session and check the config against the graph; raises on a mismatch (load fails)."""
        self.io = ModelIO(args["model_config"])
        config = self.io.config
        name = args["model_name"]
        filename = config.get("default_model_filename") or "model.onnx"
        path = os.path.join(args["model_repository"], args["model_version"], filename)
        if os.path.isdir(path):
            path = os.path.join(path, "model.onnx")
        if not os.path.exists(path):
            raise pb_utils.TritonModelException(
                f"unable to find '{path}' for model instance '{name}'"
            )
        options = ort.SessionOptions()
        threads = config.get("parameters", {}).get("intra_op_thread_count", {}).get("string_value")
        if threads:
            options.intra_op_num_threads = int(threads)
        inter = config.get("parameters", {}).get("inter_op_thread_count", {}).get("string_value")
        if inter:
            options.inter_op_num_threads = int(inter)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        errors = check_config(name, config, _tensors(self.session.get_inputs()), _tensors(self.session.get_outputs()))
        if errors:
            raise pb_utils.TritonModelException("; ".join(errors))
        self.output_names = list(self.io.outputs)

    def _run(self, arrays):
        results = self.session.run(self.output_names, arrays)
        return dict(zip(self.output_names, results))

    def execute(self, requests):
        """One response per request, stacked into one session run where shapes allow."""
        return execute_batched(requests, self.io, self._run)

    def finalize(self):
        self.session = None

