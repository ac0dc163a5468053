"""What a pool looks like: the style of its answers and how well it covers a set of prompts."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.evaluation.style import answer_style
from langchain_icalign.store import DemoStore

__all__ = ["Coverage", "PoolStyle", "answers_style", "coverage", "pool_style"]

_BOLD = re.compile(r"\*\*(?=\S)[^*\n]+?(?<=\S)\*\*")
_HEADING = re.compile(r"(?m)^#{1,6} \S")
_CODE = re.compile(r"(?m)^```")


@dataclass(frozen=True)
class PoolStyle:
    """Style statistics of a set of answers (a pool's, or reference answers).

    Attributes:
        answers: Answers measured.
        median_words: Median length in words.
        p10_words: 10th percentile of the length.
        p90_words: 90th percentile of the length.
        list_share: Share with a bulleted or numbered list.
        bold_share: Share with Markdown bold.
        heading_share: Share with a Markdown heading.
        code_share: Share with a fenced code block.
        marker_leak_share: Share containing a prompt-format marker or special token.
        multi_turn: Demos with earlier turns (0 for plain answers).
        categories: Demos per `metadata["category"]` (empty for plain answers).
    """

    answers: int
    median_words: float
    p10_words: float
    p90_words: float
    list_share: float
    bold_share: float
    heading_share: float
    code_share: float
    marker_leak_share: float
    multi_turn: int = 0
    categories: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """As a dict (for JSON)."""
        return asdict(self)


def answers_style(answers: Sequence[str]) -> PoolStyle:
    """Style statistics of plain answers (reference answers, say).

    Raises:
        ValueError: For no answers.
    """
    if not answers:
        msg = "no answers to measure"
        raise ValueError(msg)
    n = len(answers)
    styles = [answer_style(text) for text in answers]
    words = sorted(s.words for s in styles)
    deciles = (
        statistics.quantiles(words, n=10, method="inclusive") if n > 1 else [float(words[0])] * 9
    )
    return PoolStyle(
        answers=n,
        median_words=float(statistics.median(words)),
        p10_words=float(deciles[0]),
        p90_words=float(deciles[-1]),
        list_share=sum(s.has_list for s in styles) / n,
        bold_share=sum(bool(_BOLD.search(t)) for t in answers) / n,
        heading_share=sum(bool(_HEADING.search(t)) for t in answers) / n,
        code_share=sum(bool(_CODE.search(t)) for t in answers) / n,
        marker_leak_share=sum(bool(s.leaked_markers) for s in styles) / n,
    )


def pool_style(demos: Sequence[AlignmentDemo]) -> PoolStyle:
    """Style statistics of a pool's final answers, with its turn and category counts.

    Raises:
        ValueError: For an empty pool.
    """
    style = answers_style([demo.response for demo in demos])
    categories = Counter(str(demo.metadata.get("category", "none")) for demo in demos)
    return PoolStyle(
        **{
            **style.to_dict(),
            "multi_turn": sum(bool(demo.turns) for demo in demos),
            "categories": dict(categories.most_common()),
        }
    )


@dataclass(frozen=True)
class Coverage:
    """How close a pool's prompts come to a set of prompts.

    Attributes:
        prompts: Prompts measured.
        median_top1: Median cosine similarity of each prompt to its nearest demo prompt.
        p25_top1: Its 25th percentile.
        p75_top1: Its 75th percentile.
        share_above_half: Share of prompts whose nearest demo has cosine above 0.5.
    """

    prompts: int
    median_top1: float
    p25_top1: float
    p75_top1: float
    share_above_half: float

    def to_dict(self) -> dict[str, Any]:
        """As a dict (for JSON)."""
        return asdict(self)


def coverage(store: DemoStore, prompts: Sequence[str]) -> Coverage:
    """Top-1 cosine similarity of each prompt to the pool in `store`.

    Raises:
        ValueError: For no prompts or an empty store.
    """
    if not prompts:
        msg = "no prompts to measure coverage on"
        raise ValueError(msg)
    top: list[float] = []
    for prompt in prompts:
        hits = store.search(prompt, 1)
        if not hits:
            msg = "the store is empty: no coverage to measure"
            raise ValueError(msg)
        top.append(float(hits[0][1]))
    quartiles = statistics.quantiles(top, n=4, method="inclusive") if len(top) > 1 else [top[0]] * 3
    return Coverage(
        prompts=len(top),
        median_top1=float(statistics.median(top)),
        p25_top1=float(quartiles[0]),
        p75_top1=float(quartiles[2]),
        share_above_half=sum(score > 0.5 for score in top) / len(top),
    )
