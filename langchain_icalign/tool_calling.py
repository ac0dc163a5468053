"""Deprecated: moved to `langchain_icalign.tools.syntax`.

This path is removed in the next release.
"""

import warnings

from langchain_icalign.tools.syntax import (
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    TOOL_CALL_TAG,
    UNDECLARED_ARGUMENT,
    ParsedAnswer,
    answer_prefix,
    arguments_opening,
    bound_tool_demos,
    check_arguments,
    describe_fields,
    describe_tools,
    neutralize_tool_calls,
    opens_with_quote,
    parse_answer,
    render_tool_call,
    render_tool_result,
)

__all__ = [
    "TOOL_CALL_CLOSE",
    "TOOL_CALL_OPEN",
    "TOOL_CALL_TAG",
    "UNDECLARED_ARGUMENT",
    "ParsedAnswer",
    "answer_prefix",
    "arguments_opening",
    "bound_tool_demos",
    "check_arguments",
    "describe_fields",
    "describe_tools",
    "neutralize_tool_calls",
    "opens_with_quote",
    "parse_answer",
    "render_tool_call",
    "render_tool_result",
]

warnings.warn(
    "langchain_icalign.tool_calling is deprecated; import from langchain_icalign.tools.syntax",
    DeprecationWarning,
    stacklevel=2,
)
