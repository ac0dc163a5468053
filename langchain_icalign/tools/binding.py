"""`bind_tools`'s arguments checked and turned into the call options `RequestMode` reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_icalign.tools.request_mode import normalize_tool_choice

__all__ = ["tool_options"]


def tool_options(
    tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
    tool_choice: str | dict[str, Any] | bool | None,
    confirm_tools: Sequence[str] | None,
) -> dict[str, Any]:
    """The options to bind for `tools` (OpenAI dicts), the tool choice and `confirm_tools`.

    Raises:
        ValueError: When `tool_choice` or `confirm_tools` names a tool that is not bound.
    """
    formatted = [convert_to_openai_tool(tool) for tool in tools]
    choice = normalize_tool_choice(tool_choice)
    names = [tool["function"]["name"] for tool in formatted]
    if choice not in (None, "auto", "any", "required", "none", *names):
        msg = f"tool_choice {tool_choice!r} names no bound tool; tools are {names}"
        raise ValueError(msg)
    confirm = list(confirm_tools or ())
    unknown = [name for name in confirm if name not in names]
    if unknown:
        msg = f"confirm_tools names {unknown}, which are not bound; tools are {names}"
        raise ValueError(msg)
    options: dict[str, Any] = {"tools": formatted, "tool_choice": choice}
    if confirm:
        options["confirm_tools"] = confirm
    return options
