"""Decontamination: demos whose user messages match an evaluation prompt are dropped.

A match is exact after `match_key` normalisation, or, with a threshold, a cosine
similarity of embeddings at least that high.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_icalign.cleaning.report import (
    CONTAMINATED,
    NEAR_CONTAMINATED,
    CleaningReport,
    Dropped,
    quote,
)
from langchain_icalign.cleaning.similarity import demo_vectors, embed_matrix, max_similarity
from langchain_icalign.cleaning.texts import match_key, user_messages
from langchain_icalign.demos import AlignmentDemo

__all__ = ["decontaminate"]


def decontaminate(
    demos: Sequence[AlignmentDemo],
    eval_prompts: Sequence[str],
    *,
    threshold: float | None = None,
    embeddings: Embeddings | None = None,
    vectors: np.ndarray | None = None,
    embed: str = "prompt",
    batch_size: int = 256,
    show_progress: bool = False,
) -> CleaningReport:
    """Drop demos whose user messages match an evaluation prompt.

    A demo is contaminated when one of its user messages equals an evaluation prompt after
    `match_key` normalisation; with `threshold`, also when its prompt embedding is at least
    `threshold` cosine-similar to an evaluation prompt's.

    Args:
        demos: The demos.
        eval_prompts: The evaluation set's prompts (see `loaders.load_prompts`).
        threshold: Cosine similarity for near-duplicate contamination; None for exact only.
        embeddings: Embeddings for the texts (needed with `threshold`).
        vectors: Unit-length vectors of the demos (instead of embedding them).
        embed: What is compared: the `"prompt"` or the `"prompt_response"`.
        batch_size: Texts embedded and compared per batch.
        show_progress: Show progress bars.

    Raises:
        ValueError: For a threshold outside (0, 1], or a threshold without embeddings.
    """
    if threshold is not None and not 0.0 < threshold <= 1.0:
        msg = f"threshold must be in (0, 1], got {threshold}"
        raise ValueError(msg)
    if threshold is not None and embeddings is None:
        msg = "near-duplicate decontamination needs embeddings= (for the evaluation prompts)"
        raise ValueError(msg)
    keys = {match_key(prompt): prompt for prompt in eval_prompts}
    keys.pop("", None)
    report = CleaningReport()
    survivors: list[int] = []
    for index, demo in enumerate(demos):
        hit = next((keys[k] for k in map(match_key, user_messages(demo)) if k in keys), None)
        if hit is not None:
            detail = f"matches evaluation prompt {quote(hit)}"
            report.dropped.append(Dropped(demo, CONTAMINATED, detail))
        else:
            survivors.append(index)
    if threshold is None or not survivors or not eval_prompts:
        report.kept = [demos[i] for i in survivors]
        return report
    assert embeddings is not None  # checked above, for mypy
    prompts = list(dict.fromkeys(eval_prompts))
    eval_vectors = embed_matrix(embeddings, prompts, batch_size=batch_size)
    if vectors is not None:
        matrix = np.asarray(vectors, dtype=np.float32)[survivors]
    else:
        matrix = demo_vectors(
            [demos[i] for i in survivors], None, embeddings, embed, batch_size, show_progress
        )
    limit = np.float32(threshold) - np.float32(1e-6)
    for start in range(0, len(survivors), batch_size):
        best, where = max_similarity(matrix[start : start + batch_size], eval_vectors)
        for offset, (score, arg) in enumerate(zip(best, where, strict=True)):
            demo = demos[survivors[start + offset]]
            if score >= limit:
                detail = f"similarity {score:.3f} to evaluation prompt {quote(prompts[arg])}"
                report.dropped.append(Dropped(demo, NEAR_CONTAMINATED, detail))
            else:
                report.kept.append(demo)
    return report
