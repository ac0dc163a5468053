"""A backend given as `backend=`, and the capabilities the chat model asks of it."""

from __future__ import annotations

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
from langchain_icalign.backends.llm import LLMBackend
from langchain_icalign.backends.transformers import TransformersBackend

from .conftest import RecordingLLM


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
