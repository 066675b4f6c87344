"""All rule families; importing this package registers every rule in :data:`tritonrepo.validate.model.RULES`.

Codes: TR1xx repository layout, TR2xx config syntax, TR3xx core semantics, TR4xx ensembles, TR5xx ONNX models,
TR6xx Python-backend models, TR7xx tritonrepo manifests.
"""

from tritonrepo.validate.rules import core, ensemble, layout, manifest, onnx, python, schema  # noqa: F401
