"""Validation reports for people (rich text grouped by model) and machines (json, GitHub annotations, JUnit XML)."""

from __future__ import annotations

import json

from tritonrepo.validate import Report


def to_json(report: Report) -> str:
    """One JSON document: summary and findings."""
    return json.dumps({
        "repository": str(report.root),
        "models": report.models,
        "loads": report.loads(),
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "auto_completed": report.auto_completed,
        "not_auto_completed": report.not_auto_completed,
        "findings": [
            {"code": f.code, "severity": f.severity.value, "model": f.model, "path": str(f.path), "line": f.line,
             "col": f.col, "message": f.message, "fix": f.fix}
            for f in report.findings
        ],
    }, indent=2)


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def to_github(report: Report) -> str:
    """GitHub Actions workflow commands (``::error file=…,line=…,col=…,title=…::message``), one per finding."""
    lines = []
    for f in report.findings:
        props = f"file={_gh_escape(str(f.path), True)},line={f.line},col={f.col},title={_gh_escape(f.code, True)}"
        lines.append(f"::{f.severity.value} {props}::{_gh_escape(f'{f.message} (fix: {f.fix})')}")
    return "\n".join(lines) + ("\n" if lines else "")


def to_junit(report: Report) -> str:
    """JUnit XML: one test case per model, failing with its error findings."""
    from xml.sax.saxutils import escape, quoteattr  # noqa: PLC0415 - imports urllib: only for this format
    cases = []
    for model in report.models:
        errors = [f for f in report.errors if f.model == model]
        body = "".join(
            f"<failure type={quoteattr(f.code)} message={quoteattr(f.message)}>{escape(f.location())}: {escape(f.fix)}</failure>"
            for f in errors
        )
        cases.append(f"<testcase classname=\"tritonrepo.validate\" name={quoteattr(model)}>{body}</testcase>")
    failures = sum(1 for m in report.models if any(f.model == m for f in report.errors))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuite name="tritonrepo validate" tests="{len(report.models)}" failures="{failures}">'
        + "".join(cases) + "</testsuite>\n"
    )
