"""Grammars built from JSON schemas, and constrained decoding on a tiny random model.

The tiny GPT-2 has random weights: whatever it writes under a grammar must still be a valid
tool call or object, which is what the grammar guarantees (without it, it writes noise).
"""

from __future__ import annotations

import json
from typing import Literal

import pytest
import torch
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel

from langchain_icalign.backends.base import Generation, GenerationParams
from langchain_icalign.backends.grammar_decoding import grammar_supported
from langchain_icalign.backends.transformers import TransformersBackend
from langchain_icalign.tools.grammar import (
    Grammar,
    bounded_schema,
    call_grammar,
    close_json,
    example_arguments,
    json_grammar,
    minimal_value,
)
from langchain_icalign.tools.request_mode import RequestMode
from langchain_icalign.tools.syntax import bound_tool_demos
from unit_tests.conftest import pipeline_chat

pytest.importorskip("llguidance")


class Address(BaseModel):
    street: str
    city: str


class Person(BaseModel):
    """A person."""

    full_name: str
    age: int
    home: Address
    hobbies: list[str]
    role: Literal["engineer", "artist"]
    nickname: str | None = None
    score: float = 0.0
    active: bool = True


@tool
def tag_items(items: list[str], owner: Address, label: str) -> str:
    """Tag items for an owner."""
    return label


@tool
def sum_numbers(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


PERSON = Person.model_json_schema()


def test_bounded_schema_bounds_arrays_strings_and_keys_everywhere():
    bounded = bounded_schema(PERSON, max_items=3, max_length=9)
    home = bounded["$defs"]["Address"]
    assert bounded["properties"]["hobbies"]["maxItems"] == 3
    assert bounded["properties"]["hobbies"]["items"]["maxLength"] == 9
    assert home["properties"]["city"]["maxLength"] == 9
    assert bounded["additionalProperties"] is False
    assert home["additionalProperties"] is False
    assert "maxLength" not in bounded["properties"]["role"]  # an enum is bounded already
    assert bounded["properties"]["nickname"]["anyOf"][0]["maxLength"] == 9
    assert "maxItems" not in PERSON["properties"]["hobbies"]  # the input is not changed
    kept = bounded_schema({"type": "array", "items": {}, "maxItems": 50})
    assert kept["maxItems"] == 50


def test_close_json_closes_and_fills_required_fields():
    cut = '{"full_name": "Ada Lov'
    closed = close_json(cut, PERSON)
    assert closed is not None
    person = Person.model_validate_json(closed)
    assert person.full_name == "Ada Lov"
    assert person.role == "engineer"
    cut = '{"full_name": "Ada", "age": 36, "home": {"street": "1 Main", "ci'
    person = Person.model_validate_json(close_json(cut, PERSON) or "")
    assert person.home.street == "1 Main"
    assert close_json("no object", PERSON) is None


def test_minimal_and_example_values_follow_the_schema():
    assert Person.model_validate(minimal_value(PERSON))
    args = example_arguments(convert_to_openai_tool(tag_items)["function"]["parameters"])
    assert isinstance(args["items"], list)
    assert isinstance(args["items"][0], str)
    assert set(args["owner"]) == {"street", "city"}


def test_bound_tool_demos_call_each_bound_tool():
    tools = [convert_to_openai_tool(sum_numbers), convert_to_openai_tool(tag_items)]
    demos = bound_tool_demos(tools)
    names = [json.loads(d.response.split(">", 1)[1].rsplit("<", 1)[0])["name"] for d in demos]
    assert names == ["sum_numbers", "tag_items"] * 2
    assert demos[0].prompt == "Add two numbers: 7 and 12"
    assert demos[2].prompt == "Add two numbers: 38 and 43"  # a second call, other values


@pytest.fixture(scope="module")
def grammar_backend(tiny_lm, byte_tokenizer):
    backend = TransformersBackend(tiny_lm, byte_tokenizer, "tiny", prefix_cache=False)
    assert backend.supports_grammar
    return backend


def test_random_model_writes_valid_objects_under_the_grammar(grammar_backend):
    params = GenerationParams(max_new_tokens=600, temperature=1.0, seed=3, json_after="")
    for seed in range(3):
        params = GenerationParams(
            max_new_tokens=600,
            temperature=1.0,
            seed=seed,
            json_after="",
            grammar=Grammar(json_grammar(PERSON)),
        )
        generation = grammar_backend.generate("Person:", params)
        text = generation.text
        if generation.finish_reason == "length":
            text = close_json(text, PERSON) or ""
        Person.model_validate_json(text)


def test_call_grammar_keeps_names_and_arguments_to_the_bound_tools(grammar_backend):
    functions = [convert_to_openai_tool(t)["function"] for t in (sum_numbers, tag_items)]
    grammar = Grammar(call_grammar(functions), forced='{"name": "')
    params = GenerationParams(
        max_new_tokens=400,
        temperature=1.0,
        seed=1,
        answer_prefix='<tool_call>{"name": "',
        json_after="<tool_call>",
        grammar=grammar,
    )
    for seed in range(3):
        generation = grammar_backend.generate(
            "Call:", GenerationParams(**{**params.__dict__, "seed": seed})
        )
        mode = RequestMode(
            tools=tuple(convert_to_openai_tool(t) for t in (sum_numbers, tag_items)),
            tool_choice="any",
            constrained=True,
        )
        closed = mode.close(generation, params)
        call = json.loads('{"name": "' + closed.text)
        assert call["name"] in {"sum_numbers", "tag_items"}


class PreferScript:
    """Pushes the model towards `script` without forbidding anything else."""

    def __init__(self, tokenizer, script):
        self.ids = [*tokenizer.encode(script, add_special_tokens=False), tokenizer.eos_token_id]
        self.start = None

    def __call__(self, input_ids, scores):
        if self.start is None:
            self.start = input_ids.shape[1]
        position = min(input_ids.shape[1] - self.start, len(self.ids) - 1)
        scores[:, self.ids[position]] += 1000.0
        return scores


def _chat(tiny_lm, byte_tokenizer, script, **kwargs):
    chat = pipeline_chat(tiny_lm, byte_tokenizer, temperature=0, **kwargs)
    chat.backend.logits_processors.append(PreferScript(byte_tokenizer, script))
    return chat


def test_auto_leaves_text_free_and_constrains_an_opened_call(tiny_lm, byte_tokenizer):
    tools = [sum_numbers, tag_items]
    text = _chat(tiny_lm, byte_tokenizer, "Hello there.", max_new_tokens=40)
    message = text.bind_tools(tools).invoke("hi")
    assert message.content == "Hello there."
    assert not message.tool_calls
    botched = 'Sure. <tool_call>{"name": "sum_numbrs", "arguments": {"x": "two"}}</tool_call>'
    chat = _chat(tiny_lm, byte_tokenizer, botched, max_new_tokens=120)
    message = chat.bind_tools(tools).invoke("What is 2+3?")
    assert not message.invalid_tool_calls
    assert message.tool_calls[0]["name"] in {"sum_numbers", "tag_items"}
    assert message.content == "Sure."


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_structured_output_validates_on_a_random_model(tiny_lm, byte_tokenizer, method):
    chat = pipeline_chat(tiny_lm, byte_tokenizer, temperature=1.0, seed=5, max_new_tokens=150)
    structured = chat.with_structured_output(Person, method=method)
    for _ in range(2):
        assert isinstance(structured.invoke("Ada, 36, engineer."), Person)


def test_forced_call_with_nested_and_list_arguments_is_valid(tiny_lm, byte_tokenizer):
    chat = pipeline_chat(tiny_lm, byte_tokenizer, temperature=1.0, seed=2, max_new_tokens=60)
    message = chat.bind_tools([tag_items], tool_choice="tag_items").invoke("tag it")
    args = message.tool_calls[0]["args"]
    assert isinstance(args["items"], list)
    assert Address.model_validate(args["owner"])
    assert isinstance(args["label"], str)


def test_backends_without_a_grammar_say_so(byte_tokenizer):
    assert grammar_supported(byte_tokenizer)

    class Slow:
        backend_tokenizer = None

    assert not grammar_supported(Slow())
    assert torch  # the processor path runs on the CPU build


def test_plain_json_mode_answers_one_json_object(tiny_lm, byte_tokenizer):
    chat = pipeline_chat(tiny_lm, byte_tokenizer, temperature=1.0, seed=4, max_new_tokens=80)
    bound = chat.bind(response_format={"type": "json_object"})
    for _ in range(2):
        assert isinstance(json.loads(bound.invoke("Give me JSON.").content), dict)


def test_an_answer_cut_by_the_timeout_is_not_made_up():
    tools = (convert_to_openai_tool(tag_items),)
    mode = RequestMode(tools=tools, tool_choice="tag_items", constrained=True)
    prefix = '<tool_call>{"name": "tag_items", "arguments": '
    params = GenerationParams(answer_prefix=prefix)
    cut = '{"items": ["a", "b'
    timed_out = Generation(cut, 5, 3, "timeout")
    assert mode.close(timed_out, params) == timed_out
    closed = mode.close(Generation(cut, 5, 3, "length"), params)
    call = json.loads((prefix + closed.text).removeprefix("<tool_call>"))
    assert call["arguments"]["items"] == ["a", "b"]
    assert Address.model_validate(call["arguments"]["owner"])
    assert closed.finish_reason == "length"
