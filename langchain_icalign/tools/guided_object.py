"""Fill a forced JSON object field by field, so a small base model cannot leave one out.

Used only on backends that cannot follow a grammar (`GenerationBackend.supports_grammar`
False: `LLMBackend`, `LlamaCppBackend`); the transformers backend decodes the whole object
under a JSON-schema grammar instead (`grammar`, `grammar_decoding`).

A forced tool call or a JSON-schema answer is only useful when every required field is
there with the right type. Left to itself a 270M-parameter model often closes the object
early, adds keys of its own or writes prose where a number goes. Here the keys and the
punctuation are written by us; the model writes only each value, in its own short
generation that ends where the value ends:

- strings end at their closing quote (or a raw line break, which JSON strings cannot hold);
- numbers and booleans must start as one (enforced where the backend constrains
  decoding) and end at the next `,`, `}` or line break;
- enums must be one of their values.

Each step is a backend call on the prompt so far; the transformers backend's prefix cache
makes every step after the first compute only the few new tokens. Fields of other types
(arrays, objects, unions) are left to free generation of the rest of the object, as
without guidance.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from langchain_icalign.backends.base import FinishReason, Generation, GenerationParams
from langchain_icalign.tools.syntax import opens_with_quote

__all__ = ["GuidedObject", "generate_guided", "guided_fields"]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"-?\d+")
_SCALAR_STOPS = (",", "}", "\n")
_GUIDED_TYPES = ("string", "integer", "number", "boolean")


@dataclass(frozen=True)
class GuidedObject:
    """A JSON object to fill, as the prompt leaves it.

    Attributes:
        fields: Required fields in order, `(name, schema)`; the prompt already ends with
            the first one's key (and its opening quote when it is a string, as
            `arguments_opening` writes it).
        closing: What closes the object and anything around it (`"}}"` for a tool call's
            arguments inside the call object, `"}"` for a bare object).
    """

    fields: tuple[tuple[str, dict[str, Any]], ...]
    closing: str


def _kind(spec: dict[str, Any]) -> str | None:
    if "enum" in spec:
        return "enum" if opens_with_quote(spec) else None
    kind = spec.get("type")
    return kind if kind in _GUIDED_TYPES else None


def guided_fields(parameters: dict[str, Any], closing: str) -> GuidedObject | None:
    """The object to fill for a JSON object schema, or None when guidance cannot help.

    Guidance needs required fields, and the required fields must be strings, numbers,
    booleans or string enums; other schemas generate freely.
    """
    properties = parameters.get("properties", {})
    required = [name for name in parameters.get("required", []) if name in properties]
    if not required:
        return None
    fields = tuple((name, properties[name]) for name in required)
    if any(not isinstance(spec, dict) or _kind(spec) is None for _, spec in fields):
        return None
    return GuidedObject(fields=fields, closing=closing)


def _opening(spec: dict[str, Any]) -> str:
    return '"' if opens_with_quote(spec) else ""


def _string_value(text: str) -> str:
    """Generated string contents as valid JSON string contents."""
    if (len(text) - len(text.rstrip("\\"))) % 2:
        text = text[:-1]  # the stop cut an escaped quote in half
    try:
        json.loads(f'"{text}"')
    except json.JSONDecodeError:
        return json.dumps(text, ensure_ascii=False)[1:-1]  # raw text: escape it
    return text


def _scalar_value(text: str, kind: str) -> str:
    """A number or boolean's JSON text, or the raw text when it is none (left invalid)."""
    text = text.strip()
    if kind == "boolean":
        return next((b for b in ("true", "false") if text.startswith(b)), text)
    match = (_INTEGER if kind == "integer" else _NUMBER).match(text)
    return match.group(0) if match else text


def _step_params(params: GenerationParams, spec: dict[str, Any], budget: int) -> GenerationParams:
    kind = _kind(spec)
    base = replace(params, max_new_tokens=budget, answer_prefix="", json_after=None)
    if kind == "string":
        return replace(base, stop=('"', "\n"), starts_with_one_of=())
    if kind == "enum":
        options = tuple(json.dumps(v, ensure_ascii=False)[1:] for v in spec["enum"])
        return replace(base, stop=('"', "\n"), starts_with_one_of=options)
    if kind == "boolean":
        return replace(base, stop=_SCALAR_STOPS, starts_with_one_of=("true", "false"))
    digits = tuple("-0123456789")
    return replace(base, stop=_SCALAR_STOPS, starts_with_one_of=digits)


@dataclass
class _Totals:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cut: bool = False
    timed_out: bool = False
    steps: int = 0

    def add(self, generation: Generation) -> None:
        # Later steps read the first step's prompt again (from the prefix cache): the
        # prompt and its cached part are counted once, as the first step read them.
        if not self.steps:
            self.input_tokens = generation.input_tokens
            self.cached_tokens = generation.cached_tokens
        self.steps += 1
        self.output_tokens += generation.output_tokens
        self.cut |= generation.finish_reason == "length"
        self.timed_out |= generation.finish_reason == "timeout"


def generate_guided(
    generate: Callable[[str, GenerationParams], Generation],
    prompt: str,
    params: GenerationParams,
    target: GuidedObject,
) -> Generation:
    """Generate the object's values one by one; the result reads as one answer.

    The returned text is what follows `prompt`, as if the model had written it all: each
    value, the keys and punctuation between them, and `target.closing`. Generated tokens
    add up the steps; `input_tokens` and `cached_tokens` are the first step's (the prompt,
    which later steps read again from the cache). `max_new_tokens` is shared out among the
    fields still to write, so the whole answer stays within it. The finish reason is
    "length" when a value was cut short (it is still closed, so the object parses) or the
    budget ran out before the last field (the object is closed without the rest),
    "timeout" when a step timed out.

    Args:
        generate: The backend's `generate`.
        prompt: The prompt, ending with the first field's key (see `GuidedObject`).
        params: The call's params; its stop strings and JSON settings are replaced per step.
        target: The fields to fill.
    """
    totals = _Totals()
    answer = ""
    remaining = params.max_new_tokens
    for index, (name, spec) in enumerate(target.fields):
        if remaining <= 0:  # no token left to write a value with
            totals.cut = True
            break
        if index:
            answer += f", {json.dumps(name, ensure_ascii=False)}: {_opening(spec)}"
        budget = max(1, remaining // (len(target.fields) - index))
        step = generate(prompt + answer, _step_params(params, spec, budget))
        totals.add(step)
        remaining = max(0, remaining - step.output_tokens)
        kind = _kind(spec)
        if kind in ("string", "enum"):
            answer += _string_value(step.text) + '"'
        else:
            answer += _scalar_value(step.text, kind or "")
        if totals.timed_out:
            break
    answer += target.closing
    reason: FinishReason = "timeout" if totals.timed_out else "length" if totals.cut else "stop"
    return Generation(
        text=answer,
        input_tokens=totals.input_tokens,
        output_tokens=totals.output_tokens,
        finish_reason=reason,
        cached_tokens=totals.cached_tokens,
    )
