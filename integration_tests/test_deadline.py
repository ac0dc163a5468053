"""`timeout` on the real default model: a 3,000-token prompt is read in chunks, so
`timeout=0.5` ends the call in about a second, not after the whole prompt (8 s here).

Timings on two shared CPU cores vary with what else runs (with another process's torch
threads on the same cores one 256-token pass took 3-8 s instead of 0.5 s): each bound is
checked on the fastest of three calls. Without the bound every call reads the whole prompt.
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.slow

QUESTION = "How do I keep basil alive indoors?"
BOUND = 1.5  # timeout=0.5, then at most one 256-token chunk and the answer's assembly


@pytest.fixture(scope="module")
def long_chat(default_chat):
    """The default model and demos with Han's 3,000-token demo budget."""
    from langchain_icalign import AlignmentExampleSelector, ChatICAlign
    from langchain_icalign.defaults import DEFAULT_SETTINGS

    selector = AlignmentExampleSelector(
        store=default_chat.selector.store,
        token_counter=default_chat.selector.token_counter,
        **{**DEFAULT_SETTINGS.selector_kwargs(), "max_tokens": 3000},
    )
    chat = ChatICAlign(llm=default_chat.llm, selector=selector, temperature=0, max_new_tokens=512)
    chat.invoke("Why is the sky blue?", timeout=1.0)  # first query embedding, first pass
    return chat


def test_prompt_is_about_3000_tokens(long_chat):
    assert 2500 <= long_chat.prepare_prompt(QUESTION).tokens <= 3500


def test_timeout_bounds_invoke_with_a_3000_token_prompt(long_chat):
    times = []
    for _ in range(3):
        long_chat.backend.prefix_cache.clear()  # a new prompt each time, as in the issue
        started = time.monotonic()
        message = long_chat.invoke(QUESTION, timeout=0.5)
        times.append(time.monotonic() - started)
        assert message.response_metadata["finish_reason"] == "timeout"
        assert message.response_metadata["prompt_tokens"] >= 2500
    assert min(times) < BOUND, times


def test_timeout_bounds_the_first_chunk_of_a_stream(long_chat):
    firsts, ends = [], []
    for _ in range(3):
        long_chat.backend.prefix_cache.clear()
        started = time.monotonic()
        stream = long_chat.stream(QUESTION, timeout=0.5)
        first = next(stream)
        firsts.append(time.monotonic() - started)
        chunks = [first, *stream]
        ends.append(time.monotonic() - started)
        assert chunks[-1].response_metadata["finish_reason"] == "timeout"
    assert min(firsts) < BOUND, firsts
    assert min(ends) < BOUND, ends


def test_chunked_prefill_gives_the_one_pass_greedy_answer(long_chat):
    # Gemma-3's sliding-window layers (512 tokens) see the prompt cut across chunks.
    from langchain_icalign import AlignmentExampleSelector, ChatICAlign

    selector = AlignmentExampleSelector(
        store=long_chat.selector.store,
        token_counter=long_chat.selector.token_counter,
        max_tokens=1500,
    )

    def chat_reading(chunk: int | None) -> ChatICAlign:
        chat = ChatICAlign(llm=long_chat.llm, selector=selector, temperature=0, max_new_tokens=24)
        chat.backend.prefix_cache = None
        chat.backend.prefill_chunk_tokens = chunk
        return chat

    question = "Write a haiku about the sea."
    passes: list[int] = []
    model = long_chat.llm.pipeline.model
    hook = model.register_forward_pre_hook(
        lambda module, args, kwargs: passes.append(kwargs["input_ids"].shape[1]),
        with_kwargs=True,
    )
    try:
        one_pass = chat_reading(None).invoke(question)
        assert max(passes) == one_pass.usage_metadata["input_tokens"]
        passes.clear()
        chunked = chat_reading(256).invoke(question)
        assert max(passes) == 256
    finally:
        hook.remove()
    assert one_pass.usage_metadata["input_tokens"] > 2 * 512
    assert chunked.content == one_pass.content
    assert chunked.usage_metadata == one_pass.usage_metadata
