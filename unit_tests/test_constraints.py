"""Constrained decoding on the tiny random byte-level GPT-2: the answer starts as required."""

import pytest

from langchain_icalign.backends.base import GenerationParams
from langchain_icalign.backends.transformers import TransformersBackend

OPTIONS = ('magic_function", "arguments": {"input": ', 'get_weather", "arguments": {"city": "')


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_model_is_kept_on_one_of_the_options(tiny_lm, byte_tokenizer, seed):
    backend = TransformersBackend(tiny_lm, byte_tokenizer)
    params = GenerationParams(
        max_new_tokens=45, temperature=1.0, seed=seed, starts_with_one_of=OPTIONS
    )
    text = backend.generate("pick a tool: ", params).text
    assert any(text.startswith(option) for option in OPTIONS), text


def test_without_the_constraint_a_random_model_wanders(tiny_lm, byte_tokenizer):
    backend = TransformersBackend(tiny_lm, byte_tokenizer)
    params = GenerationParams(max_new_tokens=45, temperature=1.0, seed=0)
    text = backend.generate("pick a tool: ", params).text
    assert not any(text.startswith(option) for option in OPTIONS)


def test_chat_model_forces_a_bound_tool_name(tiny_lm, byte_tokenizer):
    from langchain_core.tools import tool
    from langchain_huggingface import HuggingFacePipeline
    from transformers import pipeline

    from langchain_icalign import ChatICAlign

    @tool
    def alpha(x: int) -> int:
        """First tool."""
        return x

    @tool
    def beta(y: int) -> int:
        """Second tool."""
        return y

    llm = HuggingFacePipeline(
        pipeline=pipeline("text-generation", model=tiny_lm, tokenizer=byte_tokenizer)
    )
    chat = ChatICAlign(llm=llm, temperature=1.0, seed=0, max_new_tokens=40)
    message = chat.bind_tools([alpha, beta], tool_choice="any").invoke("call something")
    calls = message.tool_calls + message.invalid_tool_calls
    assert calls
    assert calls[0]["name"] in ("alpha", "beta")
