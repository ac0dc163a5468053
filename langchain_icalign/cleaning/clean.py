"""The length bounds, and `clean_demos`, which runs every cleaning step in order.

`clean_demos` drops exact duplicates (`deduplication`), demos outside the length bounds
(here), contaminated demos (`decontamination`) and near-duplicates (`deduplication`),
embedding each text at most once for both similarity steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings
from tqdm.auto import tqdm

from langchain_icalign.cleaning.decontamination import decontaminate
from langchain_icalign.cleaning.deduplication import drop_exact_duplicates, drop_near_duplicates
from langchain_icalign.cleaning.report import TOO_LONG, TOO_SHORT, CleaningReport, Dropped
from langchain_icalign.cleaning.similarity import demo_vectors
from langchain_icalign.cleaning.texts import demo_messages
from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.token_counting import TokenCounterLike, as_token_counter

__all__ = ["clean_demos", "demo_tokens", "filter_token_length"]


def demo_tokens(demo: AlignmentDemo, token_counter: TokenCounterLike) -> int:
    """Tokens in all of a demo's messages (earlier turns, prompt and response)."""
    count = as_token_counter(token_counter)
    return sum(count(text) for text in demo_messages(demo))


def filter_token_length(
    demos: Sequence[AlignmentDemo],
    token_counter: TokenCounterLike,
    *,
    min_tokens: int | None = None,
    max_tokens: int | None = None,
    show_progress: bool = False,
) -> CleaningReport:
    """Keep demos whose token count (see `demo_tokens`) is within the bounds.

    Args:
        demos: The demos.
        token_counter: A tokenizer or a `Callable[[str], int]`.
        min_tokens: Drop demos with fewer tokens.
        max_tokens: Drop demos with more tokens.
        show_progress: Show a progress bar.

    Raises:
        ValueError: When `min_tokens` is above `max_tokens`.
    """
    if min_tokens is not None and max_tokens is not None and min_tokens > max_tokens:
        msg = f"min_tokens ({min_tokens}) is above max_tokens ({max_tokens})"
        raise ValueError(msg)
    counter = as_token_counter(token_counter)
    report = CleaningReport()
    for demo in tqdm(demos, desc="Counting tokens", unit="demo", disable=not show_progress):
        tokens = demo_tokens(demo, counter)
        if min_tokens is not None and tokens < min_tokens:
            report.dropped.append(Dropped(demo, TOO_SHORT, f"{tokens} < {min_tokens} tokens"))
        elif max_tokens is not None and tokens > max_tokens:
            report.dropped.append(Dropped(demo, TOO_LONG, f"{tokens} > {max_tokens} tokens"))
        else:
            report.kept.append(demo)
    return report


def clean_demos(
    demos: Sequence[AlignmentDemo],
    *,
    token_counter: TokenCounterLike | None = None,
    min_tokens: int | None = None,
    max_tokens: int | None = None,
    eval_prompts: Sequence[str] | None = None,
    decontaminate_threshold: float | None = None,
    dedup_threshold: float | None = None,
    embeddings: Embeddings | None = None,
    existing_vectors: np.ndarray | None = None,
    embed: str = "prompt",
    batch_size: int = 256,
    show_progress: bool = False,
) -> CleaningReport:
    """Run the cleaning steps in order: exact duplicates, length, decontamination, near-dups.

    Steps without their options are left out (exact duplicates are always dropped). Each
    text is embedded at most once, for both similarity steps.

    Args:
        demos: The demos.
        token_counter: Counts tokens for the length bounds.
        min_tokens: Drop demos with fewer tokens (see `demo_tokens`).
        max_tokens: Drop demos with more tokens.
        eval_prompts: Evaluation prompts to decontaminate against.
        decontaminate_threshold: Cosine similarity for near-duplicate contamination.
        dedup_threshold: Cosine similarity for near-duplicate removal.
        embeddings: Embeddings for the similarity steps.
        existing_vectors: Vectors that count as kept for near-duplicates (a store's).
        embed: What is compared: the `"prompt"` or the `"prompt_response"`.
        batch_size: Texts embedded and compared per batch.
        show_progress: Show progress bars.

    Raises:
        ValueError: For length bounds without a token counter, or a similarity step
            without embeddings.
    """
    report = drop_exact_duplicates(demos)
    if min_tokens is not None or max_tokens is not None:
        if token_counter is None:
            msg = "min_tokens/max_tokens need a token_counter"
            raise ValueError(msg)
        report = report.then(
            filter_token_length(
                report.kept,
                token_counter,
                min_tokens=min_tokens,
                max_tokens=max_tokens,
                show_progress=show_progress,
            )
        )
    similar = dedup_threshold is not None or (
        eval_prompts is not None and decontaminate_threshold is not None
    )
    if similar and embeddings is None:
        msg = "near-duplicate removal and decontamination need embeddings="
        raise ValueError(msg)
    vectors: dict[int, np.ndarray] = {}  # by object identity: ids may repeat
    if similar and report.kept:
        matrix = demo_vectors(report.kept, None, embeddings, embed, batch_size, show_progress)
        vectors = {id(demo): row for demo, row in zip(report.kept, matrix, strict=True)}

    def rows(kept: list[AlignmentDemo]) -> np.ndarray | None:
        return np.stack([vectors[id(d)] for d in kept]) if vectors and kept else None

    if eval_prompts is not None:
        report = report.then(
            decontaminate(
                report.kept,
                eval_prompts,
                threshold=decontaminate_threshold,
                embeddings=embeddings,
                vectors=rows(report.kept) if decontaminate_threshold is not None else None,
                embed=embed,
                batch_size=batch_size,
                show_progress=show_progress,
            )
        )
    if dedup_threshold is not None:
        report = report.then(
            drop_near_duplicates(
                report.kept,
                threshold=dedup_threshold,
                vectors=rows(report.kept),
                existing=existing_vectors,
                embeddings=embeddings,
                embed=embed,
                batch_size=batch_size,
                show_progress=show_progress,
            )
        )
    return report
