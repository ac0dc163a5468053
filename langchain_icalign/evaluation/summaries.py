"""Summaries of run results: reference NLL per condition with intervals, style per condition."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from langchain_icalign.evaluation.bootstrap import clustered_bootstrap_mean
from langchain_icalign.evaluation.style import StyleStats, answer_style, style_stats

__all__ = ["default_contrasts", "summarize_nll", "summarize_styles"]


def default_contrasts(conditions: Sequence[str]) -> list[tuple[str, str]]:
    """Paired differences worth reporting, among the given conditions.

    Each condition against zero-shot, then retrieved against random, hybrid against
    retrieved, constant against retrieved, and retrieved and random demos against Han's
    format without demos (the diagnostic `han_zero_shot`).
    """
    pairs = [(c, "zero_shot") for c in conditions if c != "zero_shot" and "zero_shot" in conditions]
    others = (
        ("retrieved", "random"),
        ("hybrid", "retrieved"),
        ("constant", "retrieved"),
        ("retrieved", "han_zero_shot"),
        ("random", "han_zero_shot"),
    )
    for a, b in others:
        if a in conditions and b in conditions:
            pairs.append((a, b))
    return pairs


def summarize_nll(
    records: Sequence[dict[str, Any]],
    conditions: Sequence[str],
    *,
    contrasts: Sequence[tuple[str, str]] | None = None,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean reference NLL per condition and paired differences, with bootstrap intervals.

    Only items scored under every condition are used, so that all means are over the
    same prompts; the mean is over prompts (each prompt's per-token mean counts once) and
    intervals resample prompts.

    Args:
        records: Results of `run_reference_nll`.
        conditions: Conditions to report, in order.
        contrasts: (a, b) pairs whose per-prompt difference a − b is reported;
            `default_contrasts` when None.
        confidence: Coverage of the intervals.
        resamples: Bootstrap resamples.
        seed: Seed of the resampling.

    Returns:
        `{"prompts": n, "conditions": {...}, "contrasts": {...}}`, or `{"prompts": 0}` when
        no item has every condition.
    """
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for record in records:
        table.setdefault(record["item_id"], {})[record["condition"]] = record
    complete = sorted(i for i, row in table.items() if all(c in row for c in conditions))
    if not complete:
        return {"prompts": 0}

    def interval(values: list[float]) -> dict[str, Any]:
        ci = clustered_bootstrap_mean(
            values, complete, confidence=confidence, resamples=resamples, seed=seed
        )
        return ci.to_dict()

    summary: dict[str, Any] = {"prompts": len(complete), "conditions": {}, "contrasts": {}}
    for condition in conditions:
        rows = [table[i][condition] for i in complete]
        summary["conditions"][condition] = {
            "mean_nll": interval([r["mean_nll"] for r in rows]),
            "mean_prompt_tokens": statistics.fmean(r["prompt_tokens"] for r in rows),
            "mean_demos": statistics.fmean(len(r["demo_ids"]) + r["constant_demos"] for r in rows),
            "mean_reference_tokens": statistics.fmean(r["tokens"] for r in rows),
        }
    for a, b in contrasts if contrasts is not None else default_contrasts(conditions):
        diffs = [table[i][a]["mean_nll"] - table[i][b]["mean_nll"] for i in complete]
        result = interval(diffs)
        result["share_lower"] = sum(d < 0 for d in diffs) / len(diffs)
        summary["contrasts"][f"{a} - {b}"] = result
    return summary


def summarize_styles(
    records: Sequence[dict[str, Any]], *, long_words: int = 650
) -> dict[str, StyleStats]:
    """Style statistics per condition.

    Args:
        records: Generation results, or any dicts with `condition`, `text` and optionally
            `finish_reason`.
        long_words: Threshold of `StyleStats.long_share`.
    """
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(record["condition"], []).append(record)
    return {
        condition: style_stats(
            [answer_style(r["text"] or "", r.get("finish_reason")) for r in rows],
            long_words=long_words,
        )
        for condition, rows in grouped.items()
    }
