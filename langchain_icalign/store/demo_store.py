"""`DemoStore`: alignment demos in a Qdrant collection."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from langchain_qdrant import QdrantVectorStore
from qdrant_client import QdrantClient, models
from tqdm.auto import tqdm

from langchain_icalign.demos import AlignmentDemo, point_id_for
from langchain_icalign.store.collection import (
    check_store_arguments,
    check_vector_sizes,
    open_collection,
    upsert_demos,
)
from langchain_icalign.store.integrity import CountRecord, open_client
from langchain_icalign.store.schema import (
    CONTENT_KEY,
    METADATA_KEY,
    DemoFilter,
    demo_from_payload,
    embedding_model_name,
)
from langchain_icalign.store.search import ScoredDemo, search_collection

__all__ = ["DemoStore"]


class DemoStore:
    """Alignment demos stored and searched in a Qdrant collection.

    Built on langchain-qdrant's `QdrantVectorStore` for embedding and upserting. Searches
    call `query_points` on the client directly: `QdrantVectorStore` re-reads the collection
    config on every search (one extra round trip per query) and cannot return the vectors
    that MMR and scores need.

    The collection records the embedding model's name and vector size; opening it with
    other embeddings raises `EmbeddingMismatchError` instead of returning nonsense.

    A local on-disk store (`path=`) also records each collection's demo count in
    `icalign_counts.json` inside its folder, after every add and delete. Opening a store
    that holds fewer demos than recorded (its `storage.sqlite` deleted, emptied or replaced)
    raises `StoreCorruptedError`, as does a folder whose files Qdrant cannot read.

    Setup:
        ```bash
        pip install langchain-icalign
        ```

    Instantiate:
        ```python
        from langchain_huggingface import HuggingFaceEmbeddings
        from langchain_icalign import DemoStore

        store = DemoStore(HuggingFaceEmbeddings(model_name="..."))  # in memory
        store = DemoStore(embeddings, path="demos.qdrant")  # local, on disk
        store = DemoStore(embeddings, url="http://localhost:6333", api_key=None)
        ```

    Add and search:
        ```python
        ids = store.add_demos([AlignmentDemo(prompt="Hi?", response="Hello!")])
        store.search("hello", k=3)  # [(AlignmentDemo(...), 0.83), ...]
        store.search("hello", k=3, filter={"category": "advice"})
        ```

    Args:
        embeddings: Embeddings for demo prompts and queries.
        location: `":memory:"` for an in-process store (the default when nothing else is given).
        path: Folder of an on-disk local store.
        url: URL of a Qdrant server.
        api_key: API key of a Qdrant server or cluster.
        client: A ready `QdrantClient` (then location, path, url and api_key must be None).
        collection_name: The collection holding the demos.
        embed: What is embedded: the demo's `"prompt"` (as Han 2023) or `"prompt_response"`.
        embedding_name: Name recorded with the collection; derived from `embeddings` if None.
        timeout: Seconds to wait for a Qdrant server.
        collection_options: Passed to `create_collection` when the collection is made:
            `hnsw_config`, `on_disk_payload`, `quantization_config`, `optimizers_config`,
            `shard_number`, ... (see docs/qdrant.md). The vectors' size and distance and the
            collection's metadata are the store's own.
        **client_kwargs: Passed to `QdrantClient`.

    Raises:
        ValueError: For an empty collection name, or conflicting arguments.
        EmbeddingMismatchError: The collection was built with another embedding model or size.
        StoreCorruptedError: A local folder's files are damaged, or it lost demos.
        StoreLockedError: The local folder is open in another client or process.
        StoreConnectionError: The Qdrant server does not answer.
    """

    def __init__(
        self,
        embeddings: Embeddings,
        *,
        location: str | None = None,
        path: str | Path | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: QdrantClient | None = None,
        collection_name: str = "icalign_demos",
        embed: Literal["prompt", "prompt_response"] = "prompt",
        embedding_name: str | None = None,
        timeout: int | None = None,
        collection_options: dict[str, Any] | None = None,
        **client_kwargs: Any,
    ) -> None:
        check_store_arguments(
            embed=embed,
            collection_name=collection_name,
            collection_options=collection_options,
            client=client,
            where=(location, path, url, api_key),
        )
        self.embeddings = embeddings
        self.collection_name = collection_name
        self.collection_options = dict(collection_options or {})
        self.embed = embed
        self.embedding_name = embedding_name or embedding_model_name(embeddings)
        self._where = str(url or path or location or "the given client")
        self._lock = threading.RLock()
        self.closed = False
        self._folder = Path(path) if path is not None else None
        self._counts = CountRecord(self._folder) if self._folder is not None else None
        self.client = (
            client
            if client is not None
            else open_client(location, path, url, api_key, timeout, client_kwargs)
        )
        try:
            self.vector_size = open_collection(
                self.client,
                collection_name,
                embeddings,
                record={"embedding_model": self.embedding_name, "embed": embed},
                where=self._where,
                options=self.collection_options,
                counts=self._counts,
            )
        except BaseException:
            if client is None:  # a local folder stays locked until its client is closed
                self.client.close()
            raise
        self.vectorstore = QdrantVectorStore(
            client=self.client,
            collection_name=collection_name,
            embedding=embeddings,
            content_payload_key=CONTENT_KEY,
            metadata_payload_key=METADATA_KEY,
            validate_embeddings=False,
            validate_collection_config=False,
        )

    # -- writing ---------------------------------------------------------------------------

    def _record_count(self) -> None:
        if self._counts is not None:
            with self._lock:  # counted and written in the order the changes were made
                self._counts.write(self.collection_name, self.count())

    def add_demos(
        self,
        demos: Iterable[AlignmentDemo],
        batch_size: int = 64,
        *,
        vectors: Mapping[str, Sequence[float]] | None = None,
        show_progress: bool = False,
    ) -> list[str]:
        """Embed and upsert demos; adding a demo already stored keeps one point.

        Args:
            demos: The demos.
            batch_size: Demos embedded and upserted per call.
            vectors: Embeddings already computed with this store's embeddings, by demo id,
                of the text this store embeds (`embed`); demos without one are embedded.
            show_progress: Show a progress bar.

        Returns:
            The ids of the given demos, in order (repeated ids once).

        Raises:
            ValueError: For a given vector whose size is not the collection's.
        """
        unique: dict[str, AlignmentDemo] = {}
        for demo in demos:
            unique.setdefault(demo.id, demo)
        items = list(unique.values())
        given = vectors or {}
        check_vector_sizes(given, list(unique), self.vector_size, self.collection_name)
        bar = tqdm(total=len(items), desc="Indexing demos", unit="demo", disable=not show_progress)
        with bar:
            for start in range(0, len(items), batch_size):
                batch = items[start : start + batch_size]
                with self._lock:
                    upsert_demos(self.vectorstore, batch, embed=self.embed, vectors=given)
                bar.update(len(batch))
        self._record_count()
        return [d.id for d in items]

    async def aadd_demos(self, demos: Iterable[AlignmentDemo], batch_size: int = 64) -> list[str]:
        """Async `add_demos` (runs in an executor: the Qdrant integration is sync)."""
        return await run_in_executor(None, self.add_demos, list(demos), batch_size)

    def delete(self, ids: Sequence[str]) -> None:
        """Delete demos by id (unknown ids are ignored)."""
        point_ids: list[int | str | uuid.UUID] = [point_id_for(i) for i in ids]
        with self._lock:
            self.client.delete(
                self.collection_name,
                points_selector=models.PointIdsList(points=point_ids),
            )
            self._record_count()

    async def adelete(self, ids: Sequence[str]) -> None:
        """Async `delete`."""
        await run_in_executor(None, self.delete, list(ids))

    def drop_collection(self, collection_name: str) -> None:
        """Delete another collection of this store's client, and its recorded count.

        Raises:
            ValueError: For this store's own collection.
        """
        if collection_name == self.collection_name:
            msg = f"{collection_name!r} is this store's own collection; close the store instead"
            raise ValueError(msg)
        with self._lock:
            self.client.delete_collection(collection_name)
            if self._counts is not None:
                self._counts.forget(collection_name)

    # -- reading ---------------------------------------------------------------------------

    def count(self) -> int:
        """Number of demos in the collection."""
        with self._lock:
            return self.client.count(self.collection_name, exact=True).count

    async def acount(self) -> int:
        """Async `count`."""
        return await run_in_executor(None, self.count)

    def get(self, ids: Sequence[str]) -> list[AlignmentDemo]:
        """The stored demos with these ids (missing ids are left out)."""
        point_ids: list[int | str | uuid.UUID] = [point_id_for(i) for i in ids]
        with self._lock:
            points = self.client.retrieve(self.collection_name, point_ids, with_payload=True)
        return [demo_from_payload(p.payload or {}) for p in points]

    def iter_demos(self, batch_size: int = 256) -> Iterable[AlignmentDemo]:
        """Every stored demo, in storage order."""
        offset: Any = None
        while True:
            with self._lock:
                points, offset = self.client.scroll(
                    self.collection_name, limit=batch_size, offset=offset, with_payload=True
                )
            for point in points:
                yield demo_from_payload(point.payload or {})
            if offset is None:
                return

    def embed_query(self, query: str) -> list[float]:
        """Embed a query with the store's embeddings."""
        return self.embeddings.embed_query(query)

    def search(
        self,
        query: str,
        k: int = 20,
        filter: DemoFilter | None = None,
        *,
        score_threshold: float | None = None,
    ) -> list[ScoredDemo]:
        """The `k` demos whose prompts are most similar to `query`, best first.

        Args:
            query: The user's message.
            k: How many demos.
            filter: A Qdrant filter or `{metadata_key: value}`.
            score_threshold: Leave out demos with a lower cosine similarity.
        """
        return self.search_by_vector(
            self.embed_query(query), k, filter, score_threshold=score_threshold
        )

    async def asearch(
        self,
        query: str,
        k: int = 20,
        filter: DemoFilter | None = None,
        *,
        score_threshold: float | None = None,
    ) -> list[ScoredDemo]:
        """Async `search`."""
        vector = await self.embeddings.aembed_query(query)
        return await run_in_executor(
            None, lambda: self.search_by_vector(vector, k, filter, score_threshold=score_threshold)
        )

    def search_by_vector(
        self,
        vector: Sequence[float],
        k: int = 20,
        filter: DemoFilter | None = None,
        *,
        score_threshold: float | None = None,
        mmr_lambda: float | None = None,
        mmr_candidates: int | None = None,
    ) -> list[ScoredDemo]:
        """Like `search`, from a query vector; with `mmr_lambda`, diversified by MMR.

        Args:
            vector: The query embedding.
            k: How many demos.
            filter: A Qdrant filter or `{metadata_key: value}`.
            score_threshold: Leave out demos with a lower cosine similarity.
            mmr_lambda: If set, MMR with LangChain's meaning: 1 is pure relevance, 0 is
                pure diversity.
            mmr_candidates: Candidates MMR picks from (default `4 * k`).
        """
        with self._lock:
            return search_collection(
                self.client,
                self.collection_name,
                vector,
                k,
                filter,
                score_threshold=score_threshold,
                mmr_lambda=mmr_lambda,
                mmr_candidates=mmr_candidates,
            )

    def close(self) -> None:
        """Close the client (releases a local store's folder lock); `closed` is then True."""
        self.client.close()
        self.closed = True

    def __getstate__(self) -> dict[str, Any]:
        msg = (
            "a DemoStore cannot be pickled: it holds an open Qdrant client (a local folder's "
            "lock, an in-memory collection or a server connection), and so cannot a "
            "ChatICAlign or AlignmentExampleSelector using it. Open the store where it is "
            "needed instead (DemoStore(embeddings, path=...) or url=...), and build the chat "
            "model there (ChatICAlign.from_defaults(...) or ChatICAlign(llm=..., "
            "selector=...)); a Qdrant server (url=) lets several processes share the demos"
        )
        raise TypeError(msg)

    def __enter__(self) -> DemoStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"DemoStore(collection_name={self.collection_name!r}, where={self._where!r}, "
            f"embedding={self.embedding_name!r})"
        )
