"""The model, pool, store and selector an evaluation runs on, built once for all conditions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseLLM

from langchain_icalign.chat_models import ChatICAlign
from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.evaluation.conditions import CONDITIONS, Condition, build_condition_chats
from langchain_icalign.evaluation.decontaminate import DecontaminationReport, decontaminate
from langchain_icalign.selector import AlignmentExampleSelector
from langchain_icalign.store import DemoStore

__all__ = ["EvalStack", "build_eval_stack"]


@dataclass
class EvalStack:
    """A loaded base model and an in-memory store of the (decontaminated) pool.

    Attributes:
        model: The transformers causal LM.
        tokenizer: Its tokenizer.
        model_name: Hub id or folder of the model.
        llm: The model wrapped as a `HuggingFacePipeline`.
        store: The pool, indexed in memory.
        selector: Han's selector over `store` (Han format, measured with `tokenizer`).
        pool: Demos in the store.
        decontamination: What decontamination removed (None when not run).
    """

    model: Any
    tokenizer: Any
    model_name: str
    llm: BaseLLM
    store: DemoStore
    selector: AlignmentExampleSelector
    pool: tuple[AlignmentDemo, ...]
    decontamination: DecontaminationReport | None

    def chats(
        self,
        conditions: Sequence[Condition] = CONDITIONS,
        *,
        random_seed: int = 0,
        **chat_kwargs: Any,
    ) -> dict[str, ChatICAlign]:
        """One `ChatICAlign` per condition on this model and pool."""
        return build_condition_chats(
            self.llm, self.selector, conditions, random_seed=random_seed, **chat_kwargs
        )


def build_eval_stack(
    *,
    model: str | Path | None = None,
    pool: Sequence[AlignmentDemo] | None = None,
    eval_prompts: Sequence[str] | None = None,
    near_threshold: float = 0.9,
    embeddings: Embeddings | None = None,
    demo_tokens: int | None = None,
    max_demo_tokens: int | None = None,
    max_k: int | None = None,
    dedup_threshold: float | Literal["default"] | None = "default",
    prompt_format: str | None = None,
    device_map: str | dict[str, Any] | None = None,
    dtype: Any = None,
    show_progress: bool = True,
) -> EvalStack:
    """Load the base model and index the pool, decontaminated against `eval_prompts`.

    Nothing is downloaded: the default model comes from its PyPI package (converted once
    into the cache) and the default embeddings from theirs.

    Args:
        model: A causal LM id or folder; None for the default Gemma-3-270m.
        pool: Demos; the built-in pool when None.
        eval_prompts: Prompts to decontaminate the pool against (exact and near
            duplicates); None skips decontamination.
        near_threshold: Embedding cosine at or above which a demo is a near duplicate.
        embeddings: Embeddings for the store and near duplicates; all-MiniLM-L6-v2 when None.
        demo_tokens: The demo budget of Han's rule (`max_tokens` of the selector);
            `DEFAULT_SETTINGS.demo_tokens` when None, as `from_defaults` uses it.
        max_demo_tokens: Demos longer than this are skipped (default as `from_defaults`).
        max_k: Candidates retrieved per query (default as `from_defaults`).
        dedup_threshold: The selector's near-duplicate threshold (default as
            `from_defaults`; None turns it off).
        prompt_format: The retrieved conditions' format ("han", "urial"); as
            `from_defaults` when None.
        device_map: Device placement of the model.
        dtype: Weight dtype (float32 on CPU by default).
        show_progress: Show progress while indexing.
    """
    from langchain_icalign.defaults import (
        DEFAULT_SETTINGS,
        default_embeddings,
        load_base_model,
        pipeline_llm,
    )
    from langchain_icalign.defaults.builtin_demos import builtin_pool

    embeddings = embeddings or default_embeddings(show_progress=show_progress)
    demos = list(builtin_pool() if pool is None else pool)
    report = None
    if eval_prompts is not None:
        report = decontaminate(demos, eval_prompts, embeddings=embeddings, threshold=near_threshold)
        demos = list(report.kept)
    lm, tokenizer, name = load_base_model(
        model, device_map=device_map, dtype=dtype, show_progress=show_progress
    )
    store = DemoStore(embeddings, location=":memory:", collection_name="eval_pool")
    store.add_demos(demos, show_progress=show_progress)
    selector = AlignmentExampleSelector(
        store=store,
        token_counter=tokenizer,
        prompt_format=DEFAULT_SETTINGS.prompt_format if prompt_format is None else prompt_format,
        max_k=DEFAULT_SETTINGS.max_k if max_k is None else max_k,
        max_tokens=DEFAULT_SETTINGS.demo_tokens if demo_tokens is None else demo_tokens,
        max_demo_tokens=(
            DEFAULT_SETTINGS.max_demo_tokens if max_demo_tokens is None else max_demo_tokens
        ),
        dedup_threshold=(
            DEFAULT_SETTINGS.dedup_threshold if dedup_threshold == "default" else dedup_threshold
        ),
    )
    return EvalStack(
        model=lm,
        tokenizer=tokenizer,
        model_name=name,
        llm=pipeline_llm(lm, tokenizer, name),
        store=store,
        selector=selector,
        pool=tuple(demos),
        decontamination=report,
    )
