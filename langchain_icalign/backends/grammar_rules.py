"""A grammar of `tools.grammar` read back as rules: literals, references, alternatives, JSON.

`parse_rules` reads the two shapes `tools.grammar` writes (`json_grammar`, `call_grammar`)
into nodes; `remaining_after` walks them past a forced text (what the prompt already holds),
leaving what the answer itself must follow. `gbnf` writes those nodes as GBNF and checks
answers against them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DECODER",
    "EMPTY",
    "Alt",
    "Json",
    "Lit",
    "Ref",
    "Seq",
    "parse_rules",
    "remaining_after",
]


_TOKEN = re.compile(
    r'\s*(?:(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>[|()])|(?P<json>%json)|(?P<str>"))'
)


_RULE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):\s*(.*)$")


DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class Lit:
    """A literal text."""

    text: str


@dataclass(frozen=True)
class Ref:
    """A reference to a rule by name."""

    name: str


@dataclass(frozen=True)
class Json:
    """A JSON value following a schema."""

    schema: str  # JSON text, so that the node is hashable


@dataclass(frozen=True)
class Seq:
    """Items one after the other."""

    items: tuple[Any, ...]


@dataclass(frozen=True)
class Alt:
    """One of several options."""

    options: tuple[Any, ...]


EMPTY = Seq(())


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def _next(self) -> tuple[str, Any] | None:
        match = _TOKEN.match(self.text, self.pos)
        if match is None:
            if self.text[self.pos :].strip():
                msg = f"cannot read grammar text {self.text[self.pos :]!r}"
                raise ValueError(msg)
            return None
        if match.group("str"):
            value, end = DECODER.raw_decode(self.text, match.start("str"))
            self.pos = end
            return "lit", value
        if match.group("json"):
            start = match.end()
            while self.text[start].isspace():
                start += 1
            value, end = DECODER.raw_decode(self.text, start)
            self.pos = end
            value.pop("x-guidance", None)
            return "json", json.dumps(value)
        self.pos = match.end()
        if match.group("ident"):
            return "ident", match.group("ident")
        return "punct", match.group("punct")

    def _peek(self) -> tuple[str, Any] | None:
        saved = self.pos
        token = self._next()
        self.pos = saved
        return token

    def alternatives(self) -> Any:
        options = [self.sequence()]
        while self._peek() == ("punct", "|"):
            self._next()
            options.append(self.sequence())
        return options[0] if len(options) == 1 else Alt(tuple(options))

    def sequence(self) -> Any:
        items: list[Any] = []
        while True:
            token = self._peek()
            if token is None or token in (("punct", "|"), ("punct", ")")):
                return items[0] if len(items) == 1 else Seq(tuple(items))
            self._next()
            kind, value = token
            if kind == "lit":
                items.append(Lit(value))
            elif kind == "json":
                items.append(Json(value))
            elif kind == "ident":
                items.append(Ref(value))
            elif value == "(":
                items.append(self.alternatives())
                if self._next() != ("punct", ")"):
                    msg = "unbalanced parentheses in grammar"
                    raise ValueError(msg)


def parse_rules(source: str) -> dict[str, Any]:
    """The grammar's rules by name (`start` among them), as nodes."""
    rules: dict[str, Any] = {}
    for line in source.splitlines():
        if not line.strip():
            continue
        match = _RULE.match(line.strip())
        if match is None:
            msg = f"cannot read grammar line {line!r}"
            raise ValueError(msg)
        rules[match.group(1)] = _Parser(match.group(2)).alternatives()
    return rules


def remaining_after(node: Any, text: str, rules: dict[str, Any]) -> list[tuple[Any, str]]:
    """Ways `node` can read `text`: (what is left of `node`, what is left of `text`)."""
    if not text:
        return [(node, "")]
    if isinstance(node, Lit):
        if text.startswith(node.text):
            return [(EMPTY, text[len(node.text) :])]
        if node.text.startswith(text):
            return [(Lit(node.text[len(text) :]), "")]
        return []
    if isinstance(node, Ref):
        return remaining_after(rules[node.name], text, rules)
    if isinstance(node, Alt):
        return [way for option in node.options for way in remaining_after(option, text, rules)]
    if isinstance(node, Seq):
        states: list[tuple[tuple[Any, ...], str]] = [((), text)]
        for item in node.items:
            moved: list[tuple[tuple[Any, ...], str]] = []
            for done, rest in states:
                if not rest:
                    moved.append(((*done, item), ""))
                    continue
                for left, still in remaining_after(item, rest, rules):
                    moved.append(((*done, left) if left != EMPTY else done, still))
            states = moved
        return [(Seq(items), rest) for items, rest in states]
    return []  # a JSON schema cannot be entered part way
