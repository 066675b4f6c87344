"""Generate docs/rules.md from the rule registry: ``python -m tritonrepo.validate.docs_gen > docs/rules.md``."""

from __future__ import annotations

from tritonrepo.validate import RULES

FAMILIES = {"1": "Repository layout", "2": "Config syntax and schema", "3": "Core semantics", "4": "Ensembles",
            "5": "ONNX models", "6": "Python-backend models", "7": "tritonrepo manifests"}


def render() -> str:
    """The whole rules page as Markdown."""
    out = [
        "# Validation rules",
        "",
        "`tritonrepo validate` checks a model repository as Triton 2.51 (r24.10) loads it. **error**: Triton would",
        "refuse to load the model (or the repository); **warning**: it loads but will misbehave or surprise. Select or",
        "ignore rules by code or prefix: `--select TR4 --ignore TR404`. Messages mirror Triton's own, so a search of",
        "the server log finds them. This page is generated from the rule registry (`python -m",
        "tritonrepo.validate.docs_gen`); a test keeps it in step.",
        "",
        "| code | name | severity | stage | summary |",
        "|---|---|---|---|---|",
    ]
    for code, r in sorted(RULES.items()):
        out.append(f"| [{code}](#{code.lower()}) | {r.name} | {r.severity.value} | {r.stage} | {r.summary} |")
    family = None
    for code, r in sorted(RULES.items()):
        if code[2] != family:
            family = code[2]
            out += ["", f"## {FAMILIES[family]}"]
        out += [
            "",
            f"### {code}",
            "",
            f"**{r.name}** ({r.severity.value}, checked by Triton at {r.stage} time). {r.summary}",
            "",
            f"- Why: {r.why}",
            f"- Example: `{r.example}`",
            f"- Fix: {r.fix}",
            f"- Mirrors: {r.source}",
        ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
