"""Deprecated: moved to `langchain_icalign.backends.transformers`.

This path is removed in the next release.
"""

import warnings

from langchain_icalign.backends.transformers import (
    StopOnStrings,
    TransformersBackend,
)

__all__ = [
    "StopOnStrings",
    "TransformersBackend",
]

warnings.warn(
    "langchain_icalign.transformers_backend is deprecated; "
    "import from langchain_icalign.backends.transformers",
    DeprecationWarning,
    stacklevel=2,
)
