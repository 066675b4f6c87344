"""Read an ONNX model's inputs, outputs, opsets and IR version straight from the protobuf wire format.

``onnx.load`` parses the whole ModelProto, initializers included (a 2 GB model is read into memory, and the
``onnx`` package costs ~100 ms to import). ``validate`` needs only the graph's signature, so this reader walks the
file with seeks: it reads the field tags of ``ModelProto`` and ``GraphProto`` and the (small) ``input``/``output``
``ValueInfoProto`` messages, and seeks over everything else — initializers, nodes, external-data references,
doc strings. Nothing is hashed. Memory is bounded by the largest ValueInfoProto (capped at 1 MiB).

Field numbers come from onnx/onnx.proto (IR version 10): ModelProto ir_version=1, graph=7, opset_import=8;
OperatorSetIdProto domain=1, version=2; GraphProto initializer=5, input=11, output=12,
sparse_initializer=15; ValueInfoProto name=1, type=2; TypeProto tensor_type=1, sequence_type=4, map_type=5,
opaque_type=7, sparse_tensor_type=8, optional_type=9; TypeProto.Tensor elem_type=1, shape=2; TensorShapeProto dim=1;
Dimension dim_value=1, dim_param=2.
"""

from __future__ import annotations

import io
from tritonrepo.validate._record import factory, record
from pathlib import Path

#: ONNX TensorProto.DataType -> Triton type name (onnxruntime_backend ConvertFromOnnxDataType; TYPE_INVALID else).
ONNX_TO_TRITON_NAME = {
    1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 4: "TYPE_UINT16", 5: "TYPE_INT16", 6: "TYPE_INT32",
    7: "TYPE_INT64", 8: "TYPE_STRING", 9: "TYPE_BOOL", 10: "TYPE_FP16", 11: "TYPE_FP64", 12: "TYPE_UINT32",
    13: "TYPE_UINT64", 16: "TYPE_BF16",
}
_TYPE_KIND = {1: "tensor", 4: "sequence", 5: "map", 7: "opaque", 8: "sparse_tensor", 9: "optional"}
_MAX_VALUE_INFO = 1 << 20
_MAX_TENSORS = 100_000


class OnnxReadError(ValueError):
    """The file is not a readable ONNX ModelProto (truncated, not protobuf, absurd sizes)."""


@record
class OnnxGraph:
    """The signature of an ONNX graph.

    Attributes:
        ir_version: ModelProto.ir_version (0 when absent).
        opsets: domain ("" for the default ai.onnx domain) -> opset version.
        inputs / outputs: name -> (Triton type name, shape) in graph order; a symbolic or unknown dim is -1;
            graph inputs that are initializers are left out (as onnxruntime does for overridable ones).
        kinds: name -> ONNX type kind (``tensor``, ``sequence``, ``map``, ``opaque``, ``sparse_tensor``, ``optional``,
            ``""``).
        elem_types: name -> ONNX element type number (0 when not a tensor).
    """

    ir_version: int = 0
    opsets: dict[str, int] = factory(dict)
    inputs: dict[str, tuple[str, list[int]]] = factory(dict)
    outputs: dict[str, tuple[str, list[int]]] = factory(dict)
    kinds: dict[str, str] = factory(dict)
    elem_types: dict[str, int] = factory(dict)


def _varint(read) -> int | None:
    shift = result = 0
    while True:
        b = read(1)
        if not b:
            if shift == 0:
                return None
            raise OnnxReadError("truncated varint")
        result |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise OnnxReadError("varint longer than 10 bytes")


def _fields(f, end: int):
    """Yield ``(field number, wire type, value or length)`` up to offset ``end``; length-delimited payloads are left
    for the caller to read or skip (the file position is at the payload)."""
    while f.tell() < end:
        key = _varint(f.read)
        if key is None:
            return
        number, wire = key >> 3, key & 7
        if number == 0:
            raise OnnxReadError("field number 0 (not a protobuf message)")
        if wire == 0:
            yield number, wire, _varint(f.read)
        elif wire == 1:
            f.seek(8, io.SEEK_CUR)
            yield number, wire, None
        elif wire == 5:
            f.seek(4, io.SEEK_CUR)
            yield number, wire, None
        elif wire == 2:
            length = _varint(f.read)
            if length is None or f.tell() + length > end:
                raise OnnxReadError(f"field {number}: length {length} runs past the end of its message")
            start = f.tell()
            yield number, wire, length
            f.seek(start + length)
        else:
            raise OnnxReadError(f"unsupported protobuf wire type {wire} (field {number})")


def _parse(buf: bytes):
    """Fields of an in-memory message: ``[(number, wire, value)]`` with bytes for length-delimited ones."""
    out = []
    f = io.BytesIO(buf)
    for number, wire, value in _fields(f, len(buf)):
        if wire == 2:
            value = f.read(value)
        out.append((number, wire, value))
    return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _value_info(buf: bytes) -> tuple[str, str, int, list[int]]:
    """``(name, kind, elem_type, shape)`` of a ValueInfoProto."""
    name, kind, elem, shape = "", "", 0, []
    for number, _, value in _parse(buf):
        if number == 1 and isinstance(value, bytes):
            name = value.decode("utf-8", "replace")
        elif number == 2 and isinstance(value, bytes):
            for tnum, _, tval in _parse(value):
                if tnum in _TYPE_KIND and isinstance(tval, bytes):
                    kind = _TYPE_KIND[tnum]
                    if tnum != 1:
                        continue
                    for enum, _, evalue in _parse(tval):
                        if enum == 1 and isinstance(evalue, int):
                            elem = evalue
                        elif enum == 2 and isinstance(evalue, bytes):
                            for dnum, _, dval in _parse(evalue):
                                if dnum == 1 and isinstance(dval, bytes):
                                    dim = -1
                                    for vnum, _, vval in _parse(dval):
                                        if vnum == 1 and isinstance(vval, int):
                                            dim = _signed(vval)
                                    shape.append(dim)
    return name, kind, elem, shape


def read_graph(path: str | Path) -> OnnxGraph:
    """The signature of the ONNX model at ``path`` (see the module docstring for what is read).

    Raises:
        OnnxReadError: not a readable ModelProto. OSError: the file cannot be opened.
    """
    graph = OnnxGraph()
    initializers: set[str] = set()
    ins: list[tuple[str, str, int, list[int]]] = []
    outs: list[tuple[str, str, int, list[int]]] = []
    with open(path, "rb") as f:
        size = f.seek(0, io.SEEK_END)
        f.seek(0)
        saw_graph = False
        for number, wire, value in _fields(f, size):
            if number == 1 and wire == 0:
                graph.ir_version = value
            elif number == 8 and wire == 2:
                domain, version = "", 0
                for onum, _, oval in _parse(f.read(value)):
                    if onum == 1 and isinstance(oval, bytes):
                        domain = oval.decode("utf-8", "replace")
                    elif onum == 2 and isinstance(oval, int):
                        version = oval
                graph.opsets[domain] = version
            elif number == 7 and wire == 2:
                saw_graph = True
                end = f.tell() + value
                for gnum, gwire, gval in _fields(f, end):
                    if gwire != 2 or gnum not in (5, 11, 12, 15):
                        continue
                    if gnum in (5, 15):
                        initializers.add(_initializer_name(f, gval, sparse=gnum == 15))
                        continue
                    if gval > _MAX_VALUE_INFO:
                        raise OnnxReadError(f"a graph {'input' if gnum == 11 else 'output'} description of {gval} "
                                            "bytes")
                    target = ins if gnum == 11 else outs
                    target.append(_value_info(f.read(gval)))
                    if len(ins) + len(outs) > _MAX_TENSORS:
                        raise OnnxReadError(f"more than {_MAX_TENSORS} graph inputs and outputs")
        if not saw_graph:
            raise OnnxReadError("no graph in the file (not an ONNX model?)")
    for target, items in ((graph.inputs, [i for i in ins if i[0] not in initializers]), (graph.outputs, outs)):
        for name, kind, elem, shape in items:
            target[name] = (ONNX_TO_TRITON_NAME.get(elem, "TYPE_INVALID"), shape)
            graph.kinds[name] = kind
            graph.elem_types[name] = elem
    return graph


def _initializer_name(f, length: int, sparse: bool) -> str:
    """The name of a TensorProto (field 8) or SparseTensorProto (values=1 -> its name) without reading its data:
    fields are walked with seeks, only the name is read."""
    start = f.tell()
    end = start + length
    name = ""
    for number, wire, value in _fields(f, end):
        if sparse and number == 1 and wire == 2:
            name = _initializer_name(f, value, sparse=False)
            break
        if not sparse and number == 8 and wire == 2:
            name = f.read(min(value, 1 << 16)).decode("utf-8", "replace")
            break
    f.seek(end)
    return name
