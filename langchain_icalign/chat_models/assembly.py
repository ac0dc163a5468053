"""Assembling a `ChatICAlign` from parts: the default stack, a llama.cpp GGUF, a server.

The parts come from `defaults` (settings, store, base model) and `backends`; this module
puts them together. It takes the chat model's class as an argument (`ChatICAlign.from_defaults`
passes `cls`), so neither the chat model nor the defaults import each other.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_icalign.backends.llamacpp import LlamaCppBackend
from langchain_icalign.backends.server import ServerBackend
from langchain_icalign.defaults.builtin_demos import urial_set
from langchain_icalign.defaults.paths import default_gguf_path
from langchain_icalign.defaults.stack import (
    DEFAULT_SETTINGS,
    DemoMode,
    default_store,
    load_base_model,
    pipeline_llm,
)
from langchain_icalign.selector import AlignmentExampleSelector

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from pydantic import BaseModel

    from langchain_icalign.chat_models.base import ChatICAlign
    from langchain_icalign.store import DemoStore

__all__ = ["build_chat_model", "llamacpp_chat", "refuse_unknown", "server_chat"]

ChatT = TypeVar("ChatT", bound="ChatICAlign")


def build_chat_model(
    chat_class: type[ChatT],
    model: str | Path | None = None,
    *,
    store: DemoStore | None = None,
    embeddings: Embeddings | None = None,
    demo_mode: DemoMode | None = None,
    device_map: str | dict[str, Any] | None = None,
    dtype: Any = None,
    selector_kwargs: dict[str, Any] | None = None,
    show_progress: bool = True,
    **chat_kwargs: Any,
) -> ChatT:
    """A ready `ChatICAlign`: base model, tokenizer-measured selector, demos.

    Args:
        chat_class: `ChatICAlign` (or a subclass) to build.
        model: A causal LM id or folder; None for the default Gemma-3-270m.
        store: Demos to retrieve from; the built-in pool by default.
        embeddings: Embeddings for the default store.
        demo_mode: "retrieved" (default), "constant" (the constant URIAL-style set, no
            retrieval), "hybrid" (constant set first, retrieved demos after) or "none"
            (zero-shot). In URIAL's format the system text defaults to the set's header
            whatever the mode.
        device_map: Device placement for the model (`"auto"`, `"cuda"`, ...).
        dtype: Weight dtype; float32 on CPU and bf16/fp16 on GPU by default.
        selector_kwargs: Extra `AlignmentExampleSelector` arguments (`max_tokens`, ...).
        show_progress: Show progress while converting, loading or indexing.
        **chat_kwargs: `ChatICAlign` arguments (`max_new_tokens`, `prompt_format`, ...).

    Raises:
        TypeError: For an argument neither this function nor `ChatICAlign` takes, or a
            `selector_kwargs` key `AlignmentExampleSelector` does not take (before
            anything loads).
    """
    refuse_unknown(
        chat_class.__name__,
        chat_class,
        chat_kwargs,
        exclude={"llm", "selector", "generation_backend"},
    )
    refuse_unknown(
        "AlignmentExampleSelector (selector_kwargs)",
        AlignmentExampleSelector,
        selector_kwargs or {},
        exclude={"store", "token_counter"},
    )
    prompt_format = chat_kwargs.setdefault("prompt_format", DEFAULT_SETTINGS.prompt_format)
    chat_kwargs.setdefault("repetition_penalty", DEFAULT_SETTINGS.repetition_penalty)
    format_name = prompt_format if isinstance(prompt_format, str) else prompt_format.name
    mode: DemoMode = demo_mode or "retrieved"
    if mode not in ("retrieved", "constant", "hybrid", "none"):
        msg = f"demo_mode must be retrieved, constant, hybrid or none, got {mode!r}"
        raise ValueError(msg)
    lm, tokenizer, model_id = load_base_model(
        model, device_map=device_map, dtype=dtype, show_progress=show_progress
    )
    llm = pipeline_llm(lm, tokenizer, model_id)
    selector = None
    if mode in ("retrieved", "hybrid"):
        store = store or default_store(embeddings, show_progress=show_progress)
        selector = AlignmentExampleSelector(
            store=store,
            token_counter=tokenizer,
            prompt_format=prompt_format,
            **{**DEFAULT_SETTINGS.selector_kwargs(), **(selector_kwargs or {})},
        )
    if format_name == "urial" or mode in ("constant", "hybrid"):
        system, constant = urial_set()
        chat_kwargs.setdefault("system_prompt", system)
        if mode in ("constant", "hybrid"):
            chat_kwargs.setdefault("constant_demos", list(constant))
    return chat_class(llm=llm, selector=selector, **chat_kwargs)


def refuse_unknown(
    owner: str, model: type[BaseModel], given: dict[str, Any], *, exclude: set[str]
) -> None:
    """Raise `TypeError` for keys of `given` that are not arguments of `model`.

    Raises:
        TypeError: Naming the unknown keys and, for each, the closest known one.
    """
    known = {
        key
        for name, field in model.model_fields.items()
        for key in (name, field.alias)
        if key is not None and name not in exclude
    }
    unknown = sorted(set(given) - known)
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    msg = f"unexpected keyword argument(s) for {owner}: {', '.join(hints)}"
    raise TypeError(msg)


def llamacpp_chat(
    chat_class: type[ChatT],
    model_path: str | Path | None = None,
    *,
    store: DemoStore | None = None,
    n_ctx: int = 0,
    n_threads: int | None = None,
    selector_kwargs: dict[str, Any] | None = None,
    use_demos: bool = True,
    **chat_kwargs: Any,
) -> ChatT:
    """A `ChatICAlign` on llama.cpp: a GGUF model with the built-in demos by default.

    Args:
        chat_class: `ChatICAlign` (or a subclass) to build.
        model_path: A `.gguf` file; the default Gemma-3-270m Q4_K_M when None.
        store: Demos to retrieve from; the built-in pool by default.
        n_ctx: Context size (0: the model's).
        n_threads: CPU threads.
        selector_kwargs: Extra `AlignmentExampleSelector` arguments.
        use_demos: False for no retrieval (zero-shot, or `constant_demos` only).
        **chat_kwargs: `ChatICAlign` arguments (`max_new_tokens`, `temperature`, ...).
    """
    path = Path(model_path) if model_path is not None else default_gguf_path()
    backend = LlamaCppBackend.from_path(path, n_ctx=n_ctx, n_threads=n_threads)
    selector = None
    if use_demos:
        selector = AlignmentExampleSelector(
            store=store if store is not None else default_store(show_progress=False),
            token_counter=backend.count_text_tokens,
            prompt_format=chat_kwargs.get("prompt_format", "han"),
            **(selector_kwargs or {}),
        )
    chat_kwargs.setdefault("model_name", backend.model_name)
    return chat_class(backend=backend, selector=selector, **chat_kwargs)


def server_chat(
    chat_class: type[ChatT],
    base_url: str,
    *,
    model: str | None = None,
    tokenizer: Any = None,
    store: DemoStore | None = None,
    api_key: str | None = None,
    request_timeout: float = 60.0,
    grammar_field: str | None = "grammar",
    selector_kwargs: dict[str, Any] | None = None,
    use_demos: bool = True,
    **chat_kwargs: Any,
) -> ChatT:
    """A `ChatICAlign` whose base model runs on a server: the built-in demos by default.

    Args:
        chat_class: `ChatICAlign` (or a subclass) to build.
        base_url: The server's OpenAI API URL (`http://HOST:PORT/v1`).
        model: Model name to request (the server's first when None).
        tokenizer: A local tokenizer folder, tokenizer or counting function; None counts
            with the server's tokenize endpoint.
        store: Demos to retrieve from (a `DemoStore`, for example on a Qdrant server);
            the built-in pool by default.
        api_key: Bearer token for the server.
        request_timeout: Seconds to connect and to wait for each piece of an answer.
        grammar_field: Request field for a GBNF grammar (see `ServerBackend`).
        selector_kwargs: Extra `AlignmentExampleSelector` arguments.
        use_demos: False for no retrieval (zero-shot, or `constant_demos` only).
        **chat_kwargs: `ChatICAlign` arguments (`max_new_tokens`, `temperature`,
            `max_retries`, ...).
    """
    backend = ServerBackend(
        base_url,
        model=model,
        tokenizer=tokenizer,
        api_key=api_key,
        request_timeout=request_timeout,
        max_retries=int(chat_kwargs.get("max_retries", 2)),
        context_window=chat_kwargs.get("context_window"),
        grammar_field=grammar_field,
    )
    selector = None
    if use_demos:
        selector = AlignmentExampleSelector(
            store=store if store is not None else default_store(show_progress=False),
            token_counter=backend.count_text_tokens,
            prompt_format=chat_kwargs.get("prompt_format", DEFAULT_SETTINGS.prompt_format),
            **{**DEFAULT_SETTINGS.selector_kwargs(), **(selector_kwargs or {})},
        )
    chat_kwargs.setdefault("model_name", backend.model_name)
    chat_kwargs.setdefault("max_retries", backend.max_retries)
    return chat_class(backend=backend, selector=selector, **chat_kwargs)
