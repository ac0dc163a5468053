"""A backend given as `backend=`, and the capabilities the chat model asks of it."""

from __future__ import annotations

import functools
import pickle
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from langchain_core.tools import tool
from pydantic import ValidationError

from langchain_icalign import ChatICAlign
from langchain_icalign.backends.base import (
    BackendCapabilities,
    Generation,
    GenerationBackend,
    GenerationParams,
)
from langchain_icalign.backends.batching import BatchingBackend, BatchWindow
from langchain_icalign.backends.llm import LLMBackend
from langchain_icalign.backends.transformers import TransformersBackend
from langchain_icalign.prompting import ContextWindowExceededError

from .conftest import RecordingLLM, finishes


class ScriptedBackend(GenerationBackend):
    """Answers every prompt with `answer`; declares what it is told to."""

    def __init__(self, answer: str, capabilities: BackendCapabilities) -> None:
        self.answer = answer
        self.declared = capabilities
        self.supports_grammar = capabilities.grammar
        self.model_name = "scripted"
        self.params: list[GenerationParams] = []
        self.batches: list[int] = []

    @property
    def capabilities(self) -> BackendCapabilities:
        return self.declared

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, prompt: str, params: GenerationParams) -> Generation:
        self.params.append(params)
        return Generation(self.answer, self.count_tokens(prompt), 3, "stop")

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[str | Generation]:
        result = self.generate(prompt, params)
        yield result.text
        yield result

    def generate_batch(self, prompts: Sequence[str], params: GenerationParams) -> list[Generation]:
        self.batches.append(len(prompts))
        return [self.generate(prompt, params) for prompt in prompts]


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def test_a_backend_is_given_as_an_argument() -> None:
    backend = ScriptedBackend("Fine, thanks.", BackendCapabilities())
    chat = ChatICAlign(backend=backend, context_window=2048)
    assert chat.backend is backend
    assert backend.context_window == 2048  # the chat's window is the backend's
    message = chat.invoke("How are you?")
    assert message.content == "Fine, thanks."
    assert message.response_metadata["model_name"] == "scripted"
    assert backend.params  # the given backend generated


def test_llm_and_backend_together_are_refused() -> None:
    backend = ScriptedBackend("x", BackendCapabilities())
    with pytest.raises(ValidationError, match="llm= or backend="):
        ChatICAlign(llm=RecordingLLM(responses=["x"]), backend=backend)


def test_a_chat_on_a_given_backend_says_why_it_does_not_pickle() -> None:
    chat = ChatICAlign(backend=ScriptedBackend("x", BackendCapabilities()))
    with pytest.raises(TypeError, match="cannot be pickled: the backend holds"):
        pickle.dumps(chat)


@pytest.mark.parametrize("grammar", [True, False])
def test_the_chat_model_asks_whether_the_backend_follows_a_grammar(grammar: bool) -> None:
    call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
    backend = ScriptedBackend(call, BackendCapabilities(grammar=grammar))
    chat = ChatICAlign(backend=backend, temperature=0)
    message = chat.bind_tools([get_weather], tool_choice="auto").invoke("Weather in Oslo?")
    assert message.tool_calls[0]["args"] == {"city": "Oslo"}
    # Under a grammar the call is decoded in one step with the call's grammar attached.
    assert (backend.params[0].grammar is not None) is grammar


@pytest.mark.parametrize("batching", [True, False])
def test_a_batch_is_decoded_together_only_where_the_backend_batches(batching: bool) -> None:
    backend = ScriptedBackend("Fine.", BackendCapabilities(batching=batching))
    chat = ChatICAlign(backend=backend)
    answers = chat.batch(["One?", "Two?", "Three?"])
    assert [a.content for a in answers] == ["Fine."] * 3
    assert backend.batches == ([3] if batching else [])


def test_answers_made_in_steps_leave_the_batch_and_run_alone() -> None:
    call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
    backend = ScriptedBackend(call, BackendCapabilities(batching=True))
    chat = ChatICAlign(backend=backend, temperature=0).bind_tools([get_weather])
    answers = finishes(lambda: chat.batch(["Weather in Oslo?", "Weather in Oslo?"]))
    assert [a.tool_calls[0]["args"] for a in answers] == [{"city": "Oslo"}] * 2
    assert backend.batches == []  # "auto" without a grammar is a guided plan: steps run alone
    assert len(backend.params) == 2


def test_an_input_that_never_generates_does_not_hold_up_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A window that would wait a minute for an input that neither submits nor withdraws.
    waiting = functools.partialmethod(BatchWindow.__init__, wait_s=60.0)
    monkeypatch.setattr(BatchWindow, "__init__", waiting)
    backend = ScriptedBackend("Fine.", BackendCapabilities(batching=True))
    chat = ChatICAlign(backend=backend, context_window=40, max_new_tokens=8)
    inputs = ["One?", "word " * 100, "Two?"]  # the second overflows the window: fails early
    results = finishes(lambda: chat.batch(inputs, return_exceptions=True))
    assert isinstance(results[1], ContextWindowExceededError)
    assert [results[0].content, results[2].content] == ["Fine.", "Fine."]
    assert backend.batches == [2]


def test_only_the_inputs_own_chat_sees_the_batching_backend() -> None:
    inner = ScriptedBackend("x", BackendCapabilities(batching=True))
    other = ScriptedBackend("y", BackendCapabilities(batching=True))
    with BatchingBackend(inner, BatchWindow(inner, expected=1)).entered() as wrapper:
        assert ChatICAlign(backend=inner).backend is wrapper
        assert ChatICAlign(backend=other).backend is other  # another model called within
        assert wrapper.capabilities == inner.capabilities
    assert ChatICAlign(backend=inner).backend is inner


def test_the_built_in_backends_declare_their_capabilities(
    tiny_lm: Any, byte_tokenizer: Any
) -> None:
    transformers = TransformersBackend(tiny_lm, byte_tokenizer).capabilities
    assert transformers.batching
    assert transformers.constrained_start
    assert transformers.prefix_reuse  # a model with a dynamic cache
    assert TransformersBackend(tiny_lm, byte_tokenizer, prefix_cache=False).capabilities == (
        BackendCapabilities(grammar=transformers.grammar, constrained_start=True, batching=True)
    )
    assert LLMBackend(RecordingLLM(responses=["x"])).capabilities == BackendCapabilities()
