"""Token counters: a callable or a Hugging Face tokenizer, with a stable identity for caches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

__all__ = ["TokenCounter", "TokenCounterLike", "as_token_counter", "plain_token_ids"]


@runtime_checkable
class _Encodes(Protocol):
    def encode(self, text: str, *args: Any, **kwargs: Any) -> list[int]: ...


TokenCounterLike = Callable[[str], int] | Any
"""A `Callable[[str], int]`, a tokenizer with `encode`, or a `TokenCounter`."""


class TokenCounter:
    """Counts tokens of text, and names itself so cached counts are per tokenizer.

    Args:
        count: The counting function.
        key: An identity for caches: two counters with one key must count alike.
    """

    def __init__(self, count: Callable[[str], int], key: str) -> None:
        self._count = count
        self.key = key

    def __call__(self, text: str) -> int:
        """Number of tokens in `text` (no special tokens added)."""
        return self._count(text)

    def __repr__(self) -> str:
        return f"TokenCounter(key={self.key!r})"


def _tokenizer_key(tokenizer: Any) -> str:
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    size = len(tokenizer) if hasattr(tokenizer, "__len__") else "?"
    return f"tokenizer:{type(tokenizer).__name__}:{name}:{size}"


def as_token_counter(counter: TokenCounterLike) -> TokenCounter:
    """Wrap a tokenizer or a callable as a `TokenCounter`.

    A tokenizer counts with `encode(text, add_special_tokens=False)` and
    `split_special_tokens=True` where supported, so that text that merely looks like a
    special token counts as the plain text it is.

    Raises:
        TypeError: When `counter` is neither callable nor has `encode`.
    """
    if isinstance(counter, TokenCounter):
        return counter
    if isinstance(counter, _Encodes) and not isinstance(counter, type):
        tokenizer = counter

        def count(text: str) -> int:
            try:
                ids = tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)
            except TypeError:
                ids = tokenizer.encode(text)
            return len(ids)

        return TokenCounter(count, _tokenizer_key(tokenizer))
    if callable(counter):
        name = getattr(counter, "__qualname__", type(counter).__name__)
        return TokenCounter(counter, f"callable:{name}:{id(counter)}")
    msg = (
        "token_counter must be a Callable[[str], int] or a tokenizer with an `encode` method, "
        f"got {type(counter).__name__}"
    )
    raise TypeError(msg)


def plain_token_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of `text` without special tokens; special-token text is read as plain text."""
    try:
        ids = tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)
    except TypeError:  # a tokenizer without split_special_tokens
        ids = tokenizer.encode(text)
    return list(ids)
