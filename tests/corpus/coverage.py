"""Which corpus cases exercise which rule of the load-rules reference (the table of docs/triton-load-rules.md).

A case exercises a rule when either
- the message the real server printed for it (``messages.RECORDED``) matches one of the rule's exact messages (the
  table's ``<placeholders>`` match any text, ``...`` any text; alternatives are separated by ``\\|``), or
- it names the rule in ``Case.rules`` (for rules without a message of their own: normalisations, things Triton does
  NOT check, and for cases the server here cannot run, whose message is cited from the source instead).

Run ``PYTHONPATH=src python tests/corpus/coverage.py`` for the table: rule id -> cases, and the rules without one.
Offline and fast: it neither builds repositories nor starts a server.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

#: the reference (a copy of the team's shared/triton-load-rules.md, Triton 2.51)
REFERENCE = Path(__file__).parent.parent.parent / "docs" / "triton-load-rules.md"

#: Rules no corpus repository can exercise, with the reason. Everything else needs at least one case.
ALLOWED_UNCOVERED: dict[str, str] = {
    "CORE-PLAT-03": "unreachable: CORE-PLAT-01 fires first for a config with neither platform nor backend",
    "CORE-VP-01": "unreachable: NormalizeModelConfig always sets latest{num_versions:1}; the message cannot appear",
    "CORE-ENS-11b": "unreachable from text format: map keys are unique, the last entry wins (see CORE-PARSE-03)",
    "CORE-MAP-03": "unreachable: map keys are unique (same reason as CORE-ENS-11b)",
    "CORE-MAP-05": "unreachable: CORE-ENS-11 fires first for two outputs mapped to one ensemble tensor",
    "ORT-10": "reachable only through an overridable initializer (an initializer also listed as a graph input: the only "
              "way an optional input passes ORT-05's count and ORT-07's name check); the offline ONNX reader leaves "
              "initializers out; TR505 implements the check (onnxruntime.cc ValidateInputs)",
    "CORE-IG-03": "host-dependent: KIND_GPU needs a GPU; this server (no CUDA) and a GPU host disagree, no fixed verdict",
}


@dataclass(frozen=True)
class RuleRef:
    """One row of the reference table: rule id, stage, and its message alternatives (as regular expressions)."""

    id: str
    stage: str
    messages: tuple[re.Pattern, ...]


def _pattern(message: str) -> re.Pattern | None:
    """A regular expression for one message template, or ``None`` for ``(none)`` / ``(see ...)`` cells."""
    message = message.strip()
    if not message or message.startswith("("):
        return None
    # a trailing parenthesised remark ("(INFO line from pb_stub.cc)") is not part of the text
    message = re.sub(r"\s+\([^)]*\)$", "", message)
    out = []
    for part in re.split(r"(<[^<>]*>|\.\.\.|\[[^\]]*: [^\]]*\])", message):
        if not part:
            continue
        if part.startswith("<") or part == "..." or (part.startswith("[") and ": " in part):
            out.append(".*?")
        else:
            out.append(re.escape(part))
    text = "".join(out)
    return re.compile(text) if len(text.replace(".*?", "")) >= 12 else None


def load_reference(path: Path = REFERENCE) -> list[RuleRef]:
    """The rules of the reference table, in order.

    Raises:
        ValueError: the table has no rows (the file changed shape).
    """
    rules = []
    for line in path.read_text().splitlines():
        if not re.match(r"^\| (CORE|PY|ORT)-", line):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rule_id, stage, message = cells[0], cells[1], cells[4]
        message = message.strip("`")
        alts = [a.strip().strip("`") for a in re.split(r"\s+\\\|\s+", message)]  # not the \| inside <a\|b>
        rules.append(RuleRef(rule_id, stage, tuple(p for p in map(_pattern, alts) if p is not None)))
    if not rules:
        raise ValueError(f"no rule rows in {path}")
    return rules


def coverage(cases, recorded: dict, rules: list[RuleRef] | None = None) -> dict[str, list[str]]:
    """``{rule id: [case ids]}`` for every rule of the reference (an empty list: no case exercises it).

    Raises:
        ValueError: a case's ``rules`` tag names a rule id that is not in the reference.
    """
    rules = rules if rules is not None else load_reference()
    ids = {r.id for r in rules}
    out: dict[str, list[str]] = {r.id: [] for r in rules}
    for case in cases:
        unknown = set(case.rules) - ids
        if unknown:
            raise ValueError(f"case {case.id}: unknown rule ids {sorted(unknown)}")
        hits = set(case.rules)
        _, messages = recorded.get(case.id, (None, None))
        for message in messages or ():
            hits |= {r.id for r in rules if any(p.search(message) for p in r.messages)}
        for rid in hits:
            out[rid].append(case.id)
    return out


def main() -> int:
    sys.path.insert(0, str(Path(__file__).parent.parent))
    from corpus.cases import BROKEN, VALID  # noqa: PLC0415
    from corpus.messages import RECORDED  # noqa: PLC0415

    table = coverage(BROKEN + VALID, RECORDED)
    for rid, cases in table.items():
        mark = "ALLOWED " if rid in ALLOWED_UNCOVERED and not cases else ("MISSING " if not cases else "")
        print(f"{rid:14} {mark}{', '.join(cases[:6])}{' ...' if len(cases) > 6 else ''}")
    missing = [r for r, c in table.items() if not c and r not in ALLOWED_UNCOVERED]
    print(f"{len(table)} rules, {sum(1 for c in table.values() if c)} covered, {len(missing)} missing: {missing}")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())


_CITED = re.compile(r"\b((?:CORE|PY|ORT)-(?:[A-Z]+-)?)(\d+[a-z]?)((?:/\d+[a-z]?)*)(?:\.\.(?:(?:CORE|PY|ORT)-(?:[A-Z]+-)?)?(\d+))?")


def cited_ids(text: str) -> set[str]:
    """Rule ids a text cites, ranges resolved: ``CORE-ENS-07..10`` and ``CORE-SEQ-04/05/06`` name each id."""
    out = set()
    for m in _CITED.finditer(text):
        prefix, first, slashed, last = m.groups()
        out |= {prefix + first} | {prefix + s for s in slashed.split("/") if s}
        if last:
            out |= {f"{prefix}{i:02d}" for i in range(int(first.rstrip("abcdefghijklmnopqrstuvwxyz")), int(last) + 1)}
    return out


#: Rules of the reference that are not a check of their own (no validate rule cites them), with where they live.
NOT_A_CHECK: dict[str, str] = {
    "CORE-PARSE-03": "what Triton accepts (a repeated map key, the last wins): the config reader keeps the last entry",
    "CORE-STRICT-02": "where IO errors surface (poll or load) under the options: tritonrepo.validate.modes.stage",
    "CORE-PLAT-03": "unreachable (CORE-PLAT-01 fires first)",
    "CORE-VP-01": "a normalisation (latest 1 by default): tritonrepo.validate.rules.layout.policy_versions",
    "CORE-ENS-11b": "unreachable from text format (map keys are unique)",
    "CORE-IO-13": "what Triton does NOT check (duplicate names, zero IO, BF16 on python)",
    "CORE-IG-00": "a normalisation of instance groups (default count and kind)",
    "CORE-IG-07": "what Triton does NOT check at load (rate limiter, host policy)",
    "PY-10": "what the Python backend does NOT check",
}


def implemented_by(rules: dict) -> dict[str, list[str]]:
    """``{reference rule id: [validate rule codes citing it]}``, from each validate rule's source, summary, why."""
    out: dict[str, list[str]] = {}
    for code, r in rules.items():
        for rid in cited_ids(" ".join([r.source, r.summary, r.why])):
            out.setdefault(rid, []).append(code)
    return out
