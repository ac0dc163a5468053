"""Computing a long prompt's key/value states a chunk at a time, so a timeout bounds it.

`TransformersBackend` reads a prompt longer than one chunk here, checking the deadline (and
cancellation) between forward passes; near the deadline a pass is cut to what the pace so
far fits in the time left. Greedy answers are the same as with one pass.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import torch

from langchain_icalign.backends.transformers_support import expired

__all__ = ["MIN_PREFILL_CHUNK", "prefill_in_chunks"]

MIN_PREFILL_CHUNK = 32
"""Fewest prompt tokens in a pass cut short near the deadline."""


def prefill_in_chunks(
    model: Any,
    inputs: dict[str, torch.Tensor],
    cache: Any,
    start: int,
    *,
    chunk_tokens: int | None,
    forward_cache: str | None,
    logits_to_keep: bool,
    deadline: float | None,
    cancel: threading.Event | None,
) -> tuple[Any, bool]:
    """Compute the prompt's states from `start` a chunk at a time, checking the time.

    A prompt that fits one chunk is left to `generate`; a longer one is computed here up to
    its last token, which `generate` computes (it needs its logits). Near the deadline a
    chunk is cut to what the pace so far can compute in the time left (at least
    `MIN_PREFILL_CHUNK` tokens), so that the call ends closer to it.

    Args:
        model: The causal LM (called under `torch.inference_mode` by the caller).
        inputs: The prompt's `input_ids` (one row) and `attention_mask`.
        cache: The `DynamicCache` holding the prompt's first `start` tokens, or None.
        start: Prompt tokens already in `cache`.
        chunk_tokens: Most tokens per forward pass; None computes nothing here.
        forward_cache: The keyword the model's forward takes a cache by (None: it takes
            none, and nothing is computed here).
        logits_to_keep: Whether the forward pass takes `logits_to_keep`.
        deadline: A `time.monotonic()` value the call must end by, or None.
        cancel: Set when the call is cancelled.

    Returns:
        The cache (a new one when `cache` is None and the prompt is chunked), and whether
        the prompt is ready for decoding (False: the deadline passed, or the call was
        cancelled, before decoding could start).
    """
    ids = inputs["input_ids"]
    total = int(ids.shape[1])
    if chunk_tokens is None or forward_cache is None or total - start <= chunk_tokens:
        return cache, not expired(deadline, cancel)
    last = total - 1
    if cache is None:
        from transformers import DynamicCache

        cache = DynamicCache(config=model.config)
    mask = inputs.get("attention_mask")
    extra: dict[str, Any] = {"logits_to_keep": 1} if logits_to_keep else {}
    seconds_per_token: float | None = None
    while start < last:
        if expired(deadline, cancel):
            return cache, False
        began = time.monotonic()
        step = chunk_tokens
        if deadline is not None and seconds_per_token:
            fits = int((deadline - began) / seconds_per_token)
            step = max(MIN_PREFILL_CHUNK, min(chunk_tokens, fits))
        end = min(start + step, last)
        model(
            input_ids=ids[:, start:end],
            attention_mask=None if mask is None else mask[:, :end],
            use_cache=True,
            **{forward_cache: cache},
            **extra,
        )
        seconds_per_token = (time.monotonic() - began) / (end - start)
        start = end
    return cache, not expired(deadline, cancel)
