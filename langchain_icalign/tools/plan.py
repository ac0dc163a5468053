"""How one answer is produced, decided once: plain text, under a grammar, or in guided steps.

Both sides of a call read the same `AnswerPlan`: the prompt side (the answer prefix the
prompt forces, which demos to show) and the generation side (`answer_steps`: one call, a
call the model started then completed, a tool chosen then filled, or a JSON object filled
field by field).

| tools / JSON                  | backend follows a grammar | otherwise                        |
| ----------------------------- | ------------------------- | -------------------------------- |
| none                          | "plain"                   | "plain"                          |
| tools, `"auto"`               | "grammar" (after the tag) | "auto_call" (botched call redone)|
| tools, one name forced        | "grammar" (name forced)   | "guided" (arguments), or "plain" |
| tools, `"any"`, several tools | "grammar"                 | "choose_call" (name, then args)  |
| JSON object (with schema)     | "grammar"                 | "guided" (fields), or "plain"    |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_icalign.tools.guided_object import GuidedObject, guided_fields

__all__ = ["AnswerPlan", "PlanKind", "forced_names", "function_of", "tool_names"]

PlanKind = Literal["plain", "grammar", "auto_call", "choose_call", "guided"]


def tool_names(tools: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """The bound tools' names, in order."""
    return tuple(t.get("function", t)["name"] for t in tools)


def function_of(tools: Sequence[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The function spec of the bound tool `name` (None: no such tool)."""
    for tool in tools:
        function = tool.get("function", tool)
        if function.get("name") == name:
            return function
    return None


def forced_names(tools: Sequence[dict[str, Any]], tool_choice: str | None) -> tuple[str, ...]:
    """The tools one of which must be called (empty when no call is forced)."""
    if not tools or tool_choice in (None, "auto", "none"):
        return ()
    if tool_choice in ("any", "required"):
        return tool_names(tools)
    return (tool_choice,)


@dataclass(frozen=True)
class AnswerPlan:
    """The way an answer is produced (see the module's table).

    Attributes:
        kind: "plain" (one free call), "grammar" (one call under the grammar), "auto_call"
            (a free call; a tool call it botches is redone), "choose_call" (the tool's name
            chosen among `forced`, then its arguments filled) or "guided" (one forced call's
            arguments, or a JSON object, filled field by field).
        forced: The tools one of which must be called.
        target: What "guided" fills.
    """

    kind: PlanKind
    forced: tuple[str, ...] = ()
    target: GuidedObject | None = None

    @classmethod
    def decide(
        cls,
        tools: Sequence[dict[str, Any]],
        tool_choice: str | None,
        json_schema: dict[str, Any] | None,
        *,
        json_mode: bool,
        constrained: bool,
    ) -> AnswerPlan:
        """The plan for a call's tools or JSON mode on a backend that is `constrained` or not.

        Args:
            tools: The bound tools (OpenAI dicts).
            tool_choice: One normalised tool choice, or None.
            json_schema: The JSON answer's schema, if any.
            json_mode: Whether the answer is a JSON object.
            constrained: Whether the backend decodes under a grammar.
        """
        forced = forced_names(tools, tool_choice)
        if constrained:
            return cls("grammar", forced)
        if tools and not forced:
            return cls("auto_call")
        if len(forced) > 1:
            return cls("choose_call", forced)
        target = None
        if forced:
            function = function_of(tools, forced[0])
            if function is not None:
                target = guided_fields(function.get("parameters", {}), closing="}}")
        elif json_mode and not tools and json_schema is not None:
            target = guided_fields(json_schema.get("parameters", json_schema), closing="}")
        return cls("guided" if target is not None else "plain", forced, target)

    @property
    def guided(self) -> bool:
        """Whether the answer takes several short generations (see `answer_steps`)."""
        return self.kind in ("auto_call", "choose_call", "guided")
