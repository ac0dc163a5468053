"""What the transformers backend needs to know of a model, and how it stops decoding.

`StopOnStrings` ends `generate` as soon as a stop string (or the end of the JSON object a
tool call or JSON answer is) appears in the decoded text, decoding only the last few tokens
per step; the other functions read what a model supports (a dynamic KV cache, the cache
keyword of its forward pass, `logits_to_keep`, its context window).
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Sequence
from typing import Any

import torch
from transformers import StoppingCriteria

from langchain_icalign.backends.base import GenerationParams
from langchain_icalign.backends.stop_strings import truncate_answer

__all__ = [
    "CACHE_KWARG",
    "StopOnStrings",
    "deadline_of",
    "expired",
    "forward_cache_kwarg",
    "model_context_window",
    "supports_dynamic_cache",
    "takes_logits_to_keep",
]


_CONTEXT_ATTRS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length")


class StopOnStrings(StoppingCriteria):
    """Stops a row once its generated text contains a stop string, or on cancellation.

    Each step decodes only the last few generated tokens (enough to hold the longest stop
    string), so the cost does not grow with the answer nor with the vocabulary, unlike
    transformers' `stop_strings`, whose set-up scans the whole vocabulary on every call.
    """

    def __init__(
        self,
        tokenizer: Any,
        stops: Sequence[str],
        prompt_length: int,
        cancel: threading.Event | None = None,
        answer_prefix: str = "",
        json_after: str | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.stops = tuple(s for s in stops if s)
        self.prompt_length = prompt_length
        self.cancel = cancel
        self.window = max((len(s) for s in self.stops), default=0) + 8
        self.answer_prefix = answer_prefix
        self.json_after = json_after
        self.finished_at: dict[int, int] = {}
        """Row -> tokens generated when its stop string (or JSON end) was found."""

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        """One flag per row: whether that row should stop."""
        if self.cancel is not None and self.cancel.is_set():
            return torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]
        flags = []
        length = input_ids.shape[1]
        for index, row in enumerate(input_ids):
            if index in self.finished_at:  # a finished row of a batch: only padding follows
                flags.append(True)
                continue
            tail = row[max(self.prompt_length, length - self.window) :]
            text = self.tokenizer.decode(tail, skip_special_tokens=True)
            done = any(stop in text for stop in self.stops)
            if not done and self.json_after is not None:
                # Tool calls and JSON answers are short: decoding all of it is cheap.
                answer = self.tokenizer.decode(row[self.prompt_length :], skip_special_tokens=True)
                done = truncate_answer(answer, (), self.answer_prefix, self.json_after)[1]
            if done:
                self.finished_at[index] = length - self.prompt_length
            flags.append(done)
        return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


def cache_kwarg() -> str:
    """The keyword `generate` takes a cache by.

    `cache` in recent transformers 5, else `past_key_values` (which recent versions still
    take, with a deprecation warning).
    """
    from transformers import GenerationMixin

    closure = getattr(GenerationMixin.generate, "__closure__", None) or ()
    names = {cell.cell_contents for cell in closure if isinstance(cell.cell_contents, str)}
    return "cache" if {"cache", "past_key_values"} <= names else "past_key_values"


def supports_dynamic_cache(model: Any) -> bool:
    """Whether `model.generate` takes a `DynamicCache` (most decoder-only models)."""
    if getattr(getattr(model, "config", None), "is_encoder_decoder", False):
        return False
    supports = getattr(model, "_supports_default_dynamic_cache", None)
    try:
        return bool(supports()) if callable(supports) else False
    except Exception:  # an unusual model class: do without the cache
        return False


def forward_cache_kwarg(model: Any) -> str | None:
    """The keyword the model's forward takes a cache by, or None when it names neither."""
    try:
        names = inspect.signature(model.forward).parameters
    except (AttributeError, TypeError, ValueError):
        return None
    return next((name for name in ("cache", "past_key_values") if name in names), None)


def takes_logits_to_keep(model: Any) -> bool:
    """Whether the model's forward pass takes `logits_to_keep` (only the last logits)."""
    try:
        return "logits_to_keep" in inspect.signature(model.forward).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def expired(deadline: float | None, cancel: threading.Event | None) -> bool:
    """Whether the deadline passed or the call was cancelled."""
    return (deadline is not None and time.monotonic() >= deadline) or (
        cancel is not None and cancel.is_set()
    )


def model_context_window(model: Any, tokenizer: Any) -> int | None:
    """The model's context size from its config (else the tokenizer's), when known."""
    config = getattr(model, "config", None)
    text_config = getattr(config, "text_config", None) or config
    for attr in _CONTEXT_ATTRS:
        value = getattr(text_config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 10_000_000 else None


CACHE_KWARG = cache_kwarg()


def deadline_of(started: float, params: GenerationParams) -> float | None:
    """When a call started at `started` must end (None: no timeout)."""
    return None if params.timeout is None else started + params.timeout
