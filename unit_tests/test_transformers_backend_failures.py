"""`TransformersBackend` at its limits: special-token text, EOS on the last token, a failing model."""

from __future__ import annotations

from typing import Any, cast

import pytest

from langchain_icalign import (
    GenerationError,
)
from langchain_icalign.backends.base import GenerationParams
from langchain_icalign.backends.transformers import TransformersBackend

from .conftest import (
    ScriptedLogits,
    finishes,
)

APOS = "\u2019"


def test_special_token_text_reaches_the_model_as_plain_text(
    tiny_lm: Any, byte_tokenizer: Any
) -> None:
    seen: list[list[int]] = []

    def record(input_ids: Any, scores: Any) -> Any:
        seen.append(input_ids[0].tolist())
        return scores

    backend = TransformersBackend(
        tiny_lm, byte_tokenizer, logits_processors=[cast("Any", record)], prefix_cache=False
    )
    backend.generate("a<eos>b<bos>c<pad>", GenerationParams(max_new_tokens=1, temperature=0))
    special = {
        byte_tokenizer.bos_token_id,
        byte_tokenizer.eos_token_id,
        byte_tokenizer.pad_token_id,
    }
    prompt_ids = seen[0]
    assert prompt_ids[0] == byte_tokenizer.bos_token_id  # the one BOS the tokenizer adds
    assert not special & set(prompt_ids[1:])
    assert len(prompt_ids) == 1 + len("a<eos>b<bos>c<pad>")


def test_eos_on_the_last_allowed_token_is_a_stop(tiny_lm: Any, byte_tokenizer: Any) -> None:
    backend = TransformersBackend(
        tiny_lm,
        byte_tokenizer,
        logits_processors=[cast("Any", ScriptedLogits(byte_tokenizer, "short"))],
    )
    result = backend.generate("x", GenerationParams(max_new_tokens=len("short") + 1))
    assert result.text == "short"
    assert result.finish_reason == "stop"


class _Boom:
    def __call__(self, input_ids: Any, scores: Any) -> Any:
        raise RuntimeError("kaboom")


def test_failing_model_stream_raises_and_never_hangs(tiny_lm: Any, byte_tokenizer: Any) -> None:
    backend = TransformersBackend(tiny_lm, byte_tokenizer, logits_processors=[cast("Any", _Boom())])
    params = GenerationParams(max_new_tokens=5)
    with pytest.raises(GenerationError, match="kaboom"):
        finishes(lambda: list(backend.stream("x", params)))
    # The lock is released: the next call (without the failing processor) runs.
    backend.logits_processors.clear()
    assert finishes(lambda: backend.generate("x", params)).output_tokens == 5
