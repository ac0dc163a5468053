"""Tool calls as text a base model can learn in context: describe, render, parse, check.

A call is written `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`; a result comes
back as a user-side turn `Tool result from NAME: ...`. Demos in this syntax (built-in
`data/tool_demos.jsonl`) show the model when and how to call. The same tags in given text
(messages, tool results) are broken by `neutralize_tool_calls`, so only the model's own
answer can hold a call.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import InvalidToolCall, ToolCall
from langchain_core.messages.tool import invalid_tool_call, tool_call
from langchain_core.utils.json import parse_partial_json

from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.neutralizing import break_markers
from langchain_icalign.tools.grammar import example_arguments

__all__ = [
    "CALL_NAME_OPEN",
    "TOOL_CALL_CLOSE",
    "TOOL_CALL_OPEN",
    "TOOL_CALL_TAG",
    "UNDECLARED_ARGUMENT",
    "ParsedAnswer",
    "answer_prefix",
    "arguments_opening",
    "bound_tool_demos",
    "call_after_name",
    "call_opening",
    "check_arguments",
    "describe_fields",
    "describe_tools",
    "name_in_cut_call",
    "neutralize_tool_calls",
    "opens_with_quote",
    "parse_answer",
    "render_tool_call",
    "render_tool_result",
]

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
_CALL = re.compile(
    re.escape(TOOL_CALL_OPEN) + r"(.*?)(?:" + re.escape(TOOL_CALL_CLOSE) + r"|$)", re.S
)
TOOL_CALL_TAG = re.compile(
    r"(?:<|&lt;)[^\S\n]*/?[^\S\n]*\|?[^\S\n]*tool[^\S\n]*[_-]?[^\S\n]*calls?"
    r"[^\S\n]*\|?[^\S\n]*(?:>|&gt;)",
    re.IGNORECASE,
)
"""An opening or closing tool-call tag as written in given text, matched in the folded view:
any case, spaces inside, `-` or a space for `_`, `<|tool_call|>`, HTML-escaped brackets."""
CALL_NAME_OPEN = '{"name": "'
"""The call object up to its tool's name: where the model writes (or chooses) the name."""
_CUT_CALL_NAME = re.compile(r'\s*\{"name": "([^"]*)"?')
UNDECLARED_ARGUMENT = "unknown argument"
"""How the reason for a call with an argument its tool does not declare begins."""
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    return tool.get("function", tool)


def describe_fields(parameters: dict[str, Any]) -> list[str]:
    """`name: type` for each property of a JSON object schema, optional ones marked."""
    required = set(parameters.get("required", []))
    fields = []
    for name, spec in parameters.get("properties", {}).items():
        kind = spec.get("type", "any") if isinstance(spec, dict) else "any"
        if isinstance(spec, dict) and "enum" in spec:
            kind = " | ".join(json.dumps(v) for v in spec["enum"])
        fields.append(f"{name}: {kind}" + ("" if name in required else " (optional)"))
    return fields


def _signature(function: dict[str, Any]) -> str:
    fields = describe_fields(function.get("parameters", {}))
    return f"{function['name']}({', '.join(fields)})"


def describe_tools(tools: Sequence[dict[str, Any]], tool_choice: str | None = None) -> str:
    """System text that lists the tools (OpenAI tool dicts) and the call syntax.

    Tools are shown as signatures, `name(arg: type, ...)`, which small models follow more
    readily than a JSON Schema.
    """
    lines = ["You can call these tools:"]
    for tool in tools:
        function = _function(tool)
        description = (function.get("description") or "").strip()
        lines.append(f"- {_signature(function)}" + (f": {description}" if description else ""))
    lines += [
        f"To call a tool, answer with only {TOOL_CALL_OPEN}, a JSON object with the tool's "
        f'"name" and its "arguments", and {TOOL_CALL_CLOSE}; then wait for its result.',
        "Call a tool only when it helps; otherwise answer directly.",
        "Only the tools listed here exist (the examples may show others).",
    ]
    if tool_choice not in (None, "auto", "none"):
        lines.append("You must call a tool now.")
    return "\n".join(lines)


def arguments_opening(parameters: dict[str, Any]) -> str:
    """The forced start of a JSON arguments object: its first required key, if any.

    A string-typed first value gets its opening quote too; a tool without parameters
    gets the whole (empty) object.
    """
    properties = parameters.get("properties", {})
    if not properties:
        return "{}"
    required = [name for name in parameters.get("required", []) if name in properties]
    if not required:
        return "{"
    first = required[0]
    quote = '"' if opens_with_quote(properties[first]) else ""  # a string value opens
    return f"{{{json.dumps(first)}: {quote}"


def opens_with_quote(spec: Any) -> bool:
    """Whether a value of this property schema is a JSON string (a string or string enum)."""
    if not isinstance(spec, dict):
        return False
    if "enum" in spec:
        return bool(spec["enum"]) and all(isinstance(v, str) for v in spec["enum"])
    return spec.get("type") == "string"


def call_opening(name: str) -> str:
    """The call object up to its arguments: `{"name": "NAME", "arguments": `."""
    return f'{{"name": {json.dumps(name, ensure_ascii=False)}, "arguments": '


def call_after_name(name: str) -> str:
    """What follows `CALL_NAME_OPEN` once the name is chosen: `NAME", "arguments": `."""
    return call_opening(name).removeprefix(CALL_NAME_OPEN)


def name_in_cut_call(body: str) -> str:
    """The (maybe partial) tool name of a call object cut short, "" when none was written."""
    match = _CUT_CALL_NAME.match(body)
    return match.group(1) if match else ""


def render_tool_call(name: str, args: dict[str, Any]) -> str:
    """A call as the model writes it."""
    payload = json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
    return f"{TOOL_CALL_OPEN}{payload}{TOOL_CALL_CLOSE}"


def _request(function: dict[str, Any], args: dict[str, Any]) -> str:
    """A user request that the call with `args` answers, from the tool's description."""
    description = (function.get("description") or "").strip().split("\n")[0].rstrip(".")
    if not description:
        description = " ".join(re.findall(r"[A-Za-z][a-z]*|\d+", function["name"])).capitalize()
    values = [
        json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v for v in args.values()
    ]
    return f"{description}: {' and '.join(values)}" if values else f"{description}, please."


def bound_tool_demos(
    tools: Sequence[dict[str, Any]], per_tool: int = 2
) -> tuple[AlignmentDemo, ...]:
    """Demo calls of each bound tool, built from its name, description and schema.

    The request is the tool's description with the argument values; the answer calls the
    tool with those values (`grammar.example_arguments`), so the model sees the user's own
    tools called, not only the built-in demos' ones. Two calls per tool with different
    values show that the values come from the request (with one, a small model copies it).
    """
    demos = []
    for variant in range(per_tool):
        for tool in tools:
            function = _function(tool)
            args = example_arguments(function.get("parameters") or {}, variant)
            demos.append(
                AlignmentDemo(
                    prompt=_request(function, args),
                    response=render_tool_call(function["name"], args),
                    metadata={"kind": "tool", "category": "tool_call", "source": "bound_tool"},
                )
            )
    return tuple(demos)


def render_tool_result(name: str | None, content: str) -> str:
    """A tool's result as the user-side turn that follows the call."""
    return f"Tool result from {name or 'the tool'}: {content}"


def neutralize_tool_calls(text: str) -> str:
    """Break every tool-call tag in given text (see `TOOL_CALL_TAG`) with a word joiner.

    Tags hidden behind format characters, full-width forms or case are found too (the
    folded view of `neutralizing.break_markers`); the text is otherwise kept.
    """
    return break_markers(text, TOOL_CALL_TAG)


def answer_prefix(tools: Sequence[dict[str, Any]], tool_choice: str | None) -> str:
    """Text the answer is forced to start with, for `tool_choice` "any"/"required"/a name."""
    if tool_choice in (None, "auto", "none"):
        return ""
    functions = {_function(t)["name"]: _function(t) for t in tools}
    if tool_choice in ("any", "required"):
        if len(functions) > 1:
            return TOOL_CALL_OPEN + CALL_NAME_OPEN
        tool_choice = next(iter(functions))
    if tool_choice not in functions:
        msg = f"tool_choice {tool_choice!r} names no bound tool; tools are {list(functions)}"
        raise ValueError(msg)
    opening = arguments_opening(functions[tool_choice].get("parameters", {}))
    closing = "}" if opening == "{}" else ""  # nothing left to choose: the call is complete
    return f"{TOOL_CALL_OPEN}{call_opening(tool_choice)}{opening}{closing}"


def check_arguments(args: Any, schema: dict[str, Any]) -> str | None:
    """Why `args` does not fit the JSON schema's top level, or None when it fits.

    Checks that arguments are an object, required properties are present, every argument
    is a declared property (unless the schema sets `additionalProperties` to true or to a
    schema), declared properties have the declared basic type, and enum values are allowed.
    """
    if not isinstance(args, dict):
        return f"arguments must be a JSON object, got {type(args).__name__}"
    missing = [key for key in schema.get("required", []) if key not in args]
    if missing:
        return f"missing required arguments {missing}"
    properties = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    open_schema = extra is True or isinstance(extra, dict)
    for key, value in args.items():
        spec = properties.get(key)
        if spec is None:
            if open_schema:
                continue
            takes = f"it takes {sorted(properties)}" if properties else "it takes no arguments"
            return f"{UNDECLARED_ARGUMENT} {key!r}: {takes}"
        if not isinstance(spec, dict):
            continue
        kinds = spec.get("type")
        names = kinds if isinstance(kinds, list) else [kinds] if kinds else []
        allowed = tuple(t for name in names for t in _JSON_TYPES.get(name, (object,)))
        if allowed and (
            not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)
        ):
            return f"argument {key!r} must be {kinds}, got {type(value).__name__}"
        if "enum" in spec and value not in spec["enum"]:
            return f"argument {key!r} must be one of {spec['enum']}"
    return None


@dataclass
class ParsedAnswer:
    """A generated answer split into text and tool calls."""

    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)


def _load(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        pass
    try:
        return parse_partial_json(raw)  # closes what a cut-off call left open
    except json.JSONDecodeError:
        return None


def parse_answer(text: str, tools: Sequence[dict[str, Any]]) -> ParsedAnswer:
    """Split `text` into content and tool calls, checking each call against its tool.

    A call naming an unknown tool, with unparsable JSON, or with arguments that do not fit
    the schema (an argument the tool does not declare included, for a tool without
    parameters too) becomes an `invalid_tool_call` carrying the reason.
    """
    schemas = {_function(t)["name"]: _function(t).get("parameters", {}) for t in tools}
    matches = list(_CALL.finditer(text))
    if not matches:
        return ParsedAnswer(text.strip())
    parsed = ParsedAnswer(text[: matches[0].start()].strip())
    for match in matches:
        raw = match.group(1).strip()
        call_id = f"call_{uuid.uuid4().hex[:24]}"
        payload = _load(raw)
        if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
            parsed.invalid_tool_calls.append(
                invalid_tool_call(name=None, args=raw, id=call_id, error="not a JSON tool call")
            )
            continue
        name = payload["name"]
        args = payload.get("arguments", payload.get("args", {}))
        error = (
            f"unknown tool {name!r}; tools are {sorted(schemas)}"
            if name not in schemas
            else check_arguments(args, schemas[name])
        )
        if error is None and isinstance(args, dict):
            parsed.tool_calls.append(tool_call(name=name, args=args, id=call_id))
        else:
            parsed.invalid_tool_calls.append(
                invalid_tool_call(name=name, args=json.dumps(args), id=call_id, error=error)
            )
    return parsed
