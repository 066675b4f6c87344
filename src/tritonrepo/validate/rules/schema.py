"""TR2xx: config syntax and schema (protobuf text format of inference.ModelConfig)."""

from __future__ import annotations

import re

from tritonrepo.validate.model import ModelContext, Severity, rule

_PLACEHOLDER = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")


@rule("TR201", "config-parse-error", Severity.error,
      summary="config.pbtxt does not parse as a ModelConfig: syntax, unknown field, bad enum, repeated field, oneof.",
      why="Triton reports only 'failed to read text proto from <path>' and refuses the model.",
      fix="fix the text at the line and column given",
      source="core/src/filesystem/api.cc ReadTextProto; CORE-PARSE-01/02",
      example='input { name: "x" data_type: TYPE_FLOAT32 }  # the enum is TYPE_FP32')
def parse_error(ctx: ModelContext):
    if ctx.parse_failed:
        yield ("@line", *ctx.parse_position), ctx.parse_message


@rule("TR202", "template-placeholder", Severity.warning,
      summary="A string value still holds a template placeholder ($VAR or ${VAR}).",
      why="A config produced from a template with a variable left unfilled loads with a literal '$VAR' value.",
      fix="fill in the template variable",
      source="tritonrepo (templated configs in Triton's tutorials and seeds)",
      example='name: "${MODEL_NAME}"')
def placeholder(ctx: ModelContext):
    for lineno, line in enumerate(ctx.text.splitlines(), 1):
        code = line.split("#", 1)[0]
        for m in _PLACEHOLDER.finditer(code):
            if code.count('"', 0, m.start()) % 2 == 1:
                yield ("@line", lineno, m.start() + 1), f"unfilled template placeholder {m.group()}"
