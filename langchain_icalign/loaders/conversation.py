"""`Conversation`: a record's messages, and how one becomes an `AlignmentDemo`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.loaders.errors import RecordError

__all__ = ["Conversation", "Role", "conversation_to_demo"]

Role = Literal["user", "assistant"]


@dataclass
class Conversation:
    """The messages of one record, oldest first, in a format-neutral form.

    Attributes:
        messages: (role, text) pairs.
        system: System instructions found in the record, if any.
        metadata: Metadata for the demo.
        source_id: The record's own id, if it has one.
    """

    messages: list[tuple[Role, str]] = field(default_factory=list)
    system: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source_id: str | None = None

    def user_messages(self) -> list[str]:
        """The texts of the user's messages."""
        return [text for role, text in self.messages if role == "user"]


def _exchanges(messages: list[tuple[Role, str]]) -> list[tuple[str, str]]:
    """Pair alternating messages into (user, assistant) exchanges.

    A trailing user message without an answer is left out.

    Raises:
        RecordError: When the conversation starts with the assistant, two messages in a row
            come from one side, or a message is empty.
    """
    for index, (_role, text) in enumerate(messages):
        if not text.strip():
            msg = f"message {index} is empty"
            raise RecordError(msg)
    if messages and messages[0][0] != "user":
        msg = "the conversation starts with an assistant message"
        raise RecordError(msg)
    for index in range(1, len(messages)):
        if messages[index][0] == messages[index - 1][0]:
            msg = f"messages {index - 1} and {index} both come from the {messages[index][0]}"
            raise RecordError(msg)
    return [(messages[i][1], messages[i + 1][1]) for i in range(0, len(messages) - 1, 2)]


def conversation_to_demo(
    conversation: Conversation,
    *,
    max_turns: int | None = None,
    keep_record_id: bool = False,
) -> AlignmentDemo:
    """The demo of a conversation: its last exchange, with the earlier ones as `turns`.

    The system message (if any) is kept in `metadata["system"]`; the record's own id in
    `metadata["source_id"]`, or as the demo's id with `keep_record_id` (by default the id
    is derived from the content, so loading a file twice gives the same ids).

    Args:
        conversation: The parsed record.
        max_turns: Keep only the first `max_turns` exchanges.
        keep_record_id: Use the record's id as the demo's id.

    Raises:
        RecordError: When the conversation is malformed or has no answered user message.
    """
    exchanges = _exchanges(conversation.messages)
    if max_turns is not None:
        exchanges = exchanges[:max_turns]
    if not exchanges:
        msg = "no assistant reply to a user message"
        raise RecordError(msg)
    metadata = dict(conversation.metadata)
    if conversation.system is not None and conversation.system.strip():
        metadata["system"] = conversation.system
    record_id = conversation.source_id or ""
    if record_id and not keep_record_id:
        metadata.setdefault("source_id", record_id)
    *turns, (prompt, response) = exchanges
    try:
        return AlignmentDemo(
            prompt=prompt,
            response=response,
            turns=turns,
            metadata=metadata,
            id=record_id if keep_record_id else "",
        )
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        msg = f"field {where!r}: {first['msg']}" if where else str(first["msg"])
        raise RecordError(msg) from error
