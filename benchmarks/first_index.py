"""How long the first `icalign chat` spends indexing the built-in pool (issue 11).

Side by side in one run, each in a fresh store folder: the built-in pool indexed from its
shipped vectors (what `default_store` does with the default embeddings), the same pool
embedded on this CPU (what happens with other embeddings), and the first built-in pool
(214 demos, v0.1) embedded, which is what the first chat cost before. Results:
benchmarks/results/first_index.json.

Run: .venv/bin/python benchmarks/first_index.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "first_index.json"
OLD_POOL = HERE / "pools" / "builtin_v0.1.jsonl"


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from langchain_icalign import DemoStore
    from langchain_icalign.defaults import default_embeddings, default_store
    from langchain_icalign.defaults.builtin_demos import builtin_pool, builtin_vectors
    from langchain_icalign.evaluation import load_pool
    from langchain_icalign.store import embedding_model_name

    embeddings = default_embeddings()
    embeddings.embed_query("warm-up")
    pool, old = builtin_pool(), load_pool(OLD_POOL)
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        tic = time.perf_counter()
        store = default_store(embeddings, Path(folder) / "shipped", show_progress=False)
        rows["built-in pool, shipped vectors (default_store)"] = (
            len(pool),
            time.perf_counter() - tic,
        )
        assert store.count() == len(pool)
        store.close()
        assert builtin_vectors(embedding_model_name(embeddings)) is not None
        for label, demos in (
            ("built-in pool, embedded on this CPU", pool),
            ("first built-in pool (v0.1), embedded on this CPU", old),
        ):
            tic = time.perf_counter()
            with DemoStore(embeddings, path=Path(folder) / label[:8]) as fresh:
                fresh.add_demos(demos)
            rows[label] = (len(demos), time.perf_counter() - tic)
    print(f"{'indexing':<52} {'demos':>6} {'seconds':>8}")
    for label, (count, seconds) in rows.items():
        print(f"{label:<52} {count:>6} {seconds:>8.1f}")
    payload = {
        "benchmark": "first_index",
        "rows": {k: {"demos": n, "seconds": round(s, 2)} for k, (n, s) in rows.items()},
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"load average {os.getloadavg()[0]:.1f}; wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
