"""De-duplication of a demo pool: exact duplicates after normalisation, and near-duplicates.

Near-duplicates are found by cosine similarity of embeddings on unit-length numpy vectors,
compared in batches (`similarity`: a 100k pool is feasible on a laptop CPU once embedded).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings
from tqdm.auto import tqdm

from langchain_icalign.cleaning.report import DUPLICATE, NEAR_DUPLICATE, CleaningReport, Dropped
from langchain_icalign.cleaning.similarity import demo_vectors, max_similarity
from langchain_icalign.cleaning.texts import demo_messages, match_key
from langchain_icalign.demos import AlignmentDemo

__all__ = ["drop_exact_duplicates", "drop_near_duplicates"]


def drop_exact_duplicates(demos: Sequence[AlignmentDemo]) -> CleaningReport:
    """Keep the first of demos whose messages match after `match_key` normalisation."""
    report = CleaningReport()
    first: dict[tuple[str, ...], AlignmentDemo] = {}
    for demo in demos:
        key = tuple(match_key(text) for text in demo_messages(demo))
        if key in first:
            report.dropped.append(Dropped(demo, DUPLICATE, f"same as demo {first[key].id}"))
            continue
        first[key] = demo
        report.kept.append(demo)
    return report


def drop_near_duplicates(
    demos: Sequence[AlignmentDemo],
    *,
    threshold: float,
    embeddings: Embeddings | None = None,
    vectors: np.ndarray | None = None,
    existing: np.ndarray | None = None,
    embed: str = "prompt",
    batch_size: int = 256,
    show_progress: bool = False,
) -> CleaningReport:
    """Greedily keep demos whose prompt embedding is below `threshold` cosine to every kept one.

    Demos are taken in order; a demo is dropped when it is at least `threshold` similar to
    a demo kept before it, or to a row of `existing` (e.g. the vectors already in a store).
    Work is O(n x kept) dot products done in numpy batches; memory stays O(batch x 16k).

    Args:
        demos: The demos.
        threshold: Cosine similarity at or above which two demos are near-duplicates.
        embeddings: Embeddings for the demos' texts (unless `vectors` is given).
        vectors: Unit-length vectors of the demos, one row each.
        existing: Unit-length vectors that count as already kept.
        embed: What is compared: the `"prompt"` or the `"prompt_response"`.
        batch_size: Demos compared (and embedded) per batch.
        show_progress: Show progress bars.

    Raises:
        ValueError: For a threshold outside (0, 1], or neither embeddings nor vectors.
    """
    if not 0.0 < threshold <= 1.0:
        msg = f"threshold must be in (0, 1], got {threshold}"
        raise ValueError(msg)
    report = CleaningReport()
    if not demos:
        return report
    matrix = demo_vectors(demos, vectors, embeddings, embed, batch_size, show_progress)
    prior = existing if existing is not None and len(existing) else None
    n_prior = 0 if prior is None else len(prior)
    kept_vectors = np.empty((n_prior + len(demos), matrix.shape[1]), dtype=np.float32)
    if prior is not None:
        kept_vectors[:n_prior] = prior
    owners: list[AlignmentDemo | None] = [None] * n_prior
    filled = n_prior
    limit = np.float32(threshold) - np.float32(1e-6)
    bar = tqdm(total=len(demos), desc="Near-duplicates", unit="demo", disable=not show_progress)
    with bar:
        for start in range(0, len(demos), batch_size):
            batch = matrix[start : start + batch_size]
            best, where = max_similarity(batch, kept_vectors[:filled])
            within = batch @ batch.T
            local: list[int] = []
            for i in range(len(batch)):
                demo = demos[start + i]
                if best[i] >= limit:
                    owner = owners[int(where[i])]
                    what = f"demo {owner.id}" if owner is not None else "a demo already stored"
                    detail = f"similarity {best[i]:.3f} to {what}"
                    report.dropped.append(Dropped(demo, NEAR_DUPLICATE, detail))
                    continue
                if local:
                    scores = within[i, local]
                    j = int(scores.argmax())
                    if scores[j] >= limit:
                        owner_demo = demos[start + local[j]]
                        detail = f"similarity {scores[j]:.3f} to demo {owner_demo.id}"
                        report.dropped.append(Dropped(demo, NEAR_DUPLICATE, detail))
                        continue
                local.append(i)
                report.kept.append(demo)
            kept_vectors[filled : filled + len(local)] = batch[local]
            owners += [demos[start + i] for i in local]
            filled += len(local)
            bar.update(len(batch))
    return report
