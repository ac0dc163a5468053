"""Prompt preparation: conversation → demo budget → selection → fitting → `PreparedPrompt`."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_core.messages import BaseMessage, HumanMessage

from langchain_icalign.backends.base import GenerationBackend
from langchain_icalign.backends.batching import BatchingBackend
from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.formats import Conversation, PromptFormat
from langchain_icalign.messages import message_text, messages_to_conversation
from langchain_icalign.selector import AlignmentExampleSelector, SelectedDemo
from langchain_icalign.tools.request_mode import RequestMode

if TYPE_CHECKING:
    from langchain_icalign.chat_models.base import ChatICAlign

__all__ = [
    "ContextWindowExceededError",
    "PreparedPrompt",
    "PromptBuilder",
    "retrieval_query",
]


class ContextWindowExceededError(ValueError):
    """The conversation itself (without demos) leaves no room for the answer."""


@dataclass(frozen=True)
class PreparedPrompt:
    """A rendered prompt and what went into it.

    Attributes:
        text: The prompt given to the base model.
        conversation: The chat it renders.
        demos: Retrieved demos in prompt order (most relevant last).
        constant_demos: Demos placed first on every request.
        tokens: Tokens in `text`.
        messages: The chat `conversation` was made from (where a tool call may come from).
    """

    text: str
    conversation: Conversation
    demos: tuple[SelectedDemo, ...]
    constant_demos: tuple[AlignmentDemo, ...]
    tokens: int
    messages: tuple[BaseMessage, ...] = ()


def retrieval_query(messages: Sequence[BaseMessage], conversation: Conversation) -> str:
    """What to retrieve demos for: the last human message (a tool result is no query)."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message_text(message)
    return conversation.query


@dataclass(frozen=True)
class PromptBuilder:
    """Renders one request's prompt: the path from messages to a `PreparedPrompt`.

    1. The messages become a `Conversation` (given text made inert), shaped by the call's
       `RequestMode` (tool descriptions or the JSON instruction, a forced answer prefix).
    2. The demo budget: the selector's `max_tokens`, narrowed so that the conversation, the
       constant demos and `max_new_tokens` fit the backend's context window.
    3. Selection: the selector retrieves and packs demos for the last human message (its
       vector taken from `query_vectors` when there, embedded with the rest of a batch).
    4. Fitting: the prompt is rendered and counted; while it overshoots the window, the
       least relevant demo is dropped.

    Attributes:
        format: The prompt format.
        backend: Counts tokens, knows the window and the special tokens.
        selector: Retrieves and packs demos (None: zero-shot).
        system_prompt: System text used when the chat has none.
        constant_demos: Demos placed first on every request.
        tool_demos: Demos of the tool-call syntax (placed last when tools are bound).
        query_vectors: Query vectors embedded ahead, by query text (a `batch`'s).
    """

    format: PromptFormat
    backend: GenerationBackend
    selector: AlignmentExampleSelector | None = None
    system_prompt: str | None = None
    constant_demos: tuple[AlignmentDemo, ...] = ()
    tool_demos: tuple[AlignmentDemo, ...] = ()
    query_vectors: Mapping[str, list[float]] = dataclasses.field(default_factory=dict)

    @classmethod
    def for_chat(cls, chat: ChatICAlign) -> PromptBuilder:
        """The builder for a chat model's current settings (in a `batch`, its query vectors)."""
        backend = chat.backend
        batched = backend.window if isinstance(backend, BatchingBackend) else None
        return cls(
            chat.format,
            backend,
            chat.selector,
            chat.system_prompt,
            tuple(chat.constant_demos),
            tuple(chat.tool_demos),
            batched.query_vectors if batched is not None else {},
        )

    def prepare(
        self,
        messages: Sequence[BaseMessage],
        max_new_tokens: int,
        mode: RequestMode,
    ) -> PreparedPrompt:
        """The prompt for `messages`, demos selected and fitted to the window.

        Args:
            messages: The chat.
            max_new_tokens: Room to leave for the answer.
            mode: The call's tools or JSON mode.

        Raises:
            ContextWindowExceededError: When the conversation alone leaves no room.
        """
        conversation = mode.shape(
            messages_to_conversation(messages, self.system_prompt, neutralize=mode.neutralize)
        )
        backend = self.backend
        # Tool-call demos go last, nearest the query: placed first, far from it, a small
        # model follows the retrieved (prose) demos and rarely calls a tool.
        first, last = self.constant_demos, mode.demos(self.tool_demos, messages)
        base_text = self.format.render(conversation, (*first, *last), backend.special_tokens)
        base_tokens = backend.count_tokens(base_text)
        window = backend.context_window
        room = None if window is None else window - base_tokens - max_new_tokens
        if room is not None and room < 0:
            msg = (
                f"the conversation takes {base_tokens} tokens and the answer up to "
                f"{max_new_tokens}, more than the model's context window of {window}; "
                "shorten the messages or lower max_new_tokens"
            )
            raise ContextWindowExceededError(msg)
        query = retrieval_query(messages, conversation)
        selected = self.select(query, room, self.query_vectors.get(query))
        prepared = self.fit(conversation, first, selected, last, max_new_tokens)
        return dataclasses.replace(prepared, messages=tuple(messages))

    def select(
        self, query: str, room: int | None, vector: list[float] | None = None
    ) -> list[SelectedDemo]:
        """Demos for `query` within the budget (`room` left in the window, if known)."""
        if self.selector is None:
            return []
        budget = self.selector.max_tokens if room is None else min(room, self.selector.max_tokens)
        if budget <= 0:
            selected = []
        elif vector is not None:  # embedded with the rest of its batch
            selected = self.selector.pack(self.selector.retrieve_by_vector(vector), budget)
        else:
            selected = self.selector.select_demos(query, max_tokens=budget)
        if not selected and self.selector.store.count() == 0:
            warnings.warn(
                "the demo store is empty: answering zero-shot; add demos with DemoStore.add_demos",
                stacklevel=4,
            )
        return selected

    def fit(
        self,
        conversation: Conversation,
        first: tuple[AlignmentDemo, ...],
        selected: list[SelectedDemo],
        last: tuple[AlignmentDemo, ...],
        max_new_tokens: int,
    ) -> PreparedPrompt:
        """The rendered prompt, dropping the least relevant demos until it fits the window."""
        backend = self.backend
        window = backend.context_window
        while True:
            demos = [*first, *(s.demo for s in selected), *last]
            text = self.format.render(conversation, demos, backend.special_tokens)
            tokens = backend.count_tokens(text)
            # Per-demo counts are summed, but tokenising the joined text can differ a little.
            if window is None or tokens + max_new_tokens <= window or not selected:
                constant = (*first, *last)
                return PreparedPrompt(text, conversation, tuple(selected), constant, tokens)
            selected = selected[1:]  # drop the least relevant (first) demo
