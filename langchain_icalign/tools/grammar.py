"""Grammars for tool calls and JSON answers, and the JSON-schema work around them.

A `Grammar` is what a backend that can constrain decoding (`supports_grammar`) is asked to
follow: an llguidance grammar (Lark with inline `%json` schemas, see `llguidance`'s docs)
built here from JSON schemas. Nothing in this module needs llguidance; the transformers
backend compiles and applies grammars in `grammar_decoding`.

Schemas are given to the grammar *bounded* (`bounded_schema`): arrays and strings without
a length limit get one and objects without `additionalProperties` refuse invented keys, so
that a small model cannot ramble inside a value forever. When the token budget still runs
out, `close_json` closes what was written into a valid object, filling required fields that
were not reached with the smallest values their schemas allow.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.utils.json import parse_partial_json

# The contract between tools and backends; it lives with the backend contract.
from langchain_icalign.backends.base import Grammar

__all__ = [
    "MAX_ITEMS",
    "MAX_STRING_LENGTH",
    "Grammar",
    "bounded_schema",
    "call_grammar",
    "close_json",
    "example_arguments",
    "json_grammar",
    "minimal_value",
]

MAX_ITEMS = 6
"""Most items of an array whose schema sets no `maxItems`."""
MAX_STRING_LENGTH = 120
"""Most characters of a string whose schema sets no `maxLength` (nor enum, pattern, format)."""

# JSON written as `json.dumps` writes it (and as the demos show it): ", " and ": ", no
# other whitespace, so the model spends no tokens on layout. `lenient`: keywords llguidance
# does not implement (formats, ...) are ignored rather than refused.
_JSON_OPTIONS = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
    "lenient": True,
    "coerce_one_of": True,
}
_ANY_JSON_MODE = {
    "type": "object",
    "additionalProperties": {"$ref": "#/$defs/value"},
    "$defs": {
        "value": {
            "anyOf": [
                {"type": "string"},
                {"type": "number"},
                {"type": "boolean"},
                {"type": "null"},
                {"type": "array", "items": {"$ref": "#/$defs/value"}},
                {"type": "object", "additionalProperties": {"$ref": "#/$defs/value"}},
            ]
        }
    },
}
_CHILD_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_CHILD_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_CHILD_SCHEMAS = ("items", "additionalProperties", "not", "if", "then", "else", "contains")
_UNBOUNDED_STRING = ("maxLength", "enum", "const", "pattern", "format")


def _types(node: dict[str, Any]) -> set[str]:
    kind = node.get("type")
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    return {kind} if isinstance(kind, str) else set()


def _bound(node: Any, max_items: int, max_length: int) -> Any:
    if isinstance(node, list):
        return [_bound(item, max_items, max_length) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    kinds = _types(node)
    if ("array" in kinds or "items" in node) and "maxItems" not in node:
        node["maxItems"] = max(max_items, int(node.get("minItems", 0)))
    if "string" in kinds and not any(key in node for key in _UNBOUNDED_STRING):
        node["maxLength"] = max(max_length, int(node.get("minLength", 0)))
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False  # no invented keys
    for key in _CHILD_LISTS:
        if isinstance(node.get(key), list):
            node[key] = _bound(node[key], max_items, max_length)
    for key in _CHILD_MAPS:
        if isinstance(node.get(key), dict):
            node[key] = {k: _bound(v, max_items, max_length) for k, v in node[key].items()}
    for key in _CHILD_SCHEMAS:
        if isinstance(node.get(key), dict):
            node[key] = _bound(node[key], max_items, max_length)
    return node


def bounded_schema(
    schema: dict[str, Any], max_items: int = MAX_ITEMS, max_length: int = MAX_STRING_LENGTH
) -> dict[str, Any]:
    """`schema` with every array and free string bounded and no undeclared object keys.

    Bounds the schema sets are kept; `additionalProperties` is set to false only where the
    schema has `properties` and says nothing about others. Nested schemas (`properties`,
    `items`, `anyOf`, `$defs`, ...) are bounded too. The input is not changed.
    """
    bounded = _bound(copy.deepcopy(schema), max_items, max_length)
    return bounded if isinstance(bounded, dict) else {}


def _json_rule(schema: dict[str, Any]) -> str:
    return "%json " + json.dumps({**bounded_schema(schema), "x-guidance": _JSON_OPTIONS})


def json_grammar(schema: dict[str, Any] | None) -> str:
    """A grammar for one JSON object following `schema` (any JSON object when None)."""
    return f"start: {_json_rule(schema if schema is not None else _ANY_JSON_MODE)}\n"


def _literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid Lark literal


def call_grammar(functions: Sequence[dict[str, Any]]) -> str:
    """A grammar for a call object, `{"name": NAME, "arguments": {...}}`, of one of `functions`.

    Each function (OpenAI `function` dict) contributes its name and its parameters schema:
    the name is one of theirs, the arguments follow that function's schema.
    """
    lines = [
        "start: "
        + _literal('{"name": "')
        + " ("
        + " | ".join(f"call_{index}" for index in range(len(functions)))
        + ") "
        + _literal("}")
    ]
    for index, function in enumerate(functions):
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        head = _literal(function["name"] + '", "arguments": ')
        lines.append(f"call_{index}: {head} args_{index}")
        lines.append(f"args_{index}: {_json_rule(parameters)}")
    return "\n".join(lines) + "\n"


def _resolve(node: Any, root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 32:
        target: Any = root
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node, seen = target, seen + 1
    return node if isinstance(node, dict) else {}


def _branches(node: dict[str, Any]) -> list[Any]:
    return list(node.get("anyOf") or node.get("oneOf") or [])


def minimal_value(schema: Any, root: dict[str, Any] | None = None) -> Any:
    """The smallest value `schema` allows.

    A const or first enum value, "", 0, false, [], null, or an object of its required
    properties (filled the same way).
    """
    root = root if root is not None else schema if isinstance(schema, dict) else {}
    node = _resolve(schema, root)
    if "const" in node:
        return node["const"]
    if node.get("enum"):
        return node["enum"][0]
    branches = _branches(node)
    if branches:
        return minimal_value(branches[0], root)
    kinds = _types(node)
    if "null" in kinds and len(kinds) == 1:
        return None
    kind = next(iter(sorted(kinds - {"null"})), "object" if "properties" in node else "")
    if kind == "string":
        return "x" * int(node.get("minLength", 0))
    if kind in ("integer", "number"):
        low = node.get("minimum", node.get("exclusiveMinimum", 0))
        value = max(0, low if isinstance(low, (int, float)) else 0)
        return int(value) + (1 if "exclusiveMinimum" in node else 0)
    if kind == "boolean":
        return False
    if kind == "array":
        return [minimal_value(node.get("items", {}), root)] * int(node.get("minItems", 0))
    if kind == "object":
        return _fill_required({}, node, root)
    return None


def _fill_required(value: dict[str, Any], node: dict[str, Any], root: dict[str, Any]) -> Any:
    properties = node.get("properties") or {}
    for key in node.get("required", []):
        if key not in value:
            value[key] = minimal_value(properties.get(key, {}), root)
    for key, item in list(value.items()):
        if key in properties:
            value[key] = _complete(item, properties[key], root)
    return value


def _matches(value: Any, node: dict[str, Any]) -> bool:
    kinds = _types(node)
    if not kinds:
        return True
    checks = {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "null": value is None,
    }
    return any(checks.get(kind, True) for kind in kinds)


def _complete(value: Any, schema: Any, root: dict[str, Any]) -> Any:
    """`value` (cut short) with the required fields of every object in it filled in."""
    node = _resolve(schema, root)
    branches = [_resolve(b, root) for b in _branches(node)]
    if branches:
        node = next((b for b in branches if _matches(value, b)), branches[0])
    if isinstance(value, dict):
        return _fill_required(value, node, root)
    if isinstance(value, list):
        items = node.get("items", {})
        return [_complete(item, items, root) for item in value]
    if not _matches(value, node):
        return minimal_value(node, root)
    if node.get("enum") and value not in node["enum"]:
        return node["enum"][0]
    return value


def _partial(text: str) -> Any:
    """The value a cut-off JSON text holds, trailing characters dropped until it parses."""
    for end in range(len(text), 0, -1):
        try:
            value = parse_partial_json(text[:end])
        except (json.JSONDecodeError, ValueError):
            continue
        if value is not None or text[:end].strip() == "null":
            return value
    return None


def close_json(text: str, schema: dict[str, Any] | None) -> str | None:
    """A complete JSON text for `text`, a JSON object the token budget cut short.

    Open strings, arrays and objects are closed (a partly written key or value is dropped)
    and required fields that were not reached are filled with `minimal_value`. Returns None
    when `text` holds no object.
    """
    try:
        json.loads(text)
    except json.JSONDecodeError:
        value = _partial(text.strip())
    else:
        return text
    if not isinstance(value, dict):
        return None
    if schema is not None:
        value = _complete(value, schema, schema)
    return json.dumps(value, ensure_ascii=False)


_WORDS = re.compile(r"[A-Za-z][a-z]*|\d+")


def _sample(name: str, node: dict[str, Any], root: dict[str, Any], index: int, variant: int) -> Any:
    node = _resolve(node, root)
    for key in ("const", "default"):
        if node.get(key) is not None:
            return node[key]
    if node.get("examples"):
        return node["examples"][0]
    if node.get("enum"):
        return node["enum"][0]
    branches = [b for b in _branches(node) if _types(_resolve(b, root)) != {"null"}]
    if branches:
        return _sample(name, branches[0], root, index, variant)
    kinds = _types(node) - {"null"}
    kind = next(iter(sorted(kinds)), "object" if "properties" in node else "string")
    if kind == "string":
        words = " ".join(w.lower() for w in _WORDS.findall(name) or ["text"])
        return f"{('sample', 'other')[variant % 2]} {words}"
    if kind in ("integer", "number"):
        return 7 + 5 * index + 31 * variant
    if kind == "boolean":
        return True
    if kind == "array":
        return [_sample(name, node.get("items", {}), root, index, variant)]
    if kind == "object":
        return _sample_object(node, root, variant)
    return None


def _sample_object(node: dict[str, Any], root: dict[str, Any], variant: int) -> dict[str, Any]:
    properties = node.get("properties") or {}
    keys = [key for key in node.get("required", []) if key in properties] or list(properties)[:1]
    return {
        key: _sample(key, properties[key], root, index, variant) for index, key in enumerate(keys)
    }


def example_arguments(parameters: dict[str, Any], variant: int = 0) -> dict[str, Any]:
    """Arguments for a demo call of a tool, drawn from its parameters schema.

    Its required parameters (else its first one), each a const, default, example or first
    enum value where the schema gives one, else a value of the declared type (`variant`
    picks other numbers and words, for a second demo of the same tool).
    """
    return _sample_object(_resolve(parameters, parameters), parameters, variant)
