"""The `icalign index` command's work: options to `index_sources`, and the summary."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_icalign.loaders.errors import DemoFileError
from langchain_icalign.loaders.pipeline import IndexSummary, index_sources

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from rich.console import Console

    from langchain_icalign.store import DemoStore

__all__ = ["parse_columns", "print_summary", "run_index"]

_SHOWN_INVALID = 50


def parse_columns(args: argparse.Namespace) -> dict[str, str]:
    """The column mapping of `--column NAME=FIELD`, `--prompt-key` and `--response-key`.

    Raises:
        ValueError: For a `--column` without `=`.
    """
    columns: dict[str, str] = {}
    if getattr(args, "prompt_key", None):
        columns["prompt"] = args.prompt_key
    if getattr(args, "response_key", None):
        columns["response"] = args.response_key
    for item in getattr(args, "column", None) or []:
        name, sep, field = item.partition("=")
        if not sep or not name.strip() or not field.strip():
            msg = f"--column takes NAME=FIELD (e.g. prompt=question), got {item!r}"
            raise ValueError(msg)
        columns[name.strip()] = field.strip()
    return columns


def _token_counter(tokenizer: str | None, console: Console) -> Any:
    from transformers import AutoTokenizer

    if tokenizer is None:
        from langchain_icalign.defaults.model_cache import ensure_default_model

        console.print("counting tokens with the default model's tokenizer (--tokenizer to change)")
        tokenizer = str(ensure_default_model(show_progress=True))
    return AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)


def _open(args: argparse.Namespace, embeddings: Embeddings, name: str) -> DemoStore:
    from langchain_icalign.store import DemoStore

    if args.dry_run and args.store is not None and not Path(args.store).exists():
        # Nothing is stored yet, and a dry run must not create the folder: compare in memory.
        return DemoStore(embeddings, collection_name=args.collection, embedding_name=name)
    if args.store is not None:
        Path(args.store).mkdir(parents=True, exist_ok=True)
        return DemoStore(
            embeddings, path=args.store, collection_name=args.collection, embedding_name=name
        )
    return DemoStore(
        embeddings,
        url=args.url,
        api_key=args.api_key,
        collection_name=args.collection,
        embedding_name=name,
    )


def print_summary(summary: IndexSummary, console: Console) -> None:
    """Print each source's format, the invalid records, and the counts as a table."""
    from rich.table import Table

    for load in summary.loads:
        console.print(load.summary(), markup=False, highlight=False, soft_wrap=True)
    invalid = [error for load in summary.loads for error in load.invalid]
    for error in invalid[:_SHOWN_INVALID]:
        console.print(f"[yellow]skipped[/yellow] {error}", highlight=False, soft_wrap=True)
    if len(invalid) > _SHOWN_INVALID:
        console.print(f"... and {len(invalid) - _SHOWN_INVALID} more (--report FILE lists all)")
    title = "icalign index" + (" (dry run: nothing written)" if summary.dry_run else "")
    table = Table(title=title)
    table.add_column("what")
    table.add_column("demos", justify="right")
    counts = summary.counts()
    labels = {
        "read": "read",
        "invalid": "invalid (skipped)",
        "left_out_by_loader": "left out by the loader (language, no reply)",
        "duplicates": "duplicates",
        "near_duplicates": "near duplicates",
        "decontaminated_exact": "decontaminated (exact match)",
        "decontaminated_near": "decontaminated (near duplicate)",
        "too_short": "too short",
        "too_long": "too long",
        "already_stored": "already stored",
        "added": "added",
        "total_in_store": "in the store now",
    }
    for key, label in labels.items():
        table.add_row(label, str(counts[key]))
    console.print(table)
    for load in summary.loads:
        for reason, count in load.invalid_reasons().most_common():
            console.print(f"  invalid in {load.source}: {count} x {reason}", highlight=False)
    console.print(f"done in {summary.seconds:.1f} s")


def run_index(args: argparse.Namespace) -> int:
    """Run `icalign index` with parsed arguments; returns the exit status."""
    from rich.console import Console

    from langchain_icalign.defaults import default_embeddings
    from langchain_icalign.loaders.embedding_cache import CachingEmbeddings
    from langchain_icalign.loaders.load import load_demos, load_prompts
    from langchain_icalign.store import embedding_model_name

    console = Console(stderr=True)
    if args.store is None and args.url is None:
        console.print("[red]error:[/red] give --store PATH or --url URL")
        return 2
    try:
        load_options: dict[str, Any] = {
            "format": args.format,
            "columns": parse_columns(args),
            "metadata_fields": tuple(args.metadata_field or ()),
            "skip_invalid": args.skip_invalid,
            "languages": set(args.lang) if args.lang else None,
            "max_turns": args.max_turns,
            "limit": args.limit,
            "split": args.split,
            "show_progress": not args.no_progress,
        }
        # Every source is read and checked before the store is opened or anything written.
        loads = [load_demos(source, **load_options) for source in args.files]
        eval_prompts: list[str] | None = None
        if args.decontaminate:
            eval_prompts = []
            for path in args.decontaminate:
                eval_prompts += load_prompts(path)
        counter = None
        if args.min_tokens is not None or args.max_tokens is not None:
            counter = _token_counter(args.tokenizer, console)
        base = default_embeddings()
        embeddings = CachingEmbeddings(base)
        with _open(args, embeddings, embedding_model_name(base)) as store:
            summary = index_sources(
                store,
                loads,
                token_counter=counter,
                min_tokens=args.min_tokens,
                max_tokens=args.max_tokens,
                eval_prompts=eval_prompts,
                # A cosine of 1 adds nothing to the exact match: skip the embeddings.
                decontaminate_threshold=(
                    args.decontaminate_threshold if args.decontaminate_threshold < 1 else None
                ),
                dedup_threshold=args.dedup_threshold,
                batch_size=args.batch_size,
                show_progress=not args.no_progress,
                dry_run=args.dry_run,
            )
    except ValueError as error:
        if isinstance(error, DemoFileError):
            raise
        print(f"icalign: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        console.print(
            "\n[yellow]interrupted:[/yellow] the batches written so far are kept; run the same "
            "command again to add the rest"
        )
        return 130
    print_summary(summary, console)
    if args.report is not None:
        args.report.write_text(json.dumps(summary.as_dict(), indent=1, ensure_ascii=False))
        console.print(f"report written to {args.report}")
    return 0
