"""`icalign eval`: pairwise judging, reference NLL per prompting condition, answer style."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_icalign.cli_options import (
    non_empty_text,
    non_negative_float,
    positive_int,
    unit_float,
)

if TYPE_CHECKING:
    from langchain_icalign.evaluation.pairwise import PairwiseItem
    from langchain_icalign.evaluation.records import EvalItem

__all__ = ["add_eval_parser", "run_eval"]

_CONDITIONS = ("zero_shot", "retrieved", "random", "constant", "hybrid")
_DIAGNOSTIC = ("han_zero_shot",)


def _judge_parser(commands: Any) -> None:
    judge = commands.add_parser(
        "judge",
        help="pairwise review of two answer files by a judge model, in both orders",
        description=(
            "Match the answers of CANDIDATE and BASELINE (JSONL files of id/prompt/response "
            "records) by prompt, have a judge model score each pair from 1 to 10 in both "
            "orders, and report wins, ties, losses and the win-rate with a 95%% bootstrap "
            "interval clustered by prompt. Judgements are appended to --results, so an "
            "interrupted run resumes."
        ),
    )
    judge.add_argument("candidate", type=Path, help="answers under test (JSONL)")
    judge.add_argument("baseline", type=Path, help="answers to compare with (JSONL)")
    judge.add_argument(
        "--judge",
        required=True,
        type=non_empty_text,
        help="judge model for init_chat_model, e.g. openai:gpt-4o",
    )
    judge.add_argument(
        "--temperature", type=non_negative_float, default=0.0, help="judge temperature"
    )
    judge.add_argument(
        "--results", type=Path, default=Path("icalign-judgements.jsonl"), help="JSONL results"
    )
    judge.add_argument("--candidate-name", help="name of the candidate (default: file stem)")
    judge.add_argument("--baseline-name", help="name of the baseline (default: file stem)")
    judge.add_argument("--limit", type=positive_int, help="judge only the first N prompts")
    judge.add_argument("--max-attempts", type=positive_int, default=3, help="attempts per review")
    judge.add_argument("--concurrency", type=positive_int, default=1, help="reviews in flight")
    judge.add_argument("--json", type=Path, help="also write the summary here")


def _nll_parser(commands: Any) -> None:
    nll = commands.add_parser(
        "nll",
        help="reference NLL of aligned answers under each prompting condition",
        description=(
            "Mean per-token negative log-likelihood, under the base model, of each reference "
            "answer in EVAL_FILE (JSONL of id/prompt/response) given each prompting "
            "condition; lower means the prompt moves the model towards the reference. "
            "Results are appended to --results, so an interrupted run resumes."
        ),
    )
    nll.add_argument("eval_file", type=Path, help="prompts with reference answers (JSONL)")
    nll.add_argument("--pool", default="builtin", help="'builtin' or a JSONL demo pool")
    nll.add_argument(
        "--condition",
        action="append",
        choices=_CONDITIONS + _DIAGNOSTIC,
        help="condition (repeat; default: all but the diagnostic han_zero_shot)",
    )
    nll.add_argument("--limit", type=positive_int, help="a seeded random subset of N prompts")
    nll.add_argument("--seed", type=int, default=0, help="seed of the subset and random demos")
    nll.add_argument("--model", help="causal LM id or folder (default: Gemma-3-270m)")
    nll.add_argument(
        "--demo-tokens", type=positive_int, default=3000, help="demo budget (Han's rule)"
    )
    nll.add_argument("--max-reference-tokens", type=positive_int, default=512, help="tokens scored")
    nll.add_argument(
        "--near-threshold", type=unit_float, default=0.9, help="cosine of a near-duplicate demo"
    )
    nll.add_argument(
        "--no-decontaminate", action="store_true", help="keep demos that match eval prompts"
    )
    nll.add_argument(
        "--results", type=Path, default=Path("icalign-nll.jsonl"), help="JSONL results"
    )
    nll.add_argument("--json", type=Path, help="also write the summary here")


def _style_parser(commands: Any) -> None:
    style = commands.add_parser(
        "style",
        help="style statistics of answer files",
        description=(
            "Median words, share with a list, share leaking a format marker, share empty, "
            "share that hit the token limit (records with finish_reason) and share over "
            "--long-words words, for each JSONL file of answers (field response or text)."
        ),
    )
    style.add_argument("files", nargs="+", type=Path, metavar="FILE", help="answer files")
    style.add_argument("--long-words", type=positive_int, default=650, help="threshold of 'long'")
    style.add_argument("--json", type=Path, help="also write the statistics here")


def add_eval_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `eval` command (with `judge`, `nll` and `style`) to `icalign`'s subparsers.

    Args:
        subparsers: What `ArgumentParser.add_subparsers` returned.

    Returns:
        The `eval` parser.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "eval", help="measure alignment: pairwise judge, reference NLL, answer style"
    )
    commands = parser.add_subparsers(dest="eval_command", required=True)
    _judge_parser(commands)
    _nll_parser(commands)
    _style_parser(commands)
    return parser


def _write_json(path: Path | None, payload: Any) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", "utf-8")


def build_pairs(
    candidates: Sequence[EvalItem], baselines: Sequence[EvalItem], limit: int | None = None
) -> tuple[list[PairwiseItem], int]:
    """Pair each candidate answer with the baseline answer to the same prompt.

    Prompts match after `normalize_prompt`; the baseline's id names the prompt (the
    bootstrap cluster). Only the first `limit` baseline prompts are used when given.

    Returns:
        The pairs, and how many candidate answers found no baseline.
    """
    from langchain_icalign.evaluation.decontaminate import normalize_prompt
    from langchain_icalign.evaluation.pairwise import PairwiseItem

    base: dict[str, EvalItem] = {}
    for item in baselines:
        if item.reference is not None:
            base.setdefault(normalize_prompt(item.prompt), item)
    if limit is not None:
        base = dict(list(base.items())[:limit])
    pairs, unmatched = [], 0
    for item in candidates:
        match = base.get(normalize_prompt(item.prompt))
        if match is None or item.reference is None:
            unmatched += 1
            continue
        pairs.append(
            PairwiseItem(item.id, match.id, item.prompt, item.reference, match.reference or "")
        )
    return pairs, unmatched


def _judge(args: argparse.Namespace) -> int:
    from langchain.chat_models import init_chat_model
    from rich.console import Console
    from rich.table import Table

    from langchain_icalign.evaluation.judge import PairwiseJudge
    from langchain_icalign.evaluation.pairwise import judge_pairs
    from langchain_icalign.evaluation.records import load_eval_items
    from langchain_icalign.evaluation.winrate import summarize_judgements

    console = Console()
    pairs, unmatched = build_pairs(
        load_eval_items(args.candidate), load_eval_items(args.baseline), args.limit
    )
    if not pairs:
        console.print("[red]error:[/red] no candidate answer matches a baseline prompt")
        return 1
    judge = PairwiseJudge(
        init_chat_model(args.judge, temperature=args.temperature),
        max_attempts=args.max_attempts,
        name=args.judge,
    )
    judgements = judge_pairs(
        pairs,
        judge,
        args.results,
        candidate_name=args.candidate_name or args.candidate.stem,
        baseline_name=args.baseline_name or args.baseline.stem,
        max_concurrency=args.concurrency,
    )
    summary = summarize_judgements(judgements)
    table = Table(title=f"{summary.candidate} vs {summary.baseline} (judge: {judge.name})")
    for column in ("order", "wins", "ties", "losses", "unparsable"):
        table.add_column(column)
    for order, counts in [*summary.by_order.items(), ("both", summary.counts)]:
        table.add_row(
            order, str(counts.wins), str(counts.ties), str(counts.losses), str(counts.unparsable)
        )
    console.print(table)
    if summary.win_rate is not None:
        console.print(
            f"win-rate (ties count half): {summary.win_rate} over {summary.prompts} prompts; "
            f"order agreement {summary.order_agreement}"
        )
    if summary.counts.unparsable:
        console.print(
            f"[yellow]{summary.counts.unparsable} reviews were unparsable after "
            f"{args.max_attempts} attempts and are left out of the win-rate[/yellow]"
        )
    if unmatched:
        console.print(f"[yellow]{unmatched} candidate answers had no baseline[/yellow]")
    _write_json(args.json, summary.to_dict())
    return 0


def _nll(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from langchain_icalign.evaluation.jsonl_log import ResultLog
    from langchain_icalign.evaluation.records import load_eval_items, load_pool, sample_items
    from langchain_icalign.evaluation.runs import NLL_KEY, run_reference_nll
    from langchain_icalign.evaluation.stack import build_eval_stack
    from langchain_icalign.evaluation.summaries import summarize_nll

    conditions = list(dict.fromkeys(args.condition or _CONDITIONS))
    all_items = load_eval_items(args.eval_file, require_reference=True)
    items = sample_items(all_items, args.limit, args.seed)
    pool = None if args.pool == "builtin" else load_pool(args.pool)
    stack = build_eval_stack(
        model=args.model,
        pool=pool,
        eval_prompts=None if args.no_decontaminate else [i.prompt for i in all_items],
        near_threshold=args.near_threshold,
        demo_tokens=args.demo_tokens,
    )
    config = {
        "model": stack.model_name,
        "pool": str(args.pool),
        "demo_tokens": args.demo_tokens,
        "max_reference_tokens": args.max_reference_tokens,
        "decontaminated": not args.no_decontaminate,
        "near_threshold": args.near_threshold,
        "seed": args.seed,
    }
    log = ResultLog(args.results, NLL_KEY, config=config)
    records = run_reference_nll(
        stack.chats(conditions, random_seed=args.seed),
        items,
        log,
        max_reference_tokens=args.max_reference_tokens,
    )
    summary = summarize_nll(records, conditions, seed=args.seed)
    console = Console()
    if stack.decontamination is not None:
        report = stack.decontamination
        console.print(
            f"pool: {report.pool_size} demos; removed {report.exact} exact and {report.near} "
            f"near duplicates of evaluation prompts"
        )
    table = Table(title=f"Reference NLL (nats/token), {summary['prompts']} prompts")
    for column in ("condition", "mean [95% CI]", "vs zero-shot [95% CI]", "prompt tokens"):
        table.add_column(column)
    for condition, row in summary.get("conditions", {}).items():
        ci = row["mean_nll"]
        diff = summary["contrasts"].get(f"{condition} - zero_shot")
        table.add_row(
            condition,
            f"{ci['estimate']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]",
            f"{diff['estimate']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}]" if diff else "",
            f"{row['mean_prompt_tokens']:.0f}",
        )
    console.print(table)
    _write_json(args.json, {"config": config, **summary})
    return 0


def _style(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from langchain_icalign.evaluation.records import read_jsonl
    from langchain_icalign.evaluation.summaries import summarize_styles

    rows: list[dict[str, Any]] = []
    for path in args.files:
        for _, record in read_jsonl(path):
            meta = record.get("meta") or {}
            rows.append(
                {
                    "condition": path.name,
                    "text": record.get("response") or record.get("text") or "",
                    "finish_reason": record.get("finish_reason") or meta.get("finish_reason"),
                }
            )
    styles = summarize_styles(rows, long_words=args.long_words)
    table = Table(title="Answer style")
    columns = ("file", "n", "median words", "list", "leak", "empty", "hit limit", "long")
    for column in columns:
        table.add_column(column)
    for name, s in styles.items():
        limit = "-" if s.length_share is None else f"{s.length_share:.1%}"
        table.add_row(
            name,
            str(s.n),
            f"{s.median_words:.0f}",
            f"{s.list_share:.1%}",
            f"{s.marker_leak_share:.1%}",
            f"{s.empty_share:.1%}",
            limit,
            f"{s.long_share:.1%}",
        )
    Console().print(table)
    _write_json(args.json, {name: s.to_dict() for name, s in styles.items()})
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """Run `icalign eval <judge|nll|style>` with parsed arguments; returns the exit code.

    User errors (a missing or unreadable file, a bad record) propagate to `icalign`'s
    `main`, which reports each in one line on stderr with exit code 1.
    """
    handlers = {"judge": _judge, "nll": _nll, "style": _style}
    return handlers[args.eval_command](args)
