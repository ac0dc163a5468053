"""Deprecated: moved to `langchain_icalign.backends.base`.

This path is removed in the next release.
"""

import warnings

from langchain_icalign.backends.base import (
    BackendCapabilities,
    FinishReason,
    Generation,
    GenerationBackend,
    GenerationParams,
    reading_chunks,
)

__all__ = [
    "BackendCapabilities",
    "FinishReason",
    "Generation",
    "GenerationBackend",
    "GenerationParams",
    "reading_chunks",
]

warnings.warn(
    "langchain_icalign.generation is deprecated; import from langchain_icalign.backends.base",
    DeprecationWarning,
    stacklevel=2,
)
