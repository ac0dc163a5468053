"""The `icalign curate` command: curate a demo pool on dev prompts with reference answers."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from langchain_icalign.cli_options import non_negative_float, positive_int

__all__ = ["add_curate_parser", "run_curate", "write_pool"]


def add_curate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `curate` command to `icalign`'s subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "curate",
        help="score each demo on dev prompts and write a greedily curated pool",
        description=(
            "Score each demo of POOL by the mean change in the reference answers' NLL it "
            "causes when retrieved for the dev prompts, report the demos that hurt, and "
            "write the pool without the demos whose removal helps (greedy selection under "
            "the given budget and format). Use dev prompts you will not report on."
        ),
    )
    parser.add_argument("pool", type=Path, help="JSONL of prompt/response demos")
    parser.add_argument(
        "--dev", type=Path, required=True, help="JSONL of dev prompts with reference 'response's"
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write the curated pool")
    parser.add_argument("--report", type=Path, help="write a JSON report here")
    parser.add_argument(
        "--model", help="causal LM id or folder (default: Gemma-3-270m from its PyPI package)"
    )
    parser.add_argument("--format", choices=("han", "urial"), default="han", help="prompt format")
    parser.add_argument(
        "--budget", type=positive_int, default=1000, help="demo token budget (Han's rule)"
    )
    parser.add_argument(
        "--candidates", type=positive_int, default=5, help="candidates scored per dev prompt"
    )
    parser.add_argument(
        "--max-reference-tokens", type=positive_int, default=128, help="reference tokens scored"
    )
    parser.add_argument(
        "--min-gain",
        type=non_negative_float,
        default=0.0,
        help="smallest summed NLL gain (nats/token) worth removing a demo",
    )
    parser.add_argument(
        "--keep-min", type=positive_int, help="never shrink the pool below this many demos"
    )
    parser.add_argument(
        "--run-file", type=Path, help="resumable scores file (default: beside --out)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def write_pool(demos: Any, path: Path) -> None:
    """Write demos as prompt/response JSONL, atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for demo in demos:
            record = {
                "prompt": demo.prompt,
                "response": demo.response,
                "turns": [list(turn) for turn in demo.turns],
                "metadata": demo.metadata,
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def run_curate(args: argparse.Namespace) -> int:
    """Run `icalign curate`; user errors are one line on stderr and exit code 1."""
    from langchain_icalign.curation.curate import curate_pool
    from langchain_icalign.defaults import default_embeddings, load_base_model
    from langchain_icalign.evaluation.jsonl_log import ResultLog
    from langchain_icalign.evaluation.records import load_eval_items
    from langchain_icalign.loaders import load_demos

    if args.out.resolve() == args.pool.resolve():
        print("icalign: error: --out must not be the pool file itself", file=sys.stderr)
        return 1
    pool = load_demos(args.pool).demos
    try:
        dev = load_eval_items(args.dev, require_reference=True)
    except ValueError as error:
        print(f"icalign: error: {error}", file=sys.stderr)
        return 1
    model, tokenizer, model_name = load_base_model(args.model, show_progress=not args.no_progress)
    settings = {
        "model": model_name,
        "format": args.format,
        "max_reference_tokens": args.max_reference_tokens,
    }
    run_file = args.run_file or args.out.with_name(args.out.name + ".scores.jsonl")
    log = ResultLog(run_file, ("item_id", "demo_id"), config=settings)
    report = curate_pool(
        pool,
        dev,
        model=model,
        tokenizer=tokenizer,
        embeddings=default_embeddings(),
        prompt_format=args.format,
        budget=args.budget,
        candidates=args.candidates,
        max_reference_tokens=args.max_reference_tokens,
        min_gain=args.min_gain,
        keep_min=args.keep_min,
        log=log,
        show_progress=not args.no_progress,
    )
    write_pool(report.kept, args.out)
    summary = report.to_dict()
    summary["settings"]["model"] = model_name
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", "utf-8")
    before, after = report.style_before, report.style_after
    print(
        f"curated {len(pool)} demos on {len(dev)} dev prompts: kept {len(report.kept)}, "
        f"removed {len(report.removed)}; {len(report.effects)} scored, "
        f"{len(report.harmful)} hurt on average\n"
        f"proxy reference NLL {report.selection.objective_before:.4f} -> "
        f"{report.selection.objective_after:.4f} nats/token\n"
        f"style: median words {before.median_words:.0f} -> {after.median_words:.0f}, "
        f"lists {before.list_share:.0%} -> {after.list_share:.0%}, "
        f"bold {before.bold_share:.0%} -> {after.bold_share:.0%}\n"
        f"coverage (median top-1 cosine to dev prompts): "
        f"{report.coverage_before.median_top1:.3f} -> {report.coverage_after.median_top1:.3f}\n"
        f"wrote {args.out}",
        file=sys.stderr,
    )
    return 0
