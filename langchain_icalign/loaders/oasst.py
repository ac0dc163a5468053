"""OpenAssistant (oasst1/oasst2) message trees: one conversation per tree.

Two layouts are read: the flat message table of the Hugging Face dataset (one message a
record, with `message_id`, `parent_id`, `role`, `text`, `lang`, `rank`), and the nested
`*.trees.jsonl` export (one tree a record, `prompt` with `replies`). From each root prompt
the conversation follows the best-ranked reply (rank 0 first; unranked replies after ranked
ones, then in file order), skipping deleted and rejected messages.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from langchain_icalign.loaders.conversation import Conversation, Role
from langchain_icalign.loaders.errors import DemoFileError, RecordError

__all__ = ["DROPPED_LANGUAGE", "DROPPED_NO_REPLY", "DROPPED_REMOVED", "oasst_conversations"]

DROPPED_LANGUAGE = "language not selected"
DROPPED_NO_REPLY = "no assistant reply"
DROPPED_REMOVED = "deleted or rejected prompt"

_ROLES: dict[str, Role] = {"prompter": "user", "user": "user", "assistant": "assistant"}


@dataclass
class _Message:
    id: str
    parent: str | None
    role: Role
    text: str
    rank: float | None
    lang: str | None
    usable: bool
    line: int
    order: int


def _field(record: dict[str, Any], key: str, kinds: tuple[type, ...], where: str) -> Any:
    value = record.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(kind.__name__ for kind in kinds)
        msg = f"{where}field {key!r} must be {names}, got {type(value).__name__}"
        raise RecordError(msg)
    return value


def _absent(record: dict[str, Any], key: str) -> str:
    """Why a required field has no value: it is not there, null (or NaN), or empty."""
    if key not in record:
        return f"missing field {key!r}"
    return f"field {key!r} is empty" if record[key] == "" else f"field {key!r} is null"


def _message(record: Any, parent: str | None, line: int, order: int, where: str) -> _Message:
    if not isinstance(record, dict):
        msg = f"{where}expected a JSON object, got {type(record).__name__}"
        raise RecordError(msg)
    message_id = _field(record, "message_id", (str,), where)
    if not message_id:
        raise RecordError(f"{where}{_absent(record, 'message_id')}")
    role = _field(record, "role", (str,), where)
    if role not in _ROLES:
        raise RecordError(f"{where}field 'role' must be 'prompter' or 'assistant', got {role!r}")
    text = _field(record, "text", (str,), where)
    if text is None:
        raise RecordError(f"{where}{_absent(record, 'text')}")
    rank = _field(record, "rank", (int, float), where)
    deleted = _field(record, "deleted", (bool,), where)
    review = _field(record, "review_result", (bool,), where)
    return _Message(
        id=message_id,
        parent=parent if parent is not None else _field(record, "parent_id", (str,), where),
        role=_ROLES[role],
        text=text,
        rank=float(rank) if rank is not None else None,
        lang=_field(record, "lang", (str,), where),
        usable=deleted is not True and review is not False and bool(text.strip()),
        line=line,
        order=order,
    )


def _tree_messages(record: dict[str, Any], line: int, first_order: int) -> list[_Message]:
    found: list[_Message] = []

    def walk(node: Any, parent: str | None, where: str) -> None:
        message = _message(node, parent, line, first_order + len(found), where)
        found.append(message)
        replies = node.get("replies") or []
        if not isinstance(replies, list):
            raise RecordError(f"{where}field 'replies' must be a list")
        for index, reply in enumerate(replies):
            walk(reply, message.id, f"{where}replies[{index}]: ")

    walk(record["prompt"], None, "prompt: ")
    return found


def _parse_all(
    raw: Iterable[tuple[int, Any]], on_error: Callable[[DemoFileError], None], label: str
) -> list[_Message]:
    messages: list[_Message] = []
    for line, record in raw:
        if isinstance(record, DemoFileError):
            on_error(record)
            continue
        try:
            if isinstance(record, dict) and isinstance(record.get("prompt"), dict):
                messages += _tree_messages(record, line, len(messages))
            else:
                messages.append(_message(record, None, line, len(messages), ""))
        except RecordError as error:
            on_error(DemoFileError(label, line, error.reason))
    return messages


def _best(
    replies: list[_Message], role: Role, languages: Collection[str] | None
) -> _Message | None:
    fitting = [
        reply
        for reply in replies
        if reply.usable
        and reply.role == role
        and (languages is None or reply.lang is None or reply.lang in languages)
    ]
    if not fitting:
        return None
    return min(fitting, key=lambda r: (r.rank is None, r.rank or 0.0, r.order))


def oasst_conversations(
    raw: Iterable[tuple[int, Any]],
    *,
    label: str,
    on_error: Callable[[DemoFileError], None],
    dropped: Counter[str],
    languages: Collection[str] | None = None,
    require_response: bool = True,
) -> Iterator[tuple[int, Conversation]]:
    """One conversation per message tree: the root prompt and the best-ranked replies.

    Every record is read (and checked) before the first conversation is yielded.

    Args:
        raw: (line, record) pairs, as from `read_records`.
        label: The source's name for errors.
        on_error: Called with each bad record's error (raise it to stop the load).
        dropped: Counts trees left out by design: by language, without any assistant
            reply, or with a deleted or rejected root.
        languages: Keep trees whose root prompt has one of these language codes.
        require_response: Leave out trees without an assistant reply (else keep the prompt).

    Yields:
        (line of the root message, its conversation), in file order of the roots.
    """
    messages = _parse_all(raw, on_error, label)
    children: dict[str, list[_Message]] = defaultdict(list)
    for message in messages:
        if message.parent is not None:
            children[message.parent].append(message)
    for root in messages:
        if root.parent is not None or root.role != "user":
            continue
        if not root.usable:
            dropped[DROPPED_REMOVED] += 1
            continue
        if languages is not None and root.lang not in languages:
            dropped[DROPPED_LANGUAGE] += 1
            continue
        path = [root]
        while True:
            want: Role = "assistant" if path[-1].role == "user" else "user"
            reply = _best(children.get(path[-1].id, []), want, languages)
            if reply is None:
                break
            path.append(reply)
        if path[-1].role == "user":
            path.pop()
        if not path and require_response:
            dropped[DROPPED_NO_REPLY] += 1
            continue
        path = path or [root]
        yield (
            root.line,
            Conversation(
                messages=[(message.role, message.text) for message in path],
                metadata={"lang": root.lang} if root.lang else {},
                source_id=root.id,
            ),
        )
