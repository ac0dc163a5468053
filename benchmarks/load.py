"""Memory and wall time of concurrent `ainvoke` calls on the default stack.

Runs 1, then 8, then 32 (by default) concurrent `ainvoke` calls with short answers and
samples the process's resident memory every 20 ms while each level runs, so that the
peak of each level can be compared: bounded memory means the peak does not grow with
the number of requests in flight (generation is serialised per model).

Run: .venv/bin/python benchmarks/load.py [--levels 1,8,32] [--max-new-tokens 16]
Writes benchmarks/results/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "load.json"


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class PeakSampler:
    """Samples the resident memory in a thread; `peak` is the highest since `reset`."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.peak = rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, rss_mib())

    def reset(self) -> None:
        self.peak = rss_mib()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def run_level(chat, requests: int, sampler: PeakSampler) -> dict:
    questions = [f"Give me tip number {i} for learning a language." for i in range(requests)]

    async def run() -> list:
        return await asyncio.gather(*(chat.ainvoke(q) for q in questions))

    before = rss_mib()
    sampler.reset()
    started = time.perf_counter()
    results = asyncio.run(run())
    seconds = time.perf_counter() - started
    return {
        "requests": requests,
        "completed": sum(1 for r in results if isinstance(r.content, str)),
        "wall_seconds": round(seconds, 1),
        "seconds_per_request": round(seconds / requests, 2),
        "rss_before_mib": round(before, 1),
        "peak_rss_mib": round(sampler.peak, 1),
        "growth_mib": round(sampler.peak - before, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--levels", default="1,8,32", help="concurrent requests per level")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    args = parser.parse_args()
    from langchain_icalign import ChatICAlign

    chat = ChatICAlign.from_defaults(max_new_tokens=args.max_new_tokens, temperature=0)
    chat.invoke("warm up")
    sampler = PeakSampler()
    rows = [run_level(chat, int(n), sampler) for n in args.levels.split(",")]
    sampler.close()
    header = ("requests", "completed", "wall s", "s/request", "RSS before", "peak RSS", "growth")
    print(" ".join(f"{h:>10}" for h in header))
    keys = ("requests", "completed", "wall_seconds", "seconds_per_request", "rss_before_mib")
    for row in rows:
        print(" ".join(f"{row[k]:>10}" for k in (*keys, "peak_rss_mib", "growth_mib")))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "load",
        "command": f"python benchmarks/load.py --levels {args.levels} "
        f"--max-new-tokens {args.max_new_tokens}",
        "model": "google/gemma-3-270m, float32, CPU; default store and selector",
        "levels": rows,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
