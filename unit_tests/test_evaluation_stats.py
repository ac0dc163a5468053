"""Clustered bootstrap intervals, style statistics, decontamination, the results log."""

from __future__ import annotations

import json

import numpy as np
import pytest

from langchain_icalign import AlignmentDemo
from langchain_icalign.evaluation import (
    EvalItem,
    ResultLog,
    ResultLogConfigError,
    answer_style,
    clustered_bootstrap_mean,
    decontaminate,
    load_eval_items,
    load_pool,
    normalize_prompt,
    sample_items,
    style_stats,
    summarize_nll,
    summarize_styles,
)

# -- bootstrap ------------------------------------------------------------------------------


def test_bootstrap_estimate_is_the_mean_and_the_interval_covers_it():
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    ci = clustered_bootstrap_mean(values, resamples=500, seed=1)
    assert ci.estimate == pytest.approx(4.0)
    assert ci.low < 4.0 < ci.high
    assert (ci.n, ci.clusters, ci.resamples, ci.confidence) == (5, 5, 500, 0.95)
    assert clustered_bootstrap_mean(values, resamples=500, seed=1) == ci  # seeded


def test_bootstrap_matches_a_hand_written_percentile_bootstrap():
    values = np.array([0.2, 0.9, 0.4, 0.7, 0.1, 0.6])
    ci = clustered_bootstrap_mean(values.tolist(), resamples=300, seed=7)
    rng = np.random.default_rng(7)
    means = values[rng.integers(0, 6, size=(300, 6))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    assert (ci.low, ci.high) == pytest.approx((low, high))


def test_clusters_are_resampled_whole():
    # Each prompt judged twice with the same outcome: clustering by prompt must give the
    # interval of one observation per prompt, and treating the copies as independent a
    # falsely narrow one.
    per_prompt = [1.0, 0.0, 1.0, 1.0, 0.5, 0.0, 1.0, 0.0, 1.0, 0.5]
    doubled = [v for v in per_prompt for _ in range(2)]
    prompts = [i for i in range(len(per_prompt)) for _ in range(2)]
    clustered = clustered_bootstrap_mean(doubled, prompts, resamples=1000, seed=3)
    single = clustered_bootstrap_mean(per_prompt, resamples=1000, seed=3)
    naive = clustered_bootstrap_mean(doubled, resamples=1000, seed=3)
    assert clustered.clusters == 10
    assert clustered.n == 20
    assert (clustered.low, clustered.high) == pytest.approx((single.low, single.high))
    assert naive.high - naive.low < clustered.high - clustered.low


def test_unequal_clusters_weigh_observations_not_clusters():
    ci = clustered_bootstrap_mean([1.0, 1.0, 1.0, 0.0], ["a", "a", "a", "b"], resamples=200)
    assert ci.estimate == pytest.approx(0.75)
    assert ci.clusters == 2
    assert 0.0 <= ci.low <= ci.high <= 1.0


def test_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError, match="no values"):
        clustered_bootstrap_mean([])
    with pytest.raises(ValueError, match="cluster keys"):
        clustered_bootstrap_mean([1.0, 2.0], ["a"])
    with pytest.raises(ValueError, match="confidence"):
        clustered_bootstrap_mean([1.0], confidence=1.5)
    single = clustered_bootstrap_mean([2.5], resamples=10)
    assert (single.low, single.estimate, single.high) == (2.5, 2.5, 2.5)


# -- style ----------------------------------------------------------------------------------


def test_answer_style_features():
    listed = answer_style("Steps:\n1. Mix.\n2. Bake.\n", "stop")
    assert listed.has_list
    assert listed.words == 5
    assert not listed.empty
    assert listed.hit_limit is False
    assert listed.leaked_markers == ()
    assert answer_style("  - a bullet", None).has_list
    assert not answer_style("In 1990. Then 2. was not a list item start", None).has_list
    assert answer_style("   \n", "length").empty
    assert answer_style("word " * 10, "length").hit_limit is True
    assert answer_style("text", None).hit_limit is None
    leaks = answer_style("Sure.\nQuestion: another one?\nHere’s an example answer: x<eos>")
    assert set(leaks.leaked_markers) == {"Question:", "Here's an example answer", "<eos>"}
    assert answer_style("# Query:\n```\nx\n```").leaked_markers == ("# Query",)
    # A marker in running text (not at a line start) is not a leak.
    assert answer_style("The Question: is fine mid-line").leaked_markers == ()


def test_style_stats_summarise_shares():
    styles = [
        answer_style("one two three", "stop"),
        answer_style("- a\n- b", "length"),
        answer_style("", "stop"),
        answer_style("Answer: x " + "w " * 700, "length"),
    ]
    stats = style_stats(styles, long_words=650)
    assert stats.n == 4
    assert stats.median_words == pytest.approx(3.5)  # 0, 3, 4, 702 words
    assert stats.list_share == 0.25
    assert stats.empty_share == 0.25
    assert stats.marker_leak_share == 0.25
    assert stats.length_share == 0.5
    assert stats.long_share == 0.25
    assert stats.leaked == {"Answer:": 1}
    unknown = style_stats([answer_style("a"), answer_style("b c")])
    assert unknown.length_share is None
    with pytest.raises(ValueError):
        style_stats([])


def test_summarize_styles_groups_by_condition():
    rows = [
        {"condition": "a", "text": "x y", "finish_reason": "stop"},
        {"condition": "a", "text": "x", "finish_reason": "length"},
        {"condition": "b", "text": None},
    ]
    stats = summarize_styles(rows)
    assert stats["a"].n == 2
    assert stats["a"].length_share == 0.5
    assert stats["b"].empty_share == 1.0
    assert stats["b"].length_share is None


# -- decontamination ------------------------------------------------------------------------


def test_normalize_prompt_ignores_case_spacing_and_punctuation():
    assert normalize_prompt("  What's the  CAPITAL of France?! ") == normalize_prompt(
        "what s the capital\nof france"
    )
    assert normalize_prompt("Ｆｕｌｌwidth") == "fullwidth"


def test_decontaminate_exact_and_near(embeddings, demos):
    extra = [
        AlignmentDemo(prompt="WHAT is the capital of France", response="Paris.", id="exact"),
        AlignmentDemo(prompt="capital of France what is the?", response="Paris.", id="near"),
        AlignmentDemo(
            prompt="Follow-up", response="ok", turns=[("what is the capital of france?", "Paris")]
        ),
    ]
    pool = [*demos, *extra]
    eval_prompts = ["Unrelated question about cars", "What is the capital of France?"]
    exact_only = decontaminate(pool, eval_prompts)
    removed = {m.demo_id for m in exact_only.removed}
    assert demos[4].id in removed
    assert "exact" in removed
    assert "near" not in removed
    assert extra[2].id in removed  # an earlier turn counts too
    assert exact_only.threshold is None
    assert exact_only.near == 0
    report = decontaminate(pool, eval_prompts, embeddings=embeddings, threshold=0.95)
    near = [m for m in report.removed if m.kind == "near"]
    assert [m.demo_id for m in near] == ["near"]
    assert near[0].eval_index == 1
    assert near[0].score >= 0.95
    assert report.exact == 3
    assert report.near == 1
    assert len(report.kept) == len(pool) - 4
    assert [d.id for d in report.kept] == [d.id for d in demos[:4]]
    summary = report.to_dict(["e0", "e1"])
    assert summary["removed_exact"] == 3
    assert summary["kept"] == 4
    assert {m["eval"] for m in summary["matches"]} == {"e1"}


def test_decontaminate_threshold_is_checked(demos):
    with pytest.raises(ValueError, match="threshold"):
        decontaminate(demos, ["x"], threshold=0.0)


# -- data files and the results log --------------------------------------------------------


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_load_eval_items_and_pool(tmp_path):
    path = write_jsonl(
        tmp_path / "e.jsonl",
        [
            {"id": "a", "prompt": "Q1", "response": "A1"},
            {"prompt": "Q2", "response": None},
        ],
    )
    items = load_eval_items(path)
    assert items == [EvalItem("a", "Q1", "A1"), EvalItem("line-2", "Q2", None)]
    with pytest.raises(ValueError, match="no reference"):
        load_eval_items(path, require_reference=True)
    pool = load_pool(path)
    assert [d.id for d in pool] == ["a"]
    write_jsonl(tmp_path / "d.jsonl", [{"id": "x", "prompt": "Q"}, {"id": "x", "prompt": "R"}])
    with pytest.raises(ValueError, match="duplicate id"):
        load_eval_items(tmp_path / "d.jsonl")


def test_sample_items_is_seeded_and_keeps_order():
    items = [EvalItem(str(i), f"q{i}") for i in range(50)]
    first = sample_items(items, 10, seed=0)
    assert first == sample_items(items, 10, seed=0)
    assert first != sample_items(items, 10, seed=1)
    assert [int(i.id) for i in first] == sorted(int(i.id) for i in first)
    assert sample_items(items, None) == items
    assert sample_items(items, 100) == items


def test_result_log_resumes_and_refuses_other_settings(tmp_path):
    path = tmp_path / "log.jsonl"
    log = ResultLog(path, ("id",), config={"budget": 1000})
    log.append({"id": "a", "value": 1})
    log.append({"id": "b", "value": 2})
    with path.open("a") as handle:
        handle.write('{"id": "c", "val')  # torn by a crash
    again = ResultLog(path, ("id",), config={"budget": 1000})
    assert again.done(("a",))
    assert again.done(("b",))
    assert not again.done(("c",))
    assert again.skipped_lines == 1
    again.append({"id": "c", "value": 3})
    assert [r["id"] for r in ResultLog(path, ("id",)).records()] == ["a", "b", "c"]
    with pytest.raises(ResultLogConfigError, match="other settings"):
        ResultLog(path, ("id",), config={"budget": 3000})


def test_summarize_nll_uses_prompts_complete_under_every_condition():
    records = []
    for i, (zero, retrieved) in enumerate([(2.0, 1.5), (2.2, 2.0), (1.8, 1.9), (2.0, 1.0)]):
        for condition, value in (("zero_shot", zero), ("retrieved", retrieved)):
            records.append(
                {
                    "item_id": f"p{i}",
                    "condition": condition,
                    "mean_nll": value,
                    "tokens": 10,
                    "prompt_tokens": 100 if condition == "retrieved" else 10,
                    "demo_ids": ["d"] if condition == "retrieved" else [],
                    "constant_demos": 0,
                }
            )
    records.append({**records[0], "item_id": "p9"})  # zero-shot only: left out
    summary = summarize_nll(records, ["zero_shot", "retrieved"], resamples=200)
    assert summary["prompts"] == 4
    assert summary["conditions"]["zero_shot"]["mean_nll"]["estimate"] == pytest.approx(2.0)
    assert summary["conditions"]["retrieved"]["mean_demos"] == 1.0
    contrast = summary["contrasts"]["retrieved - zero_shot"]
    assert contrast["estimate"] == pytest.approx((-0.5 - 0.2 + 0.1 - 1.0) / 4)
    assert contrast["share_lower"] == 0.75
    assert summarize_nll(records[:1], ["zero_shot", "retrieved"]) == {"prompts": 0}
