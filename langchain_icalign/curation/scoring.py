"""What each demo does for a dev prompt: the change in reference NLL when it is the demo shown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.evaluation.jsonl_log import ResultLog
from langchain_icalign.evaluation.nll import answer_continuation, reference_nll
from langchain_icalign.evaluation.records import EvalItem
from langchain_icalign.formats import Conversation, PromptFormat
from langchain_icalign.selector import AlignmentExampleSelector

__all__ = ["SCORE_KEY", "CandidateScore", "DemoScorer", "ItemScores", "score_candidates"]

SCORE_KEY = ("item_id", "demo_id")
"""Key fields of a scoring run's results file (`demo_id` is empty for the baseline)."""


@dataclass(frozen=True)
class CandidateScore:
    """One retrieved candidate of a dev prompt.

    Attributes:
        demo_id: The demo.
        delta: Reference NLL with this demo alone minus without demos (nats/token;
            negative means the demo moves the model towards the reference).
        tokens: What the demo costs in the prompt (for the packing rule).
    """

    demo_id: str
    delta: float
    tokens: int


@dataclass
class ItemScores:
    """A dev prompt's baseline and its candidates in retrieval order.

    Attributes:
        item_id: The dev prompt.
        baseline: Reference NLL in the format without any demo.
        candidates: The top retrieved candidates, best match first.
    """

    item_id: str
    baseline: float
    candidates: list[CandidateScore] = field(default_factory=list)


@dataclass
class DemoScorer:
    """Scores a dev prompt's reference answer after a prompt with given demos.

    Attributes:
        model: A transformers causal LM.
        tokenizer: Its tokenizer.
        prompt_format: The format prompts are rendered in.
        system: System text placed first (None for none).
        constant_demos: Demos placed before the scored one on every prompt.
        max_reference_tokens: Score at most this many leading reference tokens.
    """

    model: Any
    tokenizer: Any
    prompt_format: PromptFormat
    system: str | None = None
    constant_demos: Sequence[AlignmentDemo] = ()
    max_reference_tokens: int | None = 128

    def nll(self, item: EvalItem, demos: Sequence[AlignmentDemo]) -> float:
        """Mean per-token NLL of `item`'s reference after a prompt with `demos`."""
        special = tuple(getattr(self.tokenizer, "all_special_tokens", ()))
        conversation = Conversation(query=item.prompt, system=self.system)
        prompt = self.prompt_format.render(conversation, (*self.constant_demos, *demos), special)
        continuation = answer_continuation(self.prompt_format, item.prompt, item.reference or "")
        result = reference_nll(
            self.model,
            self.tokenizer,
            prompt,
            continuation,
            max_tokens=self.max_reference_tokens,
        )
        return result.mean_nll


def score_candidates(
    scorer: DemoScorer,
    selector: AlignmentExampleSelector,
    items: Sequence[EvalItem],
    *,
    candidates: int = 5,
    log: ResultLog | None = None,
    show_progress: bool = True,
) -> list[ItemScores]:
    """Baseline and single-demo reference NLL for each dev prompt's top candidates.

    For each item the selector retrieves its candidates (similarity order, near
    duplicates dropped, demos over `max_demo_tokens` skipped as the packing rule would);
    the first `candidates` of them are each scored alone before the query. With `log`,
    each result is appended as it is computed and results already there are reused, so
    an interrupted run resumes and a changed pool rescores only new pairs.

    Args:
        scorer: How prompts are rendered and scored.
        selector: Retrieval over the pool being curated.
        items: Dev prompts with reference answers.
        candidates: Candidates scored per prompt.
        log: Resumable results keyed by `SCORE_KEY`.
        show_progress: Show a progress bar.

    Raises:
        ValueError: For an item without a reference answer, or `candidates` below 1.
    """
    if candidates < 1:
        msg = f"candidates must be at least 1, got {candidates}"
        raise ValueError(msg)
    missing = [item.id for item in items if not (item.reference or "").strip()]
    if missing:
        msg = f"dev items need reference answers; these have none: {missing[:5]}"
        raise ValueError(msg)
    plans: list[tuple[EvalItem, list[tuple[AlignmentDemo, int]]]] = []
    for item in items:
        chosen: list[tuple[AlignmentDemo, int]] = []
        for demo, _ in selector.retrieve(item.prompt):
            tokens = selector.demo_tokens(demo)
            if tokens <= selector.max_demo_tokens:
                chosen.append((demo, tokens))
            if len(chosen) == candidates:
                break
        plans.append((item, chosen))
    total = sum(1 + len(chosen) for _, chosen in plans)
    results: list[ItemScores] = []
    with tqdm(total=total, desc="Scoring demos", unit="prompt", disable=not show_progress) as bar:
        for item, chosen in plans:
            baseline = _cached_nll(scorer, item, None, log)
            bar.update(1)
            scores = ItemScores(item.id, baseline)
            for demo, tokens in chosen:
                value = _cached_nll(scorer, item, demo, log)
                scores.candidates.append(CandidateScore(demo.id, value - baseline, tokens))
                bar.update(1)
            results.append(scores)
    return results


def _cached_nll(
    scorer: DemoScorer, item: EvalItem, demo: AlignmentDemo | None, log: ResultLog | None
) -> float:
    key = (item.id, demo.id if demo is not None else "")
    if log is not None and log.done(key):
        return float(log.get(key)["mean_nll"])
    value = scorer.nll(item, [] if demo is None else [demo])
    if log is not None:
        log.append({"item_id": key[0], "demo_id": key[1], "mean_nll": value})
    return value
