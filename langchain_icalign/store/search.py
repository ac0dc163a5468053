"""Searching a `DemoStore`'s collection by vector: the demos nearest a query, best first.

A plain search of a local collection (no filter, no MMR) is one matrix-vector product over
the collection's own vectors (`local_search`: the same results as Qdrant's Python brute
force, much faster); anything else is Qdrant's `query_points`, diversified by MMR when
asked.
"""

from __future__ import annotations

from collections.abc import Sequence

from qdrant_client import QdrantClient

from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.store.local_search import local_exact_search
from langchain_icalign.store.schema import (
    DemoFilter,
    demo_from_payload,
    nearest_query,
    qdrant_filter,
)

__all__ = ["ScoredDemo", "search_collection"]

ScoredDemo = tuple[AlignmentDemo, float]
"""A demo and its cosine similarity to the query."""


def search_collection(
    client: QdrantClient,
    collection_name: str,
    vector: Sequence[float],
    k: int,
    filter: DemoFilter | None = None,
    *,
    score_threshold: float | None = None,
    mmr_lambda: float | None = None,
    mmr_candidates: int | None = None,
) -> list[ScoredDemo]:
    """The `k` demos of a collection nearest `vector`, best first.

    Args:
        client: The Qdrant client (the caller holds its lock).
        collection_name: The collection.
        vector: The query embedding.
        k: How many demos.
        filter: A Qdrant filter or `{metadata_key: value}`.
        score_threshold: Leave out demos with a lower cosine similarity.
        mmr_lambda: If set, MMR with LangChain's meaning: 1 is pure relevance, 0 is pure
            diversity.
        mmr_candidates: Candidates MMR picks from (default `4 * k`).
    """
    if k <= 0:
        return []
    if mmr_lambda is None and filter is None:
        found = local_exact_search(client, collection_name, vector, k, score_threshold)
        if found is not None:
            return [(demo_from_payload(payload), score) for payload, score in found]
    points = client.query_points(
        collection_name,
        query=nearest_query(vector, mmr_lambda, mmr_candidates or 4 * k),
        query_filter=qdrant_filter(filter),
        limit=k,
        with_payload=True,
        score_threshold=score_threshold,
    ).points
    return [(demo_from_payload(p.payload or {}), float(p.score)) for p in points]
