"""Deprecated: moved to `langchain_icalign.backends.llm`.

This path is removed in the next release.
"""

import warnings

from langchain_icalign.backends.llm import (
    LLMBackend,
    approximate_token_count,
    cut_to_tokens,
)

__all__ = [
    "LLMBackend",
    "approximate_token_count",
    "cut_to_tokens",
]

warnings.warn(
    "langchain_icalign.llm_backend is deprecated; import from langchain_icalign.backends.llm",
    DeprecationWarning,
    stacklevel=2,
)
