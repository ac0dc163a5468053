"""Constrained decoding: make the answer start with one of a few given strings.

Used to keep a forced tool call on a bound tool's name: the answer, after the forced
`<tool_call>{"name": "`, must continue with `NAME", "arguments": {...` for one of the tools.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
from transformers import LogitsProcessor

__all__ = ["StartsWithOneOf", "vocabulary_strings"]

_VOCABULARIES: dict[tuple[int, int], dict[str, list[tuple[int, str]]]] = {}


def vocabulary_strings(tokenizer: Any) -> dict[str, list[tuple[int, str]]]:
    """Every token's text, grouped by its first character (cached per tokenizer)."""
    key = (id(tokenizer), len(tokenizer))
    cached = _VOCABULARIES.get(key)
    if cached is None:
        size = len(tokenizer)
        texts = tokenizer.batch_decode([[i] for i in range(size)], skip_special_tokens=True)
        cached = defaultdict(list)
        for token_id, text in enumerate(texts):
            if text:
                cached[text[0]].append((token_id, text))
        _VOCABULARIES[key] = cached
    return cached


class StartsWithOneOf(LogitsProcessor):
    """Allows only tokens that keep the generated text a prefix of one of `options`.

    Once the text has completed an option (or left every option, which the constraint
    prevents unless the tokenizer cannot spell an option), decoding is free again.

    Args:
        tokenizer: The model's tokenizer.
        options: Allowed beginnings of the answer.
        prompt_length: Prompt tokens before the answer.
    """

    def __init__(self, tokenizer: Any, options: Sequence[str], prompt_length: int) -> None:
        self.tokenizer = tokenizer
        self.options = tuple(o for o in options if o)
        self.prompt_length = prompt_length
        self.vocabulary = vocabulary_strings(tokenizer)

    def _allowed(self, text: str) -> set[int]:
        remaining = [o[len(text) :] for o in self.options if o.startswith(text) and o != text]
        if any(o == text or text.startswith(o) for o in self.options):
            return set()  # an option is complete
        allowed: set[int] = set()
        for rest in remaining:
            allowed.update(
                token_id
                for token_id, piece in self.vocabulary.get(rest[0], ())
                if rest.startswith(piece)
            )
        return allowed

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Mask every token that would leave all options."""
        for row in range(input_ids.shape[0]):
            generated = input_ids[row, self.prompt_length :]
            text = self.tokenizer.decode(generated, skip_special_tokens=True)
            allowed = self._allowed(text)
            if allowed:
                mask = torch.full_like(scores[row], float("-inf"))
                mask[list(allowed)] = 0.0
                scores[row] = scores[row] + mask
        return scores
