"""Triton's ``model_config_pb2`` without importing the ``tritonclient.grpc`` package.

``from tritonclient.grpc import model_config_pb2`` executes ``tritonclient/grpc/__init__.py``, which imports grpc,
numpy and ml_dtypes (~170 ms) although the generated module itself needs only protobuf. This loads the very same
file under its canonical module name, so the descriptor is registered once and a later ``import
tritonclient.grpc`` reuses it (same classes: messages built here are the client's messages).

Usage: ``from tritonrepo._proto.model_config import model_config_pb2 as mc``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "tritonclient.grpc.model_config_pb2"


def _load():
    if _NAME in sys.modules:
        return sys.modules[_NAME]
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("tritonclient is not installed (pip install tritonclient[grpc])")
    path = Path(next(iter(spec.submodule_search_locations))) / "grpc" / "model_config_pb2.py"
    module_spec = importlib.util.spec_from_file_location(_NAME, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[_NAME] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_NAME]
        raise
    return module


model_config_pb2 = _load()
