"""Cleaning a demo pool: length bounds, duplicates, near-duplicates, decontamination.

Each step returns a `CleaningReport` (`cleaning.report`) with the demos it kept and, for
each one it dropped, the reason and what it matched, so nothing disappears silently.
`clean_demos` (`cleaning.clean`) runs the steps in order: exact and near duplicates are
`cleaning.deduplication`'s, decontamination is `cleaning.decontamination`'s, both over the
texts of `cleaning.texts` and the vectors of `cleaning.similarity`; every step is importable
from this package.

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

from langchain_icalign.cleaning.clean import clean_demos, demo_tokens, filter_token_length
from langchain_icalign.cleaning.decontamination import decontaminate
from langchain_icalign.cleaning.deduplication import drop_exact_duplicates, drop_near_duplicates
from langchain_icalign.cleaning.report import (
    CONTAMINATED,
    DUPLICATE,
    NEAR_CONTAMINATED,
    NEAR_DUPLICATE,
    TOO_LONG,
    TOO_SHORT,
    CleaningReport,
    Dropped,
)
from langchain_icalign.cleaning.similarity import embed_matrix, max_similarity
from langchain_icalign.cleaning.texts import match_key
from langchain_icalign.store.schema import text_to_embed

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
