import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from langchain_icalign import ChatICAlign
from langchain_icalign.tools.request_mode import RequestMode, normalize_tool_choice
from langchain_icalign.tools.syntax import (
    answer_prefix,
    arguments_opening,
    check_arguments,
    describe_tools,
    parse_answer,
    render_tool_call,
)

from .conftest import RecordingLLM, count_words


@tool
def get_weather(city: str, unit: str = "celsius") -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Person(BaseModel):
    """A person."""

    name: str = Field(description="full name")
    age: int


class Movie(TypedDict):
    """A movie."""

    title: str
    year: int


def _chat(responses, **kwargs):
    llm = RecordingLLM(responses=list(responses))
    return ChatICAlign(llm=llm, token_counter=count_words, **kwargs), llm


def _tools():
    from langchain_core.utils.function_calling import convert_to_openai_tool

    return [convert_to_openai_tool(get_weather), convert_to_openai_tool(add)]


def test_parse_valid_call_with_text_before_it():
    parsed = parse_answer(
        'Let me check. <tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>',
        _tools(),
    )
    assert parsed.content == "Let me check."
    assert parsed.tool_calls[0]["name"] == "get_weather"
    assert parsed.tool_calls[0]["args"] == {"city": "Oslo"}
    assert parsed.tool_calls[0]["id"].startswith("call_")
    assert parsed.invalid_tool_calls == []


def test_parse_edge_cases():
    tools = _tools()
    assert parse_answer("Just text.", tools).tool_calls == []
    cut = parse_answer('<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2', tools)
    assert cut.tool_calls[0]["args"] == {"a": 1, "b": 2}  # closed what was cut off
    unknown = parse_answer('<tool_call>{"name": "fly", "arguments": {}}</tool_call>', tools)
    assert "unknown tool" in unknown.invalid_tool_calls[0]["error"]
    wrong = parse_answer(
        '<tool_call>{"name": "add", "arguments": {"a": "x", "b": 2}}</tool_call>', tools
    )
    assert (
        "must be ['integer']" in wrong.invalid_tool_calls[0]["error"]
        or "integer" in wrong.invalid_tool_calls[0]["error"]
    )
    extra = parse_answer(
        '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2, "c": 3}}</tool_call>', tools
    )
    assert extra.tool_calls == []  # an undeclared argument makes the call invalid
    assert extra.invalid_tool_calls[0]["error"] == "unknown argument 'c': it takes ['a', 'b']"
    missing = parse_answer('<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call>', tools)
    assert "missing required" in missing.invalid_tool_calls[0]["error"]
    garbage = parse_answer("<tool_call>not json at all</tool_call>", tools)
    assert garbage.invalid_tool_calls[0]["error"] == "not a JSON tool call"
    two = parse_answer(
        render_tool_call("add", {"a": 1, "b": 2}) + render_tool_call("get_weather", {"city": "x"}),
        tools,
    )
    assert [c["name"] for c in two.tool_calls] == ["add", "get_weather"]


def test_check_arguments_types_and_enums():
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "mode": {"type": "string", "enum": ["a", "b"]}},
        "required": ["n"],
        "additionalProperties": False,
    }
    assert check_arguments({"n": 1, "mode": "a"}, schema) is None
    assert "integer" in check_arguments({"n": True}, schema)
    assert "one of" in check_arguments({"n": 1, "mode": "c"}, schema)
    assert "unknown argument" in check_arguments({"n": 1, "x": 0}, schema)
    assert "object" in check_arguments([1], schema)


def test_tool_choice_forms_and_prefixes():
    tools = _tools()
    assert normalize_tool_choice(True) == "any"
    assert normalize_tool_choice({"type": "function", "function": {"name": "add"}}) == "add"
    assert answer_prefix(tools, "auto") == ""
    assert answer_prefix(tools, "add") == '<tool_call>{"name": "add", "arguments": {"a": '
    assert answer_prefix(tools, "any") == '<tool_call>{"name": "'
    assert answer_prefix(tools[:1], "required").endswith('"get_weather", "arguments": {"city": "')
    assert arguments_opening({"properties": {}}) == "{}"
    assert arguments_opening({"properties": {"x": {}}}) == "{"
    with pytest.raises(ValueError, match="names no bound tool"):
        answer_prefix(tools, "nope")
    assert "You must call a tool now." in describe_tools(tools, "any")
    assert RequestMode.from_kwargs({"tools": tools, "tool_choice": "none"}).tools == ()


def test_full_tool_loop_with_a_scripted_llm():
    chat, llm = _chat(
        [
            ' <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
            " It is sunny in Paris today.\n\nQuestion: more",
        ]
    )
    bound = chat.bind_tools([get_weather, add])
    question = HumanMessage("What's the weather in Paris?")
    first = bound.invoke([question])
    assert first.tool_calls == [
        {
            "name": "get_weather",
            "args": {"city": "Paris"},
            "id": first.tool_calls[0]["id"],
            "type": "tool_call",
        }
    ]
    assert first.response_metadata["finish_reason"] == "tool_calls"
    assert "</tool_call>" in llm.stops[-1]
    prompt = llm.prompts[-1]
    assert (
        "- get_weather(city: string, unit: string (optional)): Current weather for a city."
        in prompt
    )
    assert '"name": "example_calculator_tool"' in prompt  # the built-in tool-call demos
    assert '<tool_call>{"name": "add", "arguments": {"a": 7, "b": 12}}' in prompt  # bound
    result = ToolMessage(
        get_weather.invoke({"city": "Paris"}), tool_call_id=first.tool_calls[0]["id"]
    )
    final = bound.invoke([question, first, result])
    assert final.content == "It is sunny in Paris today."
    assert final.tool_calls == []
    prompt = llm.prompts[-1]
    assert prompt.index(
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    ) < prompt.index("Tool result from get_weather: sunny in Paris")
    assert prompt.endswith(
        "Question: Tool result from get_weather: sunny in Paris\n\nHere\u2019s an example answer:"
    )


def test_forced_tool_choice_fills_each_required_argument_in_turn():
    chat, llm = _chat(['2, "b": 3}}</tool_call>', "3}}"])
    message = chat.bind_tools([add, get_weather], tool_choice="add").invoke("two plus three")
    assert llm.prompts[0].endswith('answer: <tool_call>{"name": "add", "arguments": {"a": ')
    assert llm.prompts[1].endswith('answer: <tool_call>{"name": "add", "arguments": {"a": 2, "b": ')
    assert message.tool_calls[0]["args"] == {"a": 2, "b": 3}


def test_forced_any_of_several_tools_chooses_the_name_then_the_arguments():
    chat, llm = _chat(['get_weather", "arguments"', 'Oslo"}}'])
    message = chat.bind_tools([add, get_weather], tool_choice="any").invoke("weather in Oslo?")
    assert llm.prompts[0].endswith('answer: <tool_call>{"name": "')
    assert llm.prompts[1].endswith('{"name": "get_weather", "arguments": {"city": "')
    assert message.tool_calls[0]["name"] == "get_weather"
    assert message.tool_calls[0]["args"] == {"city": "Oslo"}  # optional unit left out


def test_invalid_call_is_reported_not_raised():
    chat, _ = _chat(['<tool_call>{"name": "add", "arguments": {"a": "two"}}</tool_call>'])
    message = chat.bind_tools([add]).invoke("add")
    assert message.tool_calls == []
    assert message.invalid_tool_calls[0]["name"] == "add"


def test_tool_choice_none_and_unknown_name():
    chat, llm = _chat(["plain answer"])
    message = chat.bind_tools([add], tool_choice="none").invoke("hi")
    assert message.content == "plain answer"
    assert "tool_call" not in llm.prompts[-1]
    with pytest.raises(ValueError, match="names no bound tool"):
        chat.bind_tools([add], tool_choice="multiply")


def test_stream_with_tools_yields_tool_call_chunks():
    chat, _ = _chat(['<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>'])
    chunks = list(chat.bind_tools([add]).stream("1+2"))
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.tool_calls[0]["args"] == {"a": 1, "b": 2}


def test_structured_output_pydantic_via_tool_call():
    chat, _ = _chat(['Ada Lovelace", "age": 36}}</tool_call>', "36}}"])
    person = chat.with_structured_output(Person).invoke("Who wrote the first program?")
    assert person == Person(name="Ada Lovelace", age=36)


def test_structured_output_retries_once_with_the_error_shown():
    chat, llm = _chat(['Ada"}}</tool_call>', "thirty-six", 'Ada"', "36"])
    person = chat.with_structured_output(Person).invoke("Who?")
    assert person.age == 36
    assert "could not be used" in llm.prompts[-1]


def test_structured_output_include_raw_reports_errors():
    chat, _ = _chat(["nothing useful"])
    result = chat.with_structured_output(Person, include_raw=True).invoke("Who?")
    assert result["parsed"] is None
    assert result["parsing_error"] is not None
    assert isinstance(result["raw"], AIMessage)


def test_structured_output_json_mode_typed_dict_and_json_schema():
    chat, llm = _chat(['Alien", "year": 1979}', "1979}"])
    movie = chat.with_structured_output(Movie, method="json_mode").invoke("A 1979 film?")
    assert movie == {"title": "Alien", "year": 1979}
    assert "Its keys: title: string, year: integer." in llm.prompts[-1]
    assert llm.prompts[0].endswith('answer: {"title": "')
    assert llm.prompts[1].endswith('answer: {"title": "Alien", "year": ')
    schema = {
        "title": "movie",
        "description": "A movie",
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
    }
    chat2, _ = _chat(['Heat"}}</tool_call>'])
    assert chat2.with_structured_output(schema).invoke("x") == {"title": "Heat"}


def test_profile_allows_agents():
    chat, _ = _chat(["x"], context_window=4096)
    assert chat.profile["tool_calling"] is True
    assert chat.profile["max_input_tokens"] == 4096


def test_create_agent_runs_a_tool_loop():
    from langchain.agents import create_agent

    chat, _ = _chat(
        [
            '<tool_call>{"name": "add", "arguments": {"a": 20, "b": 22}}</tool_call>',
            "The sum is 42.",
        ]
    )
    agent = create_agent(model=chat, tools=[add])
    result = agent.invoke({"messages": [HumanMessage("What is 20 + 22?")]})
    messages = result["messages"]
    assert [m.type for m in messages] == ["human", "ai", "tool", "ai"]
    assert json.loads(messages[2].content) == 42 or messages[2].content == "42"
    assert messages[-1].content == "The sum is 42."


def test_tool_without_parameters_is_called_without_generating_arguments():
    @tool
    def ping() -> str:
        """Check the service."""
        return "pong"

    chat, llm = _chat(["anything the model might add"])
    message = chat.bind_tools([ping], tool_choice="any").invoke("is it up?")
    assert llm.prompts[-1].endswith('<tool_call>{"name": "ping", "arguments": {}}')
    assert message.tool_calls[0]["name"] == "ping"
    assert message.tool_calls[0]["args"] == {}


def test_anthropic_style_tool_use_blocks_in_history_are_rendered_from_tool_calls():
    chat, llm = _chat(["done"])
    history = [
        HumanMessage("add 1 and 2"),
        AIMessage(
            content=[{"type": "tool_use", "id": "t1", "name": "add", "input": {"a": 1, "b": 2}}],
            tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "t1"}],
        ),
        ToolMessage("3", tool_call_id="t1"),
    ]
    chat.bind_tools([add]).invoke(history)
    assert (
        '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>' in llm.prompts[-1]
    )
    assert "Tool result from add: 3" in llm.prompts[-1]


def test_auto_call_of_an_unknown_tool_is_redone_with_the_name_constrained():
    chat, llm = _chat(
        ['Let me check. <tool_call>{"name": "weather", "arguments": {"city": "Oslo"}}', 'Oslo"}}'],
        max_tokens=64,
    )
    message = chat.bind_tools([get_weather]).invoke("weather in Oslo?")
    assert llm.prompts[1].endswith(
        'Let me check. <tool_call>{"name": "get_weather", "arguments": {"city": "'
    )
    assert message.content == "Let me check."
    assert message.tool_calls[0]["name"] == "get_weather"
    assert message.tool_calls[0]["args"] == {"city": "Oslo"}
    assert message.invalid_tool_calls == []


def test_auto_valid_call_and_plain_answer_take_one_generation():
    chat, llm = _chat(['<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>'])
    message = chat.bind_tools([add, get_weather]).invoke("1+2")
    assert message.tool_calls[0]["args"] == {"a": 1, "b": 2}
    assert len(llm.prompts) == 1
    chat, llm = _chat(["It is two."])
    assert chat.bind_tools([add]).invoke("hi").content == "It is two."
    assert len(llm.prompts) == 1


def test_tool_demos_of_the_current_step_sit_nearest_the_query():
    from langchain_icalign.defaults.builtin_demos import tool_demos

    demos = tool_demos()
    mode = RequestMode(tools=tuple(_tools()))
    asking = mode.demos(demos, [HumanMessage("What's the weather like in Paris right now?")])
    assert asking[-1].metadata["category"] == "tool_call"
    assert "weather" in asking[-1].prompt
    call = AIMessage(
        "", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}]
    )
    result = ToolMessage("light rain, 11 °C", tool_call_id="c1", name="get_weather")
    answering = mode.demos(demos, [HumanMessage("Weather in Paris?"), call, result])
    assert answering[-1].metadata["category"] == "tool_result"
    assert answering[-1].prompt.startswith("Tool result from example_weather_tool")
    fixed = [d for d in asking if d.metadata.get("source") != "bound_tool"]
    assert sorted(d.id for d in fixed) == sorted(d.id for d in demos)  # reordered, all kept
    bound = asking[len(fixed) :]  # two calls of each bound tool, nearest the question
    assert [d.metadata.get("source") for d in bound] == ["bound_tool"] * 4
    assert bound[-1].response.startswith('<tool_call>{"name": "get_weather"')
    forced = RequestMode(tools=tuple(_tools()), tool_choice="any")
    assert all(d.metadata["category"] != "tool_call" for d in forced.demos(demos))
    assert RequestMode().demos(demos, [result]) == ()


def test_tool_demos_come_after_the_retrieved_ones(store, demos):
    from langchain_icalign import AlignmentExampleSelector

    store.add_demos(demos)
    selector = AlignmentExampleSelector(store=store, token_counter=count_words, max_tokens=200)
    chat, llm = _chat(["plain"], selector=selector)
    chat.bind_tools([get_weather]).invoke("How do I water a cactus?")
    prompt = llm.prompts[-1]
    assert prompt.rindex("<tool_call>") > prompt.index(demos[0].prompt)
