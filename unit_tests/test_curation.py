"""Curation: single-demo scores, greedy selection, pool reports and the `icalign curate` command."""

import json
from pathlib import Path

import pytest

from langchain_icalign import AlignmentDemo, AlignmentExampleSelector, DemoStore
from langchain_icalign.cli import main
from langchain_icalign.curation import (
    CandidateScore,
    DemoScorer,
    ItemScores,
    answers_style,
    coverage,
    curate_pool,
    demo_effects,
    greedy_select,
    pool_style,
    proxy_value,
    score_candidates,
)
from langchain_icalign.evaluation.jsonl_log import ResultLog
from langchain_icalign.evaluation.records import EvalItem
from langchain_icalign.formats import HanFormat
from unit_tests.conftest import BagOfWordsEmbeddings, count_words


def item(item_id, baseline, *candidates):
    return ItemScores(
        item_id, baseline, [CandidateScore(d, delta, t) for d, delta, t in candidates]
    )


# --- greedy selection on the proxy objective -------------------------------------------------


def test_proxy_packs_candidates_under_the_budget_and_skips_removed_ones():
    scores = item("q", 2.0, ("a", +0.3, 60), ("b", -0.1, 60), ("c", -0.2, 60))
    assert proxy_value(scores, set(), budget=100) == pytest.approx(2.3)  # only a fits
    assert proxy_value(scores, {"a"}, budget=100) == pytest.approx(1.9)  # b moves up
    assert proxy_value(scores, {"a"}, budget=130) == pytest.approx(2.0 - 0.15)  # b and c
    assert proxy_value(scores, {"a", "b", "c"}, budget=100) == 2.0  # nothing left: baseline


def test_greedy_removes_the_demo_that_hurts_and_keeps_the_ones_that_help():
    scores = [
        item("q1", 2.0, ("bad", +0.3, 50), ("good", -0.2, 50)),
        item("q2", 1.5, ("bad", +0.1, 50), ("other", -0.05, 50)),
        item("q3", 1.0, ("good", -0.1, 50), ("bad", +0.2, 50)),
    ]
    result = greedy_select(scores, budget=60)
    assert result.removed == ["bad"]
    assert result.objective_after < result.objective_before
    assert result.objective_before == pytest.approx((2.3 + 1.6 + 0.9) / 3)
    assert result.objective_after == pytest.approx((1.8 + 1.45 + 0.9) / 3)


def test_greedy_stops_when_no_removal_gains_more_than_min_gain():
    scores = [item("q1", 2.0, ("bad", +0.01, 50), ("good", -0.2, 50))]
    assert greedy_select(scores, budget=60).removed == ["bad"]
    assert greedy_select(scores, budget=60, min_gain=0.5).removed == []


def test_greedy_never_removes_more_than_max_removals():
    scores = [item(f"q{i}", 1.0, (f"bad{i}", +0.2, 50), (f"ok{i}", 0.0, 50)) for i in range(5)]
    assert len(greedy_select(scores, budget=60).removed) == 5
    assert len(greedy_select(scores, budget=60, max_removals=2).removed) == 2


def test_demo_effects_are_means_over_uses_most_harmful_first():
    scores = [
        item("q1", 2.0, ("a", +0.3, 50), ("b", -0.2, 50)),
        item("q2", 2.0, ("a", +0.1, 50)),
    ]
    effects = demo_effects(scores)
    assert [(e.demo_id, e.uses) for e in effects] == [("a", 2), ("b", 1)]
    assert effects[0].mean_delta == pytest.approx(0.2)


# --- scoring with a scorer whose effects are known --------------------------------------------


class KnownEffects(DemoScorer):
    """NLL 2.0 without demos; a demo whose answer says 'helpful' lowers it, 'harmful' raises it."""

    calls: int = 0

    def nll(self, item, demos):
        self.calls += 1
        value = 2.0
        for demo in demos:
            value += (
                -0.2 if "helpful" in demo.response else 0.3 if "harmful" in demo.response else 0
            )
        return value


@pytest.fixture
def pool():
    return [
        AlignmentDemo(prompt="How do I bake bread?", response="A helpful bread answer."),
        AlignmentDemo(prompt="How do I bake bread at home?", response="A harmful bread answer."),
        AlignmentDemo(prompt="How do I knit a scarf?", response="A helpful knitting answer."),
        AlignmentDemo(prompt="How do I fix a bike tyre?", response="A plain tyre answer."),
    ]


@pytest.fixture
def dev():
    return [
        EvalItem("d1", "How do I bake bread?", "Mix, knead, prove and bake."),
        EvalItem("d2", "What yarn is best to knit a scarf?", "Wool or a wool blend."),
    ]


def test_score_candidates_measures_each_candidate_against_the_baseline(pool, dev, tmp_path):
    embeddings = BagOfWordsEmbeddings()
    with DemoStore(embeddings, location=":memory:") as store:
        store.add_demos(pool)
        selector = AlignmentExampleSelector(
            store=store, token_counter=count_words, max_tokens=100, dedup_threshold=None
        )
        scorer = KnownEffects(model=None, tokenizer=None, prompt_format=HanFormat())
        log = ResultLog(tmp_path / "scores.jsonl", ("item_id", "demo_id"))
        scores = score_candidates(scorer, selector, dev, candidates=2, log=log, show_progress=False)
        assert [s.item_id for s in scores] == ["d1", "d2"]
        assert all(s.baseline == 2.0 for s in scores)
        deltas = {c.demo_id: c.delta for s in scores for c in s.candidates}
        by_response = {d.id: d.response for d in pool}
        for demo_id, delta in deltas.items():
            text = by_response[demo_id]
            expected = -0.2 if "helpful" in text else 0.3 if "harmful" in text else 0.0
            assert delta == pytest.approx(expected)
        assert all(len(s.candidates) == 2 for s in scores)
        calls = scorer.calls
        again = score_candidates(scorer, selector, dev, candidates=2, log=log, show_progress=False)
        assert scorer.calls == calls  # every pair came from the results file
        assert [c.delta for s in again for c in s.candidates] == [
            c.delta for s in scores for c in s.candidates
        ]


def test_score_candidates_rejects_items_without_references(pool):
    with DemoStore(BagOfWordsEmbeddings(), location=":memory:") as store:
        store.add_demos(pool)
        selector = AlignmentExampleSelector(store=store, token_counter=count_words)
        scorer = KnownEffects(model=None, tokenizer=None, prompt_format=HanFormat())
        with pytest.raises(ValueError, match="reference"):
            score_candidates(scorer, selector, [EvalItem("x", "q", None)], show_progress=False)
        with pytest.raises(ValueError, match="candidates"):
            score_candidates(scorer, selector, [], candidates=0, show_progress=False)


# --- the real scorer and curate_pool on the tiny model -----------------------------------------


def test_demo_scorer_scores_the_reference_after_the_rendered_prompt(tiny_lm, byte_tokenizer):
    from langchain_icalign.evaluation.nll import answer_continuation, reference_nll

    fmt = HanFormat()
    scorer = DemoScorer(tiny_lm, byte_tokenizer, fmt, max_reference_tokens=20)
    example = EvalItem("d", "How do I bake bread?", "Knead it well and bake it hot.")
    demo = AlignmentDemo(prompt="Any tips for pizza?", response="Use a very hot oven.")
    prompt = fmt.render_demo(demo) + fmt.separator + fmt.render_open(example.prompt)
    expected = reference_nll(
        tiny_lm,
        byte_tokenizer,
        prompt,
        answer_continuation(fmt, example.prompt, example.reference),
        max_tokens=20,
    )
    assert scorer.nll(example, [demo]) == pytest.approx(expected.mean_nll)
    assert scorer.nll(example, []) != pytest.approx(expected.mean_nll)


def test_curate_pool_keeps_and_removes_every_demo_once(tiny_lm, byte_tokenizer, pool, dev):
    report = curate_pool(
        pool,
        dev,
        model=tiny_lm,
        tokenizer=byte_tokenizer,
        embeddings=BagOfWordsEmbeddings(),
        budget=400,
        candidates=2,
        max_reference_tokens=16,
        show_progress=False,
    )
    assert sorted(d.id for d in [*report.kept, *report.removed]) == sorted(d.id for d in pool)
    assert [d.id for d in report.removed] == report.selection.removed
    assert report.selection.objective_after <= report.selection.objective_before
    assert {e.demo_id for e in report.effects} <= {d.id for d in pool}
    summary = json.loads(json.dumps(report.to_dict()))
    assert summary["pool"] == {"given": 4, "kept": len(report.kept)}
    assert summary["coverage"]["before"]["prompts"] == 2
    with pytest.raises(ValueError, match="empty"):
        curate_pool(
            [], dev, model=tiny_lm, tokenizer=byte_tokenizer, embeddings=BagOfWordsEmbeddings()
        )


# --- reports -----------------------------------------------------------------------------------


def test_pool_style_counts_lists_bold_headings_turns_and_categories():
    demos = [
        AlignmentDemo(prompt="a", response="Plain answer in prose.", metadata={"category": "x"}),
        AlignmentDemo(prompt="b", response="Steps:\n\n1. One\n2. Two", metadata={"category": "x"}),
        AlignmentDemo(prompt="c", response="**Bold** start", turns=[("u", "v")]),
        AlignmentDemo(prompt="d", response="# Title\n\ntext"),
    ]
    style = pool_style(demos)
    assert style.answers == 4
    assert style.list_share == 0.25
    assert style.bold_share == 0.25
    assert style.heading_share == 0.25
    assert style.multi_turn == 1
    assert style.categories == {"x": 2, "none": 2}
    assert answers_style(["one two three"]).median_words == 3
    with pytest.raises(ValueError, match="no answers"):
        answers_style([])


def test_coverage_is_the_top1_cosine_of_each_prompt(pool):
    with DemoStore(BagOfWordsEmbeddings(), location=":memory:") as store:
        store.add_demos(pool)
        prompts = ["How do I bake bread?", "zebra quantum"]
        result = coverage(store, prompts)
        top = [store.search(p, 1)[0][1] for p in prompts]
        assert top[0] == pytest.approx(1.0, abs=1e-4)
        assert top[1] < 0.5
        assert result.prompts == 2
        assert result.median_top1 == pytest.approx(sum(top) / 2)
        assert result.p25_top1 <= result.median_top1 <= result.p75_top1 <= 1.0 + 1e-6
        assert result.share_above_half == 0.5
    with DemoStore(BagOfWordsEmbeddings(), location=":memory:") as empty:
        with pytest.raises(ValueError, match="empty"):
            coverage(empty, ["anything"])


# --- the command line --------------------------------------------------------------------------


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_curate_cli_names_the_file_and_line_of_a_bad_pool_record(tmp_path, capsys):
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"prompt": "a", "response": "b"}\n{"prompt": "c"\n', encoding="utf-8")
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"prompt": "q", "response": "r"}])
    code = main(["curate", str(pool), "--dev", str(dev), "--out", str(tmp_path / "out.jsonl")])
    err = capsys.readouterr().err
    assert code == 1
    assert "pool.jsonl" in err
    assert "pool.jsonl:2" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out.jsonl").exists()


def test_curate_cli_names_the_dev_line_without_a_reference(tmp_path, capsys):
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"prompt": "a", "response": "b"}])
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"prompt": "q", "response": "r"}, {"prompt": "q2"}])
    code = main(["curate", str(pool), "--dev", str(dev), "--out", str(tmp_path / "out.jsonl")])
    err = capsys.readouterr().err
    assert code == 1
    assert "dev.jsonl:2" in err
    assert "reference" in err


def test_curate_cli_refuses_to_overwrite_the_pool_and_bad_option_values(tmp_path, capsys):
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"prompt": "a", "response": "b"}])
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"prompt": "q", "response": "r"}])
    assert main(["curate", str(pool), "--dev", str(dev), "--out", str(pool)]) == 1
    assert "must not be the pool file" in capsys.readouterr().err
    for option in (["--budget", "0"], ["--candidates", "-1"], ["--min-gain", "nan"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["curate", str(pool), "--dev", str(dev), "--out", str(tmp_path / "o"), *option])
        assert exit_info.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


def test_curate_cli_writes_a_curated_pool_and_report(tmp_path, tiny_lm, byte_tokenizer, capsys):
    model_dir = tmp_path / "tiny"
    tiny_lm.save_pretrained(model_dir)
    byte_tokenizer.save_pretrained(model_dir)
    records = [
        {
            "prompt": "How do I bake bread?",
            "response": "Knead and bake.",
            "metadata": {"category": "how-to"},
        },
        {
            "prompt": "How do I knit?",
            "response": "Cast on and knit rows.",
            "metadata": {"category": "how-to"},
        },
        {
            "prompt": "What is rain?",
            "response": "Water falling from clouds.",
            "turns": [["Hi", "Hello!"]],
        },
    ]
    pool = write_jsonl(tmp_path / "pool.jsonl", records)
    dev = write_jsonl(
        tmp_path / "dev.jsonl", [{"prompt": "How to bake rye bread?", "response": "Use a starter."}]
    )
    out, report = tmp_path / "curated.jsonl", tmp_path / "report.json"
    args = ["curate", str(pool), "--dev", str(dev), "--out", str(out), "--report", str(report)]
    args += [
        "--model",
        str(model_dir),
        "--candidates",
        "2",
        "--max-reference-tokens",
        "8",
        "--no-progress",
    ]
    assert main(args) == 0
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    summary = json.loads(report.read_text(encoding="utf-8"))
    assert len(written) == summary["pool"]["kept"]
    assert len(written) + len(summary["removed"]) == 3
    assert all(set(r) == {"prompt", "response", "turns", "metadata"} for r in written)
    assert summary["scored_demos"] >= 1
    assert "curated 3 demos on 1 dev prompts" in capsys.readouterr().err
    assert (tmp_path / "curated.jsonl.scores.jsonl").exists()
