"""`LLMBackend`: answers cut at `max_new_tokens`, and the call's deadline (issue 12)."""

from __future__ import annotations

import functools
import operator
import time
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.outputs import GenerationChunk
from pydantic import Field

from langchain_icalign import ChatICAlign
from langchain_icalign.backends.base import Generation, GenerationParams
from langchain_icalign.backends.llm import LLMBackend, cut_to_tokens
from langchain_icalign.token_counting import as_token_counter

from .conftest import RecordingLLM, count_words

LONG = "one two three four five six seven eight nine ten"


def _stream(backend: LLMBackend, prompt: str, params: GenerationParams) -> tuple[str, Generation]:
    text, last = "", None
    for event in backend.stream(prompt, params):
        if isinstance(event, Generation):
            last = event
        else:
            text += event
    assert last is not None
    return text, last


def test_cut_to_tokens_keeps_the_longest_prefix_within_the_limit():
    count = as_token_counter(count_words)
    assert cut_to_tokens(LONG, 3, count) == "one two three "
    assert cut_to_tokens(LONG, 0, count) == ""
    assert cut_to_tokens(LONG, 99, count) == LONG
    assert count(cut_to_tokens(LONG, 7, count)) == 7


def test_an_llm_that_ignores_the_limit_is_cut_at_max_new_tokens():
    backend = LLMBackend(RecordingLLM(responses=[LONG]), count_words)
    params = GenerationParams(max_new_tokens=3)
    generation = backend.generate("q", params)
    assert generation.text.split() == ["one", "two", "three"]
    assert generation.output_tokens == 3
    assert generation.finish_reason == "length"
    text, streamed = _stream(backend, "q", params)
    assert text == generation.text
    assert streamed.text == generation.text
    assert (streamed.output_tokens, streamed.finish_reason) == (3, "length")


def test_an_answer_within_the_limit_is_kept_whole():
    backend = LLMBackend(RecordingLLM(responses=["one two\n\nQuestion: x y z w"]), count_words)
    params = GenerationParams(max_new_tokens=4, stop=("\n\nQuestion:",))
    generation = backend.generate("q", params)
    assert (generation.text, generation.finish_reason) == ("one two", "stop")
    assert generation.output_tokens <= 4  # the LLM's whole output, capped at the limit
    text, streamed = _stream(backend, "q", params)
    assert (text, streamed.text, streamed.finish_reason) == ("one two", "one two", "stop")


def test_chat_usage_and_finish_reason_respect_max_tokens():
    chat = ChatICAlign(llm=RecordingLLM(responses=[LONG]), token_counter=count_words)
    for message in (
        chat.invoke("Count.", max_tokens=4),
        functools.reduce(operator.add, chat.stream("Count.", max_tokens=4)),
    ):
        assert message is not None
        assert len(str(message.content).split()) == 4
        assert message.usage_metadata["output_tokens"] == 4
        assert message.response_metadata["finish_reason"] == "length"


class SlowLLM(RecordingLLM):
    """Streams a word every `delay_s`; records the keyword arguments of each call."""

    delay_s: float = 0.05
    pulled: int = 0
    kwargs_seen: list[dict[str, Any]] = Field(default_factory=list)

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        self.kwargs_seen.append(kwargs)
        limit = kwargs.get("timeout")
        if limit is not None:  # a client that enforces its timeout
            time.sleep(limit + 0.01)
            msg = "Request timed out."
            raise TimeoutError(msg)
        return self._next(prompt, stop)

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        self.kwargs_seen.append(kwargs)
        for word in self._next(prompt, stop).split():
            time.sleep(self.delay_s)
            self.pulled += 1
            yield GenerationChunk(text=word + " ")


def test_no_time_left_means_no_call():
    llm = SlowLLM(responses=[LONG])
    backend = LLMBackend(llm, count_words)
    params = GenerationParams(timeout=0.0)
    assert backend.generate("q", params).finish_reason == "timeout"
    text, streamed = _stream(backend, "q", params)
    assert (text, streamed.text, streamed.output_tokens) == ("", "", 0)
    assert streamed.finish_reason == "timeout"
    assert llm.prompts == []


def test_a_stream_stops_between_chunks_at_the_deadline():
    llm = SlowLLM(responses=[LONG], delay_s=0.1)
    backend = LLMBackend(llm, count_words)
    started = time.monotonic()
    text, streamed = _stream(backend, "q", GenerationParams(timeout=0.35))
    assert time.monotonic() - started < 0.35 + 0.1 + 0.2  # at most one chunk late
    assert streamed.finish_reason == "timeout"
    assert text == streamed.text
    assert 1 <= len(text.split()) < 10
    assert llm.pulled < 10


@pytest.mark.parametrize("timeout_kwarg", [None, "timeout"])
def test_the_timeout_reaches_an_llm_that_takes_one(timeout_kwarg):
    llm = SlowLLM(responses=[LONG])
    backend = LLMBackend(llm, count_words, timeout_kwarg=timeout_kwarg)
    started = time.monotonic()
    generation = backend.generate("q", GenerationParams(timeout=0.2))
    if timeout_kwarg is None:
        assert llm.kwargs_seen[-1] == {}
        assert (generation.text, generation.finish_reason) == (LONG, "stop")
    else:
        assert llm.kwargs_seen[-1]["timeout"] == pytest.approx(0.2, abs=0.05)
        assert generation == Generation("", 1, 0, "timeout")
        assert time.monotonic() - started < 0.5


def test_a_failure_before_the_deadline_is_still_a_generation_error():
    from langchain_icalign.errors import GenerationError

    class FailingLLM(RecordingLLM):
        def _call(self, *args: Any, **kwargs: Any) -> str:
            msg = "server said no"
            raise ValueError(msg)

    backend = LLMBackend(FailingLLM(responses=[LONG]), count_words, timeout_kwarg="timeout")
    with pytest.raises(GenerationError, match="server said no"):
        backend.generate("q", GenerationParams(timeout=30.0))
