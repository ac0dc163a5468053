"""Deprecated: moved to `langchain_icalign.defaults.model_cache`.

This path is removed in the next release.
"""

import warnings

from langchain_icalign.defaults.model_cache import (
    DEFAULT_BASE_MODEL,
    DEFAULT_EMBEDDING_MODEL,
    DEFAULT_MODEL_DIRNAME,
    default_embeddings_path,
    default_model_dir,
    ensure_default_model,
    icalign_home,
    is_model_complete,
    load_causal_lm,
)

__all__ = [
    "DEFAULT_BASE_MODEL",
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_MODEL_DIRNAME",
    "default_embeddings_path",
    "default_model_dir",
    "ensure_default_model",
    "icalign_home",
    "is_model_complete",
    "load_causal_lm",
]

warnings.warn(
    "langchain_icalign.model_cache is deprecated; "
    "import from langchain_icalign.defaults.model_cache",
    DeprecationWarning,
    stacklevel=2,
)
