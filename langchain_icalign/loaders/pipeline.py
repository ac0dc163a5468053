"""`index_sources`: load, check, clean and index demo sources in one resumable run."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_icalign.cleaning import (
    CONTAMINATED,
    DUPLICATE,
    NEAR_CONTAMINATED,
    NEAR_DUPLICATE,
    TOO_LONG,
    TOO_SHORT,
    CleaningReport,
    clean_demos,
)
from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.loaders.indexing import index_demos, stored_ids, stored_vectors
from langchain_icalign.loaders.load import DemoSource, load_demos
from langchain_icalign.loaders.report import LoadReport
from langchain_icalign.store import DemoStore
from langchain_icalign.token_counting import TokenCounterLike

__all__ = ["IndexSummary", "index_sources"]

logger = logging.getLogger("langchain_icalign.loaders")


@dataclass
class IndexSummary:
    """What an indexing run read, left out and added.

    Attributes:
        loads: One report per source (format, invalid records, records dropped by design).
        cleaning: What cleaning kept and dropped, with reasons.
        already_stored: Demos the store held before this run (skipped).
        added: Ids of the demos added.
        total: Demos in the store after the run.
        seconds: Wall time of the run.
        dry_run: Nothing was written.
    """

    loads: list[LoadReport] = field(default_factory=list)
    cleaning: CleaningReport = field(default_factory=CleaningReport)
    already_stored: int = 0
    added: list[str] = field(default_factory=list)
    total: int = 0
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def read(self) -> int:
        """Demos read from all sources."""
        return sum(len(report.demos) for report in self.loads)

    @property
    def invalid(self) -> int:
        """Invalid records skipped."""
        return sum(len(report.invalid) for report in self.loads)

    def counts(self) -> dict[str, int]:
        """The run in numbers: read, added, and each reason a demo was left out."""
        dropped = self.cleaning.counts()
        by_design: Counter[str] = Counter()
        for report in self.loads:
            by_design += report.dropped
        return {
            "read": self.read,
            "added": len(self.added),
            "already_stored": self.already_stored,
            "invalid": self.invalid,
            "duplicates": dropped[DUPLICATE],
            "near_duplicates": dropped[NEAR_DUPLICATE],
            "decontaminated": dropped[CONTAMINATED] + dropped[NEAR_CONTAMINATED],
            "decontaminated_exact": dropped[CONTAMINATED],
            "decontaminated_near": dropped[NEAR_CONTAMINATED],
            "too_short": dropped[TOO_SHORT],
            "too_long": dropped[TOO_LONG],
            "left_out_by_loader": sum(by_design.values()),
            "total_in_store": self.total,
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: counts, each source's format, each invalid record and dropped demo."""
        return {
            "counts": self.counts(),
            "seconds": round(self.seconds, 3),
            "dry_run": self.dry_run,
            "sources": [
                {
                    "source": r.source,
                    "format": r.format,
                    "detected": r.detected,
                    "records": r.records,
                    "demos": len(r.demos),
                    "invalid": len(r.invalid),
                    "invalid_reasons": dict(r.invalid_reasons()),
                    "left_out_by_loader": dict(r.dropped),
                }
                for r in self.loads
            ],
            "invalid": [
                {"source": str(e.path), e.unit: e.line, "reason": e.reason}
                for r in self.loads
                for e in r.invalid
            ],
            "dropped": [
                {"id": d.demo.id, "reason": d.reason, "detail": d.detail, "prompt": d.demo.prompt}
                for d in self.cleaning.dropped
            ],
        }


def index_sources(
    store: DemoStore,
    sources: Sequence[DemoSource | LoadReport],
    *,
    load_options: Mapping[str, Any] | None = None,
    token_counter: TokenCounterLike | None = None,
    min_tokens: int | None = None,
    max_tokens: int | None = None,
    eval_prompts: Sequence[str] | None = None,
    decontaminate_threshold: float | None = None,
    dedup_threshold: float | None = None,
    batch_size: int = 64,
    show_progress: bool = False,
    dry_run: bool = False,
) -> IndexSummary:
    """Load every source, clean, and add what the store does not hold yet.

    Every source is read and checked before anything is written, so a bad file leaves the
    store as it was. Demo ids derive from content: a second run adds nothing, and a run
    after an interruption adds only what is missing. Exact duplicates, length bounds and
    exact decontamination apply to every demo read; the embedding-based steps (near
    duplicates, near contamination) to the demos not stored yet, with the stored demos
    counting as kept, so a rerun or a resumed run ends with the same store as one run.

    Args:
        store: The store to add to (wrap its embeddings in `CachingEmbeddings` to embed
            each prompt once for both near-duplicate removal and indexing).
        sources: Files, `"hf:<name>"` datasets or record iterables, or `LoadReport`s of
            sources loaded already (`load_demos`), to check them before opening the store.
        load_options: `load_demos` keyword arguments for every source.
        token_counter: Counts tokens for `min_tokens`/`max_tokens`.
        min_tokens: Leave out demos with fewer tokens.
        max_tokens: Leave out demos with more tokens.
        eval_prompts: Evaluation prompts to decontaminate against.
        decontaminate_threshold: Cosine similarity for near-duplicate contamination.
        dedup_threshold: Cosine similarity for near-duplicate removal.
        batch_size: Demos embedded and written per batch.
        show_progress: Show progress bars.
        dry_run: Load and clean, but write nothing.
    """
    started = time.perf_counter()
    summary = IndexSummary(dry_run=dry_run)
    summary.loads = [
        source if isinstance(source, LoadReport) else load_demos(source, **dict(load_options or {}))
        for source in sources
    ]
    for report in summary.loads:
        logger.info("%s", report.summary())
    demos: list[AlignmentDemo] = [demo for report in summary.loads for demo in report.demos]
    # Steps that need no embeddings run on every demo, so a rerun reports the same counts.
    cheap = clean_demos(
        demos,
        token_counter=token_counter,
        min_tokens=min_tokens,
        max_tokens=max_tokens,
        eval_prompts=eval_prompts,
        show_progress=show_progress,
    )
    present = stored_ids(store, [demo.id for demo in cheap.kept])
    candidates = [demo for demo in cheap.kept if demo.id not in present]
    summary.already_stored = len(cheap.kept) - len(candidates)
    near_contamination = eval_prompts is not None and decontaminate_threshold is not None
    existing = None
    if dedup_threshold is not None and candidates and store.count():
        existing = stored_vectors(store)  # earlier runs' demos count as kept
    near = clean_demos(
        candidates,
        eval_prompts=eval_prompts if near_contamination else None,
        decontaminate_threshold=decontaminate_threshold,
        dedup_threshold=dedup_threshold,
        embeddings=store.embeddings,
        existing_vectors=existing,
        embed=store.embed,
        batch_size=max(batch_size, 256),
        show_progress=show_progress,
    )
    summary.cleaning = cheap.then(near)
    if not dry_run:
        result = index_demos(
            store, summary.cleaning.kept, batch_size=batch_size, show_progress=show_progress
        )
        summary.added = result.added
    summary.total = store.count()
    summary.seconds = time.perf_counter() - started
    return summary
