"""Curating demo pools: measure what each demo does for dev prompts, keep what helps.

Zhao et al. (2024) found that in-context alignment gains most from demos selected greedily
by measured benefit. `curate_pool` scores each demo by the change in the reference
answers' NLL it causes when retrieved for dev prompts, and drops greedily the demos whose
absence helps; `pool_style` and `coverage` describe a pool beside reference answers.
"""

from langchain_icalign.curation.curate import CurationReport, curate_pool
from langchain_icalign.curation.reports import (
    Coverage,
    PoolStyle,
    answers_style,
    coverage,
    pool_style,
)
from langchain_icalign.curation.scoring import (
    CandidateScore,
    DemoScorer,
    ItemScores,
    score_candidates,
)
from langchain_icalign.curation.selection import (
    DemoEffect,
    SelectionResult,
    demo_effects,
    greedy_select,
    proxy_value,
)

__all__ = [
    "CandidateScore",
    "Coverage",
    "CurationReport",
    "DemoEffect",
    "DemoScorer",
    "ItemScores",
    "PoolStyle",
    "SelectionResult",
    "answers_style",
    "coverage",
    "curate_pool",
    "demo_effects",
    "greedy_select",
    "pool_style",
    "proxy_value",
    "score_candidates",
]
