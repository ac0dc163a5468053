"""A `Grammar` for a model server: as llama.cpp's GBNF, and checked after the fact.

The grammars of `langchain_icalign.tools.grammar` are llguidance's Lark with inline `%json`
schemas, of two shapes only (`json_grammar`, `call_grammar`): literals, rule references,
alternatives and JSON schemas. `to_gbnf` writes such a grammar as GBNF, the grammar
language llama.cpp's server takes per request (its `grammar` field; vLLM's `guided_grammar`
takes it too), for the part of the answer that follows the grammar's `forced` text (the
prompt already holds that). JSON schemas become rules that write JSON as `json.dumps`
does (", " and ": ", no other whitespace), keys in the schema's order, optional ones
skippable, strings and arrays within the bounds `bounded_schema` set.

`matches` checks a finished answer against the grammar instead: for a server that cannot
constrain decoding, the answer is validated and, when it fails, generated once more.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from langchain_icalign.backends.base import Grammar
from langchain_icalign.backends.grammar_rules import (
    DECODER,
    Alt,
    Json,
    Lit,
    Ref,
    Seq,
    parse_rules,
    remaining_after,
)

__all__ = ["matches", "to_gbnf"]


# JSON pieces, as json.dumps writes them.
_BASE_RULES = {
    "char": r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})',
    "integer": r'"-"? ("0" | [1-9] [0-9]{0,15})',
    "number": r'"-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?',
    "boolean": r'"true" | "false"',
    "null": r'"null"',
    "string": r'"\"" char{0,120} "\""',
    "value": r"string | number | boolean | null | array | object",
    "array": r'"[" (value (", " value){0,5})? "]"',
    "object": r'"{" (string ": " value (", " string ": " value){0,11})? "}"',
}


# -- reading the Lark grammar --------------------------------------------------------------


# -- what is left once the forced text is read ------------------------------------------------


# -- writing GBNF ----------------------------------------------------------------------------


def _quote(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


@dataclass
class _Writer:
    rules: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # a schema's JSON -> its rule

    def add(self, name: str, body: str) -> str:
        self.rules[name] = body
        return name

    def fresh(self, hint: str) -> str:
        base = re.sub(r"[^a-zA-Z0-9]+", "-", hint).strip("-").lower() or "r"
        name, n = base, 1
        while name in self.rules or name in _BASE_RULES:
            n += 1
            name = f"{base}-{n}"
        self.rules[name] = ""  # reserved
        return name

    def base(self, name: str) -> str:
        for dependency in re.findall(
            r"\b(char|string|number|integer|boolean|null|value|array|object)\b", _BASE_RULES[name]
        ):
            if dependency not in self.rules:
                self.rules[dependency] = _BASE_RULES[dependency]
                self.base(dependency)
        self.rules[name] = _BASE_RULES[name]
        return name

    def expr(self, node: Any) -> str:
        if isinstance(node, Lit):
            return _quote(node.text) if node.text else ""
        if isinstance(node, Ref):
            return "g-" + node.name.replace("_", "-")
        if isinstance(node, Json):
            schema = json.loads(node.schema)
            return self.schema(schema, schema, "json")
        if isinstance(node, Seq):
            parts = [p for p in (self.expr(i) for i in node.items) if p]
            return " ".join(parts)
        if isinstance(node, Alt):
            return "(" + " | ".join(self.expr(o) or '""' for o in node.options) + ")"
        msg = f"unknown grammar node {node!r}"
        raise TypeError(msg)

    def schema(self, node: Any, root: dict[str, Any], hint: str) -> str:
        key = json.dumps(node, sort_keys=True)
        if key in self.names:
            return self.names[key]
        name = self.fresh(hint)
        self.names[key] = name
        self.rules[name] = self._schema_body(node, root, name)
        return name

    def _schema_body(self, node: Any, root: dict[str, Any], name: str) -> str:
        if node is True or node == {}:
            return self.base("value")
        if not isinstance(node, dict):
            return self.base("value")
        if isinstance(node.get("$ref"), str):
            target: Any = root
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            return self.schema(target, root, node["$ref"].rsplit("/", 1)[-1])
        if "const" in node:
            return _quote(json.dumps(node["const"], ensure_ascii=False))
        if isinstance(node.get("enum"), list) and node["enum"]:
            return " | ".join(_quote(json.dumps(v, ensure_ascii=False)) for v in node["enum"])
        branches = node.get("anyOf") or node.get("oneOf")
        if isinstance(branches, list) and branches:
            return " | ".join(self.schema(b, root, f"{name}-{i}") for i, b in enumerate(branches))
        if isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
            return self.schema(node["allOf"][0], root, name)
        kinds = node.get("type")
        if isinstance(kinds, list):
            return " | ".join(self.schema({**node, "type": k}, root, f"{name}-{k}") for k in kinds)
        if kinds is None:
            kinds = "object" if "properties" in node else "array" if "items" in node else None
        if kinds == "string":
            low = int(node.get("minLength", 0))
            high = node.get("maxLength")
            self.base("char")
            count = f"{{{low},{int(high)}}}" if high is not None else f"{{{low},}}"
            return f'"\\"" char{count} "\\""'
        if kinds in ("integer", "number", "boolean", "null"):
            return self.base(kinds)
        if kinds == "array":
            return self._array(node, root, name)
        if kinds == "object":
            return self._object(node, root, name)
        return self.base("value")

    def _array(self, node: dict[str, Any], root: dict[str, Any], name: str) -> str:
        item = self.schema(node.get("items", True), root, f"{name}-item")
        low, high = int(node.get("minItems", 0)), node.get("maxItems")
        more_low = max(low - 1, 0)
        more = f"{{{more_low},{int(high) - 1}}}" if high is not None else f"{{{more_low},}}"
        if high is not None and int(high) == 0:
            return '"[]"'
        body = f'{item} (", " {item}){more}'
        return f'"[" {body} "]"' if low > 0 else f'"[" ({body})? "]"'

    def _object(self, node: dict[str, Any], root: dict[str, Any], name: str) -> str:
        properties = node.get("properties") or {}
        if not properties:
            extra = node.get("additionalProperties", True)
            if extra is False:
                return '"{}"'
            value = self.schema(extra, root, f"{name}-value")
            self.base("string")
            pair = f'string ": " {value}'
            return f'"{{" ({pair} (", " {pair})*)? "}}"'
        required = set(node.get("required") or ())
        pairs = []
        for key, schema in properties.items():
            value = self.schema(schema, root, f"{name}-{key}")
            literal = _quote(json.dumps(key, ensure_ascii=False) + ": ")
            pairs.append((key in required, f"{literal} {value}"))
        options = []
        for first, (needed, pair) in enumerate(pairs):
            rest = " ".join(
                f'(", " {p})' if need else f'(", " {p})?' for need, p in pairs[first + 1 :]
            )
            options.append(f"{pair} {rest}".strip())
            if needed:
                break
        else:
            options.append("")  # every key optional: {} too
        bodies = [f'"{{" {o} "}}"' if o else '"{}"' for o in options]
        return " | ".join(bodies)


def to_gbnf(grammar: Grammar) -> str | None:
    """`grammar` as a GBNF grammar for the answer after its forced text.

    Returns None where the grammar cannot be written so: its forced text reaches into a
    JSON schema, or it applies only after a marker (`after`, which the caller handles by
    generating up to the marker first).

    Raises:
        ValueError: For grammar text that is not of the shapes `grammar` writes.
    """
    if grammar.after is not None:
        return None
    rules = parse_rules(grammar.source)
    ways = [
        left for left, rest in remaining_after(rules["start"], grammar.forced, rules) if not rest
    ]
    if not ways:
        return None
    writer = _Writer()
    writer.rules["root"] = ""
    body = " | ".join(writer.expr(w) or '""' for w in ways)
    writer.rules["root"] = body
    used = set(re.findall(r"\bg-[a-z0-9-]+", body))
    done: set[str] = set()
    while used - done:
        ref = sorted(used - done)[0]
        done.add(ref)
        lark = ref[2:].replace("-", "_")
        if lark in rules:
            text = writer.expr(rules[lark])
            writer.rules[ref] = text
            used |= set(re.findall(r"\bg-[a-z0-9-]+", text))
    return "\n".join(f"{name} ::= {text}" for name, text in writer.rules.items()) + "\n"


# -- checking an answer --------------------------------------------------------------------


def _kind_ok(value: Any, kind: str) -> bool:
    checks = {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "null": value is None,
    }
    return checks.get(kind, True)


def _valid(value: Any, node: Any, root: dict[str, Any], depth: int = 0) -> bool:
    if not isinstance(node, dict) or depth > 32:
        return node is not False
    if isinstance(node.get("$ref"), str):
        target: Any = root
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return _valid(value, target, root, depth + 1)
    if "const" in node and value != node["const"]:
        return False
    if isinstance(node.get("enum"), list) and value not in node["enum"]:
        return False
    branches = node.get("anyOf") or node.get("oneOf")
    if isinstance(branches, list) and branches:
        return any(_valid(value, b, root, depth + 1) for b in branches)
    kinds = node.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if isinstance(kinds, list) and not any(_kind_ok(value, k) for k in kinds):
        return False
    if isinstance(value, dict):
        properties = node.get("properties") or {}
        if any(key not in value for key in node.get("required") or ()):
            return False
        extra = node.get("additionalProperties", True)
        for key, item in value.items():
            schema = properties.get(key, extra)
            if schema is False or not _valid(item, schema, root, depth + 1):
                return False
    if isinstance(value, list):
        if len(value) < int(node.get("minItems", 0)):
            return False
        return all(_valid(item, node.get("items", True), root, depth + 1) for item in value)
    return True


def _ends(node: Any, text: str, pos: int, rules: dict[str, Any]) -> set[int]:
    """Where a match of `node` starting at `pos` of `text` can end."""
    if isinstance(node, Lit):
        return {pos + len(node.text)} if text.startswith(node.text, pos) else set()
    if isinstance(node, Ref):
        return _ends(rules[node.name], text, pos, rules)
    if isinstance(node, Alt):
        return {end for option in node.options for end in _ends(option, text, pos, rules)}
    if isinstance(node, Seq):
        positions = {pos}
        for item in node.items:
            positions = {end for p in positions for end in _ends(item, text, p, rules)}
        return positions
    if isinstance(node, Json):
        try:
            value, end = DECODER.raw_decode(text, pos)
        except json.JSONDecodeError:
            return set()
        schema = json.loads(node.schema)
        return {end} if _valid(value, schema, schema) else set()
    return set()


def matches(grammar: Grammar, text: str) -> bool:
    """Whether `text` (the answer with its forced text before it) follows `grammar`.

    With `after`, only what follows the marker is checked (an answer without the marker
    matches: the model chose not to open a call). Whitespace after the match is allowed.
    """
    if grammar.after is not None:
        _, marker, text = text.partition(grammar.after)
        if not marker:
            return True
    rules = parse_rules(grammar.source)
    ends = _ends(rules["start"], text, 0, rules)
    return any(not text[end:].strip() for end in ends)
