"""Deprecated: moved to `langchain_icalign.backends.server`.

This path is removed in the next release.
"""

import warnings

from langchain_icalign.backends.server import (
    ServerBackend,
)
from langchain_icalign.chat_models import (
    server_chat,
)

__all__ = [
    "ServerBackend",
    "server_chat",
]

warnings.warn(
    "langchain_icalign.server_backend is deprecated; import from langchain_icalign.backends.server",
    DeprecationWarning,
    stacklevel=2,
)
