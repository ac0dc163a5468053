"""Constrained answers from engines that take a GBNF grammar per request."""

from langchain_icalign.backends.base import Generation, GenerationParams
from langchain_icalign.backends.grammar_requests import RETRY_TEMPERATURE, GrammarRequests
from langchain_icalign.tools.grammar import Grammar, call_grammar

WEATHER = {
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
FORCED = '{"name": "get_weather", "arguments": '
PREFIX = "<tool_call>" + FORCED


class Engine:
    """Answers from a list, recording each request's grammar and temperature."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []

    def run(self, prompt, params, gbnf):
        self.requests.append((prompt, params.temperature, gbnf))
        return Generation(self.answers.pop(0), 10, 5, "stop")

    def free_events(self, prompt, params):
        self.requests.append((prompt, params.temperature, None))
        text = self.answers.pop(0)
        yield from text
        yield Generation(text, 10, len(text), "stop")


def _requests(engine, takes_grammar=True):
    return GrammarRequests(engine.run, engine.free_events, lambda text: 10, takes_grammar)


def test_a_valid_answer_after_a_tag_and_forced_text_is_not_redone():
    engine = Engine(['{"city": "Oslo"}}'])
    grammar = Grammar(call_grammar([WEATHER]), forced=FORCED)
    params = GenerationParams(max_new_tokens=50, temperature=0, answer_prefix=PREFIX)
    result = _requests(engine).generate("p", params, grammar)
    assert result.text == '{"city": "Oslo"}}'
    assert len(engine.requests) == 1
    assert engine.requests[0][2].startswith("root ::=")


def test_an_answer_that_fails_its_grammar_is_redone_once_sampled():
    engine = Engine(['{"town": "Oslo"}}', '{"city": "Oslo"}}'])
    grammar = Grammar(call_grammar([WEATHER]), forced=FORCED)
    params = GenerationParams(max_new_tokens=50, temperature=0, answer_prefix=PREFIX)
    result = _requests(engine, takes_grammar=False).generate("p", params, grammar)
    assert result.text == '{"city": "Oslo"}}'
    assert [(t, g) for _, t, g in engine.requests] == [(0, None), (RETRY_TEMPERATURE, None)]
    assert result.output_tokens == 10


def test_under_auto_the_text_before_the_tag_is_free_and_the_call_constrained():
    engine = Engine(
        ["Sure. <tool_call> never read", '{"name": "get_weather", "arguments": {"city": "Oslo"}}']
    )
    grammar = Grammar(call_grammar([WEATHER]), after="<tool_call>")
    params = GenerationParams(max_new_tokens=100, temperature=0)
    result = _requests(engine).generate("p", params, grammar)
    assert result.text == 'Sure. <tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}'
    (free_prompt, _, free_grammar), (prompt, _, gbnf) = engine.requests
    assert (free_prompt, free_grammar) == ("p", None)
    assert prompt == "p" + "Sure. <tool_call>"
    assert gbnf.startswith("root ::=")
    # No tag: the free answer is the answer, one request.
    engine = Engine(["It is sunny."])
    assert _requests(engine).generate("p", params, grammar).text == "It is sunny."
    assert len(engine.requests) == 1
