"""Grammar-constrained tool calls and structured output on the default model (issue 14).

Every answer must validate, through invoke, stream and batch and all three structured-output
methods; an agent with tools whose names are in no demo picks the right one; nothing of the
built-in tool demos (their tool names, their argument values) leaks into an answer.
"""

from __future__ import annotations

import json
from typing import Literal

import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from langchain_icalign import ChatICAlign

FIXED_DEMO_WORDS = (
    "example_weather_tool",
    "example_calculator_tool",
    "example_customer_search_tool",
    "Exampleton",
    "1284 * 37",
    "1,284",
    "47,508",
    "47508",
    "Dana Whitfield",
)


class Address(BaseModel):
    street: str
    city: str


class Person(BaseModel):
    """A person described in the text."""

    full_name: str
    age: int
    home: Address
    hobbies: list[str]
    role: Literal["engineer", "artist", "teacher"]
    nickname: str | None = None


PROMPTS = [
    "Ada Lovelace, 36, lives at 12 St James's Square, London. She loves poetry and "
    "mathematics and works as an engineer.",
    "Frida Kahlo was a painter from Coyoacán, Mexico City, living on Calle Londres 247. "
    "She was 47 and enjoyed gardening.",
]


@tool
def lookup_forecast(location: str) -> str:
    """Current weather for a place."""
    return "sunny, 24 °C"


@tool
def sum_numbers(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@tool
def file_ticket(tags: list[str], reporter: Address, title: str) -> str:
    """File a support ticket with tags, the reporter's address and a title."""
    return "ticket 1"


@pytest.fixture(scope="module")
def chat():
    return ChatICAlign.from_defaults(temperature=0, max_new_tokens=120, show_progress=False)


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_nested_model_parses_through_invoke_and_stream(chat, method):
    structured = chat.with_structured_output(Person, method=method)
    person = structured.invoke(PROMPTS[0])
    assert isinstance(person, Person)
    if method == "json_schema":  # filled from the text, not only valid
        assert person.full_name == "Ada Lovelace"
        assert person.age == 36
        assert person.home.city == "London"
    assert isinstance(list(structured.stream(PROMPTS[1]))[-1], Person)


def test_nested_model_parses_through_batch(chat):
    # Batching decodes each input as invoke does (test_batching_and_prefix_cache.py holds
    # batch answers equal to invoke's), so one method is enough here.
    structured = chat.with_structured_output(Person, method="function_calling")
    assert all(isinstance(p, Person) for p in structured.batch(PROMPTS))


def test_forced_call_with_list_and_nested_arguments_is_valid(chat):
    bound = chat.bind_tools([file_ticket], tool_choice="file_ticket")
    prompts = [
        "Open a ticket: the printer on floor 3 is jammed. Reporter: Sam at 4 Elm Road, Leeds.",
        "Ticket please, tags billing and refund: I was charged twice. I'm Kim, 9 Rue Cler, Paris.",
    ]
    for message in bound.batch(prompts):
        assert not message.invalid_tool_calls
        args = message.tool_calls[0]["args"]
        assert isinstance(args["tags"], list)
        assert all(isinstance(tag, str) for tag in args["tags"])
        Address.model_validate(args["reporter"])
        assert isinstance(args["title"], str)


def test_agent_with_renamed_tools_calls_the_right_one(chat):
    from langchain.agents import create_agent

    agent = create_agent(model=chat, tools=[lookup_forecast, sum_numbers])
    for question, expected in (
        ("What is 2+3?", "sum_numbers"),
        ("What's the weather like in Rome right now?", "lookup_forecast"),
    ):
        result = agent.invoke({"messages": [("human", question)]})
        calls = [c for m in result["messages"] if isinstance(m, AIMessage) for c in m.tool_calls]
        assert calls, result["messages"]
        assert calls[0]["name"] == expected
        text = json.dumps([m.content for m in result["messages"]] + [c["args"] for c in calls])
        assert not [w for w in FIXED_DEMO_WORDS if w in text]
