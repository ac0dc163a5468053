"""Deprecated: moved to `langchain_icalign.backends.llamacpp`.

This path is removed in the next release.
"""

import warnings

from langchain_icalign.backends.llamacpp import (
    LlamaCppBackend,
)
from langchain_icalign.chat_models import (
    llamacpp_chat,
)
from langchain_icalign.defaults.paths import (
    default_gguf_path,
)

__all__ = [
    "LlamaCppBackend",
    "default_gguf_path",
    "llamacpp_chat",
]

warnings.warn(
    "langchain_icalign.llamacpp_backend is deprecated; "
    "import from langchain_icalign.backends.llamacpp",
    DeprecationWarning,
    stacklevel=2,
)
