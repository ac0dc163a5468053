"""Prefix caching on the tiny GPT-2: the same greedy answers as without the cache."""

import pytest
import torch
from transformers import DynamicCache

from langchain_icalign.backends.base import GenerationParams
from langchain_icalign.backends.prefix_cache import PrefixCache
from langchain_icalign.backends.transformers import TransformersBackend

HEADER = (
    "# Instruction\n\nBelow is a list of conversations between a human and an AI assistant.\n\n"
)
GREEDY = GenerationParams(max_new_tokens=24, temperature=0, stop=("\n#",))


@pytest.fixture
def plain(tiny_lm, byte_tokenizer):
    return TransformersBackend(tiny_lm, byte_tokenizer, prefix_cache=False)


@pytest.fixture
def cached(tiny_lm, byte_tokenizer):
    return TransformersBackend(tiny_lm, byte_tokenizer, prefix_cache=PrefixCache(min_tokens=4))


def test_backend_keeps_a_prefix_cache_by_default(tiny_lm, byte_tokenizer, plain):
    assert isinstance(TransformersBackend(tiny_lm, byte_tokenizer).prefix_cache, PrefixCache)
    assert plain.prefix_cache is None


def test_repeated_prompt_reuses_all_but_its_last_token(plain, cached):
    prompt = HEADER + "# Query:\nWhat is tea?\n# Answer:\n"
    first = cached.generate(prompt, GREEDY)
    second = cached.generate(prompt, GREEDY)
    expected = plain.generate(prompt, GREEDY)
    assert first == expected
    assert second.text == expected.text
    assert second.output_tokens == expected.output_tokens
    assert second.cached_tokens == expected.input_tokens - 1


def test_prompts_sharing_the_header_reuse_it_and_answer_alike(plain, cached):
    questions = ["What is tea?", "Why is the sky blue?", "How do bees fly?", "What is tea?"]
    for question in questions:
        prompt = HEADER + f"# Query:\n{question}\n# Answer:\n"
        got = cached.generate(prompt, GREEDY)
        expected = plain.generate(prompt, GREEDY)
        assert (got.text, got.output_tokens, got.finish_reason) == (
            expected.text,
            expected.output_tokens,
            expected.finish_reason,
        )
    stats = cached.prefix_cache.stats
    assert stats.hits == 3
    assert stats.reused_tokens >= 3 * len(HEADER)


def test_follow_up_reuses_the_conversation_so_far(plain, cached):
    first_prompt = HEADER + "# Query:\nWhat is tea?\n# Answer:\n"
    first = cached.generate(first_prompt, GREEDY)
    follow_up = first_prompt + first.text + "\n# Query:\nAnd coffee?\n# Answer:\n"
    got = cached.generate(follow_up, GREEDY)
    expected = plain.generate(follow_up, GREEDY)
    assert got.text == expected.text
    # One token per byte: everything up to the answer's end was computed before.
    assert got.cached_tokens >= 1 + len(first_prompt) + len(first.text) - 1


def test_stream_with_cache_matches_generate(plain, cached):
    prompt = HEADER + "# Query:\nName a colour.\n# Answer:\n"
    cached.generate(prompt, GREEDY)
    events = list(cached.stream(prompt, GREEDY))
    summary = events[-1]
    assert summary.cached_tokens > 0
    assert "".join(e for e in events if isinstance(e, str)) == summary.text.strip()
    assert summary.text == plain.generate(prompt, GREEDY).text


def test_seeded_sampling_is_unchanged_by_the_cache(plain, cached):
    prompt = HEADER + "# Query:\nSay something.\n# Answer:\n"
    params = GenerationParams(max_new_tokens=16, temperature=1.0, seed=3)
    cached.generate(prompt, params)
    assert cached.generate(prompt, params).text == plain.generate(prompt, params).text


def _cache_of(length: int, value: float = 1.0) -> DynamicCache:
    cache = DynamicCache()
    for layer in range(2):
        states = torch.full((1, 2, length, 4), value + layer)
        cache.update(states, states.clone(), layer)
    return cache


def test_take_hands_over_a_contained_entry_and_copies_a_shared_prefix():
    store = PrefixCache(min_tokens=2)
    store.put(list(range(10)), _cache_of(10))
    cache, length = store.take([*range(10), 50, 51])
    assert length == 10
    assert cache.get_seq_length() == 10
    assert len(store) == 0  # handed over: it is about to be extended
    store.put([*range(10), 50, 51], _cache_of(12))
    cache, length = store.take([*range(6), 99, 98])
    assert (length, cache.get_seq_length()) == (6, 6)
    assert len(store) == 1  # copied: the longer entry stays
    cache.update(torch.zeros(1, 2, 2, 4), torch.zeros(1, 2, 2, 4), 0)
    kept, _ = store.take([*range(10), 50, 51, 7])
    assert kept.get_seq_length() == 12  # the copy's growth did not touch the entry


def test_take_leaves_one_token_to_compute_and_ignores_short_prefixes():
    store = PrefixCache(min_tokens=4)
    store.put(list(range(8)), _cache_of(8))
    _, length = store.take(list(range(8)))
    assert length == 7
    store.put(list(range(8)), _cache_of(8))
    cache, length = store.take([0, 1, 2, 9, 9, 9])
    assert length == 0
    assert cache.get_seq_length() == 0


def test_entries_are_bounded_and_prefixes_of_new_entries_dropped():
    store = PrefixCache(max_entries=2, min_tokens=1, max_tokens=100)
    store.put([1, 2, 3], _cache_of(3))
    store.put([1, 2, 3, 4], _cache_of(4))
    assert len(store) == 1  # [1, 2, 3] is inside [1, 2, 3, 4]
    store.put([5, 6], _cache_of(2))
    store.put([7, 8], _cache_of(2))
    assert len(store) == 2
    _, length = store.take([1, 2, 3, 4, 0])
    assert length == 0  # the oldest entry went first
    store.put(list(range(200)), _cache_of(200))
    assert all(int(e.ids.shape[0]) <= 100 for e in store._entries)


def test_memory_is_bounded_in_bytes():
    one = _cache_of(10)  # 2 layers x keys and values x 2 x 10 x 4 floats = 1280 bytes
    store = PrefixCache(min_tokens=1, max_bytes=3000)
    store.put(list(range(10)), one)
    store.put(list(range(100, 110)), _cache_of(10))
    store.put(list(range(200, 210)), _cache_of(10))
    assert len(store) == 2
    store.put(list(range(300, 330)), _cache_of(30))  # alone over the bound: not kept
    assert [int(e.ids.shape[0]) for e in store._entries] == [10, 10]
