"""`AlignmentExampleSelector`: Han (2023)'s retrieve-and-pack rule as a LangChain selector."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.runnables.config import run_in_executor
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.formats import PromptFormat, get_prompt_format
from langchain_icalign.store import DemoFilter, DemoStore, ScoredDemo
from langchain_icalign.token_counting import TokenCounter, TokenCounterLike, as_token_counter

__all__ = ["AlignmentExampleSelector", "SelectedDemo", "pack_demos"]

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class SelectedDemo:
    """A demo chosen for a query.

    Attributes:
        demo: The demo.
        score: Its cosine similarity to the query.
        tokens: What it costs in the prompt (rendered, with its separator).
    """

    demo: AlignmentDemo
    score: float
    tokens: int


def pack_demos(
    candidates: Sequence[tuple[AlignmentDemo, float, int]],
    *,
    max_tokens: int,
    max_demo_tokens: int,
    most_relevant_last: bool = True,
) -> list[SelectedDemo]:
    """Han (2023)'s packing rule over candidates given best first.

    Walk the candidates in score order; skip a demo over `max_demo_tokens`; keep adding
    until the next demo would take the total past `max_tokens`, then stop. The kept demos
    are returned with the most relevant last (next to the query) unless
    `most_relevant_last` is False.

    Args:
        candidates: (demo, score, token cost) tuples, most similar first.
        max_tokens: Budget for all kept demos together.
        max_demo_tokens: Longest demo allowed.
        most_relevant_last: Reverse the kept demos, as Han's code does.
    """
    kept: list[SelectedDemo] = []
    total = 0
    for demo, score, tokens in candidates:
        if tokens > max_demo_tokens:
            continue
        if total + tokens > max_tokens:
            break
        kept.append(SelectedDemo(demo, score, tokens))
        total += tokens
    if most_relevant_last:
        kept.reverse()
    return kept


@lru_cache(maxsize=16_384)
def _words_of(demo_id: str, text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def _words(demo: AlignmentDemo) -> frozenset[str]:
    # Cached per demo: a query's candidates are mostly demos seen before.
    return _words_of(demo.id, f"{demo.prompt} {demo.response}")


def _similar(words: frozenset[str], other: frozenset[str], threshold: float) -> bool:
    small, large = sorted((len(words), len(other)))
    if small < threshold * large:  # Jaccard is at most small / large: no set operations
        return False
    return len(words & other) / max(1, len(words | other)) >= threshold


def _drop_near_duplicates(candidates: list[ScoredDemo], threshold: float) -> list[ScoredDemo]:
    kept: list[tuple[ScoredDemo, frozenset[str]]] = []
    for candidate in candidates:
        words = _words(candidate[0])
        if not any(_similar(words, other, threshold) for _, other in kept):
            kept.append((candidate, words))
    return [candidate for candidate, _ in kept]


class AlignmentExampleSelector(BaseExampleSelector, BaseModel):
    """Selects alignment demos for a query from a `DemoStore`, under a token budget.

    The rule of Han (2023): take the `max_k` demos whose prompts are most similar to the
    query; walk them in score order, skip any over `max_demo_tokens`, keep adding until the
    total would pass `max_tokens`, then stop; put the most relevant demo last, next to
    the query. Token counts are of the demo as rendered in `prompt_format`, and are cached
    per demo and tokenizer, so a query never re-tokenises the candidates it has seen.

    Setup:
        ```bash
        pip install langchain-icalign
        ```

    Instantiate:
        ```python
        from langchain_icalign import AlignmentExampleSelector, DemoStore

        selector = AlignmentExampleSelector(
            store=DemoStore(embeddings),
            token_counter=tokenizer,  # or any Callable[[str], int]
            max_k=20,
            max_tokens=3000,
            max_demo_tokens=500,
        )
        ```

    Select:
        ```python
        selector.select_examples({"input": "How do I learn to juggle?"})
        # [{"input": ..., "output": ..., "id": ..., "score": 0.61}, ...]  most relevant last
        ```

    Use in a prompt:
        ```python
        from langchain_core.prompts import FewShotChatMessagePromptTemplate

        few_shot = FewShotChatMessagePromptTemplate(
            example_selector=selector,
            example_prompt=ChatPromptTemplate.from_messages(
                [("human", "{input}"), ("ai", "{output}")]
            ),
            input_variables=["input"],
        )
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    store: DemoStore
    """Where the demos are."""
    token_counter: TokenCounterLike
    """A tokenizer or `Callable[[str], int]`; use the generating model's tokenizer."""
    max_k: int = Field(default=20, ge=1)
    """Candidates retrieved per query."""
    max_tokens: int = Field(default=3000, ge=0)
    """Budget for all selected demos together."""
    max_demo_tokens: int = Field(default=500, ge=1)
    """Demos longer than this are skipped."""
    input_key: str = "input"
    """Key of the query in `select_examples`' input variables."""
    prompt_format: PromptFormat | str = "han"
    """Format the demos are rendered in (for counting their tokens)."""
    score_threshold: float | None = None
    """Leave out demos with a lower cosine similarity to the query."""
    filter: DemoFilter | None = None
    """Only demos matching this Qdrant filter or `{metadata_key: value}` dict."""
    mmr_lambda: float | None = Field(default=None, ge=0.0, le=1.0)
    """If set, diversify candidates by MMR (1: relevance only, 0: diversity only)."""
    dedup_threshold: float | None = Field(default=0.9, gt=0.0, le=1.0)
    """Drop a candidate whose word overlap (Jaccard) with a better one is at least this."""
    most_relevant_last: bool = True
    """Place the most relevant demo next to the query (Han 2023)."""

    _counter: TokenCounter = PrivateAttr()
    _format: PromptFormat = PrivateAttr()
    _token_cache: dict[tuple[str, str, str], int] = PrivateAttr(default_factory=dict)

    def __init__(
        self,
        store: DemoStore | None = None,
        token_counter: TokenCounterLike | None = None,
        /,
        **kwargs: Any,
    ) -> None:
        """Make a selector; `store` and `token_counter` may be given by position or name.

        Raises:
            TypeError: When one is given both ways.
        """
        for name, value in (("store", store), ("token_counter", token_counter)):
            if value is None:
                continue
            if name in kwargs:
                msg = f"AlignmentExampleSelector got {name} twice (by position and by name)"
                raise TypeError(msg)
            kwargs[name] = value
        super().__init__(**kwargs)

    @model_validator(mode="after")
    def _resolve(self) -> AlignmentExampleSelector:
        self._counter = as_token_counter(self.token_counter)
        self._format = get_prompt_format(self.prompt_format)
        return self

    @property
    def format(self) -> PromptFormat:
        """The resolved prompt format."""
        return self._format

    def demo_tokens(self, demo: AlignmentDemo) -> int:
        """What `demo` costs in the prompt, rendered with its separator (cached)."""
        key = (self._counter.key, self._format.name, demo.id)
        cached = self._token_cache.get(key)
        if cached is None:
            text = self._format.render_demo(demo) + self._format.separator
            cached = self._token_cache[key] = self._counter(text)
        return cached

    def retrieve(self, query: str, filter: DemoFilter | None = None) -> list[ScoredDemo]:
        """The `max_k` candidates for `query`, best first, near-duplicates dropped."""
        vector = self.store.embed_query(query)
        return self.retrieve_by_vector(vector, filter)

    def retrieve_by_vector(
        self, vector: Sequence[float], filter: DemoFilter | None = None
    ) -> list[ScoredDemo]:
        """Like `retrieve`, from a query embedding."""
        candidates = self.store.search_by_vector(
            vector,
            self.max_k,
            filter if filter is not None else self.filter,
            score_threshold=self.score_threshold,
            mmr_lambda=self.mmr_lambda,
        )
        if self.mmr_lambda is not None:
            candidates.sort(key=lambda item: item[1], reverse=True)
        if self.dedup_threshold is not None:
            candidates = _drop_near_duplicates(candidates, self.dedup_threshold)
        return candidates

    def pack(
        self, candidates: Sequence[ScoredDemo], max_tokens: int | None = None
    ) -> list[SelectedDemo]:
        """Apply the packing rule to candidates given best first."""
        return pack_demos(
            [(demo, score, self.demo_tokens(demo)) for demo, score in candidates],
            max_tokens=self.max_tokens if max_tokens is None else max_tokens,
            max_demo_tokens=self.max_demo_tokens,
            most_relevant_last=self.most_relevant_last,
        )

    def select_demos(
        self,
        query: str,
        *,
        max_tokens: int | None = None,
        filter: DemoFilter | None = None,
    ) -> list[SelectedDemo]:
        """Retrieve and pack demos for `query`.

        Args:
            query: The user's message.
            max_tokens: A tighter budget for this call (the caller's room in the context).
            filter: A filter for this call instead of `self.filter`.
        """
        budget = self.max_tokens if max_tokens is None else min(max_tokens, self.max_tokens)
        return self.pack(self.retrieve(query, filter), budget)

    async def aselect_demos(
        self,
        query: str,
        *,
        max_tokens: int | None = None,
        filter: DemoFilter | None = None,
    ) -> list[SelectedDemo]:
        """Async `select_demos`."""
        vector = await self.store.embeddings.aembed_query(query)
        budget = self.max_tokens if max_tokens is None else min(max_tokens, self.max_tokens)
        return await run_in_executor(
            None, lambda: self.pack(self.retrieve_by_vector(vector, filter), budget)
        )

    def _query(self, input_variables: dict[str, Any]) -> str:
        if self.input_key not in input_variables:
            msg = (
                f"input variables have no {self.input_key!r} (they have "
                f"{sorted(input_variables)}); set input_key= to the query's key"
            )
            raise KeyError(msg)
        return str(input_variables[self.input_key])

    @staticmethod
    def _as_examples(selected: list[SelectedDemo]) -> list[dict[str, Any]]:
        return [{**s.demo.to_example(), "score": s.score} for s in selected]

    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        """Examples (`input`, `output`, `id`, `score`) for the query in `input_variables`."""
        return self._as_examples(self.select_demos(self._query(input_variables)))

    async def aselect_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        """Async `select_examples`."""
        return self._as_examples(await self.aselect_demos(self._query(input_variables)))

    def add_example(self, example: dict[str, Any]) -> str:
        """Add an example dict (`input`, `output`, optional `id`, extra keys as metadata)."""
        return self.store.add_demos([AlignmentDemo.from_example(example)])[0]

    async def aadd_example(self, example: dict[str, Any]) -> str:
        """Async `add_example`."""
        ids = await self.store.aadd_demos([AlignmentDemo.from_example(example)])
        return ids[0]
