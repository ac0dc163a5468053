"""Structured output for a base model: a forced tool call or a JSON answer, one retry."""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import (
    JsonOutputKeyToolsParser,
    JsonOutputParser,
    PydanticOutputParser,
    PydanticToolsParser,
)
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

__all__ = ["StructuredOutputMethod", "structured_output_runnable"]

StructuredOutputMethod = Literal["function_calling", "json_mode", "json_schema"]


def structured_output_runnable(
    model: BaseChatModel,
    schema: dict[str, Any] | type,
    *,
    method: StructuredOutputMethod = "function_calling",
    include_raw: bool = False,
) -> Runnable[LanguageModelInput, Any]:
    """`model` answering as `schema` (a Pydantic class, a TypedDict or a JSON schema).

    `function_calling` forces a call of a tool built from the schema; `json_mode` and
    `json_schema` ask for a JSON object (the schema is described in the system text). When
    the answer does not parse, the model is asked once more with the parser's error shown.

    Raises:
        ValueError: For an unknown method.
    """
    if method not in ("function_calling", "json_mode", "json_schema"):
        msg = f"method must be function_calling, json_mode or json_schema, got {method!r}"
        raise ValueError(msg)
    tool = convert_to_openai_tool(schema)
    name = tool["function"]["name"]
    pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    bound: Runnable[LanguageModelInput, BaseMessage]
    parser: Runnable[Any, Any]
    trace = {"kwargs": {"method": method}, "schema": schema}
    if method == "function_calling":
        bound = model.bind_tools([schema], tool_choice=name, ls_structured_output_format=trace)
        parser = (
            PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
            if pydantic
            else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
        )
    else:
        bound = model.bind(response_format={"type": "json_schema", "json_schema": tool["function"]})
        parser = (
            PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
            if pydantic
            else JsonOutputParser()
        )

    def parse(raw: AIMessage) -> Any:
        result = parser.invoke(raw)
        if result is None:
            msg = f"the answer has no {name} call: {raw.content!r} {raw.invalid_tool_calls}"
            raise ValueError(msg)
        return result

    def run(value: LanguageModelInput, config: RunnableConfig) -> Any:
        messages = model._convert_input(value).to_messages()
        raw = bound.invoke(messages, config)
        try:
            parsed, error = parse(raw), None  # type: ignore[arg-type]
        except Exception as first_error:
            retry = [
                *messages,
                raw,
                HumanMessage(
                    f"That answer could not be used ({first_error}). Answer again in the "
                    "required format only."
                ),
            ]
            raw = bound.invoke(retry, config)
            try:
                parsed, error = parse(raw), None  # type: ignore[arg-type]
            except Exception as second_error:
                if not include_raw:
                    raise
                parsed, error = None, second_error
        if include_raw:
            return {"raw": raw, "parsed": parsed, "parsing_error": error}
        return parsed

    return RunnableLambda(run, name=f"{type(model).__name__}StructuredOutput")
