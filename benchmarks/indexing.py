"""Indexing at scale: 100k demos into the embedded (local, on-disk) Qdrant store.

Builds N demos from ../shared/data/pools (every pool's demos, then unique variants of
them), writes them to a JSON Lines file, and measures, each phase in its own process so
that its peak RSS is its own:

- index: `icalign index FILE --store DIR` (read, check, embed with all-MiniLM-L6-v2, write)
- rerun: the same command again (idempotence: nothing is added)
- search: opening the 100k store, and searches on it (local mode is brute force)
- neardup: near-duplicate removal over the 100k stored vectors (numpy, batched)
- batch_vs_single: `add_demos` in batches vs one `add_example` call a demo, on a fresh store

Usage:
    .venv/bin/python benchmarks/indexing.py                  # 100k; takes about an hour
    .venv/bin/python benchmarks/indexing.py --n 2000         # a quick check
    .venv/bin/python benchmarks/indexing.py --readme-only    # redraw the README table

Results go to benchmarks/results/indexing.json and the indexing section of
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from perf_common import variant_prompt  # the same unique variants as benchmarks/perf.py

ROOT = Path(__file__).resolve().parent.parent
POOLS = ROOT.parent / "shared" / "data" / "pools"
RESULTS = ROOT / "benchmarks" / "results" / "indexing.json"
README = ROOT / "benchmarks" / "README.md"
START, END = "<!-- indexing:start -->", "<!-- indexing:end -->"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def build_file(n: int, path: Path) -> dict[str, Any]:
    """Write n demos: the pools' unique demos, then variants with a lead-in and a number."""
    from langchain_icalign.loaders import load_demos

    started = time.perf_counter()
    base = []
    seen: set[str] = set()
    for pool in sorted(POOLS.glob("*.jsonl")):
        for demo in load_demos(pool, skip_invalid=True).demos:
            if demo.id not in seen:
                seen.add(demo.id)
                base.append(demo)
    with path.open("w", encoding="utf-8") as out:
        for index in range(n):
            demo = base[index % len(base)]
            round_ = index // len(base)
            record = {"prompt": variant_prompt(demo.prompt, round_), "response": demo.response}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return {
        "pool_demos": len(base),
        "demos": n,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "seconds": round(time.perf_counter() - started, 2),
    }


def _store_count(store: Path) -> int:
    from langchain_icalign.defaults import default_embeddings
    from langchain_icalign.store import DemoStore

    if not store.exists():
        return 0
    with DemoStore(default_embeddings(), path=store) as demo_store:
        return demo_store.count()


def phase_index(file: Path, store: Path, batch_size: int, budget_s: int) -> dict[str, Any]:
    """Run `icalign index` in this process; time, peak RSS and qdrant's warnings.

    With a budget, the run is interrupted (as Ctrl-C would) when it runs out, and the
    result says how far it got: the store keeps every batch written, and a rerun resumes.
    """
    from langchain_icalign.cli import main

    before = _store_count(store)
    report = store.parent / f"report-{time.time_ns()}.json"

    def out_of_time(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, out_of_time)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        if budget_s:
            signal.alarm(budget_s)
        args = ["index", str(file), "--store", str(store), "--batch-size", str(batch_size)]
        status = main([*args, "--report", str(report)])
        signal.alarm(0)
        seconds = time.perf_counter() - started
    if report.exists():
        counts = json.loads(report.read_text())["counts"]
    else:  # interrupted: count what the store holds now
        after = _store_count(store)
        counts = {"added": after - before, "already_stored": before, "total_in_store": after}
        counts["read"] = counts["added"]
    return {
        "exit_status": status,
        "interrupted": not report.exists(),
        "seconds": round(seconds, 1),
        "demos_per_s": round(counts["read"] / seconds, 1),
        "added_per_s": round(counts["added"] / seconds, 1),
        "peak_rss_mb": round(_peak_rss_mb()),
        "counts": counts,
        "warnings": sorted({f"{w.category.__name__}: {w.message}"[:300] for w in caught}),
        "store_mb": round(sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 1e6),
    }


def export_stored(store: Path, file: Path) -> int:
    """Write the stored demos to a JSON Lines file (to rerun on exactly what is stored)."""
    from langchain_icalign.defaults import default_embeddings
    from langchain_icalign.store import DemoStore

    count = 0
    with DemoStore(default_embeddings(), path=store) as demo_store, file.open("w") as out:
        for demo in demo_store.iter_demos(batch_size=2048):
            out.write(json.dumps({"prompt": demo.prompt, "response": demo.response}) + "\n")
            count += 1
    return count


def phase_search(store: Path, queries: int = 20) -> dict[str, Any]:
    """Open the store and time searches on it."""
    from langchain_icalign.defaults import default_embeddings
    from langchain_icalign.store import DemoStore

    embeddings = default_embeddings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        demo_store = DemoStore(embeddings, path=store)
        open_s = time.perf_counter() - started
    with demo_store:
        count = demo_store.count()
        vector = demo_store.embed_query("How do I bake bread at home?")
        started = time.perf_counter()
        for _ in range(queries):
            demo_store.search_by_vector(vector, k=20)
        search_ms = (time.perf_counter() - started) / queries * 1000
    return {
        "points": count,
        "open_seconds": round(open_s, 1),
        "search_ms_k20": round(search_ms, 1),
        "peak_rss_mb": round(_peak_rss_mb()),
        "warnings": sorted({f"{w.category.__name__}: {w.message}"[:300] for w in caught}),
    }


def phase_neardup(store: Path, threshold: float) -> dict[str, Any]:
    """Near-duplicate removal over every stored vector."""
    from langchain_icalign.cleaning import drop_near_duplicates
    from langchain_icalign.defaults import default_embeddings
    from langchain_icalign.loaders import stored_vectors
    from langchain_icalign.store import DemoStore

    with DemoStore(default_embeddings(), path=store) as demo_store:
        started = time.perf_counter()
        vectors = stored_vectors(demo_store)
        read_s = time.perf_counter() - started
        demos = list(demo_store.iter_demos(batch_size=2048))
    rss_before = _rss_mb()
    started = time.perf_counter()
    # stored_vectors and iter_demos both scroll in storage order, so rows match demos.
    report = drop_near_duplicates(demos, threshold=threshold, vectors=vectors)
    seconds = time.perf_counter() - started
    return {
        "demos": len(demos),
        "threshold": threshold,
        "read_vectors_seconds": round(read_s, 1),
        "seconds": round(seconds, 1),
        "dropped": len(report.dropped),
        "rss_before_mb": round(rss_before),
        "peak_rss_mb": round(_peak_rss_mb()),
    }


def phase_batch_vs_single(
    file: Path, work: Path, batched: int, single: int, batch_size: int
) -> dict[str, Any]:
    """`add_demos` in batches vs `add_example` one by one, each on a fresh store.

    Both run on the same demos (the single run on the first `single` of the batched run's
    `batched`), after one warm-up embedding call, so neither gets shorter prompts or pays
    the first call's set-up.
    """
    from langchain_icalign.defaults import default_embeddings
    from langchain_icalign.loaders import load_demos
    from langchain_icalign.selector import AlignmentExampleSelector
    from langchain_icalign.store import DemoStore

    pool = load_demos(file, limit=20 * batched).demos
    demos = random.Random(0).sample(pool, batched)
    embeddings = default_embeddings()
    embeddings.embed_documents([d.prompt for d in pool[-64:]])  # warm-up, not timed
    with DemoStore(embeddings, path=work / "batched") as store:
        started = time.perf_counter()
        store.add_demos(demos, batch_size=batch_size)
        batched_s = time.perf_counter() - started
    with DemoStore(embeddings, path=work / "single") as store:
        selector = AlignmentExampleSelector(store=store, token_counter=lambda t: len(t.split()))
        started = time.perf_counter()
        for demo in demos[:single]:
            selector.add_example({"input": demo.prompt, "output": demo.response})
        single_s = time.perf_counter() - started
    batched_rate, single_rate = batched / batched_s, single / single_s
    return {
        "batched_n": batched,
        "batch_size": batch_size,
        "batched_seconds": round(batched_s, 1),
        "batched_per_s": round(batched_rate, 1),
        "single_n": single,
        "single_seconds": round(single_s, 1),
        "single_per_s": round(single_rate, 1),
        "speedup": round(batched_rate / single_rate, 2),
        "extrapolated_100k_batched_min": round(100_000 / batched_rate / 60, 1),
        "extrapolated_100k_single_min": round(100_000 / single_rate / 60, 1),
        "sample": f"{batched} demos drawn at random (seed 0) from the first {20 * batched}; "
        f"the single run adds the first {single} of them",
    }


def _child(phase: str, *args: str, log: Path) -> dict[str, Any]:
    """Run one phase in a fresh process (its stderr, progress bars included, goes to `log`)."""
    command = [sys.executable, __file__, "--phase", phase, *args]
    with log.open("a") as handle:
        handle.write(f"\n=== {phase} {time.ctime()}\n")
        handle.flush()
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=handle, check=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _machine() -> dict[str, Any]:
    import psutil
    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "note": "2 shared cores: other processes ran at the same time, so rates are pessimistic",
    }


def render_table(results: dict[str, Any]) -> str:
    """The README section's markdown, from the results JSON."""
    index, rerun = results["index"], results["rerun"]
    search, near, small = results["search"], results["neardup"], results["batch_vs_single"]
    n = results["build"]["demos"]
    stopped = index.get("interrupted", False)
    index_label = "index (read, check, embed, write)"
    if stopped:
        index_label += f", stopped at {index['counts']['total_in_store']:,} of {n:,}"
    warned = sorted(set(index["warnings"] + rerun["warnings"] + search["warnings"]))
    lines = [
        f"{n:,} demos ({results['build']['pool_demos']:,} from `../shared/data/pools`, the rest "
        "unique variants of them) indexed with `icalign index FILE --store DIR --batch-size "
        f"{results['batch_size']}` into the local on-disk Qdrant store, all-MiniLM-L6-v2 on CPU "
        f"({results['machine']['cores']} shared cores, {results['machine']['memory_gb']} GB). "
        "Each phase runs in its own process; peak RSS is that process's peak resident memory.",
        "",
        "| phase | demos | time | rate | peak RSS |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| {index_label} | {index['counts']['added']:,} added | "
        f"{index['seconds'] / 60:.1f} min | {index['demos_per_s']} demos/s | "
        f"{index['peak_rss_mb']:,} MB |",
        f"| rerun (idempotent) | {rerun['counts']['added']} added, "
        f"{rerun['counts']['already_stored']:,} already stored | {rerun['seconds']} s | "
        f"{rerun['demos_per_s']:,} demos/s | {rerun['peak_rss_mb']:,} MB |",
        f"| open store + search (k=20) | {search['points']:,} points | open "
        f"{search['open_seconds']} s, {search['search_ms_k20']} ms/search | | "
        f"{search['peak_rss_mb']:,} MB |",
        f"| near-duplicates (numpy, cos >= {near['threshold']}) | {near['demos']:,} | "
        f"{near['seconds']} s | {round(near['demos'] / max(near['seconds'], 1e-9)):,} demos/s | "
        f"{near['peak_rss_mb']:,} MB |",
        f"| `add_demos`, batches of {small.get('batch_size', 64)} | {small['batched_n']:,} | "
        f"{small['batched_seconds']} s |"
        f" {small['batched_per_s']} demos/s (100k: ~{small['extrapolated_100k_batched_min']} "
        "min) | |",
        f"| `add_example`, one by one | {small['single_n']} | {small['single_seconds']} s | "
        f"{small['single_per_s']} demos/s (100k: ~{small['extrapolated_100k_single_min']} "
        f"min; batched/single rate: {small['speedup']}x) | |",
        "",
        f"Store on disk: {index['store_mb']:,} MB. Qdrant's local mode warned: "
        + ("; ".join(f"`{w}`" for w in warned) or "nothing"),
        "",
        results.get("notes", ""),
    ]
    return "\n".join(lines).rstrip() + "\n"


def update_readme(results: dict[str, Any]) -> None:
    """Replace the indexing section of benchmarks/README.md, keeping every other section."""
    section = f"## Indexing\n\n{START}\n{render_table(results)}{END}\n\n"
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        head = head.rstrip()
        if head.endswith("## Indexing"):
            head = head[: -len("## Indexing")].rstrip()
        text = f"{head}\n\n{section}{tail.lstrip(chr(10))}".rstrip() + "\n"
        text = text if text.endswith("\n") else text + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    README.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batched", type=int, default=1000)
    parser.add_argument("--single", type=int, default=200)
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--readme-only", action="store_true")
    parser.add_argument(
        "--index-budget-min",
        type=float,
        default=0,
        help="interrupt indexing after this many minutes (0: none); the rest is then measured "
        "on what was stored",
    )
    parser.add_argument(
        "--adopt",
        type=Path,
        help="JSON of an index run measured outside this script (on --work's store); "
        "run the other phases only",
    )
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.phase:
        result = {
            "index": lambda: phase_index(
                args.file, args.store, args.batch_size, int(args.index_budget_min * 60)
            ),
            "export": lambda: {"exported": export_stored(args.store, args.file)},
            "search": lambda: phase_search(args.store),
            "neardup": lambda: phase_neardup(args.store, args.threshold),
            "batch_vs_single": lambda: phase_batch_vs_single(
                args.file, args.store, args.batched, args.single, args.batch_size
            ),
        }[args.phase]()
        print(json.dumps(result))
        return
    if args.readme_only:
        update_readme(json.loads(RESULTS.read_text()))
        return
    if not POOLS.is_dir():
        sys.exit(f"skipped: {POOLS} is absent (the benchmark builds its demos from it)")
    work = args.work or Path(tempfile.mkdtemp(prefix="icalign-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    file, store, log = work / "demos.jsonl", work / "store", work / "phases.log"
    results: dict[str, Any] = {"machine": _machine(), "batch_size": args.batch_size}
    common = ["--file", str(file), "--store", str(store), "--batch-size", str(args.batch_size)]
    if args.adopt:
        adopted = json.loads(args.adopt.read_text())
        results["build"], results["index"] = adopted["build"], adopted["index"]
    else:
        results["build"] = build_file(args.n, file)
        print("built", results["build"], flush=True)
        budget = ["--index-budget-min", str(args.index_budget_min)]
        results["index"] = _child("index", *common, *budget, log=log)
        print("index", results["index"], flush=True)
    rerun_file = file
    if results["index"].get("interrupted"):
        # Rerun on exactly the stored demos: idempotence at the size that was reached.
        rerun_file = work / "stored.jsonl"
        _child("export", "--file", str(rerun_file), "--store", str(store), log=log)
    rerun = ["--file", str(rerun_file), "--store", str(store), "--batch-size", str(args.batch_size)]
    results["rerun"] = _child("index", *rerun, log=log)
    print("rerun", results["rerun"], flush=True)
    results["search"] = _child("search", *common, log=log)
    print("search", results["search"], flush=True)
    results["neardup"] = _child("neardup", *common, "--threshold", str(args.threshold), log=log)
    print("neardup", results["neardup"], flush=True)
    small = ["--file", str(file), "--store", str(work / "small")]
    small += ["--batched", str(args.batched), "--single", str(args.single)]
    small += ["--batch-size", str(args.batch_size)]
    results["batch_vs_single"] = _child("batch_vs_single", *small, log=log)
    print("batch_vs_single", results["batch_vs_single"], flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    update_readme(results)
    print(f"results in {RESULTS} and {README}")


if __name__ == "__main__":
    main()
