"""Generation through any LangChain `BaseLLM` (a TGI or vLLM endpoint, a fake LLM, ...)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.language_models import BaseLLM

from langchain_icalign.errors import GenerationError
from langchain_icalign.generation import (
    Generation,
    GenerationBackend,
    GenerationParams,
    reading_chunks,
)
from langchain_icalign.stop_strings import StopStringFilter, truncate_answer, truncate_at_stop
from langchain_icalign.token_counting import TokenCounter, TokenCounterLike, as_token_counter

__all__ = ["LLMBackend", "approximate_token_count"]


def approximate_token_count(text: str) -> int:
    """About four characters a token: for LLMs whose tokenizer is not at hand."""
    return (len(text) + 3) // 4


class LLMBackend(GenerationBackend):
    """Runs a LangChain `BaseLLM` on the prompt, passing the stop strings through.

    The LLM's own settings govern sampling (temperature, max tokens): set them on the LLM.
    The answer is cut again at the first stop string in case the server ignores `stop`.

    Args:
        llm: The LLM.
        token_counter: Its tokenizer or a counting function; without one, token counts
            (budget, usage) are approximations of four characters a token.
        context_window: The model's context size, when known.
    """

    def __init__(
        self,
        llm: BaseLLM,
        token_counter: TokenCounterLike | None = None,
        context_window: int | None = None,
    ) -> None:
        self.llm = llm
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
        return {"stop": list(params.stop)} if params.stop else {}

    def generate(self, prompt: str, params: GenerationParams) -> Generation:  # noqa: D102
        try:
            raw = self.llm.invoke(prompt, **self._kwargs(params))
        except Exception as error:
            msg = f"generation failed in {self.model_name}: {error}"
            raise GenerationError(msg) from error
        text, _ = truncate_answer(raw, params.stop, params.answer_prefix, params.json_after)
        return Generation(text, self.count_tokens(prompt), self.count_tokens(raw), "stop")

    def stream(  # noqa: D102
        self, prompt: str, params: GenerationParams
    ) -> Iterator[str | Generation]:
        text_filter = StopStringFilter(params.stop)
        raw = ""
        chunks = self.llm.stream(prompt, **self._kwargs(params))
        with reading_chunks(self.model_name, chunks):
            for delta in chunks:
                raw += delta
                safe = text_filter.feed(delta)
                if safe:
                    yield safe
                if text_filter.stopped:
                    break
        rest = text_filter.flush()
        if rest:
            yield rest
        text, _ = truncate_at_stop(raw, params.stop)
        yield Generation(text, self.count_tokens(prompt), self.count_tokens(raw), "stop")
