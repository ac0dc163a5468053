"""Selection benchmark: per-query latency at pools of 1k, 10k and 100k demos.

Ours: `AlignmentExampleSelector` over `DemoStore` (Qdrant local mode, in memory), split
into query embedding, vector search (k=20), near-duplicate removal and packing with
cached token counts; the search both through Qdrant's own local search ("before") and
through the store's exact matrix search ("after", the default).

Side by side, as users assemble it from LangChain parts: `SemanticSimilarityExampleSelector`
over `QdrantVectorStore` (k=20), then Han's packing as his code does it, tokenising every
candidate for every query.

Query vectors are precomputed (real all-MiniLM-L6-v2) so that search is timed alone; the
query embedding is timed on its own with the real model.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import numpy as np
import perf_common as pc

K = 20
BUDGET = 3000  # Han's demo budget (tokens)
MAX_DEMO_TOKENS = 500


def han_pack(candidates: list[dict[str, Any]], tokenizer: Any, fmt: Any) -> list[dict[str, Any]]:
    """Han (2023)'s packing as his code does it: tokenise every candidate, every query."""
    from langchain_icalign import AlignmentDemo

    kept, total = [], 0
    for example in candidates:
        demo = AlignmentDemo(prompt=example["input"], response=example["output"])
        tokens = len(tokenizer(fmt.render_demo(demo) + fmt.separator)["input_ids"])
        if tokens > MAX_DEMO_TOKENS:
            continue
        if total + tokens > BUDGET:
            break
        kept.append(example)
        total += tokens
    kept.reverse()
    return kept


def _tokenizer() -> Any:
    from transformers import AutoTokenizer

    from langchain_icalign.defaults.model_cache import ensure_default_model

    return AutoTokenizer.from_pretrained(ensure_default_model(show_progress=False))


def time_query_embedding(real_embeddings: Any, queries: list[str], n: int = 30) -> dict[str, Any]:
    real_embeddings.embed_query("warm up")
    times = [pc.timed(lambda q=q: real_embeddings.embed_query(q))[1] for q in queries[:n]]
    return {**pc.percentiles(times), "queries": len(times), "load": pc.load()}


def _our_store(demos: list[Any], embeddings: Any) -> Any:
    from langchain_icalign import DemoStore

    store = DemoStore(embeddings, location=":memory:", collection_name=f"ours_{len(demos)}")
    store.add_demos(demos, batch_size=2048)
    return store


def _langchain_selector(demos: list[Any], embeddings: Any) -> Any:
    from langchain_core.example_selectors import SemanticSimilarityExampleSelector
    from langchain_qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient, models

    client = QdrantClient(location=":memory:")
    name = f"langchain_{len(demos)}"
    size = len(embeddings.embed_query(demos[0].prompt))
    client.create_collection(
        name, vectors_config=models.VectorParams(size=size, distance=models.Distance.COSINE)
    )
    vectorstore = QdrantVectorStore(client=client, collection_name=name, embedding=embeddings)
    vectorstore.add_texts(
        [d.prompt for d in demos],
        metadatas=[{"input": d.prompt, "output": d.response} for d in demos],
        batch_size=2048,
    )
    return SemanticSimilarityExampleSelector(vectorstore=vectorstore, k=K, input_keys=["input"])


def run_pool(
    n: int,
    base: list[Any],
    base_vectors: np.ndarray,
    queries: list[str],
    query_vectors: np.ndarray,
    real_embeddings: Any,
    tokenizer: Any,
) -> dict[str, Any]:
    import langchain_icalign.store.search as store_module
    from langchain_icalign import AlignmentExampleSelector
    from langchain_icalign.selector import _drop_near_duplicates
    from langchain_icalign.store.schema import demo_from_payload

    demos, vectors = pc.build_pool(n, base, base_vectors)
    table = {d.prompt: v for d, v in zip(demos, vectors, strict=True)}
    table.update({q: v for q, v in zip(queries, query_vectors, strict=True)})
    embeddings = pc.LookupEmbeddings(table, real_embeddings, "all-MiniLM-L6-v2")

    store, build_s = pc.timed(lambda: _our_store(demos, embeddings))
    selector = AlignmentExampleSelector(
        store=store, token_counter=tokenizer, max_k=K, max_tokens=BUDGET
    )
    fmt = selector.format
    row: dict[str, Any] = {"demos": n, "load_start": pc.load(), "build_store_s": round(build_s, 1)}

    # Ours, with Qdrant's own local search (what the store did before the fast path).
    fast_search = store_module.local_exact_search
    store_module.local_exact_search = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        selector.store.search_by_vector(query_vectors[0].tolist(), K)  # warm up
        before = [
            pc.timed(lambda v=v: store.search_by_vector(v.tolist(), K))[1] for v in query_vectors
        ]
    finally:
        store_module.local_exact_search = fast_search
    # Ours, as shipped.
    search_t, dedup_t, cold_t, warm_t, sizes = [], [], [], [], []
    found_all = []
    for vector in query_vectors:
        found, seconds = pc.timed(lambda v=vector: store.search_by_vector(v.tolist(), K))
        search_t.append(seconds)
        kept, seconds = pc.timed(lambda f=found: _drop_near_duplicates(f, 0.9))
        dedup_t.append(seconds)
        found_all.append(kept)
    for kept in found_all:  # first sight of these candidates: their costs are counted once
        _, seconds = pc.timed(lambda k=kept: selector.pack(k, BUDGET))
        cold_t.append(seconds)
    for kept in found_all:  # costs cached (a long-running app, or a warmed cache)
        packed, seconds = pc.timed(lambda k=kept: selector.pack(k, BUDGET))
        warm_t.append(seconds)
        sizes.append(len(packed))
    same_as_qdrant = all(
        [d.id for d, _ in store.search_by_vector(v.tolist(), K)]
        == [
            demo_from_payload(p.payload or {}).id
            for p in store.client.query_points(
                store.collection_name, query=v.tolist(), limit=K, with_payload=True
            ).points
        ]
        for v in query_vectors[:5]
    )
    total = [s + d + w for s, d, w in zip(search_t, dedup_t, warm_t, strict=True)]
    row["ours"] = {
        "search_qdrant_local_before": pc.percentiles(before),
        "search": pc.percentiles(search_t),
        "dedup": pc.percentiles(dedup_t),
        "pack_cold": pc.percentiles(cold_t),
        "pack_cached": pc.percentiles(warm_t),
        "selection_without_embedding": pc.percentiles(total),
        "demos_packed_median": float(np.median(sizes)),
        "fast_search_same_ids_as_qdrant": same_as_qdrant,
    }
    store.close()
    gc.collect()

    # LangChain's selector over QdrantVectorStore, then Han's packing.
    lc_selector, lc_build = pc.timed(lambda: _langchain_selector(demos, embeddings))
    lc_search, han_t = [], []
    lc_selector.select_examples({"input": queries[0]})  # warm up
    for query in queries:
        candidates, seconds = pc.timed(lambda q=query: lc_selector.select_examples({"input": q}))
        lc_search.append(seconds)
        _, seconds = pc.timed(lambda c=candidates: han_pack(c, tokenizer, fmt))
        han_t.append(seconds)
    row["langchain_han"] = {
        "build_store_s": round(lc_build, 1),
        "search": pc.percentiles(lc_search),
        "pack_tokenise_per_query": pc.percentiles(han_t),
        "selection_without_embedding": pc.percentiles(
            [a + b for a, b in zip(lc_search, han_t, strict=True)]
        ),
    }
    row["pack_speedup_cached_vs_han"] = round(
        row["langchain_han"]["pack_tokenise_per_query"]["p50_ms"]
        / max(row["ours"]["pack_cached"]["p50_ms"], 1e-6),
        1,
    )
    row["search_speedup_fast_vs_qdrant_local"] = round(
        row["ours"]["search_qdrant_local_before"]["p50_ms"]
        / max(row["ours"]["search"]["p50_ms"], 1e-6),
        1,
    )
    row["load_end"] = pc.load()
    gc.collect()
    return row


def run(sizes: list[int], n_queries: int = 100) -> dict[str, Any]:
    """The selection section of perf.json."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from langchain_icalign.defaults import default_embeddings

    real = default_embeddings()
    started = time.perf_counter()
    queries = pc.queries(n_queries)
    query_vectors = pc.cached_embeddings(queries, real.embed_documents, "queries")
    base = pc.base_demos()
    base_vectors = pc.cached_embeddings([d.prompt for d in base], real.embed_documents, "pool")
    tokenizer = _tokenizer()
    result: dict[str, Any] = {
        "k": K,
        "budget_tokens": BUDGET,
        "queries": len(queries),
        "pool_unique_demos": len(base),
        "query_embedding": time_query_embedding(real, queries),
        "pools": [],
    }
    for n in sizes:
        print(f"selection: {n} demos ...", flush=True)
        row = run_pool(n, base, base_vectors, queries, query_vectors, real, tokenizer)
        result["pools"].append(row)
        print(
            f"  ours {row['ours']['selection_without_embedding']['p50_ms']} ms p50 "
            f"(search {row['ours']['search']['p50_ms']} ms, Qdrant local "
            f"{row['ours']['search_qdrant_local_before']['p50_ms']} ms); LangChain+Han "
            f"{row['langchain_han']['selection_without_embedding']['p50_ms']} ms; load "
            f"{row['load_end']}",
            flush=True,
        )
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result
