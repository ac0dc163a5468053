"""The pairwise harness: each pair judged in both orders, results appended to a JSONL file."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from langchain_icalign.evaluation.jsonl_log import ResultLog
from langchain_icalign.evaluation.judge import PairwiseJudge, Review

__all__ = ["ORDERS", "Judgement", "Order", "Outcome", "PairwiseItem", "judge_pairs"]

Order = Literal["candidate_first", "baseline_first"]
Outcome = Literal["win", "tie", "loss", "unparsable"]
ORDERS: tuple[Order, ...] = ("candidate_first", "baseline_first")
"""Both orders: the candidate shown as Assistant 1, then as Assistant 2."""

_KEY = ("judge", "candidate", "baseline", "item_id", "order")


@dataclass(frozen=True)
class PairwiseItem:
    """Two answers to compare for one question.

    Attributes:
        item_id: Unique id of the pair (for example `<prompt id>-s<sample>`).
        prompt_id: Id of the question: pairs of one question form one bootstrap cluster.
        question: The user's question.
        candidate: The answer under test.
        baseline: The answer it is compared with.
    """

    item_id: str
    prompt_id: str
    question: str
    candidate: str
    baseline: str


@dataclass(frozen=True)
class Judgement:
    """One review of one pair in one order, from the candidate's side.

    Attributes:
        item_id: The pair.
        prompt_id: Its question.
        order: Which answer was shown first.
        candidate: Name of the system under test.
        baseline: Name of the system compared with.
        judge: Name of the judge model.
        candidate_score: The candidate's score (None when unparsable).
        baseline_score: The baseline's score (None when unparsable).
        outcome: "win", "tie" or "loss" for the candidate, or "unparsable".
        attempts: Times the judge was asked.
        outputs: The judge's raw output on each attempt.
    """

    item_id: str
    prompt_id: str
    order: Order
    candidate: str
    baseline: str
    judge: str
    candidate_score: float | None
    baseline_score: float | None
    outcome: Outcome
    attempts: int
    outputs: tuple[str, ...]

    @classmethod
    def from_review(
        cls, item: PairwiseItem, order: Order, names: tuple[str, str, str], review: Review
    ) -> Judgement:
        """Read a review of `item` shown in `order` as a judgement for the candidate."""
        candidate_name, baseline_name, judge_name = names
        scores: tuple[float | None, float | None] = (None, None)
        outcome: Outcome = "unparsable"
        if review.scores is not None:
            first, second = review.scores
            scores = (first, second) if order == "candidate_first" else (second, first)
            delta = scores[0] - scores[1]  # type: ignore[operator]
            outcome = "win" if delta > 0 else "loss" if delta < 0 else "tie"
        return cls(
            item.item_id,
            item.prompt_id,
            order,
            candidate_name,
            baseline_name,
            judge_name,
            scores[0],
            scores[1],
            outcome,
            review.attempts,
            review.outputs,
        )

    def to_record(self) -> dict[str, Any]:
        """As a JSON-compatible dict."""
        record = asdict(self)
        record["outputs"] = list(self.outputs)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Judgement:
        """From `to_record`'s dict."""
        fields = {name: record[name] for name in cls.__dataclass_fields__}
        fields["outputs"] = tuple(fields["outputs"])
        return cls(**fields)


def _tasks(
    items: Sequence[PairwiseItem],
    orders: Sequence[Order],
    log: ResultLog,
    label: tuple[str, str, str],
) -> Iterator[tuple[PairwiseItem, Order]]:
    candidate, baseline, judge = label
    for item in items:
        for order in orders:
            if not log.done((judge, candidate, baseline, item.item_id, order)):
                yield item, order


def _review(judge: PairwiseJudge, item: PairwiseItem, order: Order) -> Review:
    if order == "candidate_first":
        return judge.review(item.question, item.candidate, item.baseline)
    return judge.review(item.question, item.baseline, item.candidate)


def judge_pairs(
    items: Sequence[PairwiseItem],
    judge: PairwiseJudge,
    results_path: str | Path,
    *,
    candidate_name: str = "candidate",
    baseline_name: str = "baseline",
    orders: Sequence[Order] = ORDERS,
    max_concurrency: int = 1,
    show_progress: bool = True,
) -> list[Judgement]:
    """Judge every pair in every order, resuming from the judgements already in the file.

    Each judgement is appended to `results_path` as soon as it is made, so a run that
    stops (an error of the judge, Ctrl-C) loses nothing and the next call judges only what
    is missing. The file can hold several comparisons and judges: judgements are keyed by
    judge name, candidate name, baseline name, item id and order.

    Args:
        items: The pairs (ids unique).
        judge: The judge.
        results_path: The append-only JSONL file.
        candidate_name: Name of the system under test.
        baseline_name: Name of the system compared with.
        orders: Orders to judge each pair in (both by default, to cancel position bias).
        max_concurrency: Reviews in flight at once (threads; for judges behind an API).
        show_progress: Show a progress bar.

    Returns:
        The judgements of `items` (old and new), in item and order order.

    Raises:
        ValueError: For duplicate item ids or an unknown order.
    """
    ids = [item.item_id for item in items]
    if len(set(ids)) != len(ids):
        msg = "pair item ids must be unique"
        raise ValueError(msg)
    for order in orders:
        if order not in ORDERS:
            msg = f"unknown order {order!r}; use {ORDERS}"
            raise ValueError(msg)
    log = ResultLog(results_path, _KEY)
    label = (candidate_name, baseline_name, judge.name)
    pending = list(_tasks(items, orders, log, label))
    with tqdm(total=len(pending), desc="Judging", unit="review", disable=not show_progress) as bar:
        if max_concurrency <= 1:
            for item, order in pending:
                judgement = Judgement.from_review(item, order, label, _review(judge, item, order))
                log.append(judgement.to_record())
                bar.update()
        else:
            _judge_concurrently(pending, judge, log, label, max_concurrency, bar)
    found = {
        (record["item_id"], record["order"]): Judgement.from_record(record)
        for record in log.records()
        if (record["candidate"], record["baseline"], record["judge"]) == label
    }
    ordered = [(item.item_id, order) for item in items for order in orders]
    return [found[key] for key in ordered if key in found]


def _judge_concurrently(
    pending: list[tuple[PairwiseItem, Order]],
    judge: PairwiseJudge,
    log: ResultLog,
    label: tuple[str, str, str],
    max_concurrency: int,
    bar: Any,
) -> None:
    with ThreadPoolExecutor(max_workers=max_concurrency) as pool:
        futures: dict[Future[Review], tuple[PairwiseItem, Order]] = {}
        queue = iter(pending)
        try:
            for task in queue:
                futures[pool.submit(_review, judge, *task)] = task
                if len(futures) >= max_concurrency:
                    break
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                errors = []
                for future in done:
                    item, order = futures.pop(future)
                    error = future.exception()
                    if error is not None:
                        errors.append(error)
                        continue
                    log.append(
                        Judgement.from_review(item, order, label, future.result()).to_record()
                    )
                    bar.update()
                    following = None if errors else next(queue, None)
                    if following is not None:
                        futures[pool.submit(_review, judge, *following)] = following
                if errors:  # a judge error stops the run; what was judged is kept
                    raise errors[0]
        finally:
            for future in futures:
                future.cancel()
