"""Memory and wall time of concurrent `ainvoke` calls on the default stack.

Runs 1, then 8, then 32 (by default) concurrent `ainvoke` calls with short answers and
samples the process's resident memory every 20 ms while each level runs, so that the
peak of each level can be compared: bounded memory means the peak does not grow with
the number of requests in flight (generation is serialised per model).

With `--backend server` the model runs on llama-cpp-python's OpenAI-compatible server on
the default GGUF (started here on a free local port, or `--server-url` for one already
running) through `ChatICAlign.from_server`, the store and selector as before; each level
then also reports throughput, p50/p95 latency and the selection share (time to retrieve
demos and render the prompt, `prepare_prompt`, over the request's latency). The default
executor gets a thread per request, so that 32 calls are 32 requests in flight.

Run: .venv/bin/python benchmarks/load.py [--levels 1,8,32] [--max-new-tokens 16]
     [--backend inprocess|server] [--server-url http://127.0.0.1:8080/v1]
Writes benchmarks/results/load.json (the server figures under "server", the others kept).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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

    latencies: list[float] = []

    async def timed(question: str):
        begun = time.perf_counter()
        result = await chat.ainvoke(question)
        latencies.append(time.perf_counter() - begun)
        return result

    async def run() -> list:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=max(requests, 4)))
        return await asyncio.gather(*(timed(q) for q in questions))

    before = rss_mib()
    sampler.reset()
    started = time.perf_counter()
    results = asyncio.run(run())
    seconds = time.perf_counter() - started
    cache = getattr(chat.backend, "prefix_cache", None)
    entries = list(getattr(cache, "_entries", ()))
    usage = [r.usage_metadata or {} for r in results]
    return {
        "requests": requests,
        "completed": sum(1 for r in results if isinstance(r.content, str)),
        "wall_seconds": round(seconds, 1),
        "seconds_per_request": round(seconds / requests, 2),
        "rss_before_mib": round(before, 1),
        "peak_rss_mib": round(sampler.peak, 1),
        "growth_mib": round(sampler.peak - before, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "mean_input_tokens": round(sum(u.get("input_tokens", 0) for u in usage) / requests),
        "prefix_cache_entries_after": len(entries),
        "prefix_cache_mib_after": round(sum(e.nbytes for e in entries) / 2**20, 1),
        "requests_per_second": round(requests / seconds, 3),
        "latency_p50_s": round(percentile(latencies, 50), 2),
        "latency_p95_s": round(percentile(latencies, 95), 2),
        "selection_share": selection_share(chat, questions[:4], latencies),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def selection_share(chat, questions: list[str], latencies: list[float]) -> float:
    """Mean time to select demos and render the prompt over the mean request latency."""
    begun = time.perf_counter()
    for question in questions:
        chat.prepare_prompt(question)
    prepare = (time.perf_counter() - begun) / len(questions)
    return round(prepare / (sum(latencies) / len(latencies)), 4)


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--levels", default="1,8,32", help="concurrent requests per level")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--backend", choices=("inprocess", "server"), default="inprocess")
    parser.add_argument("--server-url", help="a running server's /v1 URL (else one is started)")
    args = parser.parse_args()
    if args.backend == "server":
        main_server(args)
        return
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
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "load",
        "command": f"python benchmarks/load.py --levels {args.levels} "
        f"--max-new-tokens {args.max_new_tokens}",
        "model": "google/gemma-3-270m, float32, CPU; default store and selector",
        "cpu_count": os.cpu_count(),
        "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX"),
        "torch_threads": torch_threads(),
        "levels": rows,
    }
    previous = read_results(args.output)
    if "server" in previous:
        result["server"] = previous["server"]
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


def read_results(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def main_server(args: argparse.Namespace) -> None:
    from contextlib import nullcontext

    from langchain_icalign import ChatICAlign
    from langchain_icalign.llamacpp_server import LlamaCppServer

    server = nullcontext(None) if args.server_url else LlamaCppServer(n_ctx=2048, n_threads=2)
    with server as running:
        url = args.server_url or running.base_url
        chat = ChatICAlign.from_server(
            url, max_new_tokens=args.max_new_tokens, temperature=0, request_timeout=600
        )
        chat.invoke("warm up")
        sampler = PeakSampler()
        rows = [run_level(chat, int(n), sampler) for n in args.levels.split(",")]
        sampler.close()
    header = ("requests", "wall s", "req/s", "p50 s", "p95 s", "selection")
    print(" ".join(f"{h:>10}" for h in header))
    keys = ("requests", "wall_seconds", "requests_per_second", "latency_p50_s", "latency_p95_s")
    for row in rows:
        print(" ".join(f"{row[k]:>10}" for k in (*keys, "selection_share")))
    result = read_results(args.output)
    result["server"] = {
        "command": f"python benchmarks/load.py --backend server --levels {args.levels} "
        f"--max-new-tokens {args.max_new_tokens}",
        "model": "google/gemma-3-270m Q4_K_M GGUF on llama-cpp-python's server (one "
        "request decoded at a time), 2 threads; default store and selector in the client",
        "cpu_count": os.cpu_count(),
        "levels": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
