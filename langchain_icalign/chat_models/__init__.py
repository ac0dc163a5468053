"""The LangChain chat model (`ChatICAlign`) and the ready-made ways to build one.

`base` holds `ChatICAlign` (LangChain's surface: invoke, stream, async, batch, tools,
structured output, metadata); `assembly` puts it together from the parts in `defaults` and
`backends` (the default stack, a llama.cpp GGUF, a model server).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_icalign.chat_models import assembly
from langchain_icalign.chat_models.base import CALL_OPTIONS, ChatICAlign
from langchain_icalign.prompting import ContextWindowExceededError, PreparedPrompt

__all__ = [
    "CALL_OPTIONS",
    "ChatICAlign",
    "ContextWindowExceededError",
    "PreparedPrompt",
    "build_chat_model",
    "llamacpp_chat",
    "server_chat",
]


def build_chat_model(model: str | Path | None = None, **kwargs: Any) -> ChatICAlign:
    """A ready `ChatICAlign` on a transformers model (the default Gemma-3-270m when None).

    Args:
        model: A causal LM id or folder; None for the default model.
        **kwargs: As for `ChatICAlign.from_model_id` (`store`, `demo_mode`, ...).
    """
    return assembly.build_chat_model(ChatICAlign, model, **kwargs)


def llamacpp_chat(model_path: str | Path | None = None, **kwargs: Any) -> ChatICAlign:
    """A `ChatICAlign` on llama.cpp (`llamacpp` extra): a GGUF, the built-in demos by default.

    Args:
        model_path: A `.gguf` file; the default Gemma-3-270m Q4_K_M when None.
        **kwargs: `store`, `n_ctx`, `n_threads`, `selector_kwargs`, `use_demos` and
            `ChatICAlign` arguments (see `assembly.llamacpp_chat`).
    """
    return assembly.llamacpp_chat(ChatICAlign, model_path, **kwargs)


def server_chat(base_url: str, **kwargs: Any) -> ChatICAlign:
    """A `ChatICAlign` on an OpenAI-compatible completions server (`ChatICAlign.from_server`).

    Args:
        base_url: The server's OpenAI API URL (`http://HOST:PORT/v1`).
        **kwargs: As for `assembly.server_chat` (`model`, `tokenizer`, `store`, ...).
    """
    return assembly.server_chat(ChatICAlign, base_url, **kwargs)
