"""Prompting conditions compared by the evaluation: zero-shot, retrieved, random, URIAL, hybrid."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseLLM
from langchain_core.runnables.config import run_in_executor
from pydantic import Field

from langchain_icalign.chat_models import ChatICAlign
from langchain_icalign.defaults.builtin_demos import urial_set
from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.formats import ZeroShotFormat
from langchain_icalign.selector import AlignmentExampleSelector, SelectedDemo
from langchain_icalign.store import DemoFilter, ScoredDemo

__all__ = [
    "CONDITIONS",
    "DIAGNOSTIC_CONDITIONS",
    "Condition",
    "RandomDemoSelector",
    "ZeroShotFormat",
    "build_condition_chats",
]

Condition = Literal["zero_shot", "retrieved", "random", "constant", "hybrid", "han_zero_shot"]
CONDITIONS: tuple[Condition, ...] = ("zero_shot", "retrieved", "random", "constant", "hybrid")
"""The conditions, in report order:

- zero_shot: Han (2023)'s baseline prompt `Question: {q}\\n\\nAnswer:`, no demos.
- retrieved: the selector's format (the default's: URIAL's, with the constant set's
  system header) with demos retrieved and packed by Han's rule, as `from_defaults` runs.
- random: the same with random demos from the same pool, packed by the same rule under
  the same budget.
- constant: the URIAL format with the constant URIAL-style set (system text, 3 demos), as
  `icalign chat --format urial` runs.
- hybrid: the selector's format with the URIAL-style system text and constant demos first,
  then retrieved demos, as `icalign chat --demo-mode hybrid` runs.
"""

DIAGNOSTIC_CONDITIONS: tuple[Condition, ...] = ("han_zero_shot",)
"""Conditions that explain the others, not in `CONDITIONS`:

- han_zero_shot: Han's format (`... Here’s an example answer:`) with no demos, which
  separates the effect of the format's wording from that of the demos.
"""


class RandomDemoSelector(AlignmentExampleSelector):
    """Random demos instead of the most similar ones, packed by the same rule and budget.

    For each query, `max_k` demos are drawn from `pool` (every demo of the store when
    None) with a generator seeded by `seed` and the query, so a query always gets the same
    draw; Han's packing rule then keeps them under `max_tokens`. Scores are 0.
    """

    seed: int = 0
    """Seed of the draws."""
    pool: list[AlignmentDemo] | None = Field(default=None)
    """Demos to draw from; the store's demos when None."""

    def _pool(self) -> list[AlignmentDemo]:
        if self.pool is None:
            self.pool = sorted(self.store.iter_demos(), key=lambda demo: demo.id)
        return self.pool

    def retrieve(self, query: str, filter: DemoFilter | None = None) -> list[ScoredDemo]:
        """`max_k` random demos for `query` (seeded by the query).

        Raises:
            ValueError: When a filter is given (random draws do not support filters).
        """
        if filter is not None or self.filter is not None:
            msg = "RandomDemoSelector does not support filters"
            raise ValueError(msg)
        pool = self._pool()
        rng = random.Random(f"{self.seed}\x00{query}")  # noqa: S311 (reproducible draws)
        draw = rng.sample(pool, min(self.max_k, len(pool)))
        return [(demo, 0.0) for demo in draw]

    async def aselect_demos(
        self,
        query: str,
        *,
        max_tokens: int | None = None,
        filter: DemoFilter | None = None,
    ) -> list[SelectedDemo]:
        """Async `select_demos`."""
        return await run_in_executor(
            None, lambda: self.select_demos(query, max_tokens=max_tokens, filter=filter)
        )


def build_condition_chats(
    llm: BaseLLM,
    selector: AlignmentExampleSelector,
    conditions: Sequence[Condition] = CONDITIONS,
    *,
    random_seed: int = 0,
    constant_set: tuple[str, Sequence[AlignmentDemo]] | None = None,
    **chat_kwargs: Any,
) -> dict[str, ChatICAlign]:
    """One `ChatICAlign` per condition, all on the same base model.

    Args:
        llm: The base model (a `HuggingFacePipeline` for the NLL metric).
        selector: The selector over the pool (its format is the retrieved conditions'; in
            URIAL's they get the constant set's system header); "random" draws from its
            store with its budget and limits.
        conditions: Conditions to build.
        random_seed: Seed of the random condition's draws.
        constant_set: (system text, demos) of the constant set; `urial_set()` by default.
        **chat_kwargs: Other `ChatICAlign` arguments (`max_new_tokens`, `temperature`, ...).

    Raises:
        ValueError: For an unknown condition.
    """
    system, constant = constant_set if constant_set is not None else urial_set()
    header = system if selector.format.name == "urial" else None
    chats: dict[str, ChatICAlign] = {}
    for condition in conditions:
        if condition == "zero_shot":
            chat = ChatICAlign(llm=llm, prompt_format=ZeroShotFormat(), **chat_kwargs)
        elif condition == "han_zero_shot":
            chat = ChatICAlign(llm=llm, prompt_format="han", **chat_kwargs)
        elif condition == "retrieved":
            chat = ChatICAlign(
                llm=llm,
                selector=selector,
                prompt_format=selector.format,
                system_prompt=header,
                **chat_kwargs,
            )
        elif condition == "random":
            drawer = RandomDemoSelector(
                store=selector.store,
                token_counter=selector.token_counter,
                max_k=selector.max_k,
                max_tokens=selector.max_tokens,
                max_demo_tokens=selector.max_demo_tokens,
                prompt_format=selector.format,
                dedup_threshold=None,
                seed=random_seed,
            )
            chat = ChatICAlign(
                llm=llm,
                selector=drawer,
                prompt_format=selector.format,
                system_prompt=header,
                **chat_kwargs,
            )
        elif condition == "constant":
            chat = ChatICAlign(
                llm=llm,
                prompt_format="urial",
                system_prompt=system,
                constant_demos=list(constant),
                **chat_kwargs,
            )
        elif condition == "hybrid":
            chat = ChatICAlign(
                llm=llm,
                selector=selector,
                prompt_format=selector.format,
                system_prompt=system,
                constant_demos=list(constant),
                **chat_kwargs,
            )
        else:
            known = ", ".join((*CONDITIONS, *DIAGNOSTIC_CONDITIONS))
            msg = f"unknown condition {condition!r}; known: {known}"
            raise ValueError(msg)
        chats[condition] = chat
    return chats
