"""A fast reader for the common subset of protobuf text format, with protobuf's own parser as the fallback.

``google.protobuf.text_format`` is pure Python: it costs ~12 ms to import and ~0.4 ms per small config.pbtxt,
which is most of what ``validate`` spends on a repository of ordinary models. This reader tokenises a config with
one regular expression and fills the message through the same descriptor calls text_format makes (``setattr``,
``append``, ``add()``, map assignment), so the message it returns equals text_format's.

It gives up (returns ``None``) on anything outside the subset, and the caller then runs text_format, which
accepts or refuses the text with its own message and position: escapes in strings, numbers that are not plain
decimal (hex, octal, ``inf``, ``1.5f``), enum values given as numbers, bools other than ``true``/``false``, ``<>``
delimiters, extensions and ``Any`` (``[...]`` field names), an unknown field, a non-repeated field given twice,
two members of one oneof, an integer out of its field's range, a bytes field, or a syntax error. Every error is
therefore text_format's (tests/test_validate_fuzz.py checks the two parsers agree on the corpus and its mutations).
"""

from __future__ import annotations

import re

from google.protobuf.descriptor import FieldDescriptor as _FD

_TOKEN = re.compile(
    r'[ \t\n\r\f\v]+|#[^\n]*|("[^"\\\n]*"|\'[^\'\\\n]*\')'
    r'|(-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?(?![\w.+-]))'
    r'|([A-Za-z_][A-Za-z0-9_]*)(?![\w.+-])|([{}\[\]:,;])'
)
_STRING, _NUMBER, _IDENT, _PUNCT = 1, 2, 3, 4

_INT_RANGE = {
    _FD.CPPTYPE_INT32: (-(1 << 31), (1 << 31) - 1), _FD.CPPTYPE_INT64: (-(1 << 63), (1 << 63) - 1),
    _FD.CPPTYPE_UINT32: (0, (1 << 32) - 1), _FD.CPPTYPE_UINT64: (0, (1 << 64) - 1),
}
_FLOATS = (_FD.CPPTYPE_FLOAT, _FD.CPPTYPE_DOUBLE)
_REPEATED = _FD.LABEL_REPEATED


class _Unsupported(Exception):
    """Outside the subset: let text_format decide."""


def _tokens(text: str) -> list[tuple[int, str]]:
    out = []
    pos, end = 0, len(text)
    match = _TOKEN.match
    while pos < end:
        m = match(text, pos)
        if m is None:
            raise _Unsupported
        pos = m.end()
        kind = m.lastindex
        if kind is not None:
            out.append((kind, m.group(kind)))
    return out


def parse(text: str, message):
    """Merge ``text`` into the empty ``message`` and return it, or ``None`` when text_format must decide (the
    message may then be partly filled: give text_format a fresh one)."""
    try:
        tokens = _tokens(text)
        tokens.append((0, ""))
        i = _merge(tokens, 0, message, "")
        if tokens[i][0] != 0:
            return None
    except (_Unsupported, IndexError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return message


def _merge(tokens, i, message, close):
    """Fields of ``message`` from ``tokens[i]`` up to the ``close`` token (``""``: the end); returns the index after
    ``close``."""
    fields = message.DESCRIPTOR.fields_by_name
    seen: set[str] = set()
    oneofs: set[str] = set()
    while True:
        kind, value = tokens[i]
        if kind == _PUNCT and value == close or kind == 0 and not close:
            return i + 1 if close else i
        if kind != _IDENT:
            raise _Unsupported
        fd = fields.get(value)
        if fd is None:
            raise _Unsupported
        repeated = fd.label == _REPEATED
        if not repeated:
            if value in seen:
                raise _Unsupported
            seen.add(value)
        oneof = fd.containing_oneof
        if oneof is not None:
            if oneof.name in oneofs:
                raise _Unsupported
            oneofs.add(oneof.name)
        i += 1
        kind, value = tokens[i]
        is_message = fd.cpp_type == _FD.CPPTYPE_MESSAGE
        if kind == _PUNCT and value == ":":
            i += 1
            kind, value = tokens[i]
        elif not is_message:
            raise _Unsupported
        if kind == _PUNCT and value == "[":
            if not repeated:
                raise _Unsupported
            i += 1
            if tokens[i] == (_PUNCT, "]"):
                i += 1
            else:
                while True:
                    i = _value(tokens, i, message, fd, is_message)
                    kind, value = tokens[i]
                    i += 1
                    if value == "]" and kind == _PUNCT:
                        break
                    if value != "," or kind != _PUNCT:
                        raise _Unsupported
        else:
            i = _value(tokens, i, message, fd, is_message)
        kind, value = tokens[i]
        if kind == _PUNCT and value in (",", ";"):
            i += 1


def _value(tokens, i, message, fd, is_message):
    """One value of field ``fd`` at ``tokens[i]`` into ``message``; returns the next index."""
    kind, value = tokens[i]
    if is_message:
        if kind != _PUNCT or value != "{":
            raise _Unsupported
        container = getattr(message, fd.name)
        if hasattr(container, "GetEntryClass"):  # a map (not GetOptions().map_entry: that imports descriptor_pb2)
            entry = container.GetEntryClass()()
            i = _merge(tokens, i + 1, entry, "}")
            if fd.message_type.fields_by_name["value"].cpp_type == _FD.CPPTYPE_MESSAGE:
                container[entry.key].CopyFrom(entry.value)
            else:
                container[entry.key] = entry.value
            return i
        target = container.add() if fd.label == _REPEATED else container
        if fd.label != _REPEATED:
            target.SetInParent()
        return _merge(tokens, i + 1, target, "}")
    cpp = fd.cpp_type
    if cpp == _FD.CPPTYPE_STRING:
        if kind != _STRING or fd.type == _FD.TYPE_BYTES:
            raise _Unsupported
        parts = [value[1:-1]]
        i += 1
        while tokens[i][0] == _STRING:  # adjacent strings are one value
            parts.append(tokens[i][1][1:-1])
            i += 1
        _set(message, fd, "".join(parts))
        return i
    if cpp == _FD.CPPTYPE_ENUM:
        if kind != _IDENT:
            raise _Unsupported
        number = fd.enum_type.values_by_name.get(value)
        if number is None:
            raise _Unsupported
        _set(message, fd, number.number)
    elif cpp == _FD.CPPTYPE_BOOL:
        if kind != _IDENT or value not in ("true", "false"):
            raise _Unsupported
        _set(message, fd, value == "true")
    elif cpp in _FLOATS:
        if kind != _NUMBER:
            raise _Unsupported
        _set(message, fd, float(value))
    else:
        if kind != _NUMBER or "." in value or "e" in value or "E" in value:
            raise _Unsupported
        digits = value.lstrip("-")
        if len(digits) > 1 and digits[0] == "0":
            raise _Unsupported  # octal in text_format
        number = int(value)
        low, high = _INT_RANGE[cpp]
        if not low <= number <= high:
            raise _Unsupported
        _set(message, fd, number)
    return i + 1


def _set(message, fd, value) -> None:
    if fd.label == _REPEATED:
        getattr(message, fd.name).append(value)
    else:
        setattr(message, fd.name, value)
