"""The built-in pool's style and coverage beside reference answers and other pools (issue 11).

Style: answer length, lists, bold, headings, code and leaked markers of the built-in pool,
the first built-in pool (v0.1), the AlpacaEval GPT-4 pool, the ChatGPT and
text-davinci-003 reference answers to the LIMA test prompts, and the paper's Llama-2-13B
outputs with retrieved demos. Coverage: the median top-1 cosine (all-MiniLM-L6-v2) of the
LIMA dev and test prompts to each pool. Results: benchmarks/results/pool_report.json.

Run: .venv/bin/python benchmarks/pool_report.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
SPLIT = HERE / "splits" / "lima_test_split.json"
RESULTS = HERE / "results" / "pool_report.json"
OLD_POOL = HERE / "pools" / "builtin_v0.1.jsonl"


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from langchain_icalign import DemoStore
    from langchain_icalign.curation import answers_style, coverage, pool_style
    from langchain_icalign.defaults import default_embeddings
    from langchain_icalign.defaults.builtin_demos import builtin_pool, builtin_pool_version
    from langchain_icalign.evaluation import load_pool, read_jsonl

    pools = {
        "built-in pool": list(builtin_pool()),
        "first built-in pool (v0.1)": load_pool(OLD_POOL),
    }
    have_data = (DATA / "eval" / "lima_test_chatgpt.jsonl").is_file()
    if have_data:
        pools["AlpacaEval GPT-4 pool"] = load_pool(DATA / "pools" / "alpaca_eval_gpt4.jsonl")
    styles: dict[str, Any] = {name: pool_style(demos).to_dict() for name, demos in pools.items()}
    coverages: dict[str, Any] = {}
    if have_data:
        split = json.loads(SPLIT.read_text(encoding="utf-8"))
        chatgpt = {r["id"]: r for _, r in read_jsonl(DATA / "eval" / "lima_test_chatgpt.jsonl")}
        davinci = [
            r["response"] for _, r in read_jsonl(DATA / "eval" / "lima_test_davinci003.jsonl")
        ]
        paper = [
            r["response"]
            for _, r in read_jsonl(DATA / "paper" / "llama2-13B_icl-oasstgpt.jsonl")
            if r.get("response")
        ]
        styles["reference: ChatGPT, dev half"] = answers_style(
            [chatgpt[i]["response"] for i in split["dev"]]
        ).to_dict()
        styles["reference: ChatGPT, all 300"] = answers_style(
            [r["response"] for r in chatgpt.values()]
        ).to_dict()
        styles["reference: text-davinci-003, all 300"] = answers_style(davinci).to_dict()
        styles["paper: Llama-2-13B, retrieved demos"] = answers_style(paper).to_dict()
        embeddings = default_embeddings()
        for name, demos in pools.items():
            with DemoStore(embeddings, location=":memory:", collection_name="report") as store:
                store.add_demos(demos)
                coverages[name] = {
                    half: coverage(store, [chatgpt[i]["prompt"] for i in split[half]]).to_dict()
                    for half in ("dev", "test")
                }
    header = f"{'answers':<40} {'n':>5} {'median w':>8} {'p10-p90 words':>14} {'list':>5} "
    header += f"{'bold':>5} {'head':>5} {'code':>5}"
    print(header)
    for name, s in styles.items():
        print(
            f"{name:<40} {s['answers']:>5} {s['median_words']:>8.0f} "
            f"{s['p10_words']:>6.0f}-{s['p90_words']:<7.0f} {s['list_share']:>5.0%} "
            f"{s['bold_share']:>5.0%} {s['heading_share']:>5.0%} {s['code_share']:>5.0%}"
        )
    if coverages:
        print(f"\n{'coverage (median top-1 cosine)':<40} {'dev':>6} {'test':>6} {'>0.5 dev':>9}")
        for name, c in coverages.items():
            print(
                f"{name:<40} {c['dev']['median_top1']:>6.3f} {c['test']['median_top1']:>6.3f} "
                f"{c['dev']['share_above_half']:>9.0%}"
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "pool_report",
        "pool_version": builtin_pool_version(),
        "style": styles,
        "coverage": coverages,
        "categories": styles["built-in pool"]["categories"],
    }
    RESULTS.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
