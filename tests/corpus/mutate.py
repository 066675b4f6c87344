"""Mutations of a model configuration, shared by the crash fuzzer (hypothesis) and the differential fuzzer (seeded).

A mutation works on the parsed ``ModelConfig`` protobuf (set a scalar to an edge value — negative, huge, an enum number
with no name —, clear a field, drop or duplicate a repeated element, drop a tensor's name, replace a tensor's dims) or
on its text (delete, duplicate or insert characters). Choices come from a :class:`Chooser`, so one set of mutations
serves hypothesis (``data.draw``) and ``random.Random``.
"""

from __future__ import annotations

import random
from typing import Protocol, Sequence, TypeVar

from tritonrepo._proto.model_config import model_config_pb2 as mc

T = TypeVar("T")

EDGE_INTS = [-(2**63), -(2**31), -3, -1, 0, 1, 2, 3, 4, 16, 2**31 - 1, 2**63 - 1]
EDGE_STRINGS = ["", "m", "o", "X", "Y", "INPUT0", "OUTPUT0", "IN", "OUT", " ", "../x", "a\nb", "é", "x" * 300]
KINDS = ["set", "clear", "drop", "dup", "noname", "dims"]


class Chooser(Protocol):
    """Where a mutation's choices come from."""

    def choice(self, items: Sequence[T]) -> T: ...

    def integer(self, low: int, high: int) -> int: ...


class RandomChooser:
    """Choices from ``random.Random(seed)``: the same seed, the same mutations."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def choice(self, items):
        return self.rng.choice(list(items))

    def integer(self, low, high):
        return self.rng.randint(low, high)


class DrawChooser:
    """Choices drawn from hypothesis' ``st.data()`` (shrinkable)."""

    def __init__(self, data) -> None:
        from hypothesis import strategies as st  # noqa: PLC0415

        self.data, self.st = data, st

    def choice(self, items):
        return self.data.draw(self.st.sampled_from(list(items)))

    def integer(self, low, high):
        return self.data.draw(self.st.integers(low, high))


def scalar_paths(msg) -> list:
    """Every set scalar/enum field (and repeated scalar element) under ``msg``: ``(parent, field, index|None)``."""
    out = []
    for fd, value in msg.ListFields():
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            continue
        if fd.message_type is not None:
            for item in value if fd.label == fd.LABEL_REPEATED else [value]:
                out.extend(scalar_paths(item))
        elif fd.label == fd.LABEL_REPEATED:
            out.extend((msg, fd, i) for i in range(len(value)))
        else:
            out.append((msg, fd, None))
    return out


def messages(msg) -> list:
    """``msg`` and every sub-message (map entries excluded)."""
    out = [msg]
    for fd, value in msg.ListFields():
        if fd.message_type is not None and not fd.message_type.GetOptions().map_entry:
            for item in value if fd.label == fd.LABEL_REPEATED else [value]:
                out.extend(messages(item))
    return out


def edge_value(fd, ch: Chooser):
    """An edge value for field ``fd``, clamped to the field's integer range."""
    if fd.type == fd.TYPE_STRING:
        return ch.choice(EDGE_STRINGS)
    if fd.type == fd.TYPE_BOOL:
        return ch.choice([False, True])
    if fd.type in (fd.TYPE_FLOAT, fd.TYPE_DOUBLE):
        return ch.choice([-1.0, 0.0, 0.5, 1e30])
    if fd.type == fd.TYPE_ENUM:
        return ch.choice([-3, 0, 1, 99] + [v.number for v in fd.enum_type.values])
    value = ch.choice(EDGE_INTS)
    if fd.type in (fd.TYPE_UINT32, fd.TYPE_FIXED32):
        return value % 2**32
    if fd.type in (fd.TYPE_UINT64, fd.TYPE_FIXED64):
        return value % 2**64
    if fd.type in (fd.TYPE_INT32, fd.TYPE_SINT32, fd.TYPE_SFIXED32):
        return max(-(2**31), min(2**31 - 1, value))
    return value


def mutate(cfg: mc.ModelConfig, ch: Chooser, kinds: Sequence[str] = KINDS) -> str:
    """Apply one mutation to ``cfg`` in place; returns a short description of it (for reports)."""
    kind = ch.choice(kinds)
    if kind == "set":
        paths = scalar_paths(cfg)
        if paths:
            msg, fd, index = ch.choice(paths)
            value = edge_value(fd, ch)
            if index is None:
                setattr(msg, fd.name, value)
            else:
                getattr(msg, fd.name)[index] = value
            return f"set {msg.DESCRIPTOR.name}.{fd.name}{'' if index is None else f'[{index}]'} = {value!r:.40}"
    elif kind == "clear":
        msg = ch.choice(messages(cfg))
        fields = [fd.name for fd, _ in msg.ListFields()]
        if fields:
            name = ch.choice(fields)
            msg.ClearField(name)
            return f"clear {msg.DESCRIPTOR.name}.{name}"
    elif kind in ("drop", "dup"):
        msg = ch.choice(messages(cfg))
        repeated = [fd for fd, v in msg.ListFields() if fd.label == fd.LABEL_REPEATED
                    and not (fd.message_type is not None and fd.message_type.GetOptions().map_entry)]
        if repeated:
            fd = ch.choice(repeated)
            items = getattr(msg, fd.name)
            i = ch.integer(0, len(items) - 1)
            if kind == "drop":
                del items[i]
            elif fd.message_type is not None:
                items.add().CopyFrom(items[i])
            else:
                items.append(items[i])
            return f"{kind} {msg.DESCRIPTOR.name}.{fd.name}[{i}]"
    elif kind == "noname":
        tensors = [*cfg.input, *cfg.output]
        if tensors:
            t = ch.choice(tensors)
            t.ClearField("name")
            return "noname tensor"
    else:
        tensors = [*cfg.input, *cfg.output]
        if tensors:
            t = ch.choice(tensors)
            del t.dims[:]
            t.dims.extend(ch.choice([-2, -1, 0, 1, 4, 2**40]) for _ in range(ch.integer(0, 4)))
            return f"dims {t.name or '?'} = {list(t.dims)}"
    return f"{kind} (nothing to do)"


def text_mutate(text: str, ch: Chooser) -> tuple[str, str]:
    """Delete, duplicate or insert a few characters of ``text``; returns the new text and a description."""
    i = ch.integer(0, max(len(text) - 1, 0))
    j = ch.integer(i, min(len(text), i + 12))
    kind = ch.choice(["delete", "duplicate", "insert"])
    if kind == "delete":
        return text[:i] + text[j:], f"delete chars {i}:{j}"
    if kind == "duplicate":
        return text[:j] + text[i:j] + text[j:], f"duplicate chars {i}:{j}"
    c = ch.choice(["{", "}", "[", "]", ":", '"', "-", "0", "\\", "\x00", "é"])
    return text[:i] + c + text[i:], f"insert {c!r} at {i}"
