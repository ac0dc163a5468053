"""Greedy curation: drop the demos whose absence most lowers the dev prompts' reference NLL."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from langchain_icalign.curation.scoring import CandidateScore, ItemScores

__all__ = ["DemoEffect", "SelectionResult", "demo_effects", "greedy_select", "proxy_value"]


@dataclass(frozen=True)
class DemoEffect:
    """What one demo did across the dev prompts that retrieved it.

    Attributes:
        demo_id: The demo.
        uses: Dev prompts for which it was a scored candidate.
        mean_delta: Mean reference-NLL change it caused alone (nats/token; negative helps).
    """

    demo_id: str
    uses: int
    mean_delta: float


@dataclass
class SelectionResult:
    """The outcome of greedy selection.

    Attributes:
        removed: Demo ids dropped, in the order they were dropped.
        objective_before: Mean proxy NLL over the dev prompts with every demo.
        objective_after: The same after the removals.
        steps: (demo id, gain in summed proxy NLL) of each removal.
    """

    removed: list[str] = field(default_factory=list)
    objective_before: float = 0.0
    objective_after: float = 0.0
    steps: list[tuple[str, float]] = field(default_factory=list)


def demo_effects(scores: Sequence[ItemScores]) -> list[DemoEffect]:
    """Each scored demo's mean effect, most harmful first."""
    deltas: dict[str, list[float]] = defaultdict(list)
    for item in scores:
        for candidate in item.candidates:
            deltas[candidate.demo_id].append(candidate.delta)
    effects = [DemoEffect(d, len(v), sum(v) / len(v)) for d, v in deltas.items()]
    return sorted(effects, key=lambda effect: effect.mean_delta, reverse=True)


def _packed(
    candidates: Sequence[CandidateScore],
    removed: Collection[str],
    budget: int,
) -> list[CandidateScore]:
    kept: list[CandidateScore] = []
    total = 0
    for candidate in candidates:
        if candidate.demo_id in removed:
            continue
        if total + candidate.tokens > budget:
            break
        kept.append(candidate)
        total += candidate.tokens
    return kept


def proxy_value(item: ItemScores, removed: Collection[str], budget: int) -> float:
    """Estimated reference NLL of a dev prompt when the `removed` demos are gone.

    Han's packing rule is applied to the prompt's scored candidates that remain; the
    estimate is the baseline plus the mean single-demo effect of the packed ones (the
    baseline alone when none is left). It is a proxy: demos interact, and candidates past
    the scored ones would move up in a real prompt.
    """
    packed = _packed(item.candidates, removed, budget)
    if not packed:
        return item.baseline
    return item.baseline + sum(c.delta for c in packed) / len(packed)


def greedy_select(
    scores: Sequence[ItemScores],
    *,
    budget: int,
    min_gain: float = 0.0,
    max_removals: int | None = None,
) -> SelectionResult:
    """Greedy backward selection of the pool on the proxy objective.

    At each step every demo that sits in some dev prompt's packed set is tried out; the
    one whose removal lowers the summed proxy NLL the most goes, as long as that lowers it
    by more than `min_gain` (nats/token, summed over prompts). Demos never retrieved for a
    dev prompt cannot be judged and are kept.

    Args:
        scores: `score_candidates` results.
        budget: The demo budget of the packing rule (tokens).
        min_gain: Smallest summed improvement worth a removal.
        max_removals: Stop after this many removals (None: no limit).
    """
    uses: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(scores):
        for candidate in item.candidates:
            uses[candidate.demo_id].append(index)
    removed: set[str] = set()
    values = [proxy_value(item, removed, budget) for item in scores]
    result = SelectionResult(objective_before=sum(values) / max(len(values), 1))
    while max_removals is None or len(result.removed) < max_removals:
        best: tuple[float, str] | None = None
        in_play = {c.demo_id for item in scores for c in _packed(item.candidates, removed, budget)}
        for demo_id in sorted(in_play):
            trial = removed | {demo_id}
            gain = sum(values[i] - proxy_value(scores[i], trial, budget) for i in uses[demo_id])
            if best is None or gain > best[0]:
                best = (gain, demo_id)
        if best is None or best[0] <= min_gain:
            break
        gain, demo_id = best
        removed.add(demo_id)
        for i in uses[demo_id]:
            values[i] = proxy_value(scores[i], removed, budget)
        result.removed.append(demo_id)
        result.steps.append((demo_id, gain))
    result.objective_after = sum(values) / max(len(values), 1)
    return result
