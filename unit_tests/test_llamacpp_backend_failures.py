"""`LlamaCppBackend` failures: a decode error mid-stream, a refused completion."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from langchain_icalign import (
    GenerationError,
)
from langchain_icalign.backends.base import Generation, GenerationParams
from langchain_icalign.backends.llamacpp import LlamaCppBackend

from .conftest import (
    finishes,
)
from .test_llamacpp_backend import FakeLlama

APOS = "\u2019"


class _FailingLlama(FakeLlama):
    """Fails after a few tokens, like a llama.cpp decode error; `fail` turns it off."""

    fail = True

    def create_completion(self, prompt: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        chunks = super().create_completion(prompt, **kwargs)

        def failing() -> Iterator[dict[str, Any]]:
            for index, chunk in enumerate(chunks):
                if self.fail and index == 3:
                    raise RuntimeError("llama_decode returned -1")
                yield chunk

        return failing()


def test_failing_llamacpp_model_raises_generation_error_and_releases_the_lock() -> None:
    llm = _FailingLlama()
    backend = LlamaCppBackend(llm)
    params = GenerationParams(max_new_tokens=50, stop=("\nQuestion:",))
    with pytest.raises(GenerationError, match="llama_decode"):
        finishes(lambda: backend.generate("p", params))
    with pytest.raises(GenerationError, match="llama_decode"):
        finishes(lambda: list(backend.stream("p", params)))
    llm.fail = False
    result = finishes(lambda: backend.generate("p", params))
    assert isinstance(result, Generation)
    assert result.text.strip() == "The answer is 42."


class _RefusingLlama(FakeLlama):
    """Fails as soon as a completion is asked for (a bad prompt, an exhausted context)."""

    def create_completion(self, prompt: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        raise ValueError("Requested tokens exceed context window")


def test_llamacpp_failure_before_streaming_is_a_generation_error() -> None:
    backend = LlamaCppBackend(_RefusingLlama())
    params = GenerationParams(max_new_tokens=5)
    with pytest.raises(GenerationError, match="exceed context window"):
        finishes(lambda: backend.generate("p", params))
    with pytest.raises(GenerationError, match="exceed context window"):
        finishes(lambda: list(backend.stream("p", params)))
