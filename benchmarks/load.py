"""Peak memory and wall time of 32 concurrent `ainvoke` calls on the default stack.

Run: .venv/bin/python benchmarks/load.py [--requests 32] [--max-new-tokens 16]
Writes benchmarks/results/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "load.json"


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    args = parser.parse_args()
    from langchain_icalign import ChatICAlign

    chat = ChatICAlign.from_defaults(max_new_tokens=args.max_new_tokens, temperature=0)
    chat.invoke("warm up")
    before = rss_mib()

    async def run() -> list:
        questions = [
            f"Give me tip number {i} for learning a language." for i in range(args.requests)
        ]
        return await asyncio.gather(*(chat.ainvoke(q) for q in questions))

    started = time.perf_counter()
    results = asyncio.run(run())
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    after = rss_mib()
    row = {
        "benchmark": "load",
        "command": f"python benchmarks/load.py --requests {args.requests} "
        f"--max-new-tokens {args.max_new_tokens}",
        "requests": args.requests,
        "completed": sum(1 for r in results if r.content is not None),
        "wall_seconds": round(seconds, 1),
        "seconds_per_request": round(seconds / args.requests, 2),
        "rss_before_mib": round(before, 1),
        "rss_after_mib": round(after, 1),
        "peak_rss_mib": round(peak, 1),
        "load_average": os.getloadavg(),
    }
    header = ("requests", "completed", "wall s", "s/request", "RSS before", "peak RSS")
    print(" ".join(f"{h:>10}" for h in header))
    keys = ("requests", "completed", "wall_seconds", "seconds_per_request")
    print(" ".join(f"{row[k]:>10}" for k in (*keys, "rss_before_mib", "peak_rss_mib")))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
