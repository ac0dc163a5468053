"""What one call asks for beyond plain text: tools, a forced tool, or a JSON answer.

`RequestMode` turns the call options LangChain passes (`tools`, `tool_choice`,
`response_format`) into changes to the conversation (tool descriptions in the system text,
a forced answer prefix), extra demos and stop strings, and back into a clean answer. Its
injection defences (`confirm_tools`, `injection_defences`) say how given text is made inert
and which parsed calls stand.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import (
    BaseMessage,
    HumanMessage,
    InvalidToolCall,
    ToolCall,
    ToolMessage,
)

from langchain_icalign.backends.base import Generation, GenerationBackend, GenerationParams
from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.formats import Conversation
from langchain_icalign.messages import message_text
from langchain_icalign.tools.answer_steps import generate_answer
from langchain_icalign.tools.call_guard import GuardedCalls, guard_tool_calls
from langchain_icalign.tools.grammar import Grammar, call_grammar, close_json, json_grammar
from langchain_icalign.tools.plan import AnswerPlan, function_of, tool_names
from langchain_icalign.tools.syntax import (
    CALL_NAME_OPEN,
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    answer_prefix,
    arguments_opening,
    bound_tool_demos,
    call_opening,
    describe_fields,
    describe_tools,
    name_in_cut_call,
    neutralize_tool_calls,
)

__all__ = ["JSON_INSTRUCTION", "RequestMode", "normalize_tool_choice"]

JSON_INSTRUCTION = "Answer with a single JSON object and nothing else."

# Options that shape the request and must not reach the backend as sampling options.
_CALL_OPTIONS = (
    "tools",
    "tool_choice",
    "response_format",
    "ls_structured_output_format",
    "confirm_tools",
    "injection_defences",
)


def normalize_tool_choice(tool_choice: Any) -> str | None:
    """One string (or None) for any of LangChain's tool_choice forms.

    The forms are "auto", "any", "required", "none", a tool name, a dict naming a
    function, and True (meaning "any").

    Raises:
        ValueError: For a form that names no tool choice.
    """
    if tool_choice is None or tool_choice is False:
        return None
    if tool_choice is True:
        return "any"
    if isinstance(tool_choice, str):
        return tool_choice
    if isinstance(tool_choice, dict):
        name = tool_choice.get("function", {}).get("name") or tool_choice.get("name")
        if isinstance(name, str):
            return name
    msg = f"unsupported tool_choice {tool_choice!r}"
    raise ValueError(msg)


@dataclass(frozen=True)
class RequestMode:
    """Tools bound to a call and how they must be used, or JSON mode.

    Attributes:
        tools: OpenAI tool dicts.
        tool_choice: One string from `normalize_tool_choice`, or None.
        json_mode: Whether the answer is a JSON object.
        json_schema: The schema of that object, if given.
        confirm_tools: Tools that may only be called when the user's latest message names
            them (`call_guard.names_tool`).
        injection_defences: Tool-call tags in given text broken, calls a tool result wrote
            refused, `confirm_tools` enforced. Off only to measure what they prevent.
        constrained: Whether the backend follows a grammar (`supports_grammar`): a tool
            call or JSON answer is then decoded under one in a single call, instead of
            guided field by field (`guided_object`).
    """

    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | None = None
    json_mode: bool = False
    json_schema: dict[str, Any] | None = None
    confirm_tools: tuple[str, ...] = ()
    injection_defences: bool = True
    constrained: bool = False

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any], *, constrained: bool = False) -> RequestMode:
        """Read (and remove) the call options from `kwargs`.

        Args:
            kwargs: The call's options; those of this mode are removed.
            constrained: Whether the backend follows grammars (see `constrained`).

        Raises:
            ValueError: When `confirm_tools` names a tool that is not bound.
        """
        options = {key: kwargs.pop(key) for key in _CALL_OPTIONS if key in kwargs}
        choice = normalize_tool_choice(options.get("tool_choice"))
        tools = tuple(options.get("tools") or ())
        if choice == "none":
            tools = ()
        confirm = tuple(options.get("confirm_tools") or ())
        names = [t.get("function", t)["name"] for t in tools]
        unknown = [name for name in confirm if name not in names]
        if tools and unknown:
            msg = f"confirm_tools names {unknown}, which are not bound; tools are {names}"
            raise ValueError(msg)
        response_format = options.get("response_format")
        json_mode = response_format in ("json", "json_object") or (
            isinstance(response_format, dict)
            and response_format.get("type") in ("json_object", "json_schema")
        )
        schema = None
        if isinstance(response_format, dict) and isinstance(
            response_format.get("json_schema"), dict
        ):
            schema = response_format["json_schema"]
        return cls(
            tools=tools,
            tool_choice=choice if tools else None,
            json_mode=json_mode,
            json_schema=schema,
            confirm_tools=confirm if tools else (),
            injection_defences=bool(options.get("injection_defences", True)),
            constrained=constrained and bool(tools or json_mode),
        )

    @property
    def streams_text(self) -> bool:
        """Whether the answer can be streamed as plain text."""
        return not self.tools and not self.json_mode

    @property
    def neutralize(self) -> Callable[[str], str] | None:
        """What makes message text unable to pose as a tool call (None: defences off)."""
        return neutralize_tool_calls if self.injection_defences else None

    def guard(
        self,
        tool_calls: Sequence[ToolCall],
        invalid_tool_calls: Sequence[InvalidToolCall],
        messages: Sequence[BaseMessage],
    ) -> GuardedCalls:
        """Parsed calls after the provenance and confirmation checks (`call_guard`)."""
        if not self.injection_defences:
            return GuardedCalls(list(tool_calls), list(invalid_tool_calls))
        return guard_tool_calls(tool_calls, invalid_tool_calls, messages, self.confirm_tools)

    @property
    def stop(self) -> tuple[str, ...]:
        """Extra stop strings: a tool call ends the answer."""
        return (TOOL_CALL_CLOSE,) if self.tools else ()

    @property
    def json_after(self) -> str | None:
        """Where the JSON object that ends the answer starts (None: no such object)."""
        if self.tools:
            return TOOL_CALL_OPEN
        return "" if self.json_mode else None

    def demos(
        self, tool_demos: Sequence[AlignmentDemo], messages: Sequence[BaseMessage] = ()
    ) -> tuple[AlignmentDemo, ...]:
        """Constant demos this mode needs (the tool-call demos when tools are bound).

        The demos of the step the conversation is at come last, nearest the query: answers
        to a tool result after a `ToolMessage`, calls otherwise (a small model copies the
        nearest demo's move). Under "auto", two demo calls of each bound tool
        (`tool_calling.bound_tool_demos`) are added; a forced call gets no call demos.
        """
        if not self.tools:
            return ()
        last = messages[-1] if messages else None
        step = "tool_result" if isinstance(last, ToolMessage) else "tool_call"
        words = _words(f"{message_text(last)} {getattr(last, 'name', '') or ''}") if last else set()
        if step == "tool_result":
            # A result is matched through the question that led to it too: the built-in
            # demos' tools are never the user's, so the name alone matches nothing.
            asked = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
            words |= _words(message_text(asked)) if asked is not None else set()

        def nearness(demo: AlignmentDemo) -> tuple[bool, int]:
            text = " ".join([demo.prompt, *(user for user, _ in demo.turns)])
            return demo.metadata.get("category") == step, len(_words(text) & words)

        fixed = tuple(sorted(tool_demos, key=nearness))
        if self.plan.forced:
            # The call is forced (its syntax, and its name when one fits, by the prompt):
            # a demo call would only lend the model values to copy.
            return tuple(d for d in fixed if d.metadata.get("category") != "tool_call")
        # The fixed demos (tools that are never bound) show the conversation's shape; calls
        # of the bound tools, built from their schemas, follow, the one nearest the question
        # last: a small model calls the tool of the nearest demo call.
        bound = tuple(sorted(bound_tool_demos(self.tools), key=nearness))
        if step == "tool_result":
            return (*bound, *fixed)
        return (*fixed, *bound)

    def shape(self, conversation: Conversation) -> Conversation:
        """Add tool descriptions or the JSON instruction, and any forced answer prefix."""
        if self.tools:
            system = describe_tools(self.tools, self.tool_choice)
            return dataclasses.replace(
                conversation,
                system="\n\n".join(p for p in (system, conversation.system) if p),
                answer_prefix=self._call_prefix(),
            )
        if self.json_mode:
            instruction, opening = JSON_INSTRUCTION, "" if self.constrained else "{"
            if self.json_schema is not None:
                parameters = self.json_schema.get("parameters", self.json_schema)
                fields = ", ".join(describe_fields(parameters))
                instruction += f" Its keys: {fields}."
                opening = "" if self.constrained else arguments_opening(parameters)
            return dataclasses.replace(
                conversation,
                system="\n\n".join(p for p in (conversation.system, instruction) if p),
                answer_prefix=opening,
            )
        return conversation

    def _call_prefix(self) -> str:
        """The forced start of the answer when tools are bound."""
        unconstrained = answer_prefix(self.tools, self.tool_choice)  # refuses unknown names
        if self.plan.kind != "grammar":
            return unconstrained
        if not self.plan.forced:
            return ""  # "auto": the model decides; the grammar takes over once a call opens
        return TOOL_CALL_OPEN + self._grammar_forced()

    def _grammar_forced(self) -> str:
        """The start of the call object the prompt writes (the name, when only one fits)."""
        names = self.plan.forced
        return call_opening(names[0]) if len(names) == 1 else CALL_NAME_OPEN

    def grammar(self) -> Grammar | None:
        """The grammar the answer follows (None: unconstrained, or nothing to constrain)."""
        if self.plan.kind != "grammar":
            return None
        if self.tools:
            names = self.plan.forced or tool_names(self.tools)
            functions = [f for f in (function_of(self.tools, n) for n in names) if f is not None]
            if not self.plan.forced:
                return Grammar(call_grammar(functions), after=TOOL_CALL_OPEN)
            return Grammar(call_grammar(functions), forced=self._grammar_forced())
        if self.json_mode:
            return Grammar(json_grammar(self._json_parameters()))
        return None

    def _json_parameters(self) -> dict[str, Any] | None:
        if self.json_schema is None:
            return None
        return self.json_schema.get("parameters", self.json_schema)

    def for_prompt(self, params: GenerationParams, conversation: Conversation) -> GenerationParams:
        """Generation params that end the answer where its tool call or JSON object closes."""
        return dataclasses.replace(
            params,
            answer_prefix=conversation.answer_prefix,
            json_after=self.json_after,
            grammar=self.grammar(),
        )

    def close(self, generation: Generation, params: GenerationParams) -> Generation:
        """A constrained answer the budget cut short, closed into a valid object.

        Under a grammar the answer follows its schema as far as it goes; when the token
        budget ran out first, open strings, arrays and objects are closed and required
        fields not reached are filled with the smallest values their schemas allow
        (`grammar.close_json`). The finish reason stays "length". An answer cut by the
        timeout is left as it is (invalid): values it never reached are not made up.
        """
        if self.plan.kind != "grammar" or generation.finish_reason != "length":
            return generation
        full = params.answer_prefix + generation.text
        if self.tools:
            head, marker, body = full.partition(TOOL_CALL_OPEN)
            if not marker:
                return generation
            closed = self._close_call(body.removesuffix(TOOL_CALL_CLOSE))
            if closed is None:
                return generation
            full = head + marker + closed
        else:
            closed = close_json(full, self._json_parameters())
            if closed is None:
                return generation
            full = closed
        if not full.startswith(params.answer_prefix):
            return generation
        return dataclasses.replace(generation, text=full[len(params.answer_prefix) :])

    def _close_call(self, body: str) -> str | None:
        """A whole call object for `body`, a call cut short (its tool found from the name)."""
        partial = name_in_cut_call(body)
        names = self.plan.forced or tool_names(self.tools)
        name = next((n for n in names if n == partial), None) or next(
            (n for n in names if n.startswith(partial)), names[0]
        )
        function = function_of(self.tools, name) or {}
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        prefix = call_opening(name)
        arguments = body[len(prefix) :] if body.startswith(prefix) else "{"
        closed = close_json(arguments or "{", parameters)
        if closed is None:
            closed = close_json("{", parameters)
        return f"{prefix}{closed}}}"

    @functools.cached_property
    def plan(self) -> AnswerPlan:
        """How the answer is produced (`plan.AnswerPlan`), for the prompt and generation alike."""
        return AnswerPlan.decide(
            self.tools,
            self.tool_choice,
            self.json_schema,
            json_mode=self.json_mode,
            constrained=self.constrained,
        )

    @property
    def guided(self) -> bool:
        """Whether the answer takes several short generations (see `answer_steps`)."""
        return self.plan.guided

    def generate(
        self, backend: GenerationBackend, prompt: str, params: GenerationParams
    ) -> Generation:
        """The answer to `prompt`, produced as `plan` says (see `answer_steps`).

        Args:
            backend: Generates; a guided answer's steps run on its `for_steps()`.
            prompt: The prompt, ending with the conversation's answer prefix.
            params: Params from `for_prompt`.
        """
        steps = backend.for_steps() if self.guided else backend
        return generate_answer(self, steps.generate, prompt, params)

    def answer(self, text: str) -> str:
        """The answer text to parse: a tool call gets back its closing tag."""
        if self.tools and TOOL_CALL_OPEN in text and not text.endswith(TOOL_CALL_CLOSE):
            return text + TOOL_CALL_CLOSE
        return text


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))
