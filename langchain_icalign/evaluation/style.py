"""Output-style statistics of answers: length, lists, leaked markers, empties, cut-offs."""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from langchain_icalign.formats import COMMON_SPECIAL_TOKENS

__all__ = [
    "DEFAULT_LEAK_MARKERS",
    "AnswerStyle",
    "StyleStats",
    "answer_style",
    "style_stats",
]

_LIST_ITEM = re.compile(r"(?m)^[ \t]*(?:[-*•+]|\d{1,3}[.)])[ \t]+\S")


def _line_start(marker: str) -> re.Pattern[str]:
    return re.compile(r"(?m)^[ \t]*" + re.escape(marker))


DEFAULT_LEAK_MARKERS: dict[str, re.Pattern[str]] = {
    "Question:": _line_start("Question:"),
    "Answer:": _line_start("Answer:"),
    "Here's an example answer": re.compile(r"Here[’']s an example answer"),
    "# Query": _line_start("# Query"),
    "# Answer": _line_start("# Answer"),
    "# Instruction": _line_start("# Instruction"),
    **{token: re.compile(re.escape(token)) for token in COMMON_SPECIAL_TOKENS},
}
"""Prompt-format markers and special tokens that should never appear in an answer: the
markers of Han's, the zero-shot and the URIAL formats (at a line start where they open a
block), and the special tokens of common model families."""


@dataclass(frozen=True)
class AnswerStyle:
    """Style features of one answer.

    Attributes:
        words: Whitespace-separated words.
        has_list: Whether it has a bulleted or numbered list item.
        leaked_markers: Format markers or special tokens found in it.
        empty: Whether it is blank.
        hit_limit: Whether generation stopped at the token limit (None when unknown).
    """

    words: int
    has_list: bool
    leaked_markers: tuple[str, ...]
    empty: bool
    hit_limit: bool | None


def answer_style(
    text: str,
    finish_reason: str | None = None,
    *,
    markers: dict[str, re.Pattern[str]] | None = None,
) -> AnswerStyle:
    """Style features of `text`.

    Args:
        text: The answer.
        finish_reason: The generation's finish reason ("length" means the limit was hit).
        markers: Named patterns counted as leaks (`DEFAULT_LEAK_MARKERS` by default).
    """
    patterns = DEFAULT_LEAK_MARKERS if markers is None else markers
    return AnswerStyle(
        words=len(text.split()),
        has_list=_LIST_ITEM.search(text) is not None,
        leaked_markers=tuple(name for name, pattern in patterns.items() if pattern.search(text)),
        empty=not text.strip(),
        hit_limit=None if finish_reason is None else finish_reason == "length",
    )


@dataclass(frozen=True)
class StyleStats:
    """Style of a set of answers.

    Attributes:
        n: Answers.
        median_words: Median length in words.
        mean_words: Mean length in words.
        list_share: Share with a list.
        marker_leak_share: Share leaking a format marker or special token.
        empty_share: Share that are blank.
        length_share: Share that hit the token limit (None when no finish reason is known).
        long_share: Share longer than `long_words` words.
        long_words: The threshold of `long_share`.
        leaked: How many answers leak each marker.
    """

    n: int
    median_words: float
    mean_words: float
    list_share: float
    marker_leak_share: float
    empty_share: float
    length_share: float | None
    long_share: float
    long_words: int
    leaked: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """As a dict (for JSON)."""
        return asdict(self)


def style_stats(styles: Sequence[AnswerStyle], *, long_words: int = 650) -> StyleStats:
    """Summarise the styles of a set of answers.

    Args:
        styles: One `AnswerStyle` per answer.
        long_words: Answers longer than this count as rambling (`long_share`).

    Raises:
        ValueError: For no answers.
    """
    if not styles:
        msg = "no answers to summarise"
        raise ValueError(msg)
    n = len(styles)
    words = [s.words for s in styles]
    known = [s.hit_limit for s in styles if s.hit_limit is not None]
    leaked: dict[str, int] = {}
    for style in styles:
        for name in style.leaked_markers:
            leaked[name] = leaked.get(name, 0) + 1
    return StyleStats(
        n=n,
        median_words=float(statistics.median(words)),
        mean_words=statistics.fmean(words),
        list_share=sum(s.has_list for s in styles) / n,
        marker_leak_share=sum(bool(s.leaked_markers) for s in styles) / n,
        empty_share=sum(s.empty for s in styles) / n,
        length_share=sum(known) / len(known) if known else None,
        long_share=sum(w > long_words for w in words) / n,
        long_words=long_words,
        leaked=dict(sorted(leaked.items())),
    )
