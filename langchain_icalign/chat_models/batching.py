"""A `batch` of chats generated together: queries embedded at once, one window of prompts.

`open_window` decides whether a batch can share decoding (more than one input, a backend
whose `capabilities.batching` says so) and embeds all retrieval queries in one call; each
input then prepares its prompt as `invoke` would and submits it to the window
(`backends.batching.BatchWindow`), which runs the prompts as one `generate_batch`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.prompt_values import ChatPromptValue, PromptValue, StringPromptValue
from langchain_core.runnables.config import RunnableConfig, get_config_list

from langchain_icalign.backends.batching import ACTIVE_WINDOW, BatchWindow, embed_queries
from langchain_icalign.messages import messages_to_conversation
from langchain_icalign.prompting import retrieval_query

if TYPE_CHECKING:
    from langchain_icalign.chat_models.base import ChatICAlign

__all__ = ["open_window"]


def _messages(item: LanguageModelInput) -> list[BaseMessage]:
    """An input's messages, read as `BaseChatModel` reads its inputs."""
    if isinstance(item, PromptValue):
        return item.to_messages()
    if isinstance(item, str):
        return StringPromptValue(text=item).to_messages()
    return ChatPromptValue(messages=convert_to_messages(item)).to_messages()


def open_window(
    chat: ChatICAlign,
    inputs: list[LanguageModelInput],
    config: RunnableConfig | list[RunnableConfig] | None,
) -> BatchWindow | None:
    """A window that runs the batch's generations together, or None where it cannot."""
    has_model = chat.llm is not None or chat.generation_backend is not None
    if len(inputs) < 2 or chat.streaming or not has_model or ACTIVE_WINDOW.get():
        return None
    backend = chat.backend
    if not backend.capabilities.batching:
        return None  # this backend generates one prompt at a time anyway
    capacity = get_config_list(config, len(inputs))[0].get("max_concurrency") or len(inputs)
    vectors: dict[str, list[float]] = {}
    if chat.selector is not None:
        try:
            queries = []
            for item in inputs:
                messages = _messages(item)
                conversation = messages_to_conversation(messages, chat.system_prompt)
                queries.append(retrieval_query(messages, conversation))
            embedded = embed_queries(chat.selector.store.embeddings, queries)
            vectors = dict(zip(queries, embedded, strict=True))
        except Exception:  # each input then embeds (and reports errors) on its own
            vectors = {}
    return BatchWindow(backend, len(inputs), capacity, query_vectors=vectors)
