"""All rule families; importing this package registers every rule in :data:`tritonrepo.validate.model.RULES`.

Codes: TR1xx repository layout, TR2xx config syntax, TR3xx core semantics (TR37x backend and runtime resolution),
TR4xx ensembles, TR5xx ONNX models, TR6xx Python-backend models, TR7xx tritonrepo manifests.
"""

from tritonrepo.validate.model import LOAD_STAGE

# Checks Triton runs when a model loads (not at the repository poll); registered before the rules that use them.
LOAD_STAGE.update({"TR319", "TR343", "TR352", "TR370", "TR371", "TR372", "TR503", "TR504", "TR505"})

from tritonrepo.validate.rules import core, ensemble, layout, manifest, onnx, python, resolve, schema  # noqa: E402,F401
