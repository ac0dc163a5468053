"""Performance of selection, generation, prefix reuse and batching, beside the targets (issue 6).

One command runs every section, prints a table and writes benchmarks/results/perf.json
and the performance section of benchmarks/README.md:

    .venv/bin/python benchmarks/perf.py                        # all sections, 20-40 min
    .venv/bin/python benchmarks/perf.py --only selection       # one section (others kept)
    .venv/bin/python benchmarks/perf.py --sizes 1000 10000     # smaller pools
    .venv/bin/python benchmarks/perf.py --readme-only          # redraw the README table

Sections: selection (pools of 1k, 10k, 100k demos; needs ../shared), generation (stop
handling overhead, ChatICAlign against model.generate on the same packed prompt),
prefix (KV reuse on repeated and follow-up queries), batching (8 queries together
against one at a time). Every timing carries the load average when it was taken: the
machine is shared, so ratios measured within one run are the figures to trust.
The pool's embeddings are cached in $ICALIGN_PERF_CACHE (default /tmp/icalign-perf-cache).
Indexing figures are benchmarks/indexing.py's (results/indexing.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import perf_common as pc

RESULTS = pc.ROOT / "benchmarks" / "results" / "perf.json"
README = pc.ROOT / "benchmarks" / "README.md"
START, END = "<!-- perf:start -->", "<!-- perf:end -->"
SECTIONS = ("selection", "generation", "prefix", "batching", "llamacpp")


def _machine() -> dict[str, Any]:
    import torch

    return {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "note": "2 shared cores; other benchmarks and tests ran at the same time",
    }


def _load_results() -> dict[str, Any]:
    if RESULTS.exists():
        return json.loads(RESULTS.read_text(encoding="utf-8"))
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="sections to run")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=100, help="queries per pool size")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens per answer")
    parser.add_argument("--readme-only", action="store_true")
    args = parser.parse_args(argv)

    results = _load_results()
    if not args.readme_only:
        results["machine"] = _machine()
        for section in args.only or SECTIONS:
            print(f"== {section} (load {pc.load()})", flush=True)
            if section == "selection":
                if not pc.shared_available():
                    print(f"skipped: {pc.POOLS} or {pc.QUERIES} is missing (../shared)")
                    results["selection"] = {"skipped": "../shared/data is absent"}
                    continue
                import perf_selection

                results["selection"] = perf_selection.run(args.sizes, args.queries)
            elif section == "generation":
                import perf_generation

                results["generation"] = perf_generation.run(args.new_tokens)
            elif section == "prefix":
                import perf_generation

                results["prefix"] = perf_generation.run_prefix(min(args.new_tokens, 16))
            elif section == "batching":
                import perf_generation

                results["batching"] = perf_generation.run_batching(args.new_tokens)
            elif section == "llamacpp":
                import perf_generation

                results["llamacpp"] = perf_generation.run_llamacpp(args.new_tokens)
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        results["command"] = "python benchmarks/perf.py " + " ".join(argv or sys.argv[1:])
        RESULTS.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    import perf_report

    table = perf_report.render(results)
    print(table)
    perf_report.write_readme(README, table, START, END)
    print(f"wrote {RESULTS} and the performance section of {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
