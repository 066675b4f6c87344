"""A Hugging Face transformers model served by Triton's Python backend in PyTorch (copied as ``<version>/model.py``).

This is a fixed module: what it serves is set by the model config's ``parameters``:

* ``auto_class`` — the transformers class to load, e.g. ``AutoModelForSequenceClassification``: the task
  registry entry's ``auto_class``, i.e. the class ``transformers.pipeline`` loads for the task (not optimum's
  first loader, which for some tasks is another head than the one the task needs);
* ``model_subfolder`` — the checkpoint folder inside the version folder (default ``hf_model``);
* ``task`` — the optimum task name (informational);
* ``torch_threads`` — optional ``torch.set_num_threads`` value.

Files are located from ``args["model_repository"]`` and ``args["model_version"]``, never the working
directory. Inputs are read by the config's input names (``[batch, ...]`` when ``max_batch_size > 0``); each
configured output is taken from the model's output of the same name (``logits``, ``last_hidden_state``, ...)
and cast to the dtype the config declares. Requests are batched together where their shapes allow; a request
the model cannot run (e.g. a token id outside the vocabulary) gets an error response and the model keeps serving.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import transformers  # noqa: E402
from tritonrepo_runtime import ModelIO, execute_batched  # noqa: E402


class TritonPythonModel:
    """Serves one transformers checkpoint in PyTorch on the CPU."""

    def initialize(self, args):
        """Load the checkpoint named by the config parameters."""
        self.io = ModelIO(args["model_config"])
        folder = os.path.join(
            args["model_repository"], args["model_version"], self.io.parameter("model_subfolder", "hf_model")
        )
        threads = self.io.parameter("torch_threads", "")
        if threads:
            torch.set_num_threads(int(threads))
        auto_class = getattr(transformers, self.io.parameter("auto_class"))
        self.model = auto_class.from_pretrained(folder)
        self.model.eval()

    def _run(self, arrays):
        with torch.no_grad():
            out = self.model(**{k: torch.from_numpy(v) for k, v in arrays.items()}, return_dict=True)
        return {name: out[name].detach().cpu().numpy() for name in self.io.outputs}

    def execute(self, requests):
        """One response per request, stacked into one forward pass where shapes allow."""
        return execute_batched(requests, self.io, self._run)

    def finalize(self):
        """Drop the model and make the stub's exit immediate: tearing torch and transformers down in
        ``Py_FinalizeEx`` takes seconds per stub (over 20 s for six stubs on 2 cores) while ``tritonserver`` waits
        for each stub to exit, and nothing in it matters to the server (as ``generate.py``'s ``finalize``)."""
        import atexit  # noqa: PLC0415
        import gc  # noqa: PLC0415

        self.model = None
        gc.collect()
        atexit.register(os._exit, 0)
