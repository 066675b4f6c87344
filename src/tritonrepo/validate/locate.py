"""Map config fields to ``line:col`` in a ``config.pbtxt`` (protobuf's Python text_format keeps no positions).

A light scanner over the text-format tokens records, for every field path such as ``("input", 0, "dims")``, the
line and column (1-based) of the field name. Repeated messages are indexed in order of appearance.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r'(?P<ws>\s+)|(?P<comment>#[^\n]*)|(?P<str>"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\')'
    r"|(?P<ident>[A-Za-z_][\w.]*)|(?P<num>[-+]?[\d.][\w.+-]*)|(?P<punct>[{}<>\[\]:,;])|(?P<other>.)"
)


class Locator:
    """Field positions of one config text, computed on the first :meth:`find` (a clean config never pays)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._positions: dict[tuple, tuple[int, int]] | None = None

    @property
    def positions(self) -> dict[tuple, tuple[int, int]]:
        """Field path -> (line, col), 1-based."""
        if self._positions is None:
            self._positions = {}
            self._scan(self._text)
        return self._positions

    def _scan(self, text: str) -> None:
        positions = self._positions
        assert positions is not None
        tokens = []
        line, col = 1, 1
        for m in _TOKEN.finditer(text):
            kind, value = m.lastgroup, m.group()
            if kind not in ("ws", "comment"):
                tokens.append((kind, value, line, col))
            nl = value.count("\n")
            if nl:
                line += nl
                col = len(value) - value.rfind("\n")
            else:
                col += len(value)
        stack: list[tuple] = [()]
        counts: list[dict[str, int]] = [{}]
        i = 0
        while i < len(tokens):
            kind, value, ln, cl = tokens[i]
            if kind == "ident" and i + 1 < len(tokens):
                nxt = tokens[i + 1][1]
                if nxt == ":" and i + 2 < len(tokens) and tokens[i + 2][1] in ("{", "<"):
                    nxt, i = tokens[i + 2][1], i + 1
                if nxt in ("{", "<"):
                    idx = counts[-1].get(value, 0)
                    counts[-1][value] = idx + 1
                    path = (*stack[-1], value, idx)
                    positions.setdefault(path, (ln, cl))
                    stack.append(path)
                    counts.append({})
                    i += 2
                    continue
                if nxt == ":":
                    positions.setdefault((*stack[-1], value), (ln, cl))
            elif value in ("}", ">") and len(stack) > 1:
                stack.pop()
                counts.pop()
            i += 1

    def find(self, *path) -> tuple[int, int]:
        """Position of ``path`` (``"input", 0, "dims"``), else of its nearest recorded parent, else ``(1, 1)``."""
        path = tuple(path)
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return (1, 1)
