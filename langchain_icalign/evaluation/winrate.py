"""Wins, ties and losses of pairwise judgements, and the win-rate with a clustered interval."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_icalign.evaluation.bootstrap import BootstrapCI, clustered_bootstrap_mean
from langchain_icalign.evaluation.pairwise import ORDERS, Judgement

__all__ = ["OutcomeCounts", "PairwiseSummary", "summarize_judgements"]

_POINTS = {"win": 1.0, "tie": 0.5, "loss": 0.0}


@dataclass(frozen=True)
class OutcomeCounts:
    """Wins, ties, losses and unparsable reviews."""

    wins: int = 0
    ties: int = 0
    losses: int = 0
    unparsable: int = 0

    @classmethod
    def of(cls, judgements: Sequence[Judgement]) -> OutcomeCounts:
        """Count the outcomes of `judgements`."""
        counts = Counter(j.outcome for j in judgements)
        return cls(counts["win"], counts["tie"], counts["loss"], counts["unparsable"])


@dataclass(frozen=True)
class PairwiseSummary:
    """What a set of judgements says about the candidate against the baseline.

    Attributes:
        candidate: Name of the system under test.
        baseline: Name of the system compared with.
        counts: Outcomes over all judgements (both orders).
        by_order: Outcomes for each order (position bias shows as a difference).
        win_rate: Share of parsed judgements won, a tie counting half, with a bootstrap
            interval clustered by prompt; None when nothing parsed.
        strict_win_share: Share of parsed judgements won outright.
        order_agreement: Share of pairs judged in both orders whose two outcomes agree
            (None when no pair has both).
        prompts: Prompts with at least one parsed judgement.
    """

    candidate: str
    baseline: str
    counts: OutcomeCounts
    by_order: dict[str, OutcomeCounts] = field(default_factory=dict)
    win_rate: BootstrapCI | None = None
    strict_win_share: float | None = None
    order_agreement: float | None = None
    prompts: int = 0

    def to_dict(self) -> dict[str, Any]:
        """As a JSON-compatible dict."""
        return {
            "candidate": self.candidate,
            "baseline": self.baseline,
            "counts": vars(self.counts),
            "by_order": {order: vars(c) for order, c in self.by_order.items()},
            "win_rate": self.win_rate.to_dict() if self.win_rate else None,
            "strict_win_share": self.strict_win_share,
            "order_agreement": self.order_agreement,
            "prompts": self.prompts,
        }


def _agreement(judgements: Sequence[Judgement]) -> float | None:
    outcomes: dict[str, dict[str, str]] = {}
    for j in judgements:
        if j.outcome != "unparsable":
            outcomes.setdefault(j.item_id, {})[j.order] = j.outcome
    both = [o for o in outcomes.values() if len(o) == len(ORDERS)]
    if not both:
        return None
    return sum(len(set(o.values())) == 1 for o in both) / len(both)


def summarize_judgements(
    judgements: Sequence[Judgement],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> PairwiseSummary:
    """Summarise judgements of one candidate against one baseline.

    Unparsable reviews are counted and reported, and left out of the win-rate.

    Args:
        judgements: Judgements of one comparison (any orders).
        confidence: Coverage of the win-rate interval.
        resamples: Bootstrap resamples.
        seed: Seed of the resampling.

    Raises:
        ValueError: For no judgements, or judgements of several comparisons or judges.
    """
    if not judgements:
        msg = "no judgements to summarise"
        raise ValueError(msg)
    pairs = {(j.candidate, j.baseline, j.judge) for j in judgements}
    if len(pairs) != 1:
        msg = f"judgements of several comparisons or judges: {sorted(pairs)}"
        raise ValueError(msg)
    candidate, baseline, _ = pairs.pop()
    parsed = [j for j in judgements if j.outcome != "unparsable"]
    by_order: dict[str, OutcomeCounts] = {
        order: OutcomeCounts.of([j for j in judgements if j.order == order])
        for order in ORDERS
        if any(j.order == order for j in judgements)
    }
    win_rate = strict = None
    if parsed:
        win_rate = clustered_bootstrap_mean(
            [_POINTS[j.outcome] for j in parsed],
            [j.prompt_id for j in parsed],
            confidence=confidence,
            resamples=resamples,
            seed=seed,
        )
        strict = sum(j.outcome == "win" for j in parsed) / len(parsed)
    return PairwiseSummary(
        candidate=candidate,
        baseline=baseline,
        counts=OutcomeCounts.of(judgements),
        by_order=by_order,
        win_rate=win_rate,
        strict_win_share=strict,
        order_agreement=_agreement(judgements),
        prompts=len({j.prompt_id for j in parsed}),
    )
