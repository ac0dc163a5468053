"""Batched generation for `ChatICAlign.batch`: the requests of one batch decode together.

`ChatICAlign.batch` runs `invoke` once per input in a thread pool, as LangChain's `batch`
does (callbacks, tracing, caching and `return_exceptions` stay per input), each input in
its own `BatchingBackend` (a `GenerationBackend` around the chat's, set in a context
variable for that input's thread only; `batched` is where it is read). The request path
runs as in `invoke`, unaware of the batch: its `generate` hands the prompt to the batch's
`BatchWindow` instead of generating alone. When every input has arrived (or as many as run
at once, or none has arrived for `wait_s`), one thread runs them as one left-padded
`generate_batch` call and hands each its answer.

The queries' embeddings are computed together beforehand where that gives the same
vectors as `embed_query` (see `embeds_queries_as_documents`).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import RunnableConfig, get_config_list

from langchain_icalign.backends.base import (
    BackendCapabilities,
    Generation,
    GenerationBackend,
    GenerationParams,
)

__all__ = [
    "BatchWindow",
    "BatchingBackend",
    "batched",
    "embed_queries",
    "embeds_queries_as_documents",
]

_ACTIVE: contextvars.ContextVar[BatchingBackend | None] = contextvars.ContextVar(
    "icalign_batch_input", default=None
)
"""The `BatchingBackend` of the `batch` input this thread works for, if any."""


def embeds_queries_as_documents(embeddings: Embeddings) -> bool:
    """Whether `embed_documents([q])[0]` is `embed_query(q)` for these embeddings.

    True for `HuggingFaceEmbeddings` without `query_encode_kwargs` (the default stack),
    and for embeddings that say so with an `embeds_queries_as_documents = True`
    attribute. Embeddings that treat queries differently (instruction prefixes, other
    encode options) embed each query on its own.
    """
    if getattr(embeddings, "embeds_queries_as_documents", False) is True:
        return True
    try:
        from langchain_huggingface import HuggingFaceEmbeddings
    except ImportError:  # pragma: no cover - a dependency
        return False
    return isinstance(embeddings, HuggingFaceEmbeddings) and not embeddings.query_encode_kwargs


def embed_queries(embeddings: Embeddings, queries: Sequence[str]) -> list[list[float]]:
    """The queries' embeddings: in one call where that equals `embed_query` on each."""
    unique = list(dict.fromkeys(queries))
    if len(unique) > 1 and embeds_queries_as_documents(embeddings):
        vectors = embeddings.embed_documents(unique)
    else:
        vectors = [embeddings.embed_query(query) for query in unique]
    table = dict(zip(unique, vectors, strict=True))
    return [table[query] for query in queries]


@dataclass(eq=False)
class _Request:
    prompt: str
    params: GenerationParams
    deadline: float | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: Generation | None = None
    error: BaseException | None = None


class BatchWindow:
    """Gathers the generations of one `batch` call and runs them together.

    Args:
        backend: The backend that runs the batch.
        expected: Inputs in the batch.
        capacity: Most inputs that run at once (the batch's `max_concurrency`).
        wait_s: Longest wait for an input that may never arrive (one answered from the
            LLM cache, say) once no other has arrived for this long.
        query_vectors: Query -> embedding, computed for the whole batch beforehand.
    """

    def __init__(
        self,
        backend: GenerationBackend,
        expected: int,
        capacity: int | None = None,
        wait_s: float = 1.0,
        query_vectors: dict[str, list[float]] | None = None,
    ) -> None:
        self.backend = backend
        self.capacity = max(1, capacity or expected)
        self.wait_s = wait_s
        self.query_vectors = dict(query_vectors or {})
        self.batch_sizes: list[int] = []
        """Sizes of the `generate_batch` calls run so far (for tests and benchmarks)."""
        self._outstanding = expected
        self._pending: list[_Request] = []
        self._last_arrival = time.monotonic()
        self._cond = threading.Condition()

    def configs(
        self, config: RunnableConfig | list[RunnableConfig] | None, count: int
    ) -> list[RunnableConfig]:
        """The batch's configs, each running up to `capacity` inputs at once."""
        return [
            RunnableConfig(**{**c, "max_concurrency": self.capacity})  # type: ignore[typeddict-item]
            for c in get_config_list(config, count)
        ]

    def withdraw(self) -> None:
        """An input that will not submit (it failed, ran out of time, or runs alone)."""
        with self._cond:
            self._outstanding = max(0, self._outstanding - 1)
            self._cond.notify_all()

    def _ready(self) -> bool:
        return bool(self._pending) and (
            self._outstanding == 0 or len(self._pending) >= self.capacity
        )

    def submit(
        self, prompt: str, params: GenerationParams, started: float | None = None
    ) -> Generation:
        """Generate `prompt` together with the other inputs of the batch.

        Args:
            prompt: The finished prompt.
            params: Its generation settings; `params.timeout` counts from `started`.
            started: When the input's call began (`time.monotonic()`); now when None.
                Time spent preparing the prompt and waiting for the batch counts against
                the timeout: an input whose time is up by the time its batch runs gets an
                empty answer with finish reason "timeout" and is not generated.
        """
        begun = time.monotonic() if started is None else started
        deadline = None if params.timeout is None else begun + params.timeout
        request = _Request(prompt, params, deadline)
        with self._cond:
            self._pending.append(request)
            self._outstanding = max(0, self._outstanding - 1)
            self._last_arrival = time.monotonic()
            self._cond.notify_all()
            group: list[_Request] = []
            while request in self._pending:
                left = self._last_arrival + self.wait_s - time.monotonic()
                if self._ready() or left <= 0:
                    group, self._pending = self._pending, []
                    break
                self._cond.wait(left)
        if group:
            self._run(group)
        request.done.wait()
        if request.error is not None:
            raise request.error
        assert request.result is not None  # set whenever error is not
        return request.result

    def _run(self, group: list[_Request]) -> None:
        # Requests with the same params decode together (a batch shares its options); each
        # one's timeout is its deadline, and the earliest bounds the decoding.
        by_params: dict[GenerationParams, list[_Request]] = {}
        for request in group:
            key = dataclasses.replace(request.params, timeout=None)
            by_params.setdefault(key, []).append(request)
        for params, waiting in by_params.items():
            requests = self._in_time(waiting)
            if not requests:
                continue
            self.batch_sizes.append(len(requests))
            deadlines = [r.deadline for r in requests if r.deadline is not None]
            if deadlines:  # one decoding for all: the earliest deadline bounds it
                params = dataclasses.replace(params, timeout=min(deadlines) - time.monotonic())
            try:
                results = self.backend.generate_batch([r.prompt for r in requests], params)
            except BaseException as error:  # each waiting input gets it
                for request in requests:
                    request.error = error
                    request.done.set()
                continue
            for request, result in zip(requests, results, strict=True):
                request.result = result
                request.done.set()

    def _in_time(self, requests: list[_Request]) -> list[_Request]:
        """The requests with time left; the others end now with finish reason "timeout"."""
        now, kept = time.monotonic(), []
        for request in requests:
            if request.deadline is not None and request.deadline <= now:
                try:
                    tokens = self.backend.count_tokens(request.prompt)
                except Exception:  # the count is for usage only
                    tokens = 0
                request.result = Generation("", tokens, 0, "timeout")
                request.done.set()
            else:
                kept.append(request)
        return kept


class BatchingBackend(GenerationBackend):
    """One input of a `batch`: the wrapped backend, but `generate` decodes with the batch.

    The input's first `generate` is submitted to the shared `window` and returns this
    input's answer; later calls, and an answer made of several calls (`for_steps`, which
    withdraws from the batch first), run alone on the wrapped backend. `leave`, when the
    input ends, withdraws an input that never submitted (its preparation failed, its time
    ran out, the LLM cache answered), so the others do not wait for it. The rest
    (counting, streaming, capabilities) is the wrapped backend's.

    Args:
        inner: The backend that runs the batch.
        window: The batch's window, shared by its inputs.
    """

    def __init__(self, inner: GenerationBackend, window: BatchWindow) -> None:
        self.inner = inner
        self.window = window
        self.model_name = inner.model_name
        self.context_window = inner.context_window
        self.special_tokens = inner.special_tokens
        self.supports_grammar = inner.supports_grammar
        self.tokenizer = inner.tokenizer
        self._arrived = False

    @property
    def capabilities(self) -> BackendCapabilities:
        """The wrapped backend's."""
        return self.inner.capabilities

    def count_tokens(self, text: str) -> int:
        """Tokens in `text`, counted by the wrapped backend."""
        return self.inner.count_tokens(text)

    def generate(self, prompt: str, params: GenerationParams) -> Generation:
        """This input's answer, decoded with the batch (alone after its first call).

        `params.timeout` counts from now: an input whose time is up when its batch runs
        gets an empty answer with finish reason "timeout".
        """
        if self._arrive():
            return self.window.submit(prompt, params)
        return self.inner.generate(prompt, params)

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[str | Generation]:
        """Streamed alone by the wrapped backend."""
        return self.inner.stream(prompt, params)

    def generate_batch(self, prompts: Sequence[str], params: GenerationParams) -> list[Generation]:
        """Run together by the wrapped backend, outside the batch."""
        return self.inner.generate_batch(prompts, params)

    def for_steps(self) -> GenerationBackend:
        """The wrapped backend, after leaving the batch (steps run alone, one on the last)."""
        self.leave()
        return self.inner.for_steps()

    def leave(self) -> None:
        """The input is done with the batch: withdrawn if it never submitted."""
        if self._arrive():
            self.window.withdraw()

    def _arrive(self) -> bool:
        """Whether this is the input's first arrival (submit or withdrawal), counting it."""
        first, self._arrived = not self._arrived, True
        return first

    @contextlib.contextmanager
    def entered(self) -> Iterator[BatchingBackend]:
        """Within: this thread's input is this one (`batched`); on exit, `leave`."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            self.leave()
            _ACTIVE.reset(token)


def batched(backend: GenerationBackend) -> GenerationBackend:
    """The backend a request uses: in a `batch` input around `backend`, its `BatchingBackend`.

    Only the input's own chat sees it: another model called from within gets its own
    backend as it is.
    """
    active = _ACTIVE.get()
    return active if active is not None and active.inner is backend else backend
