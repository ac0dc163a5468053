"""The generation side of an `AnswerPlan`: one call, or several short steps on one prompt.

Steps share one deadline (the call's timeout) and, on a backend with `prefix_reuse`, the
prompt's states: each step reads the previous one's prompt from the prefix cache.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from langchain_icalign.backends.base import Generation, GenerationParams
from langchain_icalign.tools.guided_object import generate_guided, guided_fields
from langchain_icalign.tools.plan import function_of, tool_names
from langchain_icalign.tools.syntax import (
    CALL_NAME_OPEN,
    TOOL_CALL_OPEN,
    UNDECLARED_ARGUMENT,
    arguments_opening,
    call_after_name,
    parse_answer,
)

if TYPE_CHECKING:
    from langchain_icalign.tools.request_mode import RequestMode

__all__ = ["Generate", "choose_then_call", "generate_answer"]

Generate = Callable[[str, GenerationParams], Generation]
"""A backend's `generate`."""


def generate_answer(
    mode: RequestMode, generate: Generate, prompt: str, params: GenerationParams
) -> Generation:
    """The answer to `prompt` as `mode.plan` says: one call, or guided steps.

    Args:
        mode: The call's mode (its plan, tools and answer closing).
        generate: The backend's `generate`.
        prompt: The prompt, ending with the conversation's answer prefix.
        params: Params from `RequestMode.for_prompt`.
    """
    plan = mode.plan
    if plan.kind == "grammar":
        return mode.close(generate(prompt, params), params)
    generate = _sharing_timeout(generate, params.timeout)
    if plan.kind == "auto_call":
        return _complete_started_call(mode, generate, prompt, params)
    if plan.kind == "choose_call":
        return choose_then_call(mode.tools, generate, prompt, params, plan.forced)
    if plan.kind == "guided" and plan.target is not None:
        return generate_guided(generate, prompt, params, plan.target)
    return generate(prompt, params)


def choose_then_call(
    tools: tuple[dict[str, Any], ...],
    generate: Generate,
    prompt: str,
    params: GenerationParams,
    names: tuple[str, ...],
) -> Generation:
    """Pick the tool (decoding kept on the bound names), then fill its arguments.

    `prompt` ends where the call's name starts (`syntax.CALL_NAME_OPEN`).
    """
    if len(names) == 1:
        choice = Generation(names[0], 0, 0, "stop")  # nothing to choose
    else:
        choice = generate(
            prompt,
            dataclasses.replace(
                params,
                max_new_tokens=min(params.max_new_tokens, 24),
                stop=('"',),
                answer_prefix="",
                json_after=None,
                starts_with_one_of=tuple(f'{name}"' for name in names),
            ),
        )
    name = choice.text
    function = function_of(tools, name)
    opening = arguments_opening(function.get("parameters", {})) if function else "{"
    head = call_after_name(name) + opening + ("}" if opening == "{}" else "")
    budget = params.max_new_tokens - choice.output_tokens
    rest_params = dataclasses.replace(
        params,
        max_new_tokens=budget,
        answer_prefix=params.answer_prefix + head,
        starts_with_one_of=(),
    )
    target = (
        guided_fields(function.get("parameters", {}), closing="}}")
        if function is not None
        else None
    )
    if opening == "{}":
        rest = Generation("}", 0, 0, "stop")
    elif budget <= 0:  # the name took every token allowed: the arguments are cut off
        rest = Generation("", 0, 0, "length")
    elif target is None:
        rest = generate(prompt + head, rest_params)
    else:
        rest = generate_guided(generate, prompt + head, rest_params, target)
    return _joined(choice, head, rest)


def _complete_started_call(
    mode: RequestMode, generate: Generate, prompt: str, params: GenerationParams
) -> Generation:
    """With `tool_choice="auto"` the model decides whether to call; a call it botches is redone.

    A call it starts with an unknown tool or arguments that do not fit is generated again
    from its opening tag, the name constrained and the arguments guided, within what is
    left of the token budget. A call with arguments its tool does not declare is left
    invalid: redone, it would become a valid call the model did not write.
    """
    first = generate(prompt, params)
    cut = first.text.find(TOOL_CALL_OPEN)
    budget = params.max_new_tokens - first.output_tokens
    if cut < 0 or budget <= 0:
        return first
    parsed = parse_answer(mode.answer(first.text), mode.tools)
    if parsed.tool_calls and not parsed.invalid_tool_calls:
        return first
    if any(
        (call.get("error") or "").startswith(UNDECLARED_ARGUMENT)
        for call in parsed.invalid_tool_calls
    ):
        return first
    head = first.text[:cut] + TOOL_CALL_OPEN + CALL_NAME_OPEN
    rest_params = dataclasses.replace(
        params, max_new_tokens=budget, answer_prefix=params.answer_prefix + head
    )
    call = choose_then_call(
        mode.tools, generate, prompt + head, rest_params, tool_names(mode.tools)
    )
    return _joined(first, head, call)


def _joined(first: Generation, head: str, rest: Generation) -> Generation:
    """Two steps of one answer as one: `head` (text kept from `first`) followed by `rest`.

    The prompt, and how much of it came from the prefix cache, are the first step's that
    ran (a step skipped because nothing was left to choose reports none): `rest` reads that
    prompt again, from the cache, which is not a second prompt. Generated tokens add up;
    `rest` decides how the answer ended.
    """
    ran = first if first.input_tokens else rest
    return Generation(
        text=head + rest.text,
        input_tokens=ran.input_tokens,
        output_tokens=first.output_tokens + rest.output_tokens,
        finish_reason=rest.finish_reason,
        cached_tokens=ran.cached_tokens,
    )


def _sharing_timeout(
    generate: Callable[[str, GenerationParams], Generation], timeout: float | None
) -> Callable[[str, GenerationParams], Generation]:
    """`generate` with one deadline for all the steps of an answer, not one per step."""
    if timeout is None:
        return generate
    deadline = time.monotonic() + timeout

    def step(prompt: str, params: GenerationParams) -> Generation:
        left = deadline - time.monotonic()
        if left <= 0:
            return Generation("", 0, 0, "timeout")
        return generate(prompt, dataclasses.replace(params, timeout=left))

    return step
