"""Errors raised by langchain-icalign, each naming what went wrong and what to do."""

from __future__ import annotations

__all__ = [
    "DemoStoreError",
    "EmbeddingMismatchError",
    "GenerationError",
    "StoreConnectionError",
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


class GenerationError(RuntimeError):
    """The language model backend failed while generating."""
