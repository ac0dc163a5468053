"""Evaluation sets and demo pools read from JSON Lines files of id/prompt/response records."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from langchain_icalign.demos import AlignmentDemo

__all__ = ["EvalItem", "load_eval_items", "load_pool", "read_jsonl", "sample_items"]


@dataclass(frozen=True)
class EvalItem:
    """One evaluation prompt, with a reference answer when the set has one.

    Attributes:
        id: Stable identifier of the prompt (the cluster key of bootstrap intervals).
        prompt: The user's question.
        reference: An aligned reference answer, or None.
    """

    id: str
    prompt: str
    reference: str | None = None


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line of a JSON Lines file.

    Raises:
        FileNotFoundError: When the file does not exist.
        ValueError: For a line that is not UTF-8 text or not a JSON object (or nested
            too deeply to read), naming the file and line.
    """
    file = Path(path)
    with file.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                msg = f"{file}:{number}: not UTF-8 text (byte {error.start + 1} of the line)"
                raise ValueError(msg) from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                msg = f"{file}:{number}: invalid JSON ({error.msg})"
                raise ValueError(msg) from error
            except RecursionError:
                msg = f"{file}:{number}: JSON nested too deeply to read"
                raise ValueError(msg) from None
            if not isinstance(record, dict):
                msg = f"{file}:{number}: expected a JSON object, got {type(record).__name__}"
                raise ValueError(msg)
            yield number, record


def load_eval_items(
    path: str | Path,
    *,
    prompt_key: str = "prompt",
    response_key: str = "response",
    require_reference: bool = False,
) -> list[EvalItem]:
    """Read evaluation prompts (and reference answers) from a JSONL file.

    Records without an `id` get `line-<number>`.

    Args:
        path: The file.
        prompt_key: Field holding the prompt.
        response_key: Field holding the reference answer (may be null or absent).
        require_reference: Raise when a record has no reference answer.

    Raises:
        ValueError: For a record without a prompt, a duplicate id, or (with
            `require_reference`) a missing reference.
    """
    items: list[EvalItem] = []
    seen: set[str] = set()
    for number, record in read_jsonl(path):
        prompt = record.get(prompt_key)
        if not isinstance(prompt, str) or not prompt.strip():
            msg = f"{path}:{number}: no prompt in field {prompt_key!r}"
            raise ValueError(msg)
        reference = record.get(response_key)
        if reference is not None and not isinstance(reference, str):
            msg = f"{path}:{number}: field {response_key!r} must be a string or null"
            raise ValueError(msg)
        if require_reference and not (reference or "").strip():
            msg = f"{path}:{number}: no reference answer in field {response_key!r}"
            raise ValueError(msg)
        item_id = str(record.get("id") or f"line-{number}")
        if item_id in seen:
            msg = f"{path}:{number}: duplicate id {item_id!r}"
            raise ValueError(msg)
        seen.add(item_id)
        items.append(EvalItem(item_id, prompt, reference))
    return items


def load_pool(
    path: str | Path, *, prompt_key: str = "prompt", response_key: str = "response"
) -> list[AlignmentDemo]:
    """Read a demo pool; records without a usable answer are left out.

    The record's `id` becomes the demo id, so that reports can name the demos; `turns`
    (earlier `[user, assistant]` exchanges) and `metadata` are kept where present.

    Args:
        path: A JSONL file of prompt/response records.
        prompt_key: Field holding the prompt.
        response_key: Field holding the answer.
    """
    demos: list[AlignmentDemo] = []
    for _, record in read_jsonl(path):
        prompt, response = record.get(prompt_key), record.get(response_key)
        if not isinstance(prompt, str) or not isinstance(response, str):
            continue
        try:
            demos.append(
                AlignmentDemo(
                    prompt=prompt,
                    response=response,
                    id=str(record.get("id") or ""),
                    turns=[tuple(turn) for turn in record.get("turns") or []],
                    metadata=record.get("metadata") or {},
                )
            )
        except (ValidationError, TypeError, ValueError):  # blank fields, malformed turns
            continue
    return demos


def sample_items(items: Sequence[EvalItem], limit: int | None, seed: int = 0) -> list[EvalItem]:
    """A seeded random subset of `limit` items, kept in their original order.

    Args:
        items: All items.
        limit: How many to keep; None or more than there are keeps all.
        seed: Seed of the draw (the same seed always gives the same subset).
    """
    if limit is None or limit >= len(items):
        return list(items)
    if limit < 1:
        msg = f"limit must be at least 1, got {limit}"
        raise ValueError(msg)
    rng = random.Random(seed)  # noqa: S311 (a reproducible subset, not a secret)
    chosen = sorted(rng.sample(range(len(items)), limit))
    return [items[index] for index in chosen]
