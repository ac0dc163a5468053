import json
import time

import pytest

from langchain_icalign.backends.base import Generation, GenerationParams
from langchain_icalign.backends.stop_strings import truncate_at_stop
from langchain_icalign.tools.guided_object import GuidedObject, generate_guided, guided_fields

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer"},
        "rating": {"type": "number"},
        "seen": {"type": "boolean"},
        "mood": {"type": "string", "enum": ["happy", "sad"]},
        "note": {"type": "string"},
    },
    "required": ["title", "year", "rating", "seen", "mood"],
}


class ScriptedSteps:
    """A backend `generate` that answers each step from a script and records the calls."""

    def __init__(self, *answers: str, reason: str = "stop", tokens: int = 2) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, GenerationParams]] = []
        self.reason = reason
        self.tokens = tokens

    def __call__(self, prompt: str, params: GenerationParams) -> Generation:
        self.calls.append((prompt, params))
        text = truncate_at_stop(self.answers[len(self.calls) - 1], params.stop)[0]
        return Generation(text, len(prompt), self.tokens, self.reason, cached_tokens=1)  # type: ignore[arg-type]


def test_fills_every_required_field_with_its_type_and_nothing_else():
    target = guided_fields(SCHEMA, closing="}")
    assert target is not None
    steps = ScriptedSteps('Alien", "extra": 1}', "1979 was the year", " 8.5,", "true}", 'sad"')
    result = generate_guided(steps, 'P {"title": "', GenerationParams(max_new_tokens=50), target)
    assert json.loads('{"title": "' + result.text) == {
        "title": "Alien",
        "year": 1979,
        "rating": 8.5,
        "seen": True,
        "mood": "sad",
    }
    prompts = [prompt for prompt, _ in steps.calls]
    assert prompts[1] == 'P {"title": "Alien", "year": '
    assert prompts[4].endswith('"seen": true, "mood": "')
    assert result.input_tokens == len(prompts[0])
    # Later steps re-read the first step's prompt from the cache: counted once, not 5 times.
    assert (result.output_tokens, result.cached_tokens, result.finish_reason) == (10, 1, "stop")


def test_each_step_is_constrained_to_its_type():
    target = guided_fields(SCHEMA, closing="}")
    assert target is not None
    steps = ScriptedSteps('a"', "1", "2", "false", 'happy"')
    generate_guided(steps, "P", GenerationParams(max_new_tokens=50, stop=("User:",)), target)
    params = [p for _, p in steps.calls]
    assert params[0].stop == ('"', "\n")
    assert params[0].starts_with_one_of == ()
    assert set(params[1].starts_with_one_of) == set("-0123456789")
    assert params[3].starts_with_one_of == ("true", "false")
    assert params[4].starts_with_one_of == ('happy"', 'sad"')
    assert all(p.json_after is None and p.answer_prefix == "" for p in params)


def test_the_token_budget_is_shared_out_and_never_exceeded():
    target = GuidedObject(
        fields=(("a", {"type": "string"}), ("b", {"type": "string"})), closing="}"
    )
    steps = ScriptedSteps('x"', 'y"', tokens=5)
    result = generate_guided(steps, "P", GenerationParams(max_new_tokens=12), target)
    assert [p.max_new_tokens for _, p in steps.calls] == [6, 7]
    assert result.output_tokens <= 12


def test_a_cut_string_is_still_closed_and_reported_as_length():
    target = GuidedObject(fields=(("a", {"type": "string"}),), closing="}}")
    steps = ScriptedSteps("say hi\\", reason="length")
    result = generate_guided(steps, "P", GenerationParams(max_new_tokens=4), target)
    assert json.loads('{"a": "' + result.text[:-1]) == {"a": "say hi"}
    assert result.finish_reason == "length"


def test_raw_control_characters_and_bad_escapes_become_valid_json():
    target = GuidedObject(fields=(("a", {"type": "string"}),), closing="}")
    steps = ScriptedSteps('tab\there \\q"')
    result = generate_guided(steps, "P", GenerationParams(), target)
    assert json.loads('{"a": "' + result.text) == {"a": "tab\there \\q"}


def test_a_number_that_is_not_one_is_left_for_the_checker_to_reject():
    target = GuidedObject(fields=(("n", {"type": "integer"}),), closing="}")
    result = generate_guided(ScriptedSteps("three"), "P", GenerationParams(), target)
    assert result.text == "three}"  # invalid JSON: reported as an invalid tool call


def test_timeout_stops_at_once():
    target = GuidedObject(
        fields=(("a", {"type": "string"}), ("b", {"type": "string"})), closing="}"
    )
    steps = ScriptedSteps('x"', 'y"', reason="timeout")
    result = generate_guided(steps, "P", GenerationParams(), target)
    assert len(steps.calls) == 1
    assert result.finish_reason == "timeout"


@pytest.mark.parametrize(
    "schema",
    [
        {"properties": {"a": {"type": "string"}}},  # nothing required
        {"properties": {"a": {"type": "array"}}, "required": ["a"]},
        {"properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}}, "required": ["a"]},
        {"properties": {"a": {"enum": [1, 2]}}, "required": ["a"]},
    ],
)
def test_schemas_guidance_cannot_fill_generate_freely(schema):
    assert guided_fields(schema, closing="}") is None


def test_the_steps_of_one_answer_share_one_timeout():
    from langchain_icalign.tools.answer_steps import generate_answer
    from langchain_icalign.tools.request_mode import RequestMode

    seen: list[float | None] = []

    def slow(prompt: str, params: GenerationParams) -> Generation:
        seen.append(params.timeout)
        time.sleep(0.05)
        return Generation('x"', 1, 1, "stop")

    schema = {
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["a", "b"],
    }
    mode = RequestMode(json_mode=True, json_schema=schema)
    result = generate_answer(mode, slow, "P", GenerationParams(timeout=0.08))
    assert seen[0] is not None
    assert seen[0] <= 0.08
    assert len(seen) == 2
    assert seen[1] is not None
    assert seen[1] < 0.04
    assert result.finish_reason == "stop"
    seen.clear()
    generate_answer(
        mode, slow, "P", GenerationParams(timeout=0.04)
    )  # the deadline passes after step 1
    assert len(seen) == 1


def test_unicode_values_pass_through_unescaped():
    target = GuidedObject(fields=(("name", {"type": "string"}),), closing="}")
    result = generate_guided(ScriptedSteps('こんにちは株式会社"'), "P", GenerationParams(), target)
    assert result.text == 'こんにちは株式会社"}'
