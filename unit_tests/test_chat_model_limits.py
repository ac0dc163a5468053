"""`ChatICAlign` at its limits: the context window, max_tokens, early exits, failures and load."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from typing import Any, cast

import pytest

from langchain_icalign import (
    AlignmentDemo,
    AlignmentExampleSelector,
    ChatICAlign,
    ContextWindowExceededError,
    DemoStore,
    GenerationError,
)
from langchain_icalign.backends.transformers import TransformersBackend

from .conftest import (
    BagOfWordsEmbeddings,
    RecordingLLM,
    ScriptedLogits,
    build_tiny_lm,
    count_words,
    finishes,
    pipeline_chat,
)

APOS = "\u2019"


def _processors(chat: ChatICAlign) -> list[Any]:
    """The logits processors of a chat model's transformers backend."""
    backend = chat.backend
    assert isinstance(backend, TransformersBackend)
    return backend.logits_processors


def _usage(message: Any, key: str) -> int:
    assert message.usage_metadata is not None
    return int(message.usage_metadata[key])


@pytest.fixture
def small_window_lm(byte_tokenizer: Any) -> Any:
    """A one-layer GPT-2 with only 64 positions: a longer input is an IndexError inside it."""
    return build_tiny_lm(byte_tokenizer, n_positions=64, n_embd=16)


def test_query_longer_than_the_window_is_a_clear_error_never_an_index_error(
    small_window_lm: Any, byte_tokenizer: Any
) -> None:
    chat = pipeline_chat(small_window_lm, byte_tokenizer, max_new_tokens=8, temperature=0)
    assert chat.backend.context_window == 64
    long_query = "word " * 40  # 200 tokens, the window is 64
    with pytest.raises(ContextWindowExceededError, match="context window of 64"):
        chat.invoke(long_query)
    with pytest.raises(ContextWindowExceededError):
        list(chat.stream(long_query))
    with pytest.raises(ContextWindowExceededError):
        chat.invoke("Hi?", max_tokens=60)  # the answer's room alone overflows the window
    # A query that fits is answered; a demo that does not fit is left out, even when the
    # selector's counter (words) thinks it fits: the model counts bytes.
    store = DemoStore(BagOfWordsEmbeddings(), location=":memory:")
    store.add_demos([AlignmentDemo(prompt="Hi", response="Hell" + "o" * 40)])
    selector = AlignmentExampleSelector(store=store, token_counter=count_words)
    chat = pipeline_chat(
        small_window_lm, byte_tokenizer, max_new_tokens=8, temperature=0, selector=selector
    )
    assert len(selector.select_demos("Hi?", max_tokens=13)) == 1
    message = chat.invoke("Hi?")
    assert message.response_metadata["demos"] == []
    assert _usage(message, "total_tokens") <= 64


# -- generation ----------------------------------------------------------------------------


def test_chat_reports_length_when_max_tokens_is_reached(tiny_lm: Any, byte_tokenizer: Any) -> None:
    chat = pipeline_chat(tiny_lm, byte_tokenizer, max_new_tokens=200, temperature=0)
    _processors(chat).append(ScriptedLogits(byte_tokenizer, "word " * 50))
    message = chat.invoke("Say words.", max_tokens=7)
    assert message.response_metadata["finish_reason"] == "length"
    assert _usage(message, "output_tokens") == 7
    last = list(chat.stream("Say words.", max_tokens=7))[-1]
    assert last.response_metadata["finish_reason"] == "length"


async def test_closing_an_async_stream_early_stops_decoding(
    tiny_lm: Any, byte_tokenizer: Any
) -> None:
    chat = pipeline_chat(tiny_lm, byte_tokenizer, max_new_tokens=600, temperature=0)
    scripted = ScriptedLogits(byte_tokenizer, "word " * 200)
    _processors(chat).append(scripted)
    stream = cast("AsyncGenerator[Any, None]", chat.astream("Say words."))
    first = await stream.__anext__()
    assert first.content
    await stream.aclose()
    # The backend stream is closed soon after (by the async generator's finaliser, in an
    # executor): wait until the model is free, then check that decoding stopped early.
    backend = chat.backend
    assert isinstance(backend, TransformersBackend)
    lock = backend._lock
    assert await asyncio.to_thread(lock.acquire, True, 20)
    lock.release()
    assert 0 < scripted.steps < 600


class _Boom:
    def __call__(self, input_ids: Any, scores: Any) -> Any:
        raise RuntimeError("kaboom")


def test_failing_model_in_a_batch_fails_every_input_and_never_hangs(
    tiny_lm: Any, byte_tokenizer: Any
) -> None:
    chat = pipeline_chat(tiny_lm, byte_tokenizer, max_new_tokens=5, temperature=0)
    _processors(chat).append(_Boom())
    results = finishes(lambda: chat.batch(["a?", "b?", "c?"], return_exceptions=True))
    assert [type(r) for r in results] == [GenerationError] * 3
    assert all("kaboom" in str(r) for r in results)


class _BrokenLLM(RecordingLLM):
    def _call(self, *args: Any, **kwargs: Any) -> str:
        raise RuntimeError("server down")

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        raise RuntimeError("server down")
        yield  # a generator, as LangChain LLM streams are


async def test_failing_llm_raises_generation_error_on_every_path() -> None:
    chat = ChatICAlign(llm=_BrokenLLM(responses=["x"]))
    with pytest.raises(GenerationError, match="server down"):
        finishes(lambda: list(chat.stream("Hi")))
    with pytest.raises(GenerationError, match="server down"):
        await asyncio.wait_for(chat.ainvoke("Hi"), 20)

    async def consume() -> None:
        async for _ in chat.astream("Hi"):
            pass

    with pytest.raises(GenerationError, match="server down"):
        await asyncio.wait_for(consume(), 20)


# -- load ----------------------------------------------------------------------------------


async def test_32_concurrent_ainvoke_calls_on_one_model_all_complete(
    tiny_lm: Any, byte_tokenizer: Any, store: DemoStore, demos: list[AlignmentDemo]
) -> None:
    store.add_demos(demos)
    selector = AlignmentExampleSelector(store=store, token_counter=count_words, max_tokens=60)
    chat = pipeline_chat(
        tiny_lm, byte_tokenizer, max_new_tokens=6, temperature=0, selector=selector
    )
    questions = [f"Question number {i}: say hi." for i in range(32)]
    alone = [chat.invoke(q).content for q in questions[:4]]
    results = await asyncio.wait_for(asyncio.gather(*(chat.ainvoke(q) for q in questions)), 60)
    assert len(results) == 32
    assert all(_usage(r, "output_tokens") <= 6 for r in results)
    assert all(r.response_metadata["finish_reason"] in ("stop", "length") for r in results)
    assert all(r.response_metadata["demos"] for r in results)
    # Greedy answers are the same as one at a time: no request saw another's state.
    assert [r.content for r in results[:4]] == alone
