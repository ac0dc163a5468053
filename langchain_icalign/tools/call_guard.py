"""Where a parsed tool call came from: refuse calls a tool result wrote, confirm listed tools.

A base model copies what it reads. A call written in a tool result (a web page, an email a
tool fetched) that the model then reproduces is not the user's request, so it is refused.
So is one reproduced from a call written in a human message (an email or a page the user
pasted) unless the user's latest message names the tool in its own words: then the user
asked for it, and the call is kept and reported. Tools named in `confirm_tools` may only be
called when the user's latest message names them itself.

Text is compared in a loose view: format characters (zero-width spaces, word joiners) are
dropped, each character taken in its NFKC form, curly quotes made straight, case folded.
A message *writes a call* to a tool when it holds the tool's name as a call: after a
`"name":`-like key, right after a tool-call tag, or followed by `(`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    InvalidToolCall,
    ToolCall,
    ToolMessage,
)
from langchain_core.messages.tool import invalid_tool_call

from langchain_icalign.messages import message_text

__all__ = [
    "COPIED_FROM_TOOL_RESULT",
    "COPIED_FROM_USER_TEXT",
    "NEEDS_CONFIRMATION",
    "REPEATS_ANSWERED_CALL",
    "GuardedCalls",
    "guard_tool_calls",
    "loose_text",
    "names_tool",
    "writes_call",
]

COPIED_FROM_TOOL_RESULT = "copied from a tool result"
"""How the reason of a call refused for its provenance begins."""
COPIED_FROM_USER_TEXT = "copied from a call written in a human message"
"""How the reason of a call refused for reproducing a call the user pasted, unasked, begins."""
REPEATS_ANSWERED_CALL = "repeats a call already answered"
"""How the reason of a call refused for repeating an answered call (same name and arguments)."""
NEEDS_CONFIRMATION = "needs the user's confirmation"
"""How the reason of a call refused under `confirm_tools` begins."""

_QUOTES = str.maketrans(
    dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"')
    | dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u02bc", "'")
)
# How far after a written tool name its arguments are looked for (characters).
_AFTER_NAME = 600
_KEYS = r"(?:name|tool|tool_name|function|function_name)"


def loose_text(text: str) -> str:
    """`text` as calls are compared: no format characters, NFKC, straight quotes, casefolded."""
    kept = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return unicodedata.normalize("NFKC", kept).translate(_QUOTES).casefold()


@lru_cache(maxsize=256)
def _call_pattern(name: str) -> re.Pattern[str]:
    tool = re.escape(loose_text(name))
    end = r"(?![\w-])"
    return re.compile(
        rf"(?<![\w-])[\"']?{_KEYS}[\"']?\s*[:=]\s*[\"']?{tool}{end}"  # "name": "tool"
        rf"|tool[\s_-]*calls?\W{{0,40}}{tool}{end}"  # right after a tool-call tag
        rf"|(?<![\w-]){tool}\s*\("  # tool(...)
    )


@lru_cache(maxsize=256)
def _name_pattern(name: str) -> re.Pattern[str]:
    words = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name) or [name]
    body = r"[\s_-]*".join(re.escape(loose_text(word)) for word in words)
    return re.compile(rf"(?<![^\W_]){body}(?![^\W_])")


def writes_call(text: str, name: str) -> bool:
    """Whether `text` writes a call to the tool `name` (see the module notes)."""
    return _call_pattern(name).search(loose_text(text)) is not None


def names_tool(text: str, name: str) -> bool:
    """Whether `text` names the tool in its own words, not inside a call it writes.

    `delete_all_files` is named by "delete all files", "Delete-All-Files" or the name
    itself; `"name": "delete_all_files"`, `<tool_call> delete_all_files` and
    `delete_all_files()` are calls written in the text, not its words.
    """
    loose = _call_pattern(name).sub(" ", loose_text(text))
    return _name_pattern(name).search(loose) is not None


def _leaves(value: Any) -> Iterable[str]:
    """The argument values of a call as text, each nested value on its own."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, str):
        if value.strip():
            yield loose_text(value.strip())
    else:
        yield json.dumps(value)


def _holds(loose: str, leaf: str) -> bool:
    """Whether the loose text holds `leaf` as a whole (not inside a longer word or number)."""
    return re.search(rf"(?<![\w.]){re.escape(leaf)}(?![\w])", loose) is not None


def _writes_this_call(loose: str, name: str, leaves: Sequence[str]) -> bool:
    """Whether the loose text writes a call to `name` with every one of `leaves` near it.

    Near: from the written name to the end of a call's usual length, so a value the user
    wrote elsewhere in the message does not make the call a copy.
    """
    for match in _call_pattern(name).finditer(loose):
        if match.group().rstrip().endswith("("):
            continue  # `tool(3)` in a user's own sentence is a request, not a pasted call
        window = loose[match.start() : match.end() + _AFTER_NAME]
        if all(_holds(window, leaf) for leaf in leaves):
            return True
    return False


@dataclass
class GuardedCalls:
    """Tool calls after the provenance and confirmation checks.

    Attributes:
        tool_calls: The calls kept.
        invalid_tool_calls: The calls refused (with the reason), after those already invalid.
        from_user_text: For each kept call that reproduces a call written in a human
            message (its name and every argument value), which the user's latest message
            asked for by naming the tool: `{"id", "name", "message_index"}`.
    """

    tool_calls: list[ToolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)
    from_user_text: list[dict[str, Any]] = field(default_factory=list)


def guard_tool_calls(
    tool_calls: Sequence[ToolCall],
    invalid_tool_calls: Sequence[InvalidToolCall],
    messages: Sequence[BaseMessage],
    confirm_tools: Iterable[str] = (),
) -> GuardedCalls:
    """Refuse copied calls and unconfirmed calls to `confirm_tools`.

    A call to tool X is copied from a tool result when that result writes a call to X,
    unless the user asked for it: every argument value of the call appears in a human
    message, and either the user's latest message names X or the result is X's own (and the
    call has arguments). It is copied from a human message when that message writes a call
    to X holding every argument value of the call, and the user's latest message does not
    name X in its own words (a pasted email or page is not a request to run what it says).
    A call with the same name and arguments as an earlier call whose result is in the
    conversation is refused too: a base model tends to repeat the call it just made, which
    would loop an agent.

    Args:
        tool_calls: Valid calls parsed from the answer.
        invalid_tool_calls: Calls already refused; kept as they are.
        messages: The conversation the answer replies to.
        confirm_tools: Tools that may only be called when the user's latest message names
            them (see `names_tool`).
    """
    humans = [(i, m) for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
    human_texts = [loose_text(message_text(m)) for _, m in humans]
    latest_human = message_text(humans[-1][1]) if humans else ""
    call_names = {
        c["id"]: c["name"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls
    }
    results = [
        (i, m, m.name or call_names.get(m.tool_call_id))
        for i, m in enumerate(messages)
        if isinstance(m, ToolMessage)
    ]
    answered = {m.tool_call_id: i for i, m in enumerate(messages) if isinstance(m, ToolMessage)}
    earlier_calls = [
        (answered[c["id"]], c["name"], c["args"])
        for m in messages
        if isinstance(m, AIMessage)
        for c in m.tool_calls
        if c["id"] is not None and c["id"] in answered
    ]
    confirm = set(confirm_tools)
    guarded = GuardedCalls(invalid_tool_calls=list(invalid_tool_calls))
    for call in tool_calls:
        name = call["name"]
        reason = _copied_from_results(call, results, human_texts, latest_human)
        repeated = next((i for i, n, a in earlier_calls if n == name and a == call["args"]), None)
        if reason is None and repeated is not None:
            # A base model copies the call it just made; its result is in the conversation.
            reason = (
                f"{REPEATS_ANSWERED_CALL}: {name!r} with these arguments was answered by "
                f"message {repeated}"
            )
        leaves = list(_leaves(call["args"]))
        source = next(
            (
                index
                for (index, _), loose in zip(humans, human_texts, strict=True)
                if _writes_this_call(loose, name, leaves)
            ),
            None,
        )
        named = names_tool(latest_human, name)
        if reason is None and source is not None and not named:
            reason = (
                f"{COPIED_FROM_USER_TEXT}: message {source} writes this call to {name!r} and "
                "the user's latest message does not ask for it (name the tool to ask)"
            )
        if reason is None and name in confirm and not named:
            reason = (
                f"{NEEDS_CONFIRMATION}: {name!r} may only be called when the user's "
                "latest message names it"
            )
        if reason is not None:
            guarded.invalid_tool_calls.append(
                invalid_tool_call(
                    name=call["name"], args=json.dumps(call["args"]), id=call["id"], error=reason
                )
            )
            continue
        guarded.tool_calls.append(call)
        if source is not None:
            guarded.from_user_text.append({"id": call["id"], "name": name, "message_index": source})
    return guarded


def _copied_from_results(
    call: ToolCall,
    results: Sequence[tuple[int, BaseMessage, str | None]],
    human_texts: Sequence[str],
    latest_human: str,
) -> str | None:
    """Why the call counts as copied from one of the tool results, or None."""
    name = call["name"]
    leaves = list(_leaves(call["args"]))
    not_users = [leaf for leaf in leaves if not any(_holds(h, leaf) for h in human_texts)]
    named = names_tool(latest_human, name)
    for index, message, source in results:
        text = message_text(message)
        if not writes_call(text, name):
            continue
        if not not_users and (named or (leaves and source == name)):
            continue  # the user asked for this call
        taken = [leaf for leaf in not_users if _holds(loose_text(text), leaf)]
        what = f"argument values {taken} came from it" if taken else "the user did not ask for it"
        return (
            f"{COPIED_FROM_TOOL_RESULT}: the result of {source or 'a tool'} (message {index}) "
            f"writes a call to {name!r} and {what}"
        )
    return None
