"""Curate a demo pool on dev prompts: score, select greedily, report what changed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings

from langchain_icalign.curation.reports import Coverage, PoolStyle, coverage, pool_style
from langchain_icalign.curation.scoring import DemoScorer, ItemScores, score_candidates
from langchain_icalign.curation.selection import (
    DemoEffect,
    SelectionResult,
    demo_effects,
    greedy_select,
)
from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.evaluation.jsonl_log import ResultLog
from langchain_icalign.evaluation.records import EvalItem
from langchain_icalign.formats import PromptFormat, get_prompt_format
from langchain_icalign.selector import AlignmentExampleSelector
from langchain_icalign.store import DemoStore

__all__ = ["CurationReport", "curate_pool"]


@dataclass
class CurationReport:
    """What curation measured and decided.

    Attributes:
        kept: The curated pool, in the original order.
        removed: Demos dropped, in the order greedy selection dropped them.
        effects: Each scored demo's mean effect, most harmful first.
        selection: The greedy selection's objective and steps.
        scores: Per dev prompt: baseline and scored candidates.
        style_before: Style of the pool given.
        style_after: Style of the curated pool.
        coverage_before: Top-1 cosine of the dev prompts to the pool given.
        coverage_after: The same for the curated pool.
        settings: The settings of the run.
    """

    kept: list[AlignmentDemo]
    removed: list[AlignmentDemo]
    effects: list[DemoEffect]
    selection: SelectionResult
    scores: list[ItemScores]
    style_before: PoolStyle
    style_after: PoolStyle
    coverage_before: Coverage
    coverage_after: Coverage
    settings: dict[str, Any]

    @property
    def harmful(self) -> list[DemoEffect]:
        """Scored demos that made the references less likely on average."""
        return [effect for effect in self.effects if effect.mean_delta > 0]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (demo texts left out; ids and prompts kept)."""
        by_id = {demo.id: demo for demo in (*self.kept, *self.removed)}
        return {
            "settings": self.settings,
            "pool": {"given": len(self.kept) + len(self.removed), "kept": len(self.kept)},
            "objective": {
                "proxy_before": self.selection.objective_before,
                "proxy_after": self.selection.objective_after,
            },
            "scored_demos": len(self.effects),
            "harmful_demos": len(self.harmful),
            "removed": [
                {
                    "id": demo_id,
                    "prompt": by_id[demo_id].prompt[:200],
                    "gain": round(gain, 5),
                }
                for demo_id, gain in self.selection.steps
            ],
            "effects": [
                {"id": e.demo_id, "uses": e.uses, "mean_delta": round(e.mean_delta, 5)}
                for e in self.effects
            ],
            "style": {"before": self.style_before.to_dict(), "after": self.style_after.to_dict()},
            "coverage": {
                "before": self.coverage_before.to_dict(),
                "after": self.coverage_after.to_dict(),
            },
        }


def curate_pool(
    pool: Sequence[AlignmentDemo],
    dev: Sequence[EvalItem],
    *,
    model: Any,
    tokenizer: Any,
    embeddings: Embeddings,
    prompt_format: str | PromptFormat = "han",
    budget: int = 1000,
    max_demo_tokens: int = 500,
    max_k: int = 20,
    candidates: int = 5,
    max_reference_tokens: int | None = 128,
    min_gain: float = 0.0,
    keep_min: int | None = None,
    system: str | None = None,
    log: ResultLog | None = None,
    show_progress: bool = True,
) -> CurationReport:
    """Score each demo by what it does to the dev prompts' reference NLL, and select greedily.

    For each dev prompt the pool's top `candidates` retrieved demos are scored one at a
    time: the change in the reference answer's NLL (under `model`, in `prompt_format`)
    when that demo alone precedes the query. Greedy backward selection then drops, one at
    a time, the demo whose absence most lowers the dev prompts' estimated NLL under Han's
    packing rule and `budget` (see `greedy_select`), until no removal helps or
    `keep_min` demos are left.

    Args:
        pool: The demos to curate.
        dev: Dev prompts with reference answers in the style wanted (never the test set).
        model: A transformers causal LM (the model the pool is for).
        tokenizer: Its tokenizer.
        embeddings: Embeddings for retrieval (those the pool will be searched with).
        prompt_format: The format prompts are rendered in.
        budget: The demo budget of Han's rule (tokens).
        max_demo_tokens: Demos longer than this are never selected.
        max_k: Candidates retrieved per prompt before near-duplicates are dropped.
        candidates: Candidates scored per dev prompt.
        max_reference_tokens: Reference tokens scored (None: all).
        min_gain: Smallest summed NLL improvement worth a removal.
        keep_min: Never shrink the pool below this many demos.
        system: System text of the prompts.
        log: Resumable results file for the scores.
        show_progress: Show progress.

    Raises:
        ValueError: For an empty pool or dev set, or dev items without references.
    """
    demos = list(pool)
    if not demos:
        msg = "the pool is empty: nothing to curate"
        raise ValueError(msg)
    if not dev:
        msg = "the dev set is empty: curation needs dev prompts with reference answers"
        raise ValueError(msg)
    fmt = get_prompt_format(prompt_format)
    store = DemoStore(embeddings, location=":memory:", collection_name="curation")
    try:
        store.add_demos(demos, show_progress=show_progress)
        selector = AlignmentExampleSelector(
            store=store,
            token_counter=tokenizer,
            max_k=max_k,
            max_tokens=budget,
            max_demo_tokens=max_demo_tokens,
            prompt_format=fmt,
        )
        scorer = DemoScorer(
            model=model,
            tokenizer=tokenizer,
            prompt_format=fmt,
            system=system,
            max_reference_tokens=max_reference_tokens,
        )
        scores = score_candidates(
            scorer, selector, dev, candidates=candidates, log=log, show_progress=show_progress
        )
        limit = None if keep_min is None else max(len(demos) - keep_min, 0)
        selection = greedy_select(scores, budget=budget, min_gain=min_gain, max_removals=limit)
        dropped = set(selection.removed)
        kept = [demo for demo in demos if demo.id not in dropped]
        by_id = {demo.id: demo for demo in demos}
        removed = [by_id[demo_id] for demo_id in selection.removed]
        prompts = [item.prompt for item in dev]
        coverage_before = coverage(store, prompts)
        if dropped:
            store.delete(list(dropped))
        coverage_after = coverage(store, prompts)
    finally:
        store.close()
    return CurationReport(
        kept=kept,
        removed=removed,
        effects=demo_effects(scores),
        selection=selection,
        scores=scores,
        style_before=pool_style(demos),
        style_after=pool_style(kept),
        coverage_before=coverage_before,
        coverage_after=coverage_after,
        settings={
            "prompt_format": fmt.name,
            "budget": budget,
            "max_demo_tokens": max_demo_tokens,
            "max_k": max_k,
            "candidates": candidates,
            "max_reference_tokens": max_reference_tokens,
            "min_gain": min_gain,
            "keep_min": keep_min,
            "system": system,
            "dev_prompts": len(dev),
        },
    )
