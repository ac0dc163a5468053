"""LangChain messages to a `Conversation` a prompt format can render."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_icalign.formats import Conversation
from langchain_icalign.tools.syntax import render_tool_call, render_tool_result

__all__ = ["message_text", "messages_to_conversation"]

_CALL_BLOCKS = ("tool_use", "tool_call", "function_call")


def message_text(message: BaseMessage) -> str:
    """The text of a message; content blocks other than text are refused.

    Raises:
        ValueError: For image, audio or other non-text content.
    """
    if isinstance(message.content, str):
        return message.content
    parts: list[str] = []
    for block in message.content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif isinstance(block, dict) and block.get("type") in _CALL_BLOCKS:
            continue  # rendered from the message's tool_calls
        else:
            kind = block.get("type") if isinstance(block, dict) else type(block).__name__
            msg = f"ChatICAlign takes text only; a {message.type} message has a {kind!r} block"
            raise ValueError(msg)
    return "".join(parts)


def messages_to_conversation(
    messages: Sequence[BaseMessage],
    default_system: str | None = None,
    *,
    neutralize: Callable[[str], str] | None = None,
) -> Conversation:
    """Reduce a chat to system text, earlier exchanges and the last user-side message.

    System messages (anywhere) are joined into the system text; consecutive messages of
    one side are joined with blank lines. An AI message's tool calls are rendered in the
    tool-call syntax after its text; a tool message is a user-side turn carrying the result.

    Args:
        messages: The chat, ending with a human message.
        default_system: System text used when the chat has none.
        neutralize: Applied to the text of every human, tool and AI message (not to the
            calls rendered from an AI message's `tool_calls`, nor to system text), so that
            given text cannot pose as a call (`tool_calling.neutralize_tool_calls`).

    Raises:
        ValueError: When the chat is empty, does not end with a human or tool message,
            ends with an empty message, or holds a message type this model cannot render.
    """
    if not messages:
        msg = "ChatICAlign needs at least one message"
        raise ValueError(msg)
    system: list[str] = []
    sides: list[tuple[str, list[str]]] = []  # ("user" | "assistant", texts)
    call_names: dict[str, str] = {}
    given = neutralize or (lambda text: text)
    for message in messages:
        if isinstance(message, SystemMessage):
            system.append(message_text(message))
            continue
        if isinstance(message, HumanMessage):
            side, text = "user", given(message_text(message))
        elif isinstance(message, ToolMessage):
            name = message.name or call_names.get(message.tool_call_id)
            side, text = "user", render_tool_result(name, given(message_text(message)))
        elif isinstance(message, AIMessage):
            calls = [render_tool_call(c["name"], c["args"]) for c in message.tool_calls]
            call_names.update({c["id"]: c["name"] for c in message.tool_calls if c["id"]})
            side = "assistant"
            own = given(message_text(message)).strip()
            text = "\n".join(part for part in [own, *calls] if part)
        else:
            msg = (
                f"ChatICAlign cannot render a {type(message).__name__} ({message.type!r}); "
                "it takes system, human, AI and tool messages"
            )
            raise ValueError(msg)
        if sides and sides[-1][0] == side:
            sides[-1][1].append(text)
        else:
            sides.append((side, [text]))
    if not sides or sides[-1][0] != "user":
        msg = "the last message (after any system messages) must be a human or tool message"
        raise ValueError(msg)
    joined = [(side, "\n\n".join(texts)) for side, texts in sides]
    query = joined.pop()[1]
    if not query.strip():
        msg = "the last human message is empty; there is nothing to answer"
        raise ValueError(msg)
    turns: list[tuple[str, str]] = []
    pending_user: str | None = None
    for side, text in joined:
        if side == "user":
            pending_user = text if pending_user is None else f"{pending_user}\n\n{text}"
        else:
            turns.append((pending_user or "", text))
            pending_user = None
    if pending_user is not None:  # cannot happen: sides alternate
        query = f"{pending_user}\n\n{query}"
    system_text = "\n\n".join(s for s in system if s.strip()) or default_system
    return Conversation(query=query, turns=tuple(turns), system=system_text)
