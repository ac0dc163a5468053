"""Adding loaded demos to a store: resumable, idempotent, in batches."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from langchain_icalign.demos import AlignmentDemo, point_id_for
from langchain_icalign.loaders.embedding_cache import CachingEmbeddings
from langchain_icalign.store import DemoStore
from langchain_icalign.store.schema import text_to_embed

__all__ = ["IndexResult", "index_demos", "stored_ids", "stored_vectors"]


@dataclass
class IndexResult:
    """What `index_demos` did.

    Attributes:
        added: Ids of the demos added, in order.
        already_stored: Ids of the demos the store held before (left as they were).
    """

    added: list[str] = field(default_factory=list)
    already_stored: list[str] = field(default_factory=list)


def stored_ids(store: DemoStore, ids: Sequence[str], *, batch_size: int = 1024) -> set[str]:
    """Those of `ids` that the store already holds (looked up in batches, without payloads)."""
    found: set[str] = set()
    for start in range(0, len(ids), batch_size):
        batch = list(ids[start : start + batch_size])
        by_point: dict[str, str] = {point_id_for(i): i for i in batch}
        point_ids: list[int | str | uuid.UUID] = list(by_point)
        points = store.client.retrieve(
            store.collection_name, point_ids, with_payload=False, with_vectors=False
        )
        found.update(by_point[str(point.id)] for point in points)
    return found


def stored_vectors(store: DemoStore, *, batch_size: int = 1024) -> np.ndarray:
    """Every stored demo's vector, as an (n, dim) float32 matrix of unit-length rows."""
    rows: list[np.ndarray] = []
    offset = None
    while True:
        points, offset = store.client.scroll(
            store.collection_name,
            limit=batch_size,
            offset=offset,
            with_payload=False,
            with_vectors=True,
        )
        for point in points:
            vector = np.asarray(point.vector, dtype=np.float32)
            if vector.ndim != 1:
                msg = f"collection {store.collection_name!r} does not hold one dense vector a point"
                raise TypeError(msg)
            rows.append(vector)
        if offset is None:
            break
    if not rows:
        return np.zeros((0, store.vector_size), dtype=np.float32)
    matrix = np.stack(rows)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def index_demos(
    store: DemoStore,
    demos: Sequence[AlignmentDemo],
    *,
    batch_size: int = 64,
    show_progress: bool = False,
) -> IndexResult:
    """Add the demos the store does not hold yet, in batches.

    Ids derive from content, so running this again adds nothing (idempotent), and after an
    interruption (each batch is written as it is embedded) it adds only what is missing
    (resumable).

    Args:
        store: The store.
        demos: The demos (repeated ids are added once).
        batch_size: Demos embedded and written per batch.
        show_progress: Show a progress bar.
    """
    unique = list({demo.id: demo for demo in demos}.values())
    present = stored_ids(store, [demo.id for demo in unique])
    new = [demo for demo in unique if demo.id not in present]
    result = IndexResult(already_stored=[d.id for d in unique if d.id in present])
    with tqdm(total=len(new), desc="Indexing demos", unit="demo", disable=not show_progress) as bar:
        for start in range(0, len(new), batch_size):
            batch = new[start : start + batch_size]
            store.add_demos(batch, batch_size=batch_size)
            if isinstance(store.embeddings, CachingEmbeddings):
                store.embeddings.forget([text_to_embed(d, store.embed) for d in batch])
            result.added += [demo.id for demo in batch]
            bar.update(len(batch))
    return result
