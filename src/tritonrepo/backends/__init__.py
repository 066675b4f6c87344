"""Python-based Triton backends shipped with tritonrepo (see :mod:`tritonrepo.server`)."""
