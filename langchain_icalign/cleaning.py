"""Cleaning a demo pool: length bounds, duplicates, near-duplicates, decontamination.

Each step returns a `CleaningReport` with the demos it kept and, for each one it dropped,
the reason and what it matched, so nothing disappears silently. Near-duplicates are found
by cosine similarity of embeddings on unit-length numpy vectors, compared in batches
(`similarity`: a 100k pool is feasible on a laptop CPU once embedded).

Example:
    ```python
    from langchain_icalign.cleaning import clean_demos

    report = clean_demos(
        demos,
        token_counter=tokenizer,
        max_tokens=1024,
        dedup_threshold=0.95,
        eval_prompts=load_prompts("eval.jsonl"),
        embeddings=embeddings,
    )
    report.kept, report.counts()  # Counter({"near duplicate": 12, "too long": 3, ...})
    ```
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from langchain_core.embeddings import Embeddings
from tqdm.auto import tqdm

from langchain_icalign.demos import AlignmentDemo, normalize_text
from langchain_icalign.similarity import (
    demo_vectors,
    embed_matrix,
    max_similarity,
    text_to_embed,
)
from langchain_icalign.token_counting import TokenCounterLike, as_token_counter

__all__ = [
    "CONTAMINATED",
    "DUPLICATE",
    "NEAR_CONTAMINATED",
    "NEAR_DUPLICATE",
    "TOO_LONG",
    "TOO_SHORT",
    "CleaningReport",
    "Dropped",
    "clean_demos",
    "decontaminate",
    "demo_tokens",
    "drop_exact_duplicates",
    "drop_near_duplicates",
    "embed_matrix",
    "filter_token_length",
    "match_key",
    "max_similarity",
    "text_to_embed",
]

DUPLICATE = "duplicate"
NEAR_DUPLICATE = "near duplicate"
TOO_SHORT = "too short"
TOO_LONG = "too long"
CONTAMINATED = "contaminated"
NEAR_CONTAMINATED = "near-contaminated"

_NOT_WORD = re.compile(r"[^\w\s]+")
_SPACE = re.compile(r"\s+")


def match_key(text: str) -> str:
    """Text normalised for matching: NFKC, case-folded, punctuation dropped, spaces collapsed."""
    text = unicodedata.normalize("NFKC", normalize_text(text)).casefold()
    return _SPACE.sub(" ", _NOT_WORD.sub(" ", text)).strip()


@dataclass(frozen=True)
class Dropped:
    """A demo left out, why, and what it matched."""

    demo: AlignmentDemo
    reason: str
    detail: str = ""


@dataclass
class CleaningReport:
    """What a cleaning step kept and dropped.

    Attributes:
        kept: Demos kept, in their original order.
        dropped: Demos dropped, with reasons, in the order they were dropped.
    """

    kept: list[AlignmentDemo] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        """Dropped demos counted by reason."""
        return Counter(item.reason for item in self.dropped)

    def then(self, later: CleaningReport) -> CleaningReport:
        """This step followed by a `later` step run on this step's `kept`."""
        return CleaningReport(kept=later.kept, dropped=[*self.dropped, *later.dropped])

    def summary(self) -> str:
        """One line: kept, and dropped by reason."""
        parts = [f"kept {len(self.kept)}"]
        parts += [f"{count} {reason}" for reason, count in sorted(self.counts().items())]
        return ", ".join(parts)


def _messages(demo: AlignmentDemo) -> list[str]:
    texts = [text for turn in demo.turns for text in turn]
    return [*texts, demo.prompt, demo.response]


def _user_messages(demo: AlignmentDemo) -> list[str]:
    return [*(user for user, _ in demo.turns), demo.prompt]


def _preview(text: str, size: int = 60) -> str:
    flat = _SPACE.sub(" ", text).strip()
    return repr(flat if len(flat) <= size else flat[: size - 1] + "…")


def drop_exact_duplicates(demos: Sequence[AlignmentDemo]) -> CleaningReport:
    """Keep the first of demos whose messages match after `match_key` normalisation."""
    report = CleaningReport()
    first: dict[tuple[str, ...], AlignmentDemo] = {}
    for demo in demos:
        key = tuple(match_key(text) for text in _messages(demo))
        if key in first:
            report.dropped.append(Dropped(demo, DUPLICATE, f"same as demo {first[key].id}"))
            continue
        first[key] = demo
        report.kept.append(demo)
    return report


def demo_tokens(demo: AlignmentDemo, token_counter: TokenCounterLike) -> int:
    """Tokens in all of a demo's messages (earlier turns, prompt and response)."""
    count = as_token_counter(token_counter)
    return sum(count(text) for text in _messages(demo))


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


def drop_near_duplicates(
    demos: Sequence[AlignmentDemo],
    *,
    threshold: float,
    embeddings: Embeddings | None = None,
    vectors: np.ndarray | None = None,
    existing: np.ndarray | None = None,
    embed: str = "prompt",
    batch_size: int = 256,
    show_progress: bool = False,
) -> CleaningReport:
    """Greedily keep demos whose prompt embedding is below `threshold` cosine to every kept one.

    Demos are taken in order; a demo is dropped when it is at least `threshold` similar to
    a demo kept before it, or to a row of `existing` (e.g. the vectors already in a store).
    Work is O(n x kept) dot products done in numpy batches; memory stays O(batch x 16k).

    Args:
        demos: The demos.
        threshold: Cosine similarity at or above which two demos are near-duplicates.
        embeddings: Embeddings for the demos' texts (unless `vectors` is given).
        vectors: Unit-length vectors of the demos, one row each.
        existing: Unit-length vectors that count as already kept.
        embed: What is compared: the `"prompt"` or the `"prompt_response"`.
        batch_size: Demos compared (and embedded) per batch.
        show_progress: Show progress bars.

    Raises:
        ValueError: For a threshold outside (0, 1], or neither embeddings nor vectors.
    """
    if not 0.0 < threshold <= 1.0:
        msg = f"threshold must be in (0, 1], got {threshold}"
        raise ValueError(msg)
    report = CleaningReport()
    if not demos:
        return report
    matrix = demo_vectors(demos, vectors, embeddings, embed, batch_size, show_progress)
    prior = existing if existing is not None and len(existing) else None
    n_prior = 0 if prior is None else len(prior)
    kept_vectors = np.empty((n_prior + len(demos), matrix.shape[1]), dtype=np.float32)
    if prior is not None:
        kept_vectors[:n_prior] = prior
    owners: list[AlignmentDemo | None] = [None] * n_prior
    filled = n_prior
    limit = np.float32(threshold) - np.float32(1e-6)
    bar = tqdm(total=len(demos), desc="Near-duplicates", unit="demo", disable=not show_progress)
    with bar:
        for start in range(0, len(demos), batch_size):
            batch = matrix[start : start + batch_size]
            best, where = max_similarity(batch, kept_vectors[:filled])
            within = batch @ batch.T
            local: list[int] = []
            for i in range(len(batch)):
                demo = demos[start + i]
                if best[i] >= limit:
                    owner = owners[int(where[i])]
                    what = f"demo {owner.id}" if owner is not None else "a demo already stored"
                    detail = f"similarity {best[i]:.3f} to {what}"
                    report.dropped.append(Dropped(demo, NEAR_DUPLICATE, detail))
                    continue
                if local:
                    scores = within[i, local]
                    j = int(scores.argmax())
                    if scores[j] >= limit:
                        owner_demo = demos[start + local[j]]
                        detail = f"similarity {scores[j]:.3f} to demo {owner_demo.id}"
                        report.dropped.append(Dropped(demo, NEAR_DUPLICATE, detail))
                        continue
                local.append(i)
                report.kept.append(demo)
            kept_vectors[filled : filled + len(local)] = batch[local]
            owners += [demos[start + i] for i in local]
            filled += len(local)
            bar.update(len(batch))
    return report


def decontaminate(
    demos: Sequence[AlignmentDemo],
    eval_prompts: Sequence[str],
    *,
    threshold: float | None = None,
    embeddings: Embeddings | None = None,
    vectors: np.ndarray | None = None,
    embed: str = "prompt",
    batch_size: int = 256,
    show_progress: bool = False,
) -> CleaningReport:
    """Drop demos whose user messages match an evaluation prompt.

    A demo is contaminated when one of its user messages equals an evaluation prompt after
    `match_key` normalisation; with `threshold`, also when its prompt embedding is at least
    `threshold` cosine-similar to an evaluation prompt's.

    Args:
        demos: The demos.
        eval_prompts: The evaluation set's prompts (see `loaders.load_prompts`).
        threshold: Cosine similarity for near-duplicate contamination; None for exact only.
        embeddings: Embeddings for the texts (needed with `threshold`).
        vectors: Unit-length vectors of the demos (instead of embedding them).
        embed: What is compared: the `"prompt"` or the `"prompt_response"`.
        batch_size: Texts embedded and compared per batch.
        show_progress: Show progress bars.

    Raises:
        ValueError: For a threshold outside (0, 1], or a threshold without embeddings.
    """
    if threshold is not None and not 0.0 < threshold <= 1.0:
        msg = f"threshold must be in (0, 1], got {threshold}"
        raise ValueError(msg)
    if threshold is not None and embeddings is None:
        msg = "near-duplicate decontamination needs embeddings= (for the evaluation prompts)"
        raise ValueError(msg)
    keys = {match_key(prompt): prompt for prompt in eval_prompts}
    keys.pop("", None)
    report = CleaningReport()
    survivors: list[int] = []
    for index, demo in enumerate(demos):
        hit = next((keys[k] for k in map(match_key, _user_messages(demo)) if k in keys), None)
        if hit is not None:
            detail = f"matches evaluation prompt {_preview(hit)}"
            report.dropped.append(Dropped(demo, CONTAMINATED, detail))
        else:
            survivors.append(index)
    if threshold is None or not survivors or not eval_prompts:
        report.kept = [demos[i] for i in survivors]
        return report
    assert embeddings is not None  # checked above, for mypy
    prompts = list(dict.fromkeys(eval_prompts))
    eval_vectors = embed_matrix(embeddings, prompts, batch_size=batch_size)
    if vectors is not None:
        matrix = np.asarray(vectors, dtype=np.float32)[survivors]
    else:
        matrix = demo_vectors(
            [demos[i] for i in survivors], None, embeddings, embed, batch_size, show_progress
        )
    limit = np.float32(threshold) - np.float32(1e-6)
    for start in range(0, len(survivors), batch_size):
        best, where = max_similarity(matrix[start : start + batch_size], eval_vectors)
        for offset, (score, arg) in enumerate(zip(best, where, strict=True)):
            demo = demos[survivors[start + offset]]
            if score >= limit:
                detail = f"similarity {score:.3f} to evaluation prompt {_preview(prompts[arg])}"
                report.dropped.append(Dropped(demo, NEAR_CONTAMINATED, detail))
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
