"""The local-mode fast search gives what Qdrant's own search gives."""

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from langchain_icalign import AlignmentDemo, DemoStore
from langchain_icalign.store.local_search import local_exact_search
from langchain_icalign.store.schema import demo_from_payload

from .conftest import BagOfWordsEmbeddings


def _qdrant(client, name, vector, k, threshold=None):
    points = client.query_points(
        name, query=list(vector), limit=k, with_payload=True, score_threshold=threshold
    ).points
    return [(p.payload, p.score) for p in points]


@pytest.fixture
def filled():
    rng = np.random.default_rng(0)
    client = QdrantClient(location=":memory:")
    client.create_collection(
        "c", vectors_config=models.VectorParams(size=16, distance=models.Distance.COSINE)
    )
    vectors = rng.standard_normal((300, 16))
    client.upsert(
        "c",
        points=models.Batch(
            ids=list(range(300)),
            vectors=vectors.tolist(),
            payloads=[{"i": i, "nested": {"tags": [i]}} for i in range(300)],
        ),
    )
    return client, rng


def test_same_top_k_scores_and_order_as_qdrant(filled):
    client, rng = filled
    for _ in range(20):
        query = rng.standard_normal(16) * 3
        fast = local_exact_search(client, "c", query, 20)
        slow = _qdrant(client, "c", query, 20)
        assert [p for p, _ in fast] == [p for p, _ in slow]
        assert np.allclose([s for _, s in fast], [s for _, s in slow], atol=1e-5)


def test_deletes_updates_and_thresholds_are_seen(filled):
    client, rng = filled
    query = rng.standard_normal(16)
    best = _qdrant(client, "c", query, 1)[0][0]["i"]
    client.delete("c", points_selector=models.PointIdsList(points=[best]))
    client.upsert("c", points=[models.PointStruct(id=5, vector=list(query), payload={"i": 5})])
    fast = local_exact_search(client, "c", query, 10, score_threshold=0.2)
    slow = _qdrant(client, "c", query, 10, threshold=0.2)
    assert [p for p, _ in fast] == [p for p, _ in slow]
    assert fast[0][0] == {"i": 5}
    assert all(p["i"] != best for p, _ in fast)
    assert local_exact_search(client, "c", query, 1000) is not None
    assert len(local_exact_search(client, "c", query, 1000)) == 299


def test_results_are_copies_of_the_stored_payloads(filled):
    client, rng = filled
    payload, _ = local_exact_search(client, "c", rng.standard_normal(16), 1)[0]
    payload["nested"]["tags"].append("mutated")
    assert all("mutated" not in p["nested"]["tags"] for p, _ in _qdrant(client, "c", [1] * 16, 300))


def test_not_applicable_elsewhere(filled):
    client, _ = filled
    assert local_exact_search(client, "missing", [0.0] * 16, 3) is None
    assert local_exact_search(client, "c", [0.0] * 3, 3) is None  # wrong size: Qdrant decides
    client.create_collection(
        "dot", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
    )
    assert local_exact_search(client, "dot", [1.0] * 4, 3) is None

    class Remote:
        _client = object()

    assert local_exact_search(Remote(), "c", [0.0] * 16, 3) is None


def test_demo_store_search_is_unchanged(demos):
    embeddings = BagOfWordsEmbeddings()
    with DemoStore(embeddings, location=":memory:") as store:
        store.add_demos(demos)
        for query in ("bake bread", "capital of France", "python string"):
            fast = store.search(query, k=3)
            vector = embeddings.embed_query(query)
            points = store.client.query_points(
                store.collection_name, query=vector, limit=3, with_payload=True
            ).points
            assert [d.id for d, _ in fast] == [demo_from_payload(p.payload).id for p in points]
            assert isinstance(fast[0][0], AlignmentDemo)
        # A filter still goes through Qdrant.
        assert {
            d.metadata["category"] for d, _ in store.search("bake", 5, {"category": "advice"})
        } == {"advice"}


def test_deleted_points_never_come_back_even_when_k_exceeds_the_live_ones(filled):
    client, rng = filled
    client.delete("c", points_selector=models.PointIdsList(points=list(range(290))))
    found = local_exact_search(client, "c", rng.standard_normal(16), 20)
    assert sorted(p["i"] for p, _ in found) == list(range(290, 300))
