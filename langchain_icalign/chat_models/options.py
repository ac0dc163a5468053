"""A call's options, checked as the constructor checks its arguments, as `GenerationParams`."""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from langchain_icalign.backends.base import GenerationParams

if TYPE_CHECKING:
    from langchain_icalign.chat_models.base import ChatICAlign
    from langchain_icalign.tools.request_mode import RequestMode

__all__ = ["CALL_OPTIONS", "LANGCHAIN_OPTIONS", "call_options", "generation_params"]

CALL_OPTIONS: dict[str, str] = {
    "max_new_tokens": "max_new_tokens",
    "max_tokens": "max_new_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "timeout": "timeout",
    "repetition_penalty": "repetition_penalty",
}
"""Generation options a call may override, and the `ChatICAlign` field each overrides.

Tool and output options (`tools`, `tool_choice`, `response_format`, ...) come from
`bind_tools` and `with_structured_output`."""

LANGCHAIN_OPTIONS = frozenset({"stream", "model"})
"""Read by LangChain itself (`stream=` by `BaseChatModel`, `model=` by its tracing)."""


@functools.cache
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    """A validator for one field of `model`, with the constructor's constraints."""
    field = model.model_fields[name]
    annotation: Any = field.annotation
    if field.metadata:
        annotation = Annotated[(annotation, *field.metadata)]
    return TypeAdapter(annotation)


def call_options(model: type[BaseModel], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's generation options, checked as `model`'s constructor checks its arguments.

    `kwargs` is what is left once `RequestMode.from_kwargs` took the tool and output
    options. None means "the model's setting".

    Raises:
        TypeError: For an option `ChatICAlign` does not know.
        ValueError: For a value the constructor would refuse (`temperature=-1`).
    """
    unknown = sorted(set(kwargs) - CALL_OPTIONS.keys() - LANGCHAIN_OPTIONS)
    if unknown:
        msg = (
            f"ChatICAlign got unexpected call option(s) {unknown}; it takes "
            f"{sorted(CALL_OPTIONS)} and stop=, and tools or output formats through "
            "bind_tools and with_structured_output"
        )
        raise TypeError(msg)
    options: dict[str, Any] = {}
    for key, value in kwargs.items():
        # `max_new_tokens` has its own check (`_max_new_tokens`), refusing True too.
        if key not in CALL_OPTIONS or value is None or CALL_OPTIONS[key] == "max_new_tokens":
            continue
        field = CALL_OPTIONS[key]
        try:
            options[field] = _field_adapter(model, field).validate_python(value)
        except ValidationError as error:
            reason = error.errors()[0]["msg"]
            msg = f"invalid call option {key}={value!r}: {reason}"
            raise ValueError(msg) from None
    return options


def _max_new_tokens(kwargs: dict[str, Any], default: int) -> int:
    """The call's `max_new_tokens` (or `max_tokens`), else `default`.

    Raises:
        ValueError: When the call's value is not a positive whole number.
    """
    for key in ("max_new_tokens", "max_tokens"):
        value = kwargs.get(key)
        if value is None:
            continue
        try:
            count = operator.index(value)
        except TypeError:
            count = 0
        if isinstance(value, bool) or count < 1:
            msg = f"{key} must be a positive whole number of tokens, got {value!r}"
            raise ValueError(msg)
        return count
    return default


def generation_params(
    chat: ChatICAlign, stop: list[str] | None, kwargs: dict[str, Any], mode: RequestMode
) -> GenerationParams:
    """The call's sampling and stopping: call options over the chat model's settings.

    Stop strings are the format's, the model's, the call's and the mode's (a tool call's
    closing tag), in that order, each once.
    """
    options = call_options(type(chat), kwargs)
    stops = [*chat.format.stop, *(chat.stop or []), *(stop or []), *mode.stop]
    return GenerationParams(
        max_new_tokens=_max_new_tokens(kwargs, chat.max_new_tokens),
        temperature=float(options.get("temperature", chat.temperature)),
        top_p=float(options.get("top_p", chat.top_p)),
        top_k=options.get("top_k", chat.top_k),
        seed=options.get("seed", chat.seed),
        stop=tuple(dict.fromkeys(stops)),
        timeout=options.get("timeout", chat.timeout),
        repetition_penalty=options.get("repetition_penalty", chat.repetition_penalty),
    )
