"""Errors raised by langchain-icalign, each naming what went wrong and what to do."""

from __future__ import annotations

__all__ = [
    "DemoStoreError",
    "EmbeddingMismatchError",
    "GenerationError",
    "ModelCorruptedError",
    "ModelServerError",
    "StoreConnectionError",
    "StoreCorruptedError",
    "StoreLockedError",
]


class DemoStoreError(RuntimeError):
    """A demo store cannot be opened or used."""


class EmbeddingMismatchError(DemoStoreError, ValueError):
    """A collection was built with other embeddings (model name or vector size)."""


class StoreLockedError(DemoStoreError):
    """A local store folder is already open in another client or process."""


class StoreConnectionError(DemoStoreError, ConnectionError):
    """A Qdrant server does not answer."""


class StoreCorruptedError(DemoStoreError):
    """A local store's files are damaged, or it holds fewer demos than it recorded."""


class ModelCorruptedError(RuntimeError):
    """A model's weight files are damaged (truncated, or holding NaN or infinite values)."""


class GenerationError(RuntimeError):
    """The language model backend failed while generating."""


class ModelServerError(GenerationError, ConnectionError):
    """A model server does not answer, breaks off an answer, or answers what is not one.

    The message names the server's URL and what went wrong.
    """
