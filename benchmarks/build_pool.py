"""Build the built-in pool from the team's written candidates (issue 11).

Stages (each writes what the next reads; all counts go to benchmarks/results/pool_build.json):

1. clean: read every `benchmarks/pool_candidates/*.jsonl` (validated; a bad record stops the
   build naming its file and line), drop exact and near-duplicate prompts inside the pool
   (all-MiniLM-L6-v2 cosine >= 0.9, the later one goes), and decontaminate against every
   prompt in `../shared/data/eval/` and `../shared/data/pools/` (exact after normalisation,
   and near duplicates at cosine >= 0.9). Writes the clean candidates to the cache.
2. curate: `curate_pool` on the dev half of the LIMA test prompts (benchmarks/splits), with
   the ChatGPT answers as references, in the default format and budget; writes the kept
   demos to `langchain_icalign/data/pool/builtin.jsonl` and the report to
   benchmarks/results/curation.json.
3. vectors: embed the shipped pool's prompts with all-MiniLM-L6-v2 and write
   `langchain_icalign/data/pool_vectors.npy` (float16) and its manifest.

Run: .venv/bin/python benchmarks/build_pool.py clean|curate|vectors|all [--threads 2]
The test half of the split is never read here.
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
ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "data"
CANDIDATES = HERE / "pool_candidates"
SPLIT = HERE / "splits" / "lima_test_split.json"
RESULTS = HERE / "results"
PACKAGE_DATA = ROOT / "langchain_icalign" / "data"
NEAR = 0.9


def cache_dir() -> Path:
    from langchain_icalign.defaults.model_cache import icalign_home

    folder = icalign_home() / "pool-build"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def read_report() -> dict[str, Any]:
    path = RESULTS / "pool_build.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def unit_rows(vectors: Any) -> Any:
    import numpy as np

    matrix = np.asarray(vectors, dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def clean() -> None:
    from langchain_icalign.curation.cli import write_pool
    from langchain_icalign.defaults import default_embeddings
    from langchain_icalign.evaluation import decontaminate, normalize_prompt, read_jsonl
    from langchain_icalign.loaders import load_demos

    files = sorted(CANDIDATES.glob("*.jsonl"))
    demos = []
    written: dict[str, int] = {}
    for file in files:
        loaded = load_demos(file, format="prompt_response").demos
        for demo in loaded:
            demo.metadata.setdefault("author_file", file.stem)
        written[file.name] = len(loaded)
        demos.extend(loaded)
    print(f"read {len(demos)} candidates from {len(files)} files")
    embeddings = default_embeddings()

    # Inside the pool: exact duplicates, then near duplicates (the later demo goes).
    seen: set[str] = set()
    unique = []
    exact_inside = 0
    for demo in demos:
        key = normalize_prompt(demo.prompt)
        if key in seen:
            exact_inside += 1
            continue
        seen.add(key)
        unique.append(demo)
    vectors = unit_rows(embeddings.embed_documents([d.prompt for d in unique]))
    similarity = vectors @ vectors.T
    dropped: set[int] = set()
    near_pairs = []
    for i in range(len(unique)):
        if i in dropped:
            continue
        for j in range(i + 1, len(unique)):
            if j not in dropped and similarity[i, j] >= NEAR:
                dropped.add(j)
                near_pairs.append(
                    {
                        "kept": unique[i].prompt[:120],
                        "dropped": unique[j].prompt[:120],
                        "cosine": round(float(similarity[i, j]), 4),
                    }
                )
    inside = [demo for index, demo in enumerate(unique) if index not in dropped]
    print(f"inside the pool: {exact_inside} exact and {len(dropped)} near duplicates removed")

    # Against every prompt of the shared evaluation sets and third-party pools.
    eval_prompts: list[str] = []
    sources: dict[str, int] = {}
    for folder in ("eval", "pools"):
        for file in sorted((DATA / folder).glob("*.jsonl")):
            prompts = [r["prompt"] for _, r in read_jsonl(file) if isinstance(r.get("prompt"), str)]
            sources[f"{folder}/{file.name}"] = len(prompts)
            eval_prompts.extend(prompts)
    unique_eval = list(dict.fromkeys(eval_prompts))
    report = decontaminate(inside, unique_eval, embeddings=embeddings, threshold=NEAR)
    kept = list(report.kept)
    print(
        f"against {len(unique_eval)} third-party prompts: {report.exact} exact and "
        f"{report.near} near duplicates removed; {len(kept)} candidates left"
    )
    write_pool(kept, cache_dir() / "clean.jsonl")
    build = read_report()
    build["clean"] = {
        "candidate_files": written,
        "candidates": len(demos),
        "inside_exact_duplicates": exact_inside,
        "inside_near_duplicates": len(dropped),
        "inside_near_examples": near_pairs[:20],
        "third_party_prompts": sources,
        "third_party_unique_prompts": len(unique_eval),
        "decontaminated_exact": report.exact,
        "decontaminated_near": report.near,
        "decontaminated_examples": [
            {
                "demo": next(d.prompt for d in inside if d.id == m.demo_id)[:120],
                "third_party": unique_eval[m.eval_index][:120],
                "kind": m.kind,
                "cosine": round(m.score, 4),
            }
            for m in report.removed[:20]
        ],
        "near_threshold": NEAR,
        "clean": len(kept),
        "clean_single_turn": sum(not d.turns for d in kept),
        "clean_multi_turn": sum(bool(d.turns) for d in kept),
    }
    write_json(RESULTS / "pool_build.json", build)


def dev_items() -> list[Any]:
    from langchain_icalign.evaluation import load_eval_items

    dev = set(json.loads(SPLIT.read_text(encoding="utf-8"))["dev"])
    items = load_eval_items(DATA / "eval" / "lima_test_chatgpt.jsonl", require_reference=True)
    return [item for item in items if item.id in dev]


def curate(args: argparse.Namespace) -> None:
    from langchain_icalign.curation import curate_pool
    from langchain_icalign.curation.cli import write_pool
    from langchain_icalign.defaults import DEFAULT_SETTINGS, default_embeddings, load_base_model
    from langchain_icalign.evaluation import ResultLog
    from langchain_icalign.formats import get_prompt_format
    from langchain_icalign.loaders import load_demos

    pool = load_demos(cache_dir() / "clean.jsonl", format="prompt_response").demos
    items = dev_items()
    model, tokenizer, name = load_base_model(None, show_progress=False)
    # A demo over the default cap is never selected under the defaults: leave it out.
    fmt = get_prompt_format(DEFAULT_SETTINGS.prompt_format)
    cap = DEFAULT_SETTINGS.max_demo_tokens
    cost = {
        d.id: len(tokenizer.encode(fmt.render_demo(d) + fmt.separator, add_special_tokens=False))
        for d in pool
    }
    over_cap = [d for d in pool if cost[d.id] > cap]
    pool = [d for d in pool if cost[d.id] <= cap]
    print(f"{len(over_cap)} demos over the {cap}-token cap left out; {len(pool)} to curate")
    settings = {
        "model": name,
        "format": DEFAULT_SETTINGS.prompt_format,
        "max_reference_tokens": args.max_reference_tokens,
    }
    log = ResultLog(cache_dir() / "scores.jsonl", ("item_id", "demo_id"), config=settings)
    tic = time.perf_counter()
    report = curate_pool(
        pool,
        items,
        model=model,
        tokenizer=tokenizer,
        embeddings=default_embeddings(),
        prompt_format=DEFAULT_SETTINGS.prompt_format,
        budget=DEFAULT_SETTINGS.demo_tokens,
        max_demo_tokens=DEFAULT_SETTINGS.max_demo_tokens,
        max_k=DEFAULT_SETTINGS.max_k,
        candidates=args.candidates,
        max_reference_tokens=args.max_reference_tokens,
        min_gain=args.min_gain,
        keep_min=args.keep_min,
        log=log,
    )
    elapsed = time.perf_counter() - tic
    for demo in report.kept:
        demo.metadata.pop("author_file", None)
    for old in (PACKAGE_DATA / "pool").glob("*.jsonl"):
        old.unlink()
    write_pool(report.kept, PACKAGE_DATA / "pool" / "builtin.jsonl")
    summary = report.to_dict()
    summary["settings"]["model"] = name
    summary["seconds"] = round(elapsed, 1)
    summary["dev_split"] = str(SPLIT.relative_to(ROOT))
    write_json(RESULTS / "curation.json", summary)
    build = read_report()
    build["curate"] = {
        "over_default_cap": len(over_cap),
        "given": len(pool),
        "kept": len(report.kept),
        "kept_single_turn": sum(not d.turns for d in report.kept),
        "kept_multi_turn": sum(bool(d.turns) for d in report.kept),
        "removed": len(report.removed),
        "harmful_on_average": len(report.harmful),
        "scored": len(report.effects),
        "proxy_before": round(report.selection.objective_before, 5),
        "proxy_after": round(report.selection.objective_after, 5),
        "seconds": round(elapsed, 1),
    }
    write_json(RESULTS / "pool_build.json", build)
    print(json.dumps(build["curate"], indent=2))


def vectors() -> None:
    import numpy as np

    from langchain_icalign.defaults import default_embeddings
    from langchain_icalign.defaults.builtin_demos import (
        VECTORS_FILE,
        VECTORS_MANIFEST,
        builtin_pool,
        builtin_pool_version,
    )
    from langchain_icalign.store import embedding_model_name

    builtin_pool.cache_clear()
    builtin_pool_version.cache_clear()
    pool = builtin_pool()
    embeddings = default_embeddings()
    matrix = np.asarray(embeddings.embed_documents([d.prompt for d in pool]), dtype=np.float16)
    with (PACKAGE_DATA / VECTORS_FILE).open("wb") as handle:
        np.save(handle, matrix, allow_pickle=False)
    manifest = {
        "embedding_model": embedding_model_name(embeddings),
        "pool_version": builtin_pool_version(),
        "text": "prompt",
        "dtype": "float16",
        "ids": [d.id for d in pool],
    }
    write_json(PACKAGE_DATA / VECTORS_MANIFEST, manifest)
    print(f"wrote {len(pool)} vectors for pool {manifest['pool_version']}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stage", choices=("clean", "curate", "vectors", "all"))
    parser.add_argument("--candidates", type=int, default=5, help="candidates scored a prompt")
    parser.add_argument("--max-reference-tokens", type=int, default=128)
    parser.add_argument("--min-gain", type=float, default=0.0)
    parser.add_argument("--keep-min", type=int, default=1600)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args()
    if not (DATA / "eval" / "lima_test_chatgpt.jsonl").is_file():
        print(f"the shared data ({DATA}) is absent; see ../shared/data/README.md")
        return 1
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.stage in ("clean", "all"):
        clean()
    if args.stage in ("curate", "all"):
        curate(args)
    if args.stage in ("vectors", "all"):
        vectors()
    return 0


if __name__ == "__main__":
    sys.exit(main())
