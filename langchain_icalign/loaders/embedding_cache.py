"""`CachingEmbeddings`: embed each text once, when cleaning and indexing both need it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_icalign.store import embedding_model_name

__all__ = ["CachingEmbeddings"]


class CachingEmbeddings(Embeddings):
    """Wraps embeddings and remembers document vectors (as float32), so each text is embedded once.

    The indexing pipeline embeds prompts for near-duplicate removal and then again when the
    store adds them; with this wrapper the second time is a lookup. It records the wrapped
    model's name, so a store opened with it checks the same embedding model.

    Args:
        base: The embeddings to wrap.
    """

    def __init__(self, base: Embeddings) -> None:
        self.base = base
        self.model_name = embedding_model_name(base)
        self._vectors: dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Vectors of texts, embedding only those not seen before."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            for text, vector in zip(missing, self.base.embed_documents(missing), strict=True):
                self._vectors[text] = np.asarray(vector, dtype=np.float32)
        self.misses += len(missing)
        self.hits += len(texts) - len(missing)
        return [self._vectors[text].tolist() for text in texts]

    def embed_query(self, text: str) -> list[float]:
        """The wrapped embeddings' query vector (not cached)."""
        return self.base.embed_query(text)

    def forget(self, texts: Sequence[str]) -> None:
        """Drop the cached vectors of these texts (to free memory once they are stored)."""
        for text in texts:
            self._vectors.pop(text, None)

    def __len__(self) -> int:
        return len(self._vectors)
