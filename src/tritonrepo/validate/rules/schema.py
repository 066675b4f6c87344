"""TR2xx: config syntax and schema (protobuf text format of inference.ModelConfig)."""

from __future__ import annotations

import re

from tritonrepo.validate.model import ModelContext, Severity, rule
from tritonrepo.validate.rules.release import NEW_FIELDS, server_minor

_PLACEHOLDER = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")


@rule("TR201", "config-parse-error", Severity.error,
      summary="config.pbtxt does not parse as a ModelConfig of the target release: syntax, unknown field, bad enum, repeated field, oneof.",
      why="Triton logs libprotobuf's error and refuses the model with 'failed to read text proto from <path>'. "
          "Fields newer than the release (model_metrics before 2.52) are unknown fields there.",
      fix="fix the text at the line and column given",
      source="core/src/filesystem/api.cc ReadTextProto; google/protobuf/text_format.cc ParserImpl; CORE-PARSE-01/02",
      example='input { name: "x" data_type: TYPE_FLOAT32 }  # the enum is TYPE_FP32')
def parse_error(ctx: ModelContext):
    if ctx.parse_failed:
        prefix = f"failed to read text proto from {ctx.config_path}"
        detail = ctx.parse_message[len(prefix) + 2:] if ctx.parse_message.startswith(prefix + ": ") else ""
        if not detail:
            yield ("@line", *ctx.parse_position), ctx.parse_message
            return
        (line, col), text = cpp_parse_error(ctx.text, ctx.parse_position, detail)
        yield ("@line", line, col), f"{prefix}: Error parsing text-format inference.ModelConfig: {line}:{col}: {text}"
        return
    cfg = ctx.config
    if cfg is None:
        return
    minor = server_minor(ctx)
    for field, since in NEW_FIELDS.items():
        if cfg.HasField(field) and minor < since:
            line, col = _after_token(ctx.text, *_field_token(ctx.text, field))
            yield ("@line", line, col), (
                f"failed to read text proto from {ctx.config_path}: Error parsing text-format inference.ModelConfig: "
                f'{line}:{col}: Message type "inference.ModelConfig" has no field named "{field}".')
            return


_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|[A-Za-z_][A-Za-z0-9_]*|[-+]?[0-9][0-9A-Za-z_.+-]*|\S')


def _after_token(text: str, line: int, col: int) -> tuple[int, int]:
    """1-based position of the token after the one at ``line:col`` (comments and whitespace skipped)."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return line, col
    m = _TOKEN.match(lines[line - 1], col - 1)
    li, ci = line - 1, (m.end() if m else col)
    while li < len(lines):
        rest = lines[li][ci:]
        stripped = rest.lstrip()
        if stripped and not stripped.startswith("#"):
            return li + 1, ci + len(rest) - len(stripped) + 1
        li, ci = li + 1, 0
    return line, col


def cpp_parse_error(text: str, position: tuple[int, int], detail: str) -> tuple[tuple[int, int], str]:
    """Python protobuf's parse error as the C++ parser in tritonserver words and places it.

    The C++ ``TextFormat`` parser reports the token it is looking at when it fails: for an unknown field, a bad
    enum value, a repeated singular field or a second oneof member that is the token AFTER the offending name;
    for a syntax error it is the offending token itself. Returns ``((line, col), message)``, 1-based.
    """
    line, col = position
    m = re.fullmatch(r'Message type "([\w.]+)" has no field named "(\w+)"\.', detail)
    if m:
        return _after_token(text, line, col), detail
    m = re.fullmatch(r'Enum type "[\w.]+" has no value named (\S+)\.', detail)
    if m:
        lines = text.splitlines()
        before = lines[line - 1][:col - 1] if 1 <= line <= len(lines) else ""
        field = re.search(r"(\w+)\s*:\s*\[?\s*$", before)
        name = field.group(1) if field else ""
        return _after_token(text, line, col), f'Unknown enumeration value of "{m.group(1)}" for field "{name}".'
    m = re.fullmatch(r'Message type "[\w.]+" should not have multiple "(\w+)" fields\.', detail)
    if m:
        pos = _name_before(text, line, col, m.group(1))
        return _after_token(text, *pos), f'Non-repeated field "{m.group(1)}" is specified multiple times.'
    m = re.fullmatch(r'(Field "\w+" is specified along with field "\w+", another member of oneof "\w+") for message type "[\w.]+"\.', detail)
    if m:
        return _after_token(text, line, col), m.group(1) + "."
    m = re.fullmatch(r"'.*': Expected identifier or number, got (.+)\.", detail, re.S)
    if m:
        return (line, col), f"Expected identifier, got: {m.group(1)}"
    m = re.fullmatch(r"'.*': Expected string but found: '(.*)'", detail, re.S)
    if m:
        return (line, col), f"Expected string, got: {m.group(1)}"
    return (line, col), detail


def _field_token(text: str, field: str) -> tuple[int, int]:
    """1-based position of the first top-level-looking ``field`` name token outside strings and comments."""
    for li, src in enumerate(text.splitlines()):
        code = src.split("#", 1)[0]
        for m in re.finditer(rf"\b{field}\b", code):
            if code.count('"', 0, m.start()) % 2 == 0:
                return li + 1, m.start() + 1
    return 1, 1


def _name_before(text: str, line: int, col: int, name: str) -> tuple[int, int]:
    """Position of the last ``name`` token at or before ``line:col``."""
    lines = text.splitlines()
    for li in range(min(line, len(lines)) - 1, -1, -1):
        src = lines[li] if li != line - 1 else lines[li][:col]
        hits = [m.start() for m in re.finditer(rf"\b{re.escape(name)}\b", src)]
        if hits:
            return li + 1, hits[-1] + 1
    return line, col


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
