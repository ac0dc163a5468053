"""A `batch` of chats generated together: queries embedded at once, one window of prompts.

`open_window` decides whether a batch can share decoding (more than one input, a backend
whose `capabilities.batching` says so) and embeds all retrieval queries in one call.
`batch_together` then runs each input's `invoke` in a thread pool, as LangChain's `batch`
does, inside its own `backends.batching.BatchingBackend`: the chat's `backend` is then that
wrapper, whose `generate` submits the prompt to the shared `BatchWindow` (one
`generate_batch` for all), and whose window carries the embedded queries that
`PromptBuilder.for_chat` hands to selection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.prompt_values import ChatPromptValue, PromptValue, StringPromptValue
from langchain_core.runnables.config import (
    RunnableConfig,
    get_config_list,
    get_executor_for_config,
)

from langchain_icalign.backends.batching import BatchingBackend, BatchWindow, embed_queries
from langchain_icalign.messages import messages_to_conversation
from langchain_icalign.prompting import retrieval_query

if TYPE_CHECKING:
    from langchain_icalign.chat_models.base import ChatICAlign

__all__ = ["batch_together", "open_window"]


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
    if len(inputs) < 2 or chat.streaming or not has_model:
        return None
    backend = chat.backend
    if isinstance(backend, BatchingBackend):
        return None  # a batch within an input of a batch: runs as LangChain's
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


def batch_together(
    chat: ChatICAlign,
    inputs: list[LanguageModelInput],
    config: RunnableConfig | list[RunnableConfig] | None,
    kwargs: dict[str, Any],
    *,
    return_exceptions: bool = False,
) -> list[Any] | None:
    """The batch's answers, decoded together; None where it cannot be (`open_window`).

    Each input runs `chat.invoke` in a thread, as `Runnable.batch` runs it, within its own
    `BatchingBackend` around the chat's backend.
    """
    window = open_window(chat, inputs, config)
    if window is None:
        return None
    backend = chat.backend
    configs = window.configs(config, len(inputs))

    def answer(item: LanguageModelInput, item_config: RunnableConfig) -> Any:
        with BatchingBackend(backend, window).entered():
            try:
                return chat.invoke(item, item_config, **kwargs)
            except Exception as error:
                if return_exceptions:
                    return error
                raise

    with get_executor_for_config(configs[0]) as executor:
        return list(executor.map(answer, inputs, configs))
