"""Alignment quality without a judge (issue 4): reference NLL per prompting condition, and
the style of generated answers beside the paper's Llama-2 outputs.

On a seeded subset of the LIMA test prompts (the evaluation set of Han 2023):

1. Reference NLL: the mean per-token negative log-likelihood, under the base model, of
   the ChatGPT answer given each prompting condition (zero-shot, retrieved demos, random
   demos under the same budget, the constant URIAL-style set, hybrid), with 95% bootstrap
   intervals over prompts and paired differences.
2. Generation: answers under zero-shot and retrieved demos, with their style statistics,
   beside those of the paper's Llama-2-13B outputs (`../shared/data/paper/`).

The pool (built-in by default, or a JSONL file such as
`../shared/data/pools/alpaca_eval_gpt4.jsonl`) is decontaminated against all 300 LIMA test
prompts and indexed in memory. Results are appended to JSONL run files as they come, so
an interrupted run resumes where it stopped; `--out` (benchmarks/results/quality.json) is
rewritten after each phase.

Run: .venv/bin/python benchmarks/quality.py [--limit 60] [--pool builtin|FILE]
     [--condition C ...] [--generate C ...] [--max-new-tokens 128] [--threads 1]
With a GPU and Llama-2 (the paper's setting, all 300 prompts):
     python benchmarks/quality.py --limit 300 --model meta-llama/Llama-2-13b-hf
     --device-map cuda --demo-tokens 3000 --max-reference-tokens 1024
     --max-new-tokens 512 --pool ../shared/data/pools/alpaca_eval_gpt4.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from langchain_icalign.defaults import DEFAULT_SETTINGS

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
RESULTS = HERE / "results" / "quality.json"
SPLIT = HERE / "splits" / "lima_test_split.json"
CONDITIONS = ("zero_shot", "retrieved", "random", "constant", "hybrid")
DIAGNOSTIC = ("han_zero_shot",)  # Han's format without demos: the format's own effect
PAPER = {
    "paper_llama2_13b_retrieved": "llama2-13B_icl-oasstgpt.jsonl",
    "paper_llama2_13b_random": "llama2-13B_icl-random-oasstgpt.jsonl",
    "paper_llama2_13b_zero_shot": "llama2base-13B_zeroshot.jsonl",
}
REFERENCES = {
    "reference_chatgpt": "lima_test_chatgpt.jsonl",
    "reference_davinci003": "lima_test_davinci003.jsonl",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=60, help="LIMA test prompts (seeded subset)")
    parser.add_argument(
        "--split",
        choices=("dev", "test"),
        help="a half of benchmarks/splits/lima_test_split.json instead of a seeded subset "
        "(dev: for choosing and tuning; test: reported once)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset and sampling")
    parser.add_argument(
        "--pool", default="builtin", help="'builtin' or a JSONL file of prompt/response records"
    )
    parser.add_argument(
        "--condition",
        action="append",
        choices=CONDITIONS + DIAGNOSTIC,
        help="condition for the reference NLL (repeat; default: the five, not han_zero_shot)",
    )
    parser.add_argument(
        "--generate",
        action="append",
        choices=CONDITIONS,
        help="condition to generate answers under (repeat; default: zero_shot and retrieved)",
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=128, help="longest generated answer (0: none)"
    )
    parser.add_argument(
        "--generate-limit",
        type=int,
        help="answer only a seeded subset of this many of the prompts (default: all)",
    )
    parser.add_argument(
        "--demo-tokens",
        type=int,
        default=DEFAULT_SETTINGS.demo_tokens,
        help="demo budget (Han's rule; default: as ChatICAlign.from_defaults)",
    )
    parser.add_argument(
        "--max-reference-tokens", type=int, default=256, help="reference tokens scored"
    )
    parser.add_argument("--near-threshold", type=float, default=0.9, help="near-duplicate cosine")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature")
    parser.add_argument("--model", help="causal LM id or folder (default: Gemma-3-270m)")
    parser.add_argument("--device-map", help="model placement, e.g. cuda or auto (default: CPU)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--run-dir", type=Path, help="folder of the resumable run files")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--attach",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="include the NLL summary of another run's results JSON as a diagnostic",
    )
    parser.add_argument(
        "--no-readme", action="store_true", help="leave benchmarks/README.md as it is"
    )
    parser.add_argument(
        "--readme-only",
        action="store_true",
        help="only rewrite the README's quality tables from the --out JSON",
    )
    return parser.parse_args(argv)


POOL_FREE = ("zero_shot", "han_zero_shot", "constant")  # prompts that use no pool demo


def reuse_pool_free(run_dir: Path, log: Any, config: dict[str, Any], items: list[Any]) -> int:
    """Copy results of pool-free conditions from run files that differ only in the pool.

    Zero-shot prompts (and the constant set) depend on neither the pool nor the demo
    conditions' format, so a run on another pool with otherwise equal settings has already
    scored them.
    """

    def without_pool(c: dict[str, Any]) -> dict[str, Any]:
        ignored = ("pool", "pool_version", "near_threshold", "prompt_format")
        return {k: v for k, v in c.items() if k not in ignored}

    wanted = {item.id for item in items}
    copied = 0
    for path in sorted(run_dir.glob("nll-*.jsonl")):
        if path == log.path:
            continue
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            continue
        if without_pool(header.get("config") or {}) != without_pool(config):
            continue
        for line in lines[1:]:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            key = (record.get("item_id"), record.get("condition"))
            if key[1] in POOL_FREE and key[0] in wanted and not log.done(key):
                log.append(record)
                copied += 1
    return copied


def digest(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def base_prompt_id(record_id: str) -> str:
    """`lima_test-012-s3` -> `lima_test-012` (the paper files hold 5 samples a prompt)."""
    head, _, tail = record_id.rpartition("-s")
    return head if head and tail.isdigit() else record_id


def fmt_ci(ci: dict[str, Any]) -> str:
    return f"{ci['estimate']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]"


def style_rows(records: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    return [{"condition": label, "text": r["response"] or ""} for r in records]


def external_styles(data: Path, ids: set[str], long_words: int) -> dict[str, Any]:
    """Style of the paper's outputs and of the reference answers, on the subset and on all."""
    from langchain_icalign.evaluation import read_jsonl, summarize_styles

    out: dict[str, Any] = {}
    sources = {**{k: data / "paper" / v for k, v in PAPER.items()}}
    sources.update({k: data / "eval" / v for k, v in REFERENCES.items()})
    for name, path in sources.items():
        records = [r for _, r in read_jsonl(path)]
        subset = [r for r in records if base_prompt_id(r["id"]) in ids]
        out[name] = {
            "file": str(path.relative_to(data)),
            "subset": summarize_styles(style_rows(subset, name), long_words=long_words)[
                name
            ].to_dict(),
            "all": summarize_styles(style_rows(records, name), long_words=long_words)[
                name
            ].to_dict(),
        }
    return out


def write(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def print_nll(summary: dict[str, Any]) -> None:
    print(f"\nReference NLL of the ChatGPT answers (nats/token), {summary['prompts']} prompts")
    print(f"{'condition':<11} {'mean NLL [95% CI]':<26} {'prompt tok':>10} {'demos':>6}")
    for name, row in summary["conditions"].items():
        print(
            f"{name:<11} {fmt_ci(row['mean_nll']):<26} {row['mean_prompt_tokens']:>10.0f} "
            f"{row['mean_demos']:>6.1f}"
        )
    print(f"\n{'paired difference':<24} {'mean [95% CI]':<28} {'share < 0':>9}")
    for name, ci in summary["contrasts"].items():
        print(f"{name:<24} {fmt_ci(ci):<28} {ci['share_lower']:>9.2f}")


def print_styles(rows: dict[str, dict[str, Any]]) -> None:
    print(
        f"\n{'answers':<38} {'n':>5} {'median words':>12} {'list':>6} {'leak':>6} "
        f"{'empty':>6} {'limit':>6} {'>650w':>6}"
    )
    for name, s in rows.items():
        limit = "-" if s["length_share"] is None else f"{s['length_share']:.2f}"
        print(
            f"{name:<38} {s['n']:>5} {s['median_words']:>12.0f} {s['list_share']:>6.2f} "
            f"{s['marker_leak_share']:>6.2f} {s['empty_share']:>6.2f} {limit:>6} "
            f"{s['long_share']:>6.2f}"
        )


README = HERE / "README.md"
START, END = "<!-- quality:start -->", "<!-- quality:end -->"
LABELS = {
    "zero_shot": "zero-shot (`Question: {q}\\n\\nAnswer:`)",
    "retrieved": "retrieved demos (Han's rule)",
    "random": "random demos, same budget",
    "constant": "constant URIAL-style set",
    "hybrid": "hybrid (constant + retrieved)",
    "han_zero_shot": "diagnostic: Han's format, no demos",
}


FORMAT_LABELS = {
    "han": "Han's format for the demo conditions",
    "urial": "URIAL's format and header for the demo conditions",
}


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def md_header(cells: list[str]) -> list[str]:
    return [md_row(cells), md_row(["---"] + ["---:"] * (len(cells) - 1))]


def signed(ci: dict[str, Any]) -> str:
    return f"{ci['estimate']:+.3f} [{ci['low']:+.3f}, {ci['high']:+.3f}]"


def render_settings(result: dict[str, Any]) -> str:
    s, dec = result["settings"], result["decontamination"]
    prompt_format = FORMAT_LABELS.get(s.get("prompt_format"), "format not recorded")
    minutes = result["timings_s"].get("total", 0) / 60
    reused = result.get("reused_from_run_files") or {}
    resumed = (
        f"; this invocation reused {reused.get('nll', 0)} NLL results and "
        f"{reused.get('generation', 0)} answers from the run files of earlier ones"
        if any(reused.values())
        else ""
    )
    return (
        f"Command: `{result['command']}` ({result['status']}, {minutes:.0f} min on "
        f"{result['machine']['cpus']} shared CPU cores{resumed}). "
        f"Model {s['model']}, float32 on CPU; "
        f"pool `{Path(s['pool']).name}` ({dec['pool_size']} demos; {dec['removed_exact']} exact "
        f"and {dec['removed_near']} near duplicates of LIMA test prompts removed, cosine >= "
        f"{s['near_threshold']}); {prompt_format}; "
        f"demo budget {s['demo_tokens']} tokens by Han's rule (max_k "
        f"{s['max_k']}, demos over {s['max_demo_tokens']} tokens skipped, most relevant last); "
        f"{len(result['eval_items'])} LIMA test prompts ("
        + (
            f"the {s['split']} half of benchmarks/splits/lima_test_split.json"
            if s.get("split")
            else f"a seeded subset, seed {s['seed']}"
        )
        + ")."
    )


def render_nll(result: dict[str, Any]) -> list[str]:
    nll, s = result.get("nll") or {}, result["settings"]
    if not nll.get("prompts"):
        return []
    lines = [
        f"Reference NLL of the ChatGPT answers (their first {s['max_reference_tokens']} tokens; "
        f"nats/token; mean over {nll['prompts']} prompts with 95% bootstrap intervals over "
        "prompts; lower means the prompt moves the model closer to the aligned answer):",
        "",
        *md_header(
            [
                "condition",
                "mean NLL [95% CI]",
                "Δ vs zero-shot [95% CI]",
                "prompts below zero-shot",
                "prompt tokens",
                "demos",
            ]
        ),
    ]
    for name, row in nll["conditions"].items():
        diff = nll["contrasts"].get(f"{name} - zero_shot")
        cells = [LABELS.get(name, name), fmt_ci(row["mean_nll"])]
        cells += ["–", "–"] if diff is None else [signed(diff), pct(diff["share_lower"])]
        cells += [f"{row['mean_prompt_tokens']:.0f}", f"{row['mean_demos']:.1f}"]
        lines.append(md_row(cells))
    others = {k: v for k, v in nll["contrasts"].items() if not k.endswith("- zero_shot")}
    if others:
        lines += ["", *md_header(["paired difference", "mean [95% CI]", "prompts below 0"])]
        for name, ci in others.items():
            lines.append(md_row([name, signed(ci), pct(ci["share_lower"])]))
    return [*lines, ""]


def render_styles(result: dict[str, Any]) -> list[str]:
    s = result["settings"]
    rows: list[tuple[str, dict[str, Any]]] = [
        (f"Gemma-3-270m, {LABELS.get(name, name)}", st)
        for name, st in (result.get("generation") or {}).items()
    ]
    external = result["external_styles"]
    rows += [(f"{name} (same prompts)", st["subset"]) for name, st in external.items()]
    rows += [(f"{name} (all 300 prompts)", st["all"]) for name, st in external.items()]
    lines = [
        f"Style of generated answers (sampling T={s['temperature']}, top-k {s['top_k']}, at most "
        f"{s['max_new_tokens']} new tokens, one sample a prompt) beside the paper's "
        "Llama-2-13B outputs (5 samples a prompt) and the reference answers:",
        "",
        *md_header(
            [
                "answers",
                "n",
                "median words",
                "with a list",
                "leaking a marker",
                "empty",
                "hit the token limit",
                "over 650 words",
            ]
        ),
    ]
    for label, st in rows:
        cells = [label, str(st["n"]), f"{st['median_words']:.0f}", pct(st["list_share"])]
        cells += [pct(st["marker_leak_share"]), pct(st["empty_share"])]
        cells += [pct(st["length_share"]), pct(st["long_share"])]
        lines.append(md_row(cells))
    return lines


def render_markdown(result: dict[str, Any]) -> str:
    """The generated part of the README's quality section."""
    lines = [render_settings(result), "", *render_nll(result), *render_styles(result)]
    for name, other in (result.get("attached") or {}).items():
        lines += ["", f"Diagnostic run `{name}`: {render_settings(other)}", ""]
        lines += render_nll(other)
    return "\n".join(lines).rstrip("\n")


def attachments(specs: list[str]) -> dict[str, Any]:
    """Other runs' results (`NAME=PATH`), without their per-prompt detail."""
    attached: dict[str, Any] = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        other = json.loads(Path(path).read_text(encoding="utf-8"))
        keep = ("command", "status", "settings", "machine", "eval_items", "timings_s")
        attached[name] = {key: other[key] for key in keep}
        attached[name]["decontamination"] = {
            k: v for k, v in other["decontamination"].items() if k != "matches"
        }
        attached[name]["nll"] = other.get("nll")
    return attached


def update_readme(result: dict[str, Any], path: Path = README) -> None:
    """Replace the generated block of the quality section (create the section if missing)."""
    block = f"{START}\n{render_markdown(result)}\n{END}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Quality\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.readme_only:
        saved = json.loads(args.out.read_text(encoding="utf-8"))
        if args.attach:
            saved["attached"] = attachments(args.attach)
            write(saved, args.out)
        update_readme(saved)
        print(f"updated {README} from {args.out}")
        return 0
    data = args.data.resolve()
    chatgpt = data / "eval" / "lima_test_chatgpt.jsonl"
    if not chatgpt.is_file():
        print(f"skipped: the shared data ({chatgpt}) is absent; see ../shared/data/README.md")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from langchain_icalign.defaults.model_cache import icalign_home
    from langchain_icalign.evaluation import (
        GENERATION_KEY,
        NLL_KEY,
        ResultLog,
        build_eval_stack,
        load_eval_items,
        load_pool,
        run_generations,
        run_reference_nll,
        sample_items,
        summarize_nll,
        summarize_styles,
    )

    started = time.perf_counter()
    conditions = list(dict.fromkeys(args.condition or CONDITIONS))
    generate = list(dict.fromkeys(args.generate or ["zero_shot", "retrieved"]))
    if args.max_new_tokens <= 0:
        generate = []
    all_items = load_eval_items(chatgpt, require_reference=True)
    if args.split:
        half = set(json.loads(SPLIT.read_text(encoding="utf-8"))[args.split])
        items = sample_items([i for i in all_items if i.id in half], args.limit, args.seed)
    else:
        items = sample_items(all_items, args.limit, args.seed)
    ids = {item.id for item in items}
    pool_path = None if args.pool == "builtin" else Path(args.pool).resolve()
    pool = None if pool_path is None else load_pool(pool_path)
    if pool_path is None:
        from langchain_icalign.defaults.builtin_demos import builtin_pool_version

        pool_name, pool_version = "builtin", builtin_pool_version()
    else:
        pool_name, pool_version = str(pool_path), file_digest(pool_path)
    stack_config = {
        "model": args.model or "google/gemma-3-270m",
        "pool": pool_name,
        "pool_version": pool_version,
        "demo_tokens": args.demo_tokens,
        "max_demo_tokens": DEFAULT_SETTINGS.max_demo_tokens,
        "max_k": DEFAULT_SETTINGS.max_k,
        "prompt_format": DEFAULT_SETTINGS.prompt_format,
        "near_threshold": args.near_threshold,
        "eval_file": file_digest(chatgpt),
        "random_seed": args.seed,
    }
    nll_config = {**stack_config, "max_reference_tokens": args.max_reference_tokens}
    gen_config = {
        **stack_config,
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "top_k": 50,
        "top_p": 1.0,
        "seed": args.seed,
    }
    run_dir = args.run_dir or icalign_home() / "eval-runs" / "quality"
    nll_path = run_dir / f"nll-{digest(nll_config)}.jsonl"
    gen_path = run_dir / f"generations-{digest(gen_config)}.jsonl"
    given = argv if argv is not None else sys.argv[1:]
    command = f"python benchmarks/quality.py {shlex.join(given)}"
    result: dict[str, Any] = {
        "benchmark": "quality",
        "status": "running",
        "command": command.strip(),
        "settings": {
            **gen_config,
            "max_reference_tokens": args.max_reference_tokens,
            "limit": args.limit,
            "split": args.split,
            "generate_limit": args.generate_limit,
            "conditions": conditions,
            "generate": generate,
            "threads": args.threads,
        },
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "eval_items": sorted(ids),
        "run_files": {"nll": str(nll_path), "generations": str(gen_path)},
        "timings_s": {},  # of this invocation; results reused from the run files cost none
    }
    tic = time.perf_counter()
    stack = build_eval_stack(
        model=args.model,
        pool=pool,
        eval_prompts=[item.prompt for item in all_items],
        near_threshold=args.near_threshold,
        demo_tokens=args.demo_tokens,
        device_map=args.device_map,
        show_progress=not args.quiet,
    )
    assert stack.decontamination is not None
    result["decontamination"] = stack.decontamination.to_dict([i.id for i in all_items])
    result["timings_s"]["setup"] = round(time.perf_counter() - tic, 1)
    print(
        f"pool {pool_name}: {stack.decontamination.pool_size} demos, removed "
        f"{stack.decontamination.exact} exact and {stack.decontamination.near} near duplicates "
        f"of LIMA test prompts; {len(stack.pool)} kept"
    )
    chats = stack.chats(
        list(dict.fromkeys([*conditions, *generate])),
        random_seed=args.seed,
        temperature=args.temperature,
        max_new_tokens=max(args.max_new_tokens, 1),
        repetition_penalty=DEFAULT_SETTINGS.repetition_penalty,
    )
    result["external_styles"] = external_styles(data, ids, 650)
    write(result, args.out)

    tic = time.perf_counter()
    nll_log = ResultLog(nll_path, NLL_KEY, config=nll_config)
    copied = reuse_pool_free(run_dir, nll_log, nll_config, items)
    if copied:
        print(f"reused {copied} pool-free results (zero-shot, constant) from runs on other pools")
    result["reused_from_run_files"] = {"nll": len(nll_log)}
    nll_records = run_reference_nll(
        {c: chats[c] for c in conditions},
        items,
        nll_log,
        max_reference_tokens=args.max_reference_tokens,
        show_progress=not args.quiet,
    )
    result["timings_s"]["nll"] = round(time.perf_counter() - tic, 1)
    summary = summarize_nll(nll_records, conditions, resamples=args.resamples, seed=args.seed)
    result["nll"] = summary
    per_prompt: dict[str, dict[str, float]] = {}
    for record in nll_records:
        per_prompt.setdefault(record["item_id"], {})[record["condition"]] = round(
            record["mean_nll"], 5
        )
    result["nll_per_prompt"] = dict(sorted(per_prompt.items()))
    write(result, args.out)
    if summary["prompts"]:
        print_nll(summary)

    if generate:
        tic = time.perf_counter()
        gen_log = ResultLog(gen_path, GENERATION_KEY, config=gen_config)
        result["reused_from_run_files"]["generation"] = len(gen_log)
        gen_items = sample_items(items, args.generate_limit, args.seed)
        result["generated_items"] = [item.id for item in gen_items]
        gen_records = run_generations(
            {c: chats[c] for c in generate},
            gen_items,
            gen_log,
            max_new_tokens=args.max_new_tokens,
            seed=args.seed,
            show_progress=not args.quiet,
        )
        result["timings_s"]["generation"] = round(time.perf_counter() - tic, 1)
        styles = summarize_styles(gen_records)
        result["generation"] = {
            c: {
                **styles[c].to_dict(),
                "mean_prompt_tokens": sum(r["prompt_tokens"] or 0 for r in rows) / len(rows),
                "mean_output_tokens": sum(r["output_tokens"] or 0 for r in rows) / len(rows),
            }
            for c in generate
            if (rows := [r for r in gen_records if r["condition"] == c])
        }
    table = {f"gemma-3-270m {c}": s for c, s in result.get("generation", {}).items()}
    for name, styles_of in result["external_styles"].items():
        table[f"{name} (subset)"] = styles_of["subset"]
    print_styles(table)
    result["timings_s"]["total"] = round(time.perf_counter() - started, 1)
    if args.attach:
        result["attached"] = attachments(args.attach)
    result["status"] = "complete"
    write(result, args.out)
    if not args.no_readme:
        update_readme(result)
    print(f"\nwrote {args.out} ({result['timings_s']['total']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
