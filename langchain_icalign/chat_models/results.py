"""What a generation becomes for LangChain: messages and chunks, usage, metadata, profile."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LangSmithParams, ModelProfile
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables.config import run_in_executor

from langchain_icalign.backends.base import Generation, GenerationParams
from langchain_icalign.formats import PromptFormat
from langchain_icalign.prompting import PreparedPrompt
from langchain_icalign.tools.call_guard import REPEATS_ANSWERED_CALL
from langchain_icalign.tools.request_mode import RequestMode
from langchain_icalign.tools.syntax import parse_answer

if TYPE_CHECKING:
    from langchain_icalign.chat_models.base import ChatICAlign

__all__ = [
    "NO_MODEL",
    "as_chunk",
    "astream_chunks",
    "identifying_params",
    "ls_params",
    "merged_result",
    "message_for",
    "model_profile",
    "only_repeats",
    "out_of_time",
    "pickle_state",
    "plain",
    "response_metadata",
    "stream_chunks",
    "time_left",
    "timed_out",
    "usage",
]


NO_MODEL = (
    "ChatICAlign needs llm= (a HuggingFacePipeline or another LangChain BaseLLM) "
    "or backend= (a GenerationBackend)"
)


def identifying_params(chat: ChatICAlign, model_name: str) -> dict[str, Any]:
    """What identifies the chat model to LangChain (its LLM cache key among others)."""
    return {
        "model_name": model_name,
        "prompt_format": chat.format.name,
        "max_new_tokens": chat.max_new_tokens,
        "temperature": chat.temperature,
        "top_p": chat.top_p,
        "top_k": chat.top_k,
    }


def pickle_state(state: dict[Any, Any], given_backend: Any) -> dict[Any, Any]:
    """A chat model's pickled state, without its built backend (rebuilt on first use).

    A backend given as `backend=` (a loaded model, a client, locks) cannot be rebuilt.

    Raises:
        TypeError: For a chat model on a given backend.
    """
    if given_backend is not None:
        msg = (
            f"a ChatICAlign on a given backend ({type(given_backend).__name__}) "
            "cannot be pickled: the backend holds a loaded model, a client or locks; "
            "pickle its settings and build the chat model again where it is loaded"
        )
        raise TypeError(msg)
    private = {**(state.get("__pydantic_private__") or {}), "_backend": None}
    return {**state, "__pydantic_private__": private}


def time_left(params: GenerationParams, started: float) -> GenerationParams:
    """`params` whose timeout is what is left of the call's since `started`.

    A call's timeout counts from the call: retrieval and rendering use part of it.
    """
    if params.timeout is None:
        return params
    return dataclasses.replace(params, timeout=params.timeout - (time.monotonic() - started))


def out_of_time(params: GenerationParams) -> bool:
    """Whether the call's time ran out before generation."""
    return params.timeout is not None and params.timeout <= 0


def timed_out(prompt: PreparedPrompt) -> Generation:
    """The outcome of a call whose time ran out before generation: no text, "timeout"."""
    return Generation("", prompt.tokens, 0, "timeout")


def usage(generation: Generation) -> UsageMetadata:
    """Token usage; prompt tokens read from the prefix cache as `cache_read`."""
    result = UsageMetadata(
        input_tokens=generation.input_tokens,
        output_tokens=generation.output_tokens,
        total_tokens=generation.input_tokens + generation.output_tokens,
    )
    if generation.cached_tokens:
        result["input_token_details"] = {"cache_read": generation.cached_tokens}
    return result


def response_metadata(
    prompt: PreparedPrompt, generation: Generation, model_name: str, fmt: PromptFormat
) -> dict[str, Any]:
    """Finish reason, prompt format and tokens, and the demos the prompt held."""
    return {
        "model_name": model_name,
        "finish_reason": generation.finish_reason,
        "prompt_format": fmt.name,
        "prompt_tokens": prompt.tokens,
        "demos": [{"id": s.demo.id, "score": s.score, "tokens": s.tokens} for s in prompt.demos],
        "constant_demos": [d.id for d in prompt.constant_demos],
    }


def message_for(
    prompt: PreparedPrompt,
    generation: Generation,
    mode: RequestMode,
    model_name: str,
    fmt: PromptFormat,
) -> AIMessage:
    """The answer as an `AIMessage`: tool calls parsed and guarded, usage, metadata."""
    text = mode.answer(fmt.finalize(prompt.conversation.answer_prefix + generation.text))
    extra: dict[str, Any] = {}
    metadata = response_metadata(prompt, generation, model_name, fmt)
    if mode.tools:
        parsed = parse_answer(text, mode.tools)
        text = parsed.content
        guarded = mode.guard(parsed.tool_calls, parsed.invalid_tool_calls, prompt.messages)
        extra = {
            "tool_calls": guarded.tool_calls,
            "invalid_tool_calls": guarded.invalid_tool_calls,
        }
        if guarded.from_user_text:
            metadata["tool_calls_from_user_text"] = guarded.from_user_text
    if extra.get("tool_calls"):
        metadata["finish_reason"] = "tool_calls"
    return AIMessage(
        content=text, usage_metadata=usage(generation), response_metadata=metadata, **extra
    )


def only_repeats(message: AIMessage) -> bool:
    """Whether the answer is nothing but calls refused for repeating answered calls."""
    return (
        not message.tool_calls
        and not str(message.content).strip()
        and bool(message.invalid_tool_calls)
        and all(
            (c.get("error") or "").startswith(REPEATS_ANSWERED_CALL)
            for c in message.invalid_tool_calls
        )
    )


def plain(options: dict[str, Any]) -> dict[str, Any]:
    """Call options for a plain text answer (`tool_choice="none"`), the rest kept."""
    return {**options, "tool_choice": "none"}


def as_chunk(message: AIMessage) -> AIMessageChunk:
    """A whole answer (a tool call or JSON object) as the one last chunk of a stream."""
    return AIMessageChunk(
        content=message.content,
        usage_metadata=message.usage_metadata,
        response_metadata=message.response_metadata,
        tool_call_chunks=[
            tool_call_chunk(
                name=call["name"], args=json.dumps(call["args"]), id=call["id"], index=index
            )
            for index, call in enumerate(message.tool_calls)
        ],
        invalid_tool_calls=message.invalid_tool_calls,
        chunk_position="last",
    )


def _text_chunk(text: str, run_manager: CallbackManagerForLLMRun | None) -> ChatGenerationChunk:
    chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
    if run_manager is not None:
        run_manager.on_llm_new_token(text, chunk=chunk)
    return chunk


def stream_chunks(
    events: Iterator[str | Generation],
    prompt: PreparedPrompt,
    model_name: str,
    fmt: PromptFormat,
    run_manager: CallbackManagerForLLMRun | None = None,
) -> Iterator[ChatGenerationChunk]:
    """A backend's stream as chunks of settled text, then a last one with usage and metadata.

    Text is sent as the format settles it, so that the streamed answer is exactly the
    invoked one (`finalize` may drop trailing whitespace or URIAL's closing fence). The
    backend's stream is closed however this ends (so that decoding stops).
    """
    prefix, raw, sent = prompt.conversation.answer_prefix, "", ""
    try:
        for event in events:
            if isinstance(event, Generation):
                final = fmt.finalize(prefix + event.text)
                if final.startswith(sent) and len(final) > len(sent):
                    yield _text_chunk(final[len(sent) :], run_manager)
                yield ChatGenerationChunk(
                    message=AIMessageChunk(
                        content="",
                        usage_metadata=usage(event),
                        response_metadata=response_metadata(prompt, event, model_name, fmt),
                        chunk_position="last",
                    )
                )
                continue
            raw += event
            settled = fmt.settled(prefix + raw)
            if settled.startswith(sent) and len(settled) > len(sent):
                yield _text_chunk(settled[len(sent) :], run_manager)
                sent = settled
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def ls_params(
    chat: ChatICAlign, model_name: str, stop: list[str] | None, kwargs: dict[str, Any]
) -> LangSmithParams:
    """LangSmith's tracing parameters for a call."""
    params = LangSmithParams(
        ls_provider="icalign",
        ls_model_name=str(kwargs.get("model") or model_name),
        ls_model_type="chat",
        ls_temperature=kwargs.get("temperature", chat.temperature),
        ls_max_tokens=kwargs.get("max_tokens", kwargs.get("max_new_tokens", chat.max_new_tokens)),
    )
    stops = stop or chat.stop
    if stops:
        params["ls_stop"] = list(stops)
    return params


def model_profile(chat: ChatICAlign) -> ModelProfile:
    """What the chat model takes and gives (LangChain's `ModelProfile`)."""
    profile = ModelProfile(
        max_output_tokens=chat.max_new_tokens,
        text_inputs=True,
        text_outputs=True,
        image_inputs=False,
        audio_inputs=False,
        tool_calling=True,
        tool_choice=True,
        structured_output=False,
    )
    window = chat.context_window  # the model's own is known only once the backend is built
    if window is not None:
        profile["max_input_tokens"] = window
    return profile


def merged_result(chunks: Iterator[ChatGenerationChunk]) -> ChatResult:
    """A streamed answer (`invoke` with `streaming=True`) as one message."""
    merged, *rest = list(chunks)
    for chunk in rest:
        merged += chunk
    message = AIMessage(
        content=merged.message.content,
        usage_metadata=getattr(merged.message, "usage_metadata", None),
        response_metadata=merged.message.response_metadata,
    )
    return ChatResult(generations=[ChatGeneration(message=message)])


async def astream_chunks(
    iterator: Iterator[ChatGenerationChunk], run_manager: AsyncCallbackManagerForLLMRun | None
) -> AsyncIterator[ChatGenerationChunk]:
    """A sync stream read in LangChain's executor; closed (decoding stops) if left early."""
    try:
        while True:
            item = await run_in_executor(None, next, iterator, None)
            if item is None:
                break
            if run_manager is not None and item.text:
                await run_manager.on_llm_new_token(item.text, chunk=item)
            yield item
    finally:
        await run_in_executor(None, getattr(iterator, "close", lambda: None))
