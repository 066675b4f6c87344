"""Fixed Python-backend modules that tritonrepo copies into model repositories.

They run inside Triton's Python-backend stub, not inside tritonrepo: they import only the standard library,
NumPy, ``triton_python_backend_utils`` and what the model needs (torch/transformers, onnxruntime). Each is
parameterised through its config ``parameters``; none is assembled from strings.

* :mod:`runtime` — request batching and per-request errors (copied as ``tritonrepo_runtime.py``).
* :mod:`hf_transformers` — a Hugging Face model in PyTorch (copied as ``<version>/model.py``).
"""
