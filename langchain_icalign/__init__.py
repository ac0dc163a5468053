"""In-context alignment for LangChain: base LLMs answer like chat models through demos."""

from importlib import metadata

from langchain_icalign.chat_models.base import ChatICAlign
from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.errors import (
    DemoStoreError,
    EmbeddingMismatchError,
    GenerationError,
    ModelCorruptedError,
    StoreConnectionError,
    StoreCorruptedError,
    StoreLockedError,
)
from langchain_icalign.formats import Conversation, HanFormat, PromptFormat, URIALFormat
from langchain_icalign.prompting import ContextWindowExceededError, PreparedPrompt
from langchain_icalign.selector import AlignmentExampleSelector, SelectedDemo
from langchain_icalign.store import DemoStore

try:
    __version__ = metadata.version(__package__ or "langchain-icalign")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AlignmentDemo",
    "AlignmentExampleSelector",
    "ChatICAlign",
    "ContextWindowExceededError",
    "Conversation",
    "DemoStore",
    "DemoStoreError",
    "EmbeddingMismatchError",
    "GenerationError",
    "HanFormat",
    "ModelCorruptedError",
    "PreparedPrompt",
    "PromptFormat",
    "SelectedDemo",
    "StoreConnectionError",
    "StoreCorruptedError",
    "StoreLockedError",
    "URIALFormat",
    "__version__",
]
