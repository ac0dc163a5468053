"""Demos as unit-length vectors, and the most similar row of one matrix for each of another.

Used by cleaning (near-duplicates, decontamination); the text embedded for a demo is the
store's (`store.schema.text_to_embed`). Vectors are numpy float32 rows of length one,
compared by dot product in column chunks, so a 100k pool is feasible on a laptop CPU once
embedded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings
from tqdm.auto import tqdm

from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.store.schema import text_to_embed

__all__ = ["demo_vectors", "embed_matrix", "max_similarity"]


_COLUMN_CHUNK = 16384


def embed_matrix(
    embeddings: Embeddings,
    texts: Sequence[str],
    *,
    batch_size: int = 256,
    show_progress: bool = False,
    desc: str = "Embedding",
) -> np.ndarray:
    """Embed texts in batches into an (n, dim) float32 matrix of unit-length rows.

    Args:
        embeddings: The embeddings.
        texts: The texts.
        batch_size: Texts per `embed_documents` call.
        show_progress: Show a progress bar.
        desc: The progress bar's label.
    """
    rows: list[np.ndarray] = []
    with tqdm(total=len(texts), desc=desc, unit="text", disable=not show_progress) as bar:
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            rows.append(np.asarray(embeddings.embed_documents(batch), dtype=np.float32))
            bar.update(len(batch))
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    matrix = np.concatenate(rows)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def max_similarity(
    queries: np.ndarray, keys: np.ndarray, chunk: int = _COLUMN_CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of `queries`, the highest dot product with a row of `keys`, and its index.

    Computed over column chunks of `keys`, so memory stays bounded for large `keys`.
    Returns (-inf, -1) rows when `keys` is empty.
    """
    best = np.full(len(queries), -np.inf, dtype=np.float32)
    where = np.full(len(queries), -1, dtype=np.int64)
    for start in range(0, len(keys), chunk):
        scores = queries @ keys[start : start + chunk].T
        arg = scores.argmax(axis=1)
        top = scores[np.arange(len(queries)), arg]
        better = top > best
        best[better] = top[better]
        where[better] = arg[better] + start
    return best, where


def demo_vectors(
    demos: Sequence[AlignmentDemo],
    vectors: np.ndarray | None,
    embeddings: Embeddings | None,
    embed: str,
    batch_size: int,
    show_progress: bool,
) -> np.ndarray:
    """The demos' vectors: `vectors` when given (checked), else embedded (`text_to_embed`).

    Raises:
        ValueError: For a count of vectors other than the demos', or neither given.
    """
    if vectors is not None:
        if len(vectors) != len(demos):
            msg = f"got {len(vectors)} vectors for {len(demos)} demos"
            raise ValueError(msg)
        return np.asarray(vectors, dtype=np.float32)
    if embeddings is None:
        msg = "pass embeddings= (or vectors=) to compare demos by similarity"
        raise ValueError(msg)
    texts = [text_to_embed(demo, embed) for demo in demos]
    return embed_matrix(
        embeddings, texts, batch_size=batch_size, show_progress=show_progress, desc="Embedding"
    )
