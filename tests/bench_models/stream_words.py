"""A decoupled test model for ``tritonrepo bench``: streams the words of ``text_input`` back, one response each.

Config: ``text_input`` / ``text_output`` ``TYPE_STRING [1]``, ``max_batch_size: 0``, decoupled. Each word is sent
after ``delay_ms`` milliseconds (config parameter), so time to first token and inter-token latency are known.
"""

import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        import json

        params = json.loads(args["model_config"]).get("parameters", {})
        self.delay = float(params.get("delay_ms", {}).get("string_value", "5")) / 1000.0

    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            text = pb_utils.get_input_tensor_by_name(request, "text_input").as_numpy().reshape(-1)[0]
            for word in bytes(text).decode().split():
                time.sleep(self.delay)
                out = pb_utils.Tensor("text_output", np.array([word.encode()], dtype=object))
                sender.send(pb_utils.InferenceResponse(output_tensors=[out]))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None
