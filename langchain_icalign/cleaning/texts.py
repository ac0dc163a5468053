"""The texts of a demo that cleaning compares, and how they are normalised for exact matching."""

from __future__ import annotations

import re
import unicodedata

from langchain_icalign.demos import AlignmentDemo, normalize_text

__all__ = ["demo_messages", "match_key", "user_messages"]

_NOT_WORD = re.compile(r"[^\w\s]+")
_SPACE = re.compile(r"\s+")


def match_key(text: str) -> str:
    """Text normalised for matching: NFKC, case-folded, punctuation dropped, spaces collapsed."""
    text = unicodedata.normalize("NFKC", normalize_text(text)).casefold()
    return _SPACE.sub(" ", _NOT_WORD.sub(" ", text)).strip()


def demo_messages(demo: AlignmentDemo) -> list[str]:
    """All of a demo's messages: its earlier turns, then its prompt and response."""
    texts = [text for turn in demo.turns for text in turn]
    return [*texts, demo.prompt, demo.response]


def user_messages(demo: AlignmentDemo) -> list[str]:
    """A demo's user messages: those of its earlier turns, then its prompt."""
    return [*(user for user, _ in demo.turns), demo.prompt]
