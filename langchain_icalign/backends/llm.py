"""Generation through any LangChain `BaseLLM` (a TGI or vLLM endpoint, a fake LLM, ...)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from langchain_core.language_models import BaseLLM

from langchain_icalign.backends.base import (
    FinishReason,
    Generation,
    GenerationBackend,
    GenerationParams,
    reading_chunks,
)
from langchain_icalign.backends.stop_strings import StopStringFilter, truncate_answer
from langchain_icalign.errors import GenerationError
from langchain_icalign.token_counting import TokenCounter, TokenCounterLike, as_token_counter

__all__ = ["LLMBackend", "approximate_token_count", "backend_for_llm", "cut_to_tokens"]


def approximate_token_count(text: str) -> int:
    """About four characters a token: for LLMs whose tokenizer is not at hand."""
    return (len(text) + 3) // 4


def cut_to_tokens(text: str, limit: int, count: TokenCounter) -> str:
    """The longest prefix of `text` that `count` puts at `limit` tokens or fewer."""
    if count(text) <= limit:
        return text
    low, high = 0, len(text)  # count(text[:low]) <= limit < count(text[:high])
    while high - low > 1:
        middle = (low + high) // 2
        if count(text[:middle]) <= limit:
            low = middle
        else:
            high = middle
    return text[:low]


class LLMBackend(GenerationBackend):
    """Runs a LangChain `BaseLLM` on the prompt, passing the stop strings through.

    The LLM's own settings govern sampling (temperature, max tokens): set them on the LLM.
    The answer is cut again at the first stop string in case the server ignores `stop`,
    and at `max_new_tokens` tokens (by the token counter) in case the LLM generates more;
    such an answer ends with finish reason "length".

    A `timeout` is checked before the call (no time left: no call, finish reason
    "timeout") and between streamed chunks (the stream stops, keeping the text so far).
    A blocking `invoke` is bounded only where the LLM's client takes a per-call timeout:
    name its keyword in `timeout_kwarg` (for example "timeout" for langchain-openai's
    `OpenAI`); a call that fails after the deadline then ends with "timeout" too.

    Args:
        llm: The LLM.
        token_counter: Its tokenizer or a counting function; without one, token counts
            (budget, usage) are approximations of four characters a token.
        context_window: The model's context size, when known.
        timeout_kwarg: The per-call keyword through which the LLM takes a timeout in
            seconds, or None when it takes none.
    """

    def __init__(
        self,
        llm: BaseLLM,
        token_counter: TokenCounterLike | None = None,
        context_window: int | None = None,
        timeout_kwarg: str | None = None,
    ) -> None:
        self.llm = llm
        self.timeout_kwarg = timeout_kwarg
        self.counter: TokenCounter = as_token_counter(
            token_counter if token_counter is not None else approximate_token_count
        )
        self.context_window = context_window
        self.model_name = str(
            getattr(llm, "model_id", None)
            or getattr(llm, "model_name", None)
            or getattr(llm, "model", None)
            or llm._llm_type
        )

    def count_tokens(self, text: str) -> int:  # noqa: D102
        return self.counter(text)

    def _kwargs(self, params: GenerationParams) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"stop": list(params.stop)} if params.stop else {}
        if self.timeout_kwarg is not None and params.timeout is not None:
            kwargs[self.timeout_kwarg] = params.timeout
        return kwargs

    def _result(self, prompt: str, text: str, raw: str, limit: int) -> Generation:
        """The answer and its usage, cut at `limit` tokens where the LLM went past it."""
        finish: FinishReason = "stop"
        if self.counter(text) > limit:
            text, finish = cut_to_tokens(text, limit, self.counter), "length"
        output = min(self.counter(raw), limit)
        return Generation(text, self.count_tokens(prompt), output, finish)

    def generate(self, prompt: str, params: GenerationParams) -> Generation:  # noqa: D102
        deadline = _deadline(params)
        if _passed(deadline):
            return Generation("", self.count_tokens(prompt), 0, "timeout")
        try:
            raw = self.llm.invoke(prompt, **self._kwargs(params))
        except Exception as error:
            if _passed(deadline):  # the client's own timeout, or a failure past the deadline
                return Generation("", self.count_tokens(prompt), 0, "timeout")
            msg = f"generation failed in {self.model_name}: {error}"
            raise GenerationError(msg) from error
        text, _ = truncate_answer(raw, params.stop, params.answer_prefix, params.json_after)
        return self._result(prompt, text, raw, params.max_new_tokens)

    def stream(  # noqa: D102
        self, prompt: str, params: GenerationParams
    ) -> Iterator[str | Generation]:
        deadline = _deadline(params)
        if _passed(deadline):
            yield Generation("", self.count_tokens(prompt), 0, "timeout")
            return
        text_filter = StopStringFilter(params.stop)
        raw, shown, limit = "", "", params.max_new_tokens
        finish: FinishReason | None = None
        chunks = self.llm.stream(prompt, **self._kwargs(params))
        with reading_chunks(self.model_name, chunks):
            for delta in chunks:
                raw += delta
                safe = text_filter.feed(delta)
                if safe and self.counter(shown + safe) > limit:
                    safe, finish = (
                        cut_to_tokens(shown + safe, limit, self.counter)[len(shown) :],
                        "length",
                    )
                if safe:
                    shown += safe
                    yield safe
                if finish is not None or text_filter.stopped:
                    break
                if _passed(deadline):
                    finish = "timeout"
                    break
        if finish is None:
            rest = text_filter.flush()
            if rest and self.counter(shown + rest) > limit:
                rest, finish = (
                    cut_to_tokens(shown + rest, limit, self.counter)[len(shown) :],
                    "length",
                )
            if rest:
                shown += rest
                yield rest
        output = min(self.counter(raw), limit)
        yield Generation(shown, self.count_tokens(prompt), output, finish or "stop")


def _deadline(params: GenerationParams) -> float | None:
    return None if params.timeout is None else time.monotonic() + params.timeout


def _passed(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def backend_for_llm(
    llm: BaseLLM, token_counter: TokenCounterLike | None = None, context_window: int | None = None
) -> GenerationBackend:
    """The backend for a LangChain LLM (nothing is loaded).

    A `HuggingFacePipeline`'s model and tokenizer run through transformers directly
    (`TransformersBackend`); any other LLM as it is (`LLMBackend`).

    Args:
        llm: The base LLM.
        token_counter: Tokenizer or counter for a non-transformers LLM.
        context_window: The model's context size, when given (else the model's own).
    """
    pipeline = getattr(llm, "pipeline", None)
    if pipeline is not None and hasattr(pipeline, "model") and hasattr(pipeline, "tokenizer"):
        # Imported here: torch and transformers load only for a transformers model.
        from langchain_icalign.backends.transformers import TransformersBackend

        backend: GenerationBackend = TransformersBackend(
            pipeline.model, pipeline.tokenizer, getattr(llm, "model_id", None)
        )
    else:
        backend = LLMBackend(llm, token_counter, context_window)
    if context_window is not None:
        backend.context_window = context_window
    return backend
