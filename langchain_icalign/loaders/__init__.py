"""Loading demos from alignment datasets, and indexing them into a store.

`load_demos` reads JSON Lines or JSON files of many record formats (prompt/response,
Alpaca, Dolly, ShareGPT, OpenAI messages, LIMA, OpenAssistant trees) and Hugging Face
datasets by name, checks every record, and reports what it found. `index_demos` adds them
to a `DemoStore` resumably and idempotently. Cleaning lives in `langchain_icalign.cleaning`.
"""

from langchain_icalign.loaders.conversation import Conversation, conversation_to_demo
from langchain_icalign.loaders.embedding_cache import CachingEmbeddings
from langchain_icalign.loaders.errors import DemoFileError, RecordError
from langchain_icalign.loaders.indexing import (
    IndexResult,
    index_demos,
    stored_ids,
    stored_vectors,
)
from langchain_icalign.loaders.load import DemoSource, load_demos, load_jsonl, load_prompts
from langchain_icalign.loaders.pipeline import IndexSummary, index_sources
from langchain_icalign.loaders.reading import (
    DEFAULT_MAX_RECORD_BYTES,
    detect_container,
    read_json_records,
    read_jsonl_records,
    read_records,
)
from langchain_icalign.loaders.record_formats import (
    RECORD_FORMATS,
    detect_format,
    guess_record_format,
)
from langchain_icalign.loaders.report import LoadReport

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "RECORD_FORMATS",
    "CachingEmbeddings",
    "Conversation",
    "DemoFileError",
    "DemoSource",
    "IndexResult",
    "IndexSummary",
    "LoadReport",
    "RecordError",
    "conversation_to_demo",
    "detect_container",
    "detect_format",
    "guess_record_format",
    "index_demos",
    "index_sources",
    "load_demos",
    "load_jsonl",
    "load_prompts",
    "read_json_records",
    "read_jsonl_records",
    "read_records",
    "stored_ids",
    "stored_vectors",
]
