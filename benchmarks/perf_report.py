"""The table of benchmarks/results/perf.json, for the terminal and benchmarks/README.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def _load(value: Any) -> str:
    return f"{value[0]:.1f}" if isinstance(value, (list, tuple)) and value else "?"


def _selection_rows(data: dict[str, Any], answer_s: float | None) -> list[list[str]]:
    rows: list[list[str]] = []
    if not data or "skipped" in data:
        reason = data.get("skipped", "not run") if data else "not run"
        return [["selection", f"skipped: {reason}", "", "", ""]]
    embed = data["query_embedding"]
    rows.append(
        [
            "query embedding (all-MiniLM-L6-v2, LIMA test prompts)",
            f"{embed['p50_ms']:.1f} ms p50, {embed['p95_ms']:.1f} ms p95",
            "",
            "—",
            _load(embed["load"]),
        ]
    )
    targets = {10_000: 5.0, 100_000: 25.0}
    for pool in data["pools"]:
        n = pool["demos"]
        ours, lc = pool["ours"], pool["langchain_han"]
        target = targets.get(n)
        total = ours["selection_without_embedding"]
        rows.append(
            [
                f"{n:,} demos: selection without query embedding (search + dedup + pack)",
                f"{total['p50_ms']:.2f} ms p50, {total['p95_ms']:.2f} ms p95",
                f"≤ {target:g} ms p50" if target else "",
                _met(total["p50_ms"] <= target) if target else "—",
                _load(pool["load_end"]),
            ]
        )
        rows.append(
            [
                f"{n:,} demos: vector search k=20, exact matrix search / Qdrant local mode",
                f"{ours['search']['p50_ms']:.2f} / "
                f"{ours['search_qdrant_local_before']['p50_ms']:.2f} ms p50 "
                f"({pool['search_speedup_fast_vs_qdrant_local']}x; same ids: "
                f"{'yes' if ours['fast_search_same_ids_as_qdrant'] else 'no'})",
                "",
                "—",
                _load(pool["load_end"]),
            ]
        )
        rows.append(
            [
                f"{n:,} demos: dedup / pack cached / pack first sight",
                f"{ours['dedup']['p50_ms']:.2f} / {ours['pack_cached']['p50_ms']:.3f} / "
                f"{ours['pack_cold']['p50_ms']:.2f} ms p50",
                "",
                "—",
                _load(pool["load_end"]),
            ]
        )
        rows.append(
            [
                f"{n:,} demos: LangChain SemanticSimilarityExampleSelector + QdrantVectorStore, "
                "then Han packing (tokenise per query)",
                f"{lc['selection_without_embedding']['p50_ms']:.2f} ms p50 (search "
                f"{lc['search']['p50_ms']:.2f}, "
                f"pack {lc['pack_tokenise_per_query']['p50_ms']:.2f})",
                "",
                "—",
                _load(pool["load_end"]),
            ]
        )
        speedup = pool["pack_speedup_cached_vs_han"]
        rows.append(
            [
                f"{n:,} demos: packing, cached token counts vs tokenising per query",
                f"{speedup}x faster",
                "≥ 10x",
                _met(speedup >= 10),
                _load(pool["load_end"]),
            ]
        )
        if answer_s:
            whole = (embed["p50_ms"] + total["p50_ms"]) / 1000
            share = 100 * whole / answer_s
            rows.append(
                [
                    f"{n:,} demos: whole selection (with query embedding) / end-to-end answer",
                    f"{share:.2f}% ({whole * 1000:.0f} ms of {answer_s:.1f} s)",
                    "≤ 2%",
                    _met(share <= 2),
                    _load(pool["load_end"]),
                ]
            )
    return rows


def _generation_rows(data: dict[str, Any]) -> list[list[str]]:
    if not data:
        return [["generation", "not run", "", "", ""]]
    stop = data["stop_handling"]
    share = stop["share_of_decode_pct"]
    e2e = data["end_to_end"]
    return [
        [
            "stop handling, ours (StopOnStrings), share of decode time "
            f"({data['new_tokens']} tokens, {data['prompt_tokens']}-token prompt)",
            f"{share['ours']:.2f}% ({stop['criterion_s']['ours'] * 1000:.1f} ms of "
            f"{stop['decode_s_no_criteria']:.1f} s)",
            "≤ 2%",
            _met(share["ours"] <= 2),
            _load(stop["load"]),
        ],
        [
            "stop handling, transformers' stop_strings (set-up + checks), share of decode time",
            f"{share['transformers']:.2f}% (set-up {stop['transformers_setup_s']['first']:.2f} s "
            f"first, {stop['transformers_setup_s']['again']:.2f} s again)",
            "(reference)",
            "—",
            _load(stop["load"]),
        ],
        *(
            [
                [
                    "decode step: prefix cache's cache (sliding layers recording) / full "
                    "layers, vs the default sliding-window cache "
                    f"({data['cache_decode_cost']['context_tokens']}-token context)",
                    f"{data['cache_decode_cost']['prefix_cache_vs_default_pct']:+.1f}% / "
                    f"{data['cache_decode_cost']['full_layers_vs_default_pct']:+.1f}% "
                    f"(ms/step: {data['cache_decode_cost']['ms_per_step']})",
                    "",
                    "—",
                    _load(data["cache_decode_cost"]["load"]),
                ]
            ]
            if "cache_decode_cost" in data
            else []
        ),
        [
            "decode wall: none / ours / transformers' stop_strings",
            f"{stop['wall_s']['none']:.2f} / {stop['wall_s']['ours']:.2f} / "
            f"{stop['wall_s']['transformers']:.2f} s ({stop['decode_ms_per_token']:.0f} ms/token)",
            "",
            "—",
            _load(stop["load"]),
        ],
        [
            "ChatICAlign.invoke: its own work (selection, rendering, counting, stop checks) "
            "against the model's generate inside the same call",
            f"+{e2e['overhead_in_run_pct']:.2f}% (each: "
            f"{', '.join(f'{o:+.2f}%' for o in e2e['own_work_pct_each'])} + stop checks)",
            "≤ 5%",
            _met(e2e["overhead_in_run_pct"] <= 5),
            _load(e2e["load"]),
        ],
        [
            "ChatICAlign.invoke vs a separate model.generate call on the same packed prompt "
            "(wall clock, back to back)",
            f"{e2e['overhead_pct_median']:+.1f}% median (each: "
            f"{', '.join(f'{o:+.1f}%' for o in e2e['overhead_pct_each'])}); same answer: "
            f"{'yes' if all(e2e['same_answer']) else 'no'}",
            "≤ 5%",
            _met(e2e["overhead_pct_median"] <= 5),
            _load(e2e["load"]),
        ],
        [
            "selection share of the answer, default store (214 demos)",
            f"{e2e['selection_share_pct']:.2f}% of {e2e['answer_wall_s_median']:.1f} s",
            "≤ 2%",
            _met(e2e["selection_share_pct"] <= 2),
            _load(e2e["load"]),
        ],
    ]


def _prefix_rows(data: dict[str, Any]) -> list[list[str]]:
    if not data:
        return [["prefix reuse", "not run", "", "", ""]]
    rows = []
    for name, scenarios in data["formats"].items():
        for label, row in scenarios.items():
            if "prefill_plain_s" not in row:
                continue
            rows.append(
                [
                    f"prefix KV reuse, {name}: {label}",
                    f"prefill {row['prefill_plain_s']:.2f} → {row['prefill_cached_s']:.2f} s "
                    f"({-row['prefill_saved_pct']:+.0f}%; {row['reused_tokens']}/"
                    f"{row['prompt_tokens']} tokens reused); same greedy answer: "
                    f"{'yes' if row['same_greedy_answer'] else 'no'}",
                    "",
                    "—",
                    _load(row["load"]),
                ]
            )
    return rows


def _batching_rows(data: dict[str, Any]) -> list[list[str]]:
    if not data:
        return [["batching", "not run", "", "", ""]]
    return [
        [
            f"batch of {data['queries']} ({data['new_tokens']} new tokens, "
            f"{data['demo_budget_tokens']}-token demo budget) vs one at a time",
            f"{data['batch_s']:.1f} s vs {data['one_at_a_time_s']:.1f} s ({data['speedup']}x; "
            f"{data['tokens_per_s']['batch']:.1f} vs {data['tokens_per_s']['one_at_a_time']:.1f} "
            f"tokens/s); same answers: {'yes' if data['same_answers'] else 'no'}",
            "",
            "—",
            _load(data["load_end"]),
        ],
        [
            f"query embedding of {data['queries']} queries, batched vs one by one",
            f"{data['query_embedding_s']['batched']:.2f} s vs "
            f"{data['query_embedding_s']['one_by_one']:.2f} s",
            "",
            "—",
            _load(data["load_start"]),
        ],
    ]


def _llamacpp_rows(data: dict[str, Any]) -> list[list[str]]:
    if not data or "skipped" in data:
        reason = data.get("skipped", "not run") if data else "not run"
        return [["llama.cpp backend (GGUF Q4_K_M) vs transformers fp32", reason, "", "—", ""]]
    hf, cpp = data["transformers"], data["llamacpp"]
    return [
        [
            f"llama.cpp backend (Gemma Q4_K_M GGUF) vs transformers fp32, "
            f"{data['prompt_tokens']}-token prompt, greedy",
            f"decode {cpp['decode_ms_per_token']:.0f} vs {hf['decode_ms_per_token']:.0f} ms/token "
            f"({data['decode_speedup']}x); prefill {cpp['prefill_s']:.2f} vs "
            f"{hf['prefill_s']:.2f} s ({data['prefill_speedup']}x)",
            "~7x decode (issue)",
            _met(data["decode_speedup"] >= 7),
            _load(data["load"]),
        ]
    ]


def render(results: dict[str, Any]) -> str:
    """A Markdown table: every figure beside its target, with the 1-minute load average."""
    answer_s = (results.get("generation") or {}).get("end_to_end", {}).get("answer_wall_s_median")
    rows = [
        *_selection_rows(results.get("selection") or {}, answer_s),
        *_generation_rows(results.get("generation") or {}),
        *_prefix_rows(results.get("prefix") or {}),
        *_batching_rows(results.get("batching") or {}),
        *_llamacpp_rows(results.get("llamacpp") or {}),
    ]
    lines = [
        "| measure | result | target | met | load |",
        "| --- | --- | --- | --- | ---: |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(lines)


def write_readme(path: Path, table: str, start: str, end: str) -> None:
    """Replace the table between the markers in the README (added at the end if absent)."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{table}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Performance (`benchmarks/perf.py`)\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
