"""Data type tables between ONNX, Triton's ``model_config`` and NumPy.

Triton's names come from ``model_config.proto`` (``TYPE_*``) and its wire names (``FP32``, ``BYTES``)
from ``tritonclient.utils``; the ONNX mapping mirrors onnxruntime_backend's ``ConvertFromOnnxDataType``
(src/onnxruntime_utils.cc).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tritonrepo._proto.model_config import model_config_pb2 as mc  # not tritonclient.grpc: no grpc import

if TYPE_CHECKING:
    import numpy as np


class TensorProto:
    """ONNX ``TensorProto.DataType`` numbers (onnx/onnx.proto; fixed by the ONNX spec), without importing onnx."""

    FLOAT, UINT8, INT8, UINT16, INT16, INT32, INT64, STRING, BOOL, FLOAT16, DOUBLE, UINT32, UINT64 = range(1, 14)
    BFLOAT16 = 16


#: ONNX ``TensorProto.DataType`` -> ``model_config.DataType``.
ONNX_TO_TRITON: dict[int, int] = {
    TensorProto.BOOL: mc.TYPE_BOOL,
    TensorProto.UINT8: mc.TYPE_UINT8,
    TensorProto.UINT16: mc.TYPE_UINT16,
    TensorProto.UINT32: mc.TYPE_UINT32,
    TensorProto.UINT64: mc.TYPE_UINT64,
    TensorProto.INT8: mc.TYPE_INT8,
    TensorProto.INT16: mc.TYPE_INT16,
    TensorProto.INT32: mc.TYPE_INT32,
    TensorProto.INT64: mc.TYPE_INT64,
    TensorProto.FLOAT16: mc.TYPE_FP16,
    TensorProto.FLOAT: mc.TYPE_FP32,
    TensorProto.DOUBLE: mc.TYPE_FP64,
    TensorProto.STRING: mc.TYPE_STRING,
    TensorProto.BFLOAT16: mc.TYPE_BF16,
}

_TRITON_TO_NUMPY: dict[int, np.dtype] | None = None


def __getattr__(name: str):
    """``TRITON_TO_NUMPY`` (``model_config.DataType`` -> NumPy dtype; ``TYPE_STRING`` travels as ``object`` holding
    bytes), built on first use so that importing this module does not import NumPy (``validate`` never needs it)."""
    if name == "TRITON_TO_NUMPY":
        return _triton_to_numpy()
    raise AttributeError(name)


def _triton_to_numpy() -> dict[int, np.dtype]:
    global _TRITON_TO_NUMPY
    if _TRITON_TO_NUMPY is None:
        import numpy as np  # noqa: PLC0415

        _TRITON_TO_NUMPY = {
            mc.TYPE_BOOL: np.dtype(np.bool_),
            mc.TYPE_UINT8: np.dtype(np.uint8),
            mc.TYPE_UINT16: np.dtype(np.uint16),
            mc.TYPE_UINT32: np.dtype(np.uint32),
            mc.TYPE_UINT64: np.dtype(np.uint64),
            mc.TYPE_INT8: np.dtype(np.int8),
            mc.TYPE_INT16: np.dtype(np.int16),
            mc.TYPE_INT32: np.dtype(np.int32),
            mc.TYPE_INT64: np.dtype(np.int64),
            mc.TYPE_FP16: np.dtype(np.float16),
            mc.TYPE_FP32: np.dtype(np.float32),
            mc.TYPE_FP64: np.dtype(np.float64),
            mc.TYPE_STRING: np.dtype(object),
        }
    return _TRITON_TO_NUMPY


def triton_type_name(data_type: int) -> str:
    """``mc.TYPE_FP32`` -> ``"TYPE_FP32"``; a number with no name (``data_type: -3`` parses: the enum is open) is
    returned as its digits."""
    try:
        return mc.DataType.Name(data_type)
    except ValueError:
        return str(data_type)


def wire_name(data_type: int) -> str:
    """Triton's protocol name for a config type: ``TYPE_FP32`` -> ``"FP32"``, ``TYPE_STRING`` -> ``"BYTES"``."""
    name = triton_type_name(data_type)[len("TYPE_"):]
    return "BYTES" if name == "STRING" else name


def numpy_dtype(data_type: int) -> np.dtype:
    """NumPy dtype for a config type. Raises ``KeyError`` for ``TYPE_BF16``/``TYPE_INVALID``."""
    return _triton_to_numpy()[data_type]


def from_numpy(dtype: np.dtype) -> int:
    """NumPy dtype -> config type; ``object``/bytes/str map to ``TYPE_STRING``."""
    import numpy as np  # noqa: PLC0415

    dtype = np.dtype(dtype)
    if dtype.kind in "OSU":
        return mc.TYPE_STRING
    for t, d in _triton_to_numpy().items():
        if d == dtype:
            return t
    raise KeyError(f"no Triton data type for numpy dtype {dtype}")
