"""Removing demos whose prompts duplicate or nearly duplicate evaluation prompts."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_icalign.demos import AlignmentDemo

__all__ = ["ContaminationMatch", "DecontaminationReport", "decontaminate", "normalize_prompt"]

_NON_WORD = re.compile(r"[\W_]+")


def normalize_prompt(text: str) -> str:
    """Text reduced for exact matching: NFKC, case-folded, punctuation and spacing collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub(" ", folded).strip()


@dataclass(frozen=True)
class ContaminationMatch:
    """A pool demo removed because of an evaluation prompt.

    Attributes:
        demo_id: The demo.
        eval_index: Position of the evaluation prompt it matches.
        kind: "exact" (equal after `normalize_prompt`) or "near" (embedding cosine).
        score: Cosine similarity (1.0 for exact matches).
    """

    demo_id: str
    eval_index: int
    kind: Literal["exact", "near"]
    score: float


@dataclass(frozen=True)
class DecontaminationReport:
    """The pool after decontamination, and what was removed.

    Attributes:
        kept: Demos kept, in pool order.
        removed: One match per removed demo (its closest evaluation prompt).
        threshold: Cosine threshold of near duplicates (None: exact matching only).
        pool_size: Demos before decontamination.
    """

    kept: tuple[AlignmentDemo, ...]
    removed: tuple[ContaminationMatch, ...]
    threshold: float | None
    pool_size: int

    @property
    def exact(self) -> int:
        """Demos removed as exact duplicates."""
        return sum(m.kind == "exact" for m in self.removed)

    @property
    def near(self) -> int:
        """Demos removed as near duplicates."""
        return sum(m.kind == "near" for m in self.removed)

    def to_dict(self, eval_ids: Sequence[str] | None = None) -> dict[str, Any]:
        """Counts and matches (ids only) for a report.

        Args:
            eval_ids: Ids of the evaluation prompts, to name matches by id not position.
        """
        return {
            "pool_size": self.pool_size,
            "kept": len(self.kept),
            "removed_exact": self.exact,
            "removed_near": self.near,
            "near_threshold": self.threshold,
            "matches": [
                {
                    "demo_id": m.demo_id,
                    "eval": eval_ids[m.eval_index] if eval_ids else m.eval_index,
                    "kind": m.kind,
                    "score": round(m.score, 4),
                }
                for m in self.removed
            ],
        }


def _unit_rows(vectors: list[list[float]]) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def _user_texts(demo: AlignmentDemo) -> list[str]:
    return [*(user for user, _ in demo.turns), demo.prompt]


def decontaminate(
    pool: Sequence[AlignmentDemo],
    eval_prompts: Sequence[str],
    *,
    embeddings: Embeddings | None = None,
    threshold: float = 0.9,
) -> DecontaminationReport:
    """Drop demos whose prompt matches an evaluation prompt.

    A demo is dropped when any of its user messages equals an evaluation prompt after
    `normalize_prompt` (exact), or, with `embeddings`, when the cosine similarity of its
    prompt's embedding to an evaluation prompt's is at least `threshold` (near).

    Args:
        pool: The demos.
        eval_prompts: The evaluation prompts.
        embeddings: Embeddings for near duplicates; None checks exact matches only.
        threshold: Cosine similarity at or above which a demo is a near duplicate.

    Raises:
        ValueError: For a threshold outside (0, 1].
    """
    if not 0.0 < threshold <= 1.0:
        msg = f"threshold must be in (0, 1], got {threshold}"
        raise ValueError(msg)
    exact_index: dict[str, int] = {}
    for index, prompt in enumerate(eval_prompts):
        exact_index.setdefault(normalize_prompt(prompt), index)
    removed: dict[int, ContaminationMatch] = {}
    for position, demo in enumerate(pool):
        for text in _user_texts(demo):
            hit = exact_index.get(normalize_prompt(text))
            if hit is not None:
                removed[position] = ContaminationMatch(demo.id, hit, "exact", 1.0)
                break
    if embeddings is not None and pool and eval_prompts:
        demo_vectors = _unit_rows(embeddings.embed_documents([d.prompt for d in pool]))
        eval_vectors = _unit_rows(embeddings.embed_documents(list(eval_prompts)))
        similarity = demo_vectors @ eval_vectors.T
        best = similarity.argmax(axis=1)
        for position, demo in enumerate(pool):
            score = float(similarity[position, best[position]])
            if position not in removed and score >= threshold:
                removed[position] = ContaminationMatch(demo.id, int(best[position]), "near", score)
    kept = tuple(demo for position, demo in enumerate(pool) if position not in removed)
    matches = tuple(removed[position] for position in sorted(removed))
    return DecontaminationReport(
        kept, matches, threshold if embeddings is not None else None, len(pool)
    )
