"""Record formats of common alignment datasets, and their detection.

Each parser turns one JSON record into a `Conversation` or raises `RecordError` with a
reason a person can act on. OpenAssistant message trees span many records and live in
`langchain_icalign.loaders.oasst`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from langchain_icalign.loaders.conversation import Conversation, Role
from langchain_icalign.loaders.errors import RecordError

__all__ = [
    "RECORD_FORMATS",
    "FormatGuess",
    "Parser",
    "detect_format",
    "guess_record_format",
    "parse_alpaca",
    "parse_dolly",
    "parse_lima",
    "parse_messages",
    "parse_prompt_response",
    "parse_sharegpt",
    "rename_columns",
]

RECORD_FORMATS = (
    "prompt_response",
    "alpaca",
    "dolly",
    "sharegpt",
    "messages",
    "lima",
    "oasst",
)
"""Formats `load_demos` reads; `"auto"` picks one from the records' fields."""

FORMAT_ALIASES = {"openai": "messages", "jsonl": "prompt_response", "oasst1": "oasst"}

Parser = Callable[..., Conversation]
"""`parser(record, *, require_response=True) -> Conversation`."""

_USER_SPEAKERS = {"human", "user", "prompter"}
_ASSISTANT_SPEAKERS = {"gpt", "assistant", "chatgpt", "bard", "bing", "model", "bot", "claude"}
_SYSTEM_SPEAKERS = {"system", "developer"}


def rename_columns(record: Any, columns: Mapping[str, str] | None) -> Any:
    """The record with its fields renamed to the names a format expects.

    Args:
        record: A parsed JSON record.
        columns: `{name the format expects: name in the file}`, e.g.
            `{"prompt": "question", "response": "answer"}`.
    """
    if not columns or not isinstance(record, dict):
        return record
    renamed = dict(record)
    for wanted, actual in columns.items():
        if actual in record:
            renamed[wanted] = record[actual]
    return renamed


def _optional(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"field {key!r} must be a string, got {type(value).__name__}")
    return value


def _absent(record: Mapping[str, Any], key: str) -> RecordError:
    """The error for a required field that is not there, or is JSON null."""
    if key in record:
        return RecordError(f"field {key!r} is null")
    return RecordError(f"missing field {key!r}")


def _required(record: Mapping[str, Any], key: str) -> str:
    value = _optional(record, key)
    if value is None:
        raise _absent(record, key)
    if not value.strip():
        raise RecordError(f"field {key!r} is empty")
    return value


def _answer(record: Mapping[str, Any], key: str, required: bool) -> str | None:
    return _required(record, key) if required else _optional(record, key)


def _base(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise RecordError(f"expected a JSON object, got {type(record).__name__}")
    return record


def _metadata(record: Mapping[str, Any], *extra: str) -> dict[str, Any]:
    metadata = record.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise RecordError(f"field 'metadata' must be an object, got {type(metadata).__name__}")
    found = dict(metadata)
    for key in extra:
        if record.get(key) is not None:
            found.setdefault(key, record[key])
    return found


def _record_id(record: Mapping[str, Any]) -> str | None:
    value = record.get("id")
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value) or None


def _join(first: str, second: str | None) -> str:
    if second is None or not second.strip():
        return first
    return f"{first}\n\n{second}"


def _with_response(
    messages: list[tuple[Role, str]], response: str | None
) -> list[tuple[Role, str]]:
    return [*messages, ("assistant", response)] if response is not None else messages


def parse_prompt_response(record: Any, *, require_response: bool = True) -> Conversation:
    """`{"prompt", "response"}`, with optional `turns` ([user, assistant] pairs), `metadata`, `id`.

    Raises:
        RecordError: When a field is missing, empty or of the wrong type.
    """
    record = _base(record)
    prompt = _required(record, "prompt")
    response = _answer(record, "response", require_response)
    turns = record.get("turns") or []
    if not isinstance(turns, list):
        raise RecordError(f"field 'turns' must be a list, got {type(turns).__name__}")
    messages: list[tuple[Role, str]] = []
    for index, turn in enumerate(turns):
        if not (
            isinstance(turn, (list, tuple))
            and len(turn) == 2
            and all(isinstance(part, str) for part in turn)
        ):
            raise RecordError(f"field 'turns' item {index} must be a [user, assistant] pair")
        messages += [("user", turn[0]), ("assistant", turn[1])]
    return Conversation(
        messages=_with_response([*messages, ("user", prompt)], response),
        metadata=_metadata(record),
        source_id=_record_id(record),
    )


def _instruction_record(
    record: Any, context: str, answer: str, require_response: bool, *metadata: str
) -> Conversation:
    """An instruction, an optional context that follows it, and an answer."""
    record = _base(record)
    instruction = _required(record, "instruction")
    extra = _optional(record, context)
    response = _answer(record, answer, require_response)
    return Conversation(
        messages=_with_response([("user", _join(instruction, extra))], response),
        metadata=_metadata(record, *metadata),
        source_id=_record_id(record),
    )


def parse_alpaca(record: Any, *, require_response: bool = True) -> Conversation:
    """Alpaca: `{"instruction", "input", "output"}`; a non-empty input follows the instruction.

    Raises:
        RecordError: When a field is missing, empty or of the wrong type.
    """
    return _instruction_record(record, "input", "output", require_response)


def parse_dolly(record: Any, *, require_response: bool = True) -> Conversation:
    """Dolly: `{"instruction", "context", "response", "category"}`; category goes to metadata.

    Raises:
        RecordError: When a field is missing, empty or of the wrong type.
    """
    return _instruction_record(record, "context", "response", require_response, "category")


def _content_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise RecordError(f"{where}: content part of type {kind!r} is not text")
        return "".join(texts)
    raise RecordError(f"{where}: content must be a string, got {type(content).__name__}")


def _chat_messages(
    items: Any, field: str, speaker_key: str, text_key: str
) -> tuple[list[tuple[Role, str]], str | None]:
    if items is None:
        raise RecordError(f"field {field!r} is null")
    if not isinstance(items, list):
        raise RecordError(f"field {field!r} must be a list, got {type(items).__name__}")
    if not items:
        raise RecordError(f"field {field!r} is empty")
    messages: list[tuple[Role, str]] = []
    system: list[str] = []
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            raise RecordError(f"{where} must be an object, got {type(item).__name__}")
        speaker = item.get(speaker_key, item.get("role", item.get("from")))
        if not isinstance(speaker, str):
            raise RecordError(f"{where}: missing or non-string {speaker_key!r}")
        content = item.get(text_key, item.get("content", item.get("value")))
        if content is None:
            raise RecordError(f"{where}: no text (a tool call or an empty message)")
        text = _content_text(content, where)
        who = speaker.lower()
        if who in _SYSTEM_SPEAKERS:
            system.append(text)
        elif who in _USER_SPEAKERS:
            messages.append(("user", text))
        elif who in _ASSISTANT_SPEAKERS:
            messages.append(("assistant", text))
        else:
            raise RecordError(f"{where}: unsupported speaker {speaker!r}")
    return messages, ("\n\n".join(system) if system else None)


def _system(record: Mapping[str, Any], found: str | None) -> str | None:
    top = record.get("system")
    if isinstance(top, str) and top.strip():
        return top if found is None else f"{top}\n\n{found}"
    return found


def parse_sharegpt(record: Any, *, require_response: bool = True) -> Conversation:
    """ShareGPT: `{"conversations": [{"from": "human"|"gpt"|"system", "value"}, ...]}`.

    Raises:
        RecordError: For a malformed conversation or an unknown speaker.
    """
    record = _base(record)
    if "conversations" not in record:
        raise RecordError("missing field 'conversations'")
    messages, system = _chat_messages(record["conversations"], "conversations", "from", "value")
    return Conversation(
        messages=messages,
        system=_system(record, system),
        metadata=_metadata(record),
        source_id=_record_id(record),
    )


def parse_messages(record: Any, *, require_response: bool = True) -> Conversation:
    """OpenAI chat: `{"messages": [{"role": "system"|"user"|"assistant", "content"}, ...]}`.

    Raises:
        RecordError: For a malformed conversation, a tool message or non-text content.
    """
    record = _base(record)
    if "messages" not in record:
        raise RecordError("missing field 'messages'")
    messages, system = _chat_messages(record["messages"], "messages", "role", "content")
    return Conversation(
        messages=messages,
        system=_system(record, system),
        metadata=_metadata(record),
        source_id=_record_id(record),
    )


def parse_lima(record: Any, *, require_response: bool = True) -> Conversation:
    """LIMA: `{"conversations": [user, assistant, user, ...], "source"}` (plain strings).

    Raises:
        RecordError: When `conversations` is not a list of strings.
    """
    record = _base(record)
    items = record.get("conversations")
    if items is None:
        raise _absent(record, "conversations")
    if not isinstance(items, list) or not items:
        raise RecordError("field 'conversations' must be a non-empty list of strings")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise RecordError(f"conversations[{index}] must be a string, got {type(item).__name__}")
    roles: tuple[Role, Role] = ("user", "assistant")
    return Conversation(
        messages=[(roles[index % 2], text) for index, text in enumerate(items)],
        metadata=_metadata(record, "source"),
        source_id=_record_id(record),
    )


PARSERS: dict[str, Parser] = {
    "prompt_response": parse_prompt_response,
    "alpaca": parse_alpaca,
    "dolly": parse_dolly,
    "sharegpt": parse_sharegpt,
    "messages": parse_messages,
    "lima": parse_lima,
}


FormatGuess = tuple[str, str]
"""(format, the fields that gave it away)."""


def guess_record_format(record: Any) -> FormatGuess | None:
    """The format one record looks like, and why; None when it looks like none."""
    if not isinstance(record, dict):
        return None
    keys = set(record)
    conversations = record.get("conversations")
    if isinstance(record.get("messages"), list):
        return "messages", "a 'messages' list"
    if isinstance(conversations, list) and conversations:
        if all(isinstance(item, str) for item in conversations):
            return "lima", "a 'conversations' list of strings"
        if isinstance(conversations[0], dict):
            return "sharegpt", "a 'conversations' list of objects"
    if {"message_id", "role", "text"} <= keys or (
        isinstance(record.get("prompt"), dict) and "replies" in record["prompt"]
    ):
        return "oasst", "OpenAssistant message fields (message_id, parent_id, role, text)"
    if {"instruction", "output"} <= keys:
        return "alpaca", "fields 'instruction', 'input', 'output'"
    if {"instruction", "response"} <= keys:
        return "dolly", "fields 'instruction', 'context', 'response'"
    if "prompt" in keys and ("response" in keys or "turns" in keys):
        return "prompt_response", "fields 'prompt' and 'response'"
    return None


def detect_format(records: Iterable[Any]) -> FormatGuess | None:
    """The format most of `records` look like (see `guess_record_format`), or None."""
    votes: Counter[FormatGuess] = Counter()
    for record in records:
        guess = guess_record_format(record)
        if guess is not None:
            votes[guess] += 1
    if not votes:
        return None
    (name, why), count = votes.most_common(1)[0]
    total = sum(votes.values())
    share = f"{count} of {total} sampled records" if total > 1 else "the first record"
    return name, f"{why} in {share}"
