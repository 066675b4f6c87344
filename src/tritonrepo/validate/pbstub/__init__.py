"""Files run inside the sandboxed subprocess of :mod:`tritonrepo.validate.autocomplete` (never imported by
tritonrepo itself): a stand-in ``triton_python_backend_utils`` and the runner that calls ``auto_complete_config``."""
