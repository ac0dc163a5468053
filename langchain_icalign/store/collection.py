"""A `DemoStore`'s collection: opened, checked against its embeddings, and written to.

The store's arguments are checked before anything is opened; a new collection is made with
the record of the embeddings that fill it (`schema.collection_record`), an existing
one is checked against that record, and a local folder's recorded demo count is checked
(`integrity.CountRecord`), so that a store opened with other embeddings, or one that
lost demos, refuses instead of returning nonsense. Vectors given to `add_demos` are checked
against the collection's size, and upserted as they are; other demos are embedded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_qdrant import QdrantVectorStore
from qdrant_client import QdrantClient, models

from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.errors import StoreConnectionError
from langchain_icalign.store.integrity import CountRecord
from langchain_icalign.store.schema import (
    check_collection_record,
    collection_record,
    demo_point,
    payload_metadata,
    text_to_embed,
)

__all__ = ["check_store_arguments", "check_vector_sizes", "open_collection", "upsert_demos"]

_RESERVED_OPTIONS = frozenset({"collection_name", "vectors_config", "metadata"})


def check_store_arguments(
    *,
    embed: str,
    collection_name: str,
    collection_options: Mapping[str, Any] | None,
    client: QdrantClient | None,
    where: Sequence[object | None],
) -> None:
    """Refuse a `DemoStore`'s arguments that cannot work together.

    Args:
        embed: What is embedded (`"prompt"` or `"prompt_response"`).
        collection_name: The collection's name.
        collection_options: Options for `create_collection`.
        client: A ready client, if given.
        where: The other ways to reach Qdrant (location, path, url, api_key).

    Raises:
        ValueError: Naming the argument at fault.
    """
    if embed not in ("prompt", "prompt_response"):
        msg = f"embed must be 'prompt' or 'prompt_response', got {embed!r}"
        raise ValueError(msg)
    if not collection_name.strip():
        msg = f"collection_name is empty ({collection_name!r}); give the collection a name"
        raise ValueError(msg)
    reserved = _RESERVED_OPTIONS & set(collection_options or {})
    if reserved:
        msg = f"collection_options cannot set {sorted(reserved)}: the store sets them"
        raise ValueError(msg)
    if client is not None and any(value is not None for value in where):
        msg = "pass either client= or location/path/url/api_key, not both"
        raise ValueError(msg)


def open_collection(
    client: QdrantClient,
    collection_name: str,
    embeddings: Embeddings,
    *,
    record: dict[str, Any],
    where: str,
    options: Mapping[str, Any],
    counts: CountRecord | None,
) -> int:
    """Create the collection with its record, or check an existing one against it.

    Args:
        client: The Qdrant client.
        collection_name: The collection.
        embeddings: The store's embeddings (asked for their vector size).
        record: What the collection must have been built with (embedding model, what is
            embedded).
        where: Where the store is, for messages.
        options: Passed to `create_collection`.
        counts: A local folder's count record, or None.

    Returns:
        The collection's vector size.

    Raises:
        StoreConnectionError: Qdrant does not answer.
        EmbeddingMismatchError: The collection was built with other embeddings.
        StoreCorruptedError: A local collection lost demos.
    """
    try:
        exists = client.collection_exists(collection_name)
    except Exception as error:  # network errors come in many types
        msg = f"cannot reach Qdrant at {where}: {error}"
        raise StoreConnectionError(msg) from error

    def probe() -> int:
        return len(embeddings.embed_query("vector size probe"))

    if exists:
        info = client.get_collection(collection_name)
        size = check_collection_record(info, f"{collection_name!r} at {where}", record, probe)
    else:
        if counts is not None:
            counts.refuse_lost(collection_name)
        size = probe()
        client.create_collection(
            collection_name,
            vectors_config=models.VectorParams(size=size, distance=models.Distance.COSINE),
            metadata=collection_record(record, size),
            **options,
        )
    if counts is not None:  # for a new collection: a storage file left behind is read back in
        counts.check(collection_name, client.count(collection_name, exact=True).count)
    return size


def check_vector_sizes(
    vectors: Mapping[str, Sequence[float]], ids: Sequence[str], size: int, collection_name: str
) -> None:
    """Refuse a given vector (by demo id, of the demos `ids`) whose size is not `size`.

    Raises:
        ValueError: Naming the demo and both sizes.
    """
    for demo_id in ids:
        if demo_id in vectors and len(vectors[demo_id]) != size:
            msg = (
                f"the vector given for demo {demo_id} has size {len(vectors[demo_id])}; "
                f"collection {collection_name!r} holds vectors of size {size}"
            )
            raise ValueError(msg)


def upsert_demos(
    vectorstore: QdrantVectorStore,
    demos: Sequence[AlignmentDemo],
    *,
    embed: str,
    vectors: Mapping[str, Sequence[float]],
) -> None:
    """Upsert one batch of demos: with their given vector, else embedded by `vectorstore`.

    Args:
        vectorstore: The store's `QdrantVectorStore` (its client, collection and embeddings).
        demos: The batch, one demo per id.
        embed: What is embedded (`"prompt"` or `"prompt_response"`).
        vectors: Vectors already computed, by demo id (checked by `check_vector_sizes`).
    """
    ready = [d for d in demos if d.id in vectors]
    fresh = [d for d in demos if d.id not in vectors]
    if ready:
        vectorstore.client.upsert(
            vectorstore.collection_name,
            points=[demo_point(d, text_to_embed(d, embed), vectors[d.id]) for d in ready],
        )
    if fresh:
        vectorstore.add_texts(
            [text_to_embed(d, embed) for d in fresh],
            metadatas=[payload_metadata(d) for d in fresh],
            ids=[d.point_id for d in fresh],
            batch_size=len(fresh),
        )
