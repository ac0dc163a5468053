"""Is it the voice? Demos in the references' own voice against the built-in pool (issue 11).

Dev half only (benchmarks/splits). The 45 dev prompts that `tune_defaults.py` scores are
scored again under three prompts: the zero-shot Q/A prompt, retrieved demos from the
built-in pool (or `--pool`), and retrieved demos from a *voice-matched pool*: the ChatGPT
answers of the other 105 dev prompts, which share the references' voice but rarely their
topic. The voice-matched pool is a diagnostic only: third-party text, never shipped, never
used to choose a demo. Both retrieved conditions run in Han's and URIAL's formats, with the
default budget and limits. A per-position split shows where in the answer demos help.

Results: benchmarks/results/voice_diagnostic.json.
Run: .venv/bin/python benchmarks/voice_diagnostic.py [--pool builtin|FILE] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
SPLIT = HERE / "splits" / "lima_test_split.json"
RESULTS = HERE / "results" / "voice_diagnostic.json"
BUCKETS = ((0, 5), (5, 20), (20, 100), (100, 256))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pool", default="builtin", help="'builtin' or a JSONL pool")
    parser.add_argument("--limit", type=int, default=45, help="dev prompts scored")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import numpy as np
    import torch
    import torch.nn.functional as F  # noqa: N812

    if args.threads:
        torch.set_num_threads(args.threads)
    from langchain_core.messages import HumanMessage

    from langchain_icalign import AlignmentDemo, AlignmentExampleSelector, ChatICAlign
    from langchain_icalign.defaults import DEFAULT_SETTINGS
    from langchain_icalign.defaults.builtin_demos import urial_set
    from langchain_icalign.evaluation import (
        answer_continuation,
        build_eval_stack,
        clustered_bootstrap_mean,
        load_eval_items,
        load_pool,
        sample_items,
    )
    from langchain_icalign.evaluation.conditions import ZeroShotFormat

    started = time.perf_counter()
    dev = set(json.loads(SPLIT.read_text(encoding="utf-8"))["dev"])
    items = load_eval_items(DATA / "eval" / "lima_test_chatgpt.jsonl", require_reference=True)
    dev_items = [item for item in items if item.id in dev]
    scored = sample_items(dev_items, args.limit, 0)
    scored_ids = {item.id for item in scored}
    voice_pool = [
        AlignmentDemo(prompt=item.prompt, response=item.reference or "")
        for item in dev_items
        if item.id not in scored_ids
    ]
    pool = None if args.pool == "builtin" else load_pool(args.pool)
    ours = build_eval_stack(pool=pool, eval_prompts=[i.prompt for i in items], demo_tokens=1000)
    voice = build_eval_stack(pool=voice_pool, eval_prompts=None, demo_tokens=1000)
    tokenizer, model = ours.tokenizer, ours.model
    system, _ = urial_set()

    def retrieved(stack: Any, fmt: str) -> ChatICAlign:
        selector = AlignmentExampleSelector(
            store=stack.store,
            token_counter=tokenizer,
            prompt_format=fmt,
            **DEFAULT_SETTINGS.selector_kwargs(),
        )
        return ChatICAlign(
            llm=ours.llm,
            selector=selector,
            prompt_format=fmt,
            system_prompt=system if fmt == "urial" else None,
        )

    chats = {
        "zero_shot": ChatICAlign(llm=ours.llm, prompt_format=ZeroShotFormat()),
        "pool_han": retrieved(ours, "han"),
        "voice_han": retrieved(voice, "han"),
        "pool_urial": retrieved(ours, "urial"),
        "voice_urial": retrieved(voice, "urial"),
    }

    def token_nll(prompt: str, continuation: str) -> list[float]:
        prompt_ids = tokenizer(prompt, add_special_tokens=True, split_special_tokens=True)[
            "input_ids"
        ]
        target = tokenizer(continuation, add_special_tokens=False, split_special_tokens=True)[
            "input_ids"
        ][:256]
        with torch.inference_mode():
            logits = model(
                input_ids=torch.tensor([[*prompt_ids, *target]]), logits_to_keep=len(target) + 1
            ).logits[0, :-1]
            losses = F.cross_entropy(logits.float(), torch.tensor(target), reduction="none")
        return [float(x) for x in losses]

    from tqdm.auto import tqdm

    nll: dict[str, list[list[float]]] = {name: [] for name in chats}
    for item in tqdm(scored, desc="dev prompts"):
        for name, chat in chats.items():
            prepared = chat.prepare_prompt([HumanMessage(item.prompt)], max_new_tokens=256)
            continuation = answer_continuation(chat.format, item.prompt, item.reference or "")
            losses = token_nll(prepared.text, continuation)
            # Han's lead space is one more token than the Q/A prompt's: align on the reference.
            nll[name].append(losses[-min(len(losses), 255) :])
    means = {name: np.array([np.mean(row) for row in rows]) for name, rows in nll.items()}
    rows_out: dict[str, Any] = {}
    print(f"\nReference NLL on {len(scored)} dev prompts (nats/token; minus zero-shot)")
    print(
        f"{'condition':<12} {'mean':>7} {'- zero-shot [95% CI]':>30} "
        + " ".join(f"{f'tok {a}-{b}':>10}" for a, b in BUCKETS)
    )
    for name in chats:
        diff = means[name] - means["zero_shot"]
        ci = clustered_bootstrap_mean(diff.tolist(), resamples=2000, seed=0).to_dict()
        buckets = {}
        for low, high in BUCKETS:
            deltas = [
                a - b
                for row, base in zip(nll[name], nll["zero_shot"], strict=True)
                for a, b in list(zip(row, base, strict=False))[low:high]
            ]
            buckets[f"{low}-{high}"] = float(np.mean(deltas)) if deltas else 0.0
        rows_out[name] = {
            "mean_nll": float(means[name].mean()),
            "minus_zero_shot": ci,
            "per_position_minus_zero_shot": buckets,
        }
        print(
            f"{name:<12} {means[name].mean():>7.4f} "
            f"{ci['estimate']:+.4f} [{ci['low']:+.4f}, {ci['high']:+.4f}]   "
            + " ".join(f"{v:>+10.3f}" for v in buckets.values())
        )
    out = {
        "benchmark": "voice_diagnostic",
        "command": "python benchmarks/voice_diagnostic.py " + " ".join(sys.argv[1:]),
        "pool": args.pool,
        "voice_pool": f"ChatGPT answers of the {len(voice_pool)} other dev prompts (diagnostic)",
        "dev_prompts": [item.id for item in scored],
        "settings": {"demo_tokens": DEFAULT_SETTINGS.demo_tokens, "reference_tokens": 256},
        "conditions": rows_out,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
