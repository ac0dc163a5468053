"""Prefix KV reuse and batched generation on the real default model: greedy answers unchanged."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def urial_pair(default_chat):
    """The constant URIAL-style set on Gemma: one chat with the prefix cache, one without."""
    from langchain_icalign import ChatICAlign
    from langchain_icalign.defaults.builtin_demos import urial_set

    system, constant = urial_set()

    def make():
        return ChatICAlign(
            llm=default_chat.llm,
            prompt_format="urial",
            system_prompt=system,
            constant_demos=list(constant),
            temperature=0,
            max_new_tokens=16,
        )

    cached, plain = make(), make()
    plain.backend.prefix_cache = None
    assert cached.backend.prefix_cache is not None
    return cached, plain


def test_prefix_cache_gives_the_plain_greedy_answers(urial_pair):
    cached, plain = urial_pair
    first = "How do I make a good cup of tea?"
    turns = [
        first,
        first,  # repeated: all of the prompt but its last token is reused
        "Why is the sky blue?",  # another question under the same header and demos
    ]
    for question in turns:
        got, expected = cached.invoke(question), plain.invoke(question)
        assert got.content == expected.content
        assert got.usage_metadata["input_tokens"] == expected.usage_metadata["input_tokens"]
    answer = plain.invoke(first).content
    follow_up = [("human", first), ("ai", answer), ("human", "Can I make it without sugar?")]
    got, expected = cached.invoke(follow_up), plain.invoke(follow_up)
    assert got.content == expected.content
    # The follow-up reuses the header, the demos and the first exchange.
    reused = got.usage_metadata["input_token_details"]["cache_read"]
    assert reused > cached.get_num_tokens(cached.prepare_prompt(first).text) - 5
    stats = cached.backend.prefix_cache.stats
    assert stats.hits >= 3


def test_batch_gives_the_answers_of_invoke(short_chat):
    questions = [
        "How do I make a good cup of tea?",
        "Write a haiku about the sea.",
        "What is the capital of Italy?",
    ]
    cache = short_chat.backend.prefix_cache
    short_chat.backend.prefix_cache = None
    try:
        one_by_one = [short_chat.invoke(q) for q in questions]
        batched = short_chat.batch(questions)
    finally:
        short_chat.backend.prefix_cache = cache
    assert [m.content for m in batched] == [m.content for m in one_by_one]
    assert [m.usage_metadata for m in batched] == [m.usage_metadata for m in one_by_one]
    for got, expected in zip(batched, one_by_one, strict=True):
        got_demos, expected_demos = (
            got.response_metadata["demos"],
            expected.response_metadata["demos"],
        )
        assert [(d["id"], d["tokens"]) for d in got_demos] == [
            (d["id"], d["tokens"]) for d in expected_demos
        ]
        # Queries embedded as one batch differ from one by one in the 7th digit (padding).
        assert [d["score"] for d in got_demos] == pytest.approx(
            [d["score"] for d in expected_demos], abs=1e-4
        )
