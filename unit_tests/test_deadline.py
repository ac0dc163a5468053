"""`timeout` bounds the whole call: retrieval, reading the prompt (in chunks) and decoding.

The tiny GPT-2 is made slow where that matters: a hook sleeps a fixed time per token the
model reads, so that a long prompt takes long to read, as on a real model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_huggingface import HuggingFacePipeline
from transformers import pipeline

from langchain_icalign import AlignmentDemo, AlignmentExampleSelector, ChatICAlign, DemoStore
from langchain_icalign.backends.base import Generation, GenerationParams
from langchain_icalign.backends.prefix_cache import PrefixCache
from langchain_icalign.backends.transformers import TransformersBackend

from .conftest import BagOfWordsEmbeddings, ScriptedLogits, build_tiny_lm, count_words

SECONDS_PER_TOKEN = 0.001  # a 3,000-token prompt read in one pass: 3 s
CHUNK = 256  # the default `prefill_chunk_tokens`: 0.256 s a chunk here
MARGIN = 0.35  # thread start, decoding the prompt, a loaded machine
LONG_PROMPT = "".join(
    f"Line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(56)
)
GREEDY = GenerationParams(max_new_tokens=40, temperature=0, stop=("\n#",))


class SlowModel:
    """Makes a model sleep `seconds_per_token` for each input token of every forward pass."""

    def __init__(self, model: Any, seconds_per_token: float = SECONDS_PER_TOKEN) -> None:
        self.passes: list[int] = []
        self.seconds_per_token = seconds_per_token
        self._handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        tokens = int(ids.shape[1]) if ids is not None else 1
        self.passes.append(tokens)
        time.sleep(self.seconds_per_token * tokens)

    def remove(self) -> None:
        self._handle.remove()


@pytest.fixture
def fresh_lm(byte_tokenizer: Any) -> Any:
    """The tiny GPT-2 (same weights as `tiny_lm`), not shared with other tests."""
    return build_tiny_lm(byte_tokenizer)


@pytest.fixture
def slow(fresh_lm: Any) -> Iterator[SlowModel]:
    slowed = SlowModel(fresh_lm)
    yield slowed
    slowed.remove()


def _chat(model: Any, tokenizer: Any, **kwargs: Any) -> ChatICAlign:
    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer)
    llm = HuggingFacePipeline(pipeline=pipe, model_id="tiny-gpt2")
    return ChatICAlign(llm=llm, temperature=0, max_new_tokens=40, **kwargs)


# -- chunked prefill gives the one-pass answers -----------------------------------------


@pytest.mark.parametrize("chunk", [7, 100, 256])
def test_chunked_prefill_gives_the_one_pass_greedy_answers(fresh_lm, byte_tokenizer, chunk):
    one_pass = TransformersBackend(
        fresh_lm, byte_tokenizer, prefix_cache=False, prefill_chunk_tokens=None
    )
    chunked = TransformersBackend(
        fresh_lm, byte_tokenizer, prefix_cache=False, prefill_chunk_tokens=chunk
    )
    counted = SlowModel(fresh_lm, seconds_per_token=0.0)
    try:
        prompt = LONG_PROMPT[:1000]
        expected = one_pass.generate(prompt, GREEDY)
        assert max(counted.passes) > 1000  # the prompt in one pass
        counted.passes.clear()
        got = chunked.generate(prompt, GREEDY)
        passes = list(counted.passes)
        streamed = list(chunked.stream(prompt, GREEDY))
    finally:
        counted.remove()
    assert expected.output_tokens > 0
    assert got == expected
    assert "".join(e for e in streamed if isinstance(e, str)) == expected.text
    assert streamed[-1] == expected
    # The prompt was read in passes of at most `chunk` tokens, then one token a step.
    prompt_passes = passes[: len(passes) - expected.output_tokens + 1]
    assert max(passes) <= chunk
    assert sum(prompt_passes) == expected.input_tokens


def test_chunked_prefill_after_a_cache_hit_gives_the_one_pass_answers(fresh_lm, byte_tokenizer):
    one_pass = TransformersBackend(
        fresh_lm, byte_tokenizer, prefix_cache=False, prefill_chunk_tokens=None
    )
    cached = TransformersBackend(
        fresh_lm, byte_tokenizer, prefix_cache=PrefixCache(min_tokens=4), prefill_chunk_tokens=64
    )
    first = LONG_PROMPT[:300] + "\n# Query: what line is this?\n# Answer:"
    follow_up = first + " Line 3.\n# Query:" + LONG_PROMPT[300:1200] + "\n# Answer:"
    for prompt in (first, follow_up):
        got, expected = cached.generate(prompt, GREEDY), one_pass.generate(prompt, GREEDY)
        assert (got.text, got.output_tokens, got.finish_reason) == (
            expected.text,
            expected.output_tokens,
            expected.finish_reason,
        )
    assert got.cached_tokens >= len(first)  # the follow-up's chunks started after the hit


def test_prefill_chunk_tokens_below_one_is_refused(tiny_lm, byte_tokenizer):
    with pytest.raises(ValueError, match="prefill_chunk_tokens"):
        TransformersBackend(tiny_lm, byte_tokenizer, prefill_chunk_tokens=0)


# -- the backend: the deadline covers reading the prompt -----------------------------------


def test_timeout_bounds_reading_a_long_prompt(fresh_lm, byte_tokenizer, slow):
    backend = TransformersBackend(fresh_lm, byte_tokenizer)
    prompt = LONG_PROMPT[:3000]
    params = GenerationParams(max_new_tokens=40, temperature=0, timeout=0.5)
    started = time.monotonic()
    result = backend.generate(prompt, params)
    elapsed = time.monotonic() - started
    assert elapsed < 0.5 + CHUNK * SECONDS_PER_TOKEN + MARGIN  # one pass: over 3 s
    assert result == Generation("", 3001, 0, "timeout")
    assert sum(slow.passes) < 3000  # the rest of the prompt was never read

    slow.passes.clear()
    started = time.monotonic()
    events = backend.stream(prompt, params)
    first = next(events)
    elapsed = time.monotonic() - started
    rest = list(events)
    assert elapsed < 0.5 + CHUNK * SECONDS_PER_TOKEN + MARGIN
    assert [first, *rest] == [Generation("", 3001, 0, "timeout", first.cached_tokens)]


def test_chunk_near_the_deadline_is_cut_to_the_time_left(fresh_lm, byte_tokenizer):
    backend = TransformersBackend(fresh_lm, byte_tokenizer, prefix_cache=False)
    slowed = SlowModel(fresh_lm, seconds_per_token=0.002)  # 0.512 s a full chunk
    try:
        started = time.monotonic()
        result = backend.generate(LONG_PROMPT[:3000], GenerationParams(timeout=0.7))
        elapsed = time.monotonic() - started
    finally:
        slowed.remove()
    assert result.finish_reason == "timeout"
    # A second full chunk would end at 1.02 s; at its pace the first leaves 0.19 s.
    assert slowed.passes[0] == CHUNK
    assert slowed.passes[1] < CHUNK / 2
    assert elapsed < 0.7 + 0.2


def test_timed_out_prompt_is_read_on_from_the_prefix_cache(fresh_lm, byte_tokenizer, slow):
    backend = TransformersBackend(fresh_lm, byte_tokenizer)
    plain = TransformersBackend(fresh_lm, byte_tokenizer, prefix_cache=False)
    prompt = LONG_PROMPT[:1200]
    started = time.monotonic()
    timed_out = backend.generate(prompt, GenerationParams(temperature=0, timeout=0.3))
    assert time.monotonic() - started < 0.3 + CHUNK * SECONDS_PER_TOKEN + MARGIN
    assert (timed_out.finish_reason, timed_out.output_tokens) == ("timeout", 0)
    slow.passes.clear()
    resumed = backend.generate(prompt, GREEDY)
    assert resumed.cached_tokens >= CHUNK  # the chunks read before the deadline
    assert sum(slow.passes) <= 1201 - resumed.cached_tokens + GREEDY.max_new_tokens
    expected = plain.generate(prompt, GREEDY)
    assert (resumed.text, resumed.output_tokens) == (expected.text, expected.output_tokens)


def test_timeout_while_decoding_keeps_the_text_so_far(fresh_lm, byte_tokenizer):
    script = "word " * 100
    backend = TransformersBackend(
        fresh_lm, byte_tokenizer, logits_processors=[ScriptedLogits(byte_tokenizer, script)]
    )
    slowed = SlowModel(fresh_lm, seconds_per_token=0.05)  # 20 tokens a second
    try:
        started = time.monotonic()
        result = backend.generate("x", GenerationParams(max_new_tokens=200, timeout=0.5))
        elapsed = time.monotonic() - started
    finally:
        slowed.remove()
    assert result.finish_reason == "timeout"
    assert 0 < result.output_tokens < 20
    assert result.text == script[: len(result.text)]
    assert elapsed < 0.5 + 0.05 + MARGIN


# -- the chat model: the deadline starts at the call ---------------------------------------


class SlowQueryEmbeddings(BagOfWordsEmbeddings):
    """Bag-of-words embeddings whose queries take `delay` seconds (a remote embedder)."""

    delay = 0.0

    def embed_query(self, text: str) -> list[float]:
        time.sleep(self.delay)
        return super().embed_query(text)


@pytest.fixture
def slow_store(demos: list[AlignmentDemo]) -> Iterator[DemoStore]:
    with DemoStore(SlowQueryEmbeddings(), location=":memory:") as demo_store:
        demo_store.add_demos(demos)
        yield demo_store


@pytest.mark.parametrize("streaming", [False, True])
def test_time_spent_retrieving_counts(fresh_lm, byte_tokenizer, slow_store, streaming):
    selector = AlignmentExampleSelector(store=slow_store, token_counter=count_words)
    chat = _chat(fresh_lm, byte_tokenizer, selector=selector, timeout=0.5)
    slow_store.embeddings.delay = 0.6  # retrieval alone outlasts the timeout
    counted = SlowModel(fresh_lm, seconds_per_token=0.0)
    try:
        started = time.monotonic()
        if streaming:
            chunks = list(chat.stream("How do I bake bread?"))
            assert len(chunks) == 1
            message: Any = chunks[0]
        else:
            message = chat.invoke("How do I bake bread?")
        elapsed = time.monotonic() - started
    finally:
        counted.remove()
    assert elapsed < 0.6 + MARGIN
    assert message.content == ""
    assert message.response_metadata["finish_reason"] == "timeout"
    assert message.response_metadata["demos"]  # the demos were retrieved; no time was left
    assert message.usage_metadata["output_tokens"] == 0
    assert counted.passes == []  # the model never ran


def test_chat_timeout_bounds_a_call_with_a_long_prompt(fresh_lm, byte_tokenizer, slow):
    chat = _chat(fresh_lm, byte_tokenizer, timeout=0.5)
    question = LONG_PROMPT[:3000]
    bound = 0.5 + CHUNK * SECONDS_PER_TOKEN + MARGIN
    started = time.monotonic()
    message = chat.invoke(question)
    elapsed = time.monotonic() - started
    assert elapsed < bound
    assert message.response_metadata["finish_reason"] == "timeout"
    assert message.content == ""
    assert message.usage_metadata["input_tokens"] > 3000

    started = time.monotonic()
    stream = chat.stream(question, timeout=0.5)
    first = next(stream)
    elapsed = time.monotonic() - started
    assert elapsed < bound
    assert first.response_metadata["finish_reason"] == "timeout"
    assert list(stream) == []
