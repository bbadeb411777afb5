"""A Python lint of one file of the watched directory: would Traefik's file provider parse it?

Traefik runs each file through Go `text/template` (with sprig), then decodes YAML or TOML
into its dynamic configuration with paerser. One file that fails any step freezes every
route of the file provider, so each step is checked here in the same order: the template
(unclosed actions; the `{{ "{{" }}` escape traefik-gen writes is evaluated), the syntax
(duplicate keys included, which Go's YAML decoder refuses and PyYAML silently merges),
then keys and types through `parse_config`, which matches keys case-insensitively and
refuses empty maps as "standalone elements" just as paerser does.

Messages name the file, a line or a dotted key, never a value: a file may hold hashes.
"""

from __future__ import annotations

import ast
import logging
import tomllib
from dataclasses import dataclass, field
from typing import Any

import yaml

from traefik_gen.check.findings import Finding, FindingKind
from traefik_gen.errors import ConfigError
from traefik_gen.traefik.model import DynamicConfig, parse_config

__all__ = ["LintResult", "lint_content"]

logger = logging.getLogger(__name__)

_OPEN = "{{"
_CLOSE = "}}"
_BLANKS = " \t\r\n"


@dataclass
class LintResult:
    """The file's configuration when it parses (None otherwise), and what was found."""

    config: DynamicConfig | None = None
    findings: list[Finding] = field(default_factory=list)


class _TemplateError(Exception):
    """Go's template parser would refuse the file."""


class _UnevaluableError(Exception):
    """An action this lint cannot evaluate (a function call, a variable)."""


def lint_content(name: str, content: bytes) -> LintResult:
    """Lint one file; `name` is how findings name it (a path relative to the directory)."""
    result = LintResult()
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        result.findings.append(_parse(name, f"is not utf-8 (byte {exc.start})"))
        return result
    try:
        rendered = render_template(text)
    except _TemplateError as exc:
        result.findings.append(_parse(name, f"go template: {exc}"))
        return result
    except _UnevaluableError as exc:
        # Limitation: template functions (env, sprig) are not evaluated; the file is not linted.
        result.findings.append(
            Finding(
                FindingKind.UNCHECKED,
                f"unchecked {name}: {exc}; run with --traefik to have Traefik parse it",
                file=name,
            )
        )
        return result
    _decode_and_validate(name, rendered, result)
    return result


def _decode_and_validate(name: str, text: str, result: LintResult) -> None:
    try:
        data = _load_toml(text) if name.lower().endswith(".toml") else _load_yaml(text)
    except ConfigError as exc:
        result.findings.append(_parse(name, str(exc)))
        return
    if data is None:
        # An empty or comment-only file is accepted and contributes nothing.
        result.config = DynamicConfig()
        return
    if not isinstance(data, dict):
        result.findings.append(_parse(name, f"is a {type(data).__name__}, not a mapping"))
        return
    try:
        result.config = parse_config(data, source=name)
    except ConfigError as exc:
        result.findings.append(_parse(name, str(exc).removeprefix(f"{name}: ")))


def _parse(name: str, reason: str) -> Finding:
    line = f"traefik would refuse {name}, freezing the file provider: {reason}"
    return Finding(FindingKind.PARSE, line, file=name)


# --- Go text/template ---------------------------------------------------------------------


def render_template(text: str) -> str:
    """The file as Go's text/template outputs it, for the actions this lint can evaluate.

    Raises:
        _TemplateError: Go would refuse the template (unclosed or empty action).
        _UnevaluableError: an action calls a function or uses data.
    """
    out: list[str] = []
    pos = 0
    while (start := text.find(_OPEN, pos)) >= 0:
        out.append(text[pos:start])
        end, body, trim_left, trim_right = _action(text, start)
        if trim_left:
            out[-1] = out[-1].rstrip(_BLANKS)
        out.append(_evaluate(body, _line_of(text, start)))
        pos = end
        if trim_right:
            while pos < len(text) and text[pos] in _BLANKS:
                pos += 1
    out.append(text[pos:])
    return "".join(out)


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _action(text: str, start: int) -> tuple[int, str, bool, bool]:
    """Where the action at `start` ends, its body, and its trim markers (`{{- ` / ` -}}`)."""
    pos = start + len(_OPEN)
    trim_left = text.startswith("- ", pos) or text.startswith("-\n", pos)
    body_start = pos + 1 if trim_left else pos
    if text.startswith("/*", body_start):
        close = text.find("*/", body_start + 2)
        if close < 0:
            raise _TemplateError(f"line {_line_of(text, start)}: unclosed comment")
        pos = close + 2
    while pos < len(text):
        char = text[pos]
        if char in "\"'`":
            pos = _skip_quoted(text, pos, start)
            continue
        if text.startswith(_CLOSE, pos):
            trim_right = text[pos - 2 : pos] in (" -", "\n-") and pos - 2 >= body_start
            body = text[body_start : pos - 2 if trim_right else pos]
            return pos + len(_CLOSE), body, trim_left, trim_right
        pos += 1
    raise _TemplateError(f"line {_line_of(text, start)}: unclosed action")


def _skip_quoted(text: str, pos: int, start: int) -> int:
    quote = text[pos]
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == "\\" and quote != "`":
            pos += 2
            continue
        if char == quote:
            return pos + 1
        if char == "\n" and quote != "`":
            break
        pos += 1
    raise _TemplateError(f"line {_line_of(text, start)}: unterminated quoted string")


def _evaluate(body: str, line: int) -> str:
    stripped = body.strip(_BLANKS)
    if stripped.startswith("/*") and stripped.endswith("*/"):
        return ""
    if not stripped:
        raise _TemplateError(f"line {line}: missing value for command")
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == "`" and "`" not in stripped[1:-1]:
        return stripped[1:-1]
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == '"':
        return _go_string(stripped, line)
    raise _UnevaluableError(f"line {line} holds a go template action traefik-gen cannot evaluate")


def _go_string(literal: str, line: int) -> str:
    # Go's interpreted strings and Python's agree on every escape a config would use.
    try:
        value = ast.literal_eval(literal)
    except (SyntaxError, ValueError) as exc:
        raise _UnevaluableError(f"line {line} holds a string action that is not plain") from exc
    if not isinstance(value, str):
        raise _UnevaluableError(f"line {line} holds an action that is not one string")
    return value


# --- YAML and TOML ------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping, as Go's decoder does."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
        except TypeError:
            continue
        if duplicate:
            mark = key_node.start_mark
            raise ConfigError(
                f"yaml: line {mark.line + 1}: mapping key {str(key)!r} is already defined"
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _load_yaml(text: str) -> Any:
    # Limitation: PyYAML reads YAML 1.1 (`yes` is a boolean) where Go's decoder reads 1.2.
    try:
        # Go's decoder reads the first document of a stream and ignores the rest.
        for document in yaml.load_all(text, Loader=_StrictLoader):
            return document
    except yaml.MarkedYAMLError as exc:
        # The problem mark only: a parse error's message can quote a line holding a hash.
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = exc.problem or "syntax error"
        raise ConfigError(f"yaml does not parse ({where}): {problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError("yaml does not parse") from exc
    return None


def _load_toml(text: str) -> Any:
    try:
        return tomllib.loads(text) or None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's messages give a position and never quote the content.
        raise ConfigError(f"toml does not parse: {exc}") from exc
