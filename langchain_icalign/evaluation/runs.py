"""Resumable runs over evaluation items and conditions: reference NLL, and generation."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import HumanMessage
from tqdm.auto import tqdm

from langchain_icalign.chat_models import ChatICAlign
from langchain_icalign.evaluation.jsonl_log import ResultLog
from langchain_icalign.evaluation.nll import answer_continuation, reference_nll
from langchain_icalign.evaluation.records import EvalItem

__all__ = ["GENERATION_KEY", "NLL_KEY", "item_seed", "run_generations", "run_reference_nll"]

NLL_KEY = ("item_id", "condition")
"""Key fields of reference-NLL results."""
GENERATION_KEY = ("item_id", "condition")
"""Key fields of generation results."""


def _model_and_tokenizer(chat: ChatICAlign) -> tuple[Any, Any]:
    backend = chat.backend
    model, tokenizer = getattr(backend, "model", None), getattr(backend, "tokenizer", None)
    if model is None or tokenizer is None:
        msg = (
            "the reference NLL needs a transformers model: give ChatICAlign a "
            f"HuggingFacePipeline (this one runs {type(backend).__name__})"
        )
        raise TypeError(msg)
    return model, tokenizer


def _pending(
    items: Sequence[EvalItem], conditions: Sequence[str], log: ResultLog
) -> list[tuple[EvalItem, str]]:
    return [
        (item, condition)
        for item in items
        for condition in conditions
        if not log.done((item.id, condition))
    ]


def _results(
    items: Sequence[EvalItem], conditions: Sequence[str], log: ResultLog
) -> list[dict[str, Any]]:
    wanted = {(item.id, condition) for item in items for condition in conditions}
    return [r for r in log.records() if (r["item_id"], r["condition"]) in wanted]


def run_reference_nll(
    chats: Mapping[str, ChatICAlign],
    items: Sequence[EvalItem],
    log: ResultLog,
    *,
    max_reference_tokens: int | None = None,
    show_progress: bool = True,
) -> list[dict[str, Any]]:
    """Score each item's reference answer under each condition's prompt.

    The prompt is exactly what the condition's `ChatICAlign` would send for the item
    (`prepare_prompt`, demos included); the reference follows it as the format places an
    answer. Each result is appended to `log` as soon as it is computed; results already
    there are skipped.

    Args:
        chats: Condition name to chat model (all on a `HuggingFacePipeline`).
        items: Items with reference answers.
        log: Results file keyed by `NLL_KEY`.
        max_reference_tokens: Score at most this many leading reference tokens.
        show_progress: Show a progress bar.

    Returns:
        The results of `items` × `chats`, old and new, as dicts with `item_id`,
        `condition`, `mean_nll`, `total_nll`, `tokens`, `prompt_tokens`, `truncated`,
        `demo_ids` and `constant_demos`.

    Raises:
        ValueError: For an item without a reference answer.
    """
    conditions = list(chats)
    missing = [item.id for item in items if not (item.reference or "").strip()]
    if missing:
        msg = f"items without a reference answer: {missing[:5]}"
        raise ValueError(msg)
    pending = _pending(items, conditions, log)
    for item, condition in tqdm(
        pending, desc="Reference NLL", unit="prompt", disable=not show_progress
    ):
        chat = chats[condition]
        model, tokenizer = _model_and_tokenizer(chat)
        prepared = chat.prepare_prompt(
            [HumanMessage(item.prompt)], max_new_tokens=max_reference_tokens
        )
        continuation = answer_continuation(chat.format, item.prompt, item.reference or "")
        result = reference_nll(
            model, tokenizer, prepared.text, continuation, max_tokens=max_reference_tokens
        )
        log.append(
            {
                "item_id": item.id,
                "condition": condition,
                **result.to_dict(),
                "demo_ids": [s.demo.id for s in prepared.demos],
                "constant_demos": len(prepared.constant_demos),
            }
        )
    return _results(items, conditions, log)


def item_seed(item_id: str, seed: int) -> int:
    """A sampling seed for one item: stable across runs, different between items."""
    return (zlib.crc32(item_id.encode()) + seed) % (2**31)


def run_generations(
    chats: Mapping[str, ChatICAlign],
    items: Sequence[EvalItem],
    log: ResultLog,
    *,
    max_new_tokens: int,
    seed: int = 0,
    show_progress: bool = True,
) -> list[dict[str, Any]]:
    """Generate an answer to each item under each condition, resumably.

    Sampling follows each chat's settings, seeded per item (`item_seed`), so a rerun
    reproduces the same answers.

    Args:
        chats: Condition name to chat model.
        items: The prompts.
        log: Results file keyed by `GENERATION_KEY`.
        max_new_tokens: Longest answer in tokens.
        seed: Base seed of the per-item seeds.
        show_progress: Show a progress bar.

    Returns:
        The results of `items` × `chats`, old and new, as dicts with `item_id`,
        `condition`, `text`, `finish_reason`, `output_tokens`, `prompt_tokens` and
        `demo_ids`.
    """
    conditions = list(chats)
    pending = _pending(items, conditions, log)
    bar = tqdm(pending, desc="Generation", unit="answer", disable=not show_progress)
    for item, condition in bar:
        message = chats[condition].invoke(
            [HumanMessage(item.prompt)],
            max_new_tokens=max_new_tokens,
            seed=item_seed(item.id, seed),
        )
        metadata = message.response_metadata
        usage: dict[str, Any] = dict(message.usage_metadata or {})
        log.append(
            {
                "item_id": item.id,
                "condition": condition,
                "text": message.text,
                "finish_reason": metadata.get("finish_reason"),
                "output_tokens": usage.get("output_tokens"),
                "prompt_tokens": metadata.get("prompt_tokens"),
                "demo_ids": [d["id"] for d in metadata.get("demos", [])],
            }
        )
    return _results(items, conditions, log)
