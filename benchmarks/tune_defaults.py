"""Choose the defaults on the dev half (issue 11): format, demo budget, max_k, dedup, repetition.

On a seeded subset of the dev half of the LIMA test prompts (benchmarks/splits), with the
default model and a pool (the built-in one by default):

1. Reference NLL of the ChatGPT answers under each prompt variant (format, budget, max_k,
   dedup threshold), with paired differences against the current choice. Prompts that
   come out identical under two variants are scored once.
2. Generated answers under repetition penalties (None, 1.1, 1.3): style, leaks, cut-offs
   and repetition (answers where some 4-word sequence occurs three times or more).

Never run on the test half. Results: benchmarks/results/defaults.json.

Run: .venv/bin/python benchmarks/tune_defaults.py [--limit 45] [--generate-limit 20]
     [--pool builtin|FILE] [--threads 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
SPLIT = HERE / "splits" / "lima_test_split.json"
RESULTS = HERE / "results" / "defaults.json"

# name: (format, budget, max_k, dedup, system+constant set, max_demo_tokens)
NLL_VARIANTS: dict[str, tuple[str, int, int, float | None, str, int]] = {
    "zero_shot": ("zero_shot", 0, 20, 0.9, "none", 500),
    "han_zero_shot": ("han", 0, 20, 0.9, "none", 500),
    "han_500": ("han", 500, 20, 0.9, "none", 500),
    "han_1000": ("han", 1000, 20, 0.9, "none", 500),
    "han_2000": ("han", 2000, 20, 0.9, "none", 500),
    "han_1000_k5": ("han", 1000, 5, 0.9, "none", 500),
    "han_1000_k40": ("han", 1000, 40, 0.9, "none", 500),
    "han_1000_nodedup": ("han", 1000, 20, None, "none", 500),
    "han_1000_dedup07": ("han", 1000, 20, 0.7, "none", 500),
    "urial_1000": ("urial", 1000, 20, 0.9, "header", 500),
    "hybrid_1000": ("han", 1000, 20, 0.9, "header+constant", 500),
    "han_1000_cap800": ("han", 1000, 20, 0.9, "none", 800),
    "qa_1000": ("zero_shot", 1000, 20, 0.9, "none", 500),
    "qa_500": ("zero_shot", 500, 20, 0.9, "none", 500),
    # URIAL's format and header (the default since issue 11's format choice), cap 800.
    "urial_header_only": ("urial", 0, 20, 0.9, "header", 800),
    "urial_1000_cap800": ("urial", 1000, 20, 0.9, "header", 800),
    "urial_600": ("urial", 600, 20, 0.9, "header", 800),
    "urial_1500": ("urial", 1500, 20, 0.9, "header", 800),
    "urial_1000_k1": ("urial", 1000, 1, 0.9, "header", 800),
    "urial_1000_min045": ("urial", 1000, 20, 0.9, "header", 800),
    "urial_1000_min035": ("urial", 1000, 20, 0.9, "header", 800),
}
# Variants that keep only demos at or above a cosine to the query (none: zero demos).
SCORE_THRESHOLDS = {"urial_1000_min045": 0.45, "urial_1000_min035": 0.35}
PENALTIES = (None, 1.1, 1.3)
GENERATE_VARIANT = "urial_1000_cap800"
"""The prompt variant answers are generated under: the shipped default's."""
_WORDS = re.compile(r"\w+")


def repeats(text: str, n: int = 4, times: int = 3) -> bool:
    words = [w.lower() for w in _WORDS.findall(text)]
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return bool(grams) and max(grams.values()) >= times


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=45, help="dev prompts for the NLL")
    parser.add_argument("--generate-limit", type=int, default=20, help="dev prompts to answer")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--max-reference-tokens", type=int, default=256)
    parser.add_argument("--pool", default="builtin", help="'builtin' or a JSONL pool")
    parser.add_argument("--variant", action="append", help="only these NLL variants")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from langchain_core.messages import HumanMessage

    from langchain_icalign import AlignmentExampleSelector, ChatICAlign
    from langchain_icalign.defaults.builtin_demos import builtin_pool_version, urial_set
    from langchain_icalign.defaults.model_cache import icalign_home
    from langchain_icalign.evaluation import (
        ResultLog,
        answer_continuation,
        answer_style,
        build_eval_stack,
        item_seed,
        load_eval_items,
        load_pool,
        reference_nll,
        sample_items,
        summarize_nll,
    )
    from langchain_icalign.evaluation.conditions import ZeroShotFormat

    started = time.perf_counter()
    dev = set(json.loads(SPLIT.read_text(encoding="utf-8"))["dev"])
    all_items = load_eval_items(DATA / "eval" / "lima_test_chatgpt.jsonl", require_reference=True)
    dev_items = [item for item in all_items if item.id in dev]
    items = sample_items(dev_items, args.limit, 0)
    pool = None if args.pool == "builtin" else load_pool(args.pool)
    pool_name = "builtin" if pool is None else Path(args.pool).name
    version = (
        builtin_pool_version()
        if pool is None
        else hashlib.sha256(Path(args.pool).read_bytes()).hexdigest()[:12]
    )
    stack = build_eval_stack(
        pool=pool, eval_prompts=[i.prompt for i in all_items], demo_tokens=1000
    )
    system, constant = urial_set()

    def chat_for(name: str, **extra: Any) -> ChatICAlign:
        fmt, budget, max_k, dedup, extras, cap = NLL_VARIANTS[name]
        if fmt == "zero_shot" and not budget:
            return ChatICAlign(llm=stack.llm, prompt_format=ZeroShotFormat(), **extra)
        if fmt == "zero_shot":
            fmt = ZeroShotFormat()
        selector = None
        if budget:
            selector = AlignmentExampleSelector(
                store=stack.store,
                token_counter=stack.tokenizer,
                max_tokens=budget,
                max_k=max_k,
                max_demo_tokens=cap,
                dedup_threshold=dedup,
                prompt_format=fmt,
                score_threshold=SCORE_THRESHOLDS.get(name),
            )
        return ChatICAlign(
            llm=stack.llm,
            selector=selector,
            prompt_format=fmt,
            system_prompt=system if extras != "none" else None,
            constant_demos=list(constant) if extras == "header+constant" else [],
            **extra,
        )

    run_dir = icalign_home() / "eval-runs" / "defaults"
    config = {"pool": pool_name, "pool_version": version, "ref": args.max_reference_tokens}
    log = ResultLog(run_dir / f"nll-{pool_name}-{version}.jsonl", ("item_id", "prompt"), config)
    variants = args.variant or list(NLL_VARIANTS)
    records = []
    tic = time.perf_counter()
    from tqdm.auto import tqdm

    for name in tqdm(variants, desc="variants"):
        chat = chat_for(name)
        for item in items:
            prepared = chat.prepare_prompt([HumanMessage(item.prompt)], max_new_tokens=256)
            continuation = answer_continuation(chat.format, item.prompt, item.reference or "")
            key = hashlib.sha256((prepared.text + "\x00" + continuation).encode()).hexdigest()
            if not log.done((item.id, key)):
                result = reference_nll(
                    stack.model,
                    stack.tokenizer,
                    prepared.text,
                    continuation,
                    max_tokens=args.max_reference_tokens,
                )
                log.append({"item_id": item.id, "prompt": key, **result.to_dict()})
            scored = log.get((item.id, key))
            records.append(
                {
                    **scored,
                    "condition": name,
                    "demo_ids": [s.demo.id for s in prepared.demos],
                    "constant_demos": len(prepared.constant_demos),
                }
            )
    nll_seconds = time.perf_counter() - tic
    contrasts = [(v, "han_1000") for v in variants if v != "han_1000"]
    contrasts += [(v, "zero_shot") for v in variants if v not in ("zero_shot", "han_1000")]
    contrasts += [("han_1000", "zero_shot"), ("han_1000", "han_zero_shot")]
    # Only between variants that ran (`--variant` may leave out either side).
    contrasts = [(a, b) for a, b in contrasts if a in variants and b in variants]
    summary = summarize_nll(records, variants, contrasts=contrasts, resamples=2000, seed=0)
    identical = {
        name: sum(
            1
            for item in items
            if [r["prompt"] for r in records if r["item_id"] == item.id and r["condition"] == name]
            == [
                r["prompt"]
                for r in records
                if r["item_id"] == item.id and r["condition"] == "han_1000"
            ]
        )
        for name in variants
    }
    print(f"\nReference NLL on {summary['prompts']} dev prompts ({pool_name}, {nll_seconds:.0f} s)")
    print(
        f"{'variant':<18} {'mean NLL':>9} {'prompt tok':>10} {'demos':>6} {'same as han_1000':>17}"
    )
    for name, row in summary["conditions"].items():
        print(
            f"{name:<18} {row['mean_nll']['estimate']:>9.4f} {row['mean_prompt_tokens']:>10.0f} "
            f"{row['mean_demos']:>6.2f} {identical[name]:>12}"
        )
    print(f"\n{'paired difference':<32} {'mean [95% CI]':<30} {'share < 0':>9}")
    for name, ci in summary["contrasts"].items():
        print(
            f"{name:<32} {ci['estimate']:+.4f} [{ci['low']:+.4f}, {ci['high']:+.4f}]   "
            f"{ci['share_lower']:>6.2f}"
        )

    generation: dict[str, Any] = {}
    if args.generate_limit > 0:
        gen_items = sample_items(dev_items, args.generate_limit, 1)
        gen_log = ResultLog(
            run_dir / f"gen-{pool_name}-{version}-{GENERATE_VARIANT}-{args.max_new_tokens}.jsonl",
            ("item_id", "variant"),
            config,
        )
        tic = time.perf_counter()
        for penalty in PENALTIES:
            label = f"repetition_penalty={penalty}"
            chat = chat_for(GENERATE_VARIANT, max_new_tokens=args.max_new_tokens, temperature=0.7)
            if penalty is not None:
                chat = chat.model_copy(update={"repetition_penalty": penalty})
            rows = []
            for item in tqdm(gen_items, desc=label):
                if not gen_log.done((item.id, label)):
                    message = chat.invoke(item.prompt, seed=item_seed(item.id, 0))
                    finish = message.response_metadata.get("finish_reason")
                    gen_log.append(
                        {
                            "item_id": item.id,
                            "variant": label,
                            "text": message.content,
                            "finish_reason": finish,
                        }
                    )
                rows.append(gen_log.get((item.id, label)))
            styles = [answer_style(r["text"], r["finish_reason"]) for r in rows]
            generation[label] = {
                "n": len(rows),
                "median_words": sorted(s.words for s in styles)[len(styles) // 2],
                "repeating": sum(repeats(r["text"]) for r in rows) / len(rows),
                "marker_leak": sum(bool(s.leaked_markers) for s in styles) / len(rows),
                "empty": sum(s.empty for s in styles) / len(rows),
                "hit_limit": sum(bool(s.hit_limit) for s in styles) / len(rows),
                "list": sum(s.has_list for s in styles) / len(rows),
            }
        generation["seconds"] = round(time.perf_counter() - tic, 1)
        print(
            f"\nGenerated answers ({GENERATE_VARIANT}), {len(gen_items)} dev prompts, "
            f"{args.max_new_tokens} tokens"
        )
        for label, row in generation.items():
            if isinstance(row, dict):
                print(
                    f"{label:<26} "
                    + " ".join(
                        f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in row.items()
                    )
                )
    out = {
        "benchmark": "defaults",
        "command": "python benchmarks/tune_defaults.py " + " ".join(sys.argv[1:]),
        "pool": pool_name,
        "pool_version": version,
        "pool_size": len(stack.pool),
        "dev_prompts_nll": [i.id for i in items],
        "variants": {k: list(v) for k, v in NLL_VARIANTS.items() if k in variants},
        "nll": summary,
        "same_prompt_as_han_1000": identical,
        "generation": {"variant": GENERATE_VARIANT, **generation} if generation else {},
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
