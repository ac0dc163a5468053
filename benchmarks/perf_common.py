"""Shared pieces of the performance benchmarks: pools, cached embeddings, timing helpers.

The pool is every unique demo of ../shared/data/pools, then unique variants of them (a
lead-in and a number added to the prompt). The real all-MiniLM-L6-v2 embedding of every
pool demo's prompt and of every query is computed once and cached (see `CACHE`); a
variant's vector is its demo's vector plus seeded Gaussian noise (cosine about 0.85 to
it), so that a 100k pool needs 6.4k real embeddings, not 100k (about two hours on two
busy cores). Search cost does not depend on what the vectors hold.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
POOLS = SHARED / "pools"
QUERIES = SHARED / "eval" / "lima_test_prompts.jsonl"
CACHE = Path(os.environ.get("ICALIGN_PERF_CACHE", "/tmp/icalign-perf-cache"))

LEADS = (
    "",
    "Quick question: ",
    "Please help me with this. ",
    "I was wondering: ",
    "Could you answer this? ",
    "Help needed: ",
    "Hi! ",
    "One more thing. ",
)
VARIANT_COSINE = 0.85


def shared_available() -> bool:
    """Whether ../shared/data (pools and queries) is beside the checkout."""
    return POOLS.is_dir() and QUERIES.is_file()


def load() -> tuple[float, float, float]:
    """The load average now (1, 5, 15 minutes), rounded."""
    one, five, fifteen = os.getloadavg()
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def base_demos() -> list[Any]:
    """Every unique demo (prompt and response present) of ../shared/data/pools."""
    from langchain_icalign import AlignmentDemo

    seen: set[str] = set()
    demos = []
    for pool in sorted(POOLS.glob("*.jsonl")):
        for line in pool.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            prompt, response = record.get("prompt"), record.get("response")
            if not prompt or not response or not str(prompt).strip() or not str(response).strip():
                continue
            demo = AlignmentDemo(prompt=prompt, response=response, metadata={"pool": pool.stem})
            if demo.id not in seen:
                seen.add(demo.id)
                demos.append(demo)
    return demos


def queries(n: int) -> list[str]:
    """The first n LIMA test prompts (the paper's evaluation set)."""
    lines = QUERIES.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["prompt"] for line in lines if line.strip()][:n]


def _digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def cached_embeddings(
    texts: Sequence[str], embed: Callable[[list[str]], list[list[float]]], name: str
) -> np.ndarray:
    """Embeddings of `texts`, computed once and kept in `CACHE` (float32, one row a text)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{name}-{_digest(texts)}.npy"
    if path.exists():
        return np.load(path)
    vectors = []
    for start in range(0, len(texts), 256):
        vectors.extend(embed(list(texts[start : start + 256])))
        print(f"  embedded {min(start + 256, len(texts))}/{len(texts)} ({name})", flush=True)
    array = np.asarray(vectors, dtype=np.float32)
    np.save(path, array)
    return array


def variant_prompt(prompt: str, round_: int) -> str:
    """The prompt of a demo's `round_`-th unique variant (round 0 is the demo itself)."""
    return f"{LEADS[round_ % len(LEADS)]}{prompt} (#{round_})" if round_ else prompt


def build_pool(
    n: int, base: Sequence[Any], base_vectors: np.ndarray
) -> tuple[list[Any], np.ndarray]:
    """n demos and their vectors: the base demos, then variants with noisy vectors."""
    from langchain_icalign import AlignmentDemo

    rng = np.random.default_rng(n)
    size = base_vectors.shape[1]
    # |noise| = r with cos = 1 / sqrt(1 + r^2): per-dimension sigma = r / sqrt(size).
    sigma = (1 / VARIANT_COSINE**2 - 1) ** 0.5 / size**0.5
    demos = []
    vectors = np.empty((n, size), dtype=np.float32)
    for index in range(n):
        i, round_ = index % len(base), index // len(base)
        demo = base[i]
        if round_:
            demo = AlignmentDemo(
                prompt=variant_prompt(demo.prompt, round_),
                response=demo.response,
                metadata=dict(demo.metadata),
            )
            vector = base_vectors[i] + rng.normal(0, sigma, size).astype(np.float32)
        else:
            vector = base_vectors[i]
        vectors[index] = vector / np.linalg.norm(vector)
        demos.append(demo)
    return demos, vectors


class LookupEmbeddings(Embeddings):
    """Embeddings that answer from a table of precomputed vectors (text -> vector).

    Named like the real model, so a `DemoStore` records the real embedding model. Unknown
    texts fall back to the real embeddings (the probe a store embeds on opening).
    """

    def __init__(self, table: dict[str, np.ndarray], real: Any, model_name: str) -> None:
        self.table = table
        self.real = real
        self.model_name = model_name

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        vector = self.table.get(text)
        if vector is None:
            return list(self.real.embed_query(text))
        return vector.tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return self.embed_query(text)


def percentiles(values_s: Sequence[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds."""
    ordered = sorted(values_s)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(p95 * 1000, 3),
    }


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    """function() and the seconds it took."""
    started = time.perf_counter()
    value = function()
    return value, time.perf_counter() - started
