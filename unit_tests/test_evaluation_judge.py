"""The pairwise judge harness with a scripted fake judge: orders, ties, unparsable, resume."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableLambda

from langchain_icalign.evaluation import (
    JUDGE_PROMPT_TEMPLATE,
    PairwiseItem,
    PairwiseJudge,
    judge_pairs,
    parse_judge_scores,
    render_judge_messages,
    summarize_judgements,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8 6\nAssistant 1 is better.", (8.0, 6.0)),
        ("  7.5, 9\nreason", (7.5, 9.0)),
        ("\n\n**10 1**\nwhy", (10.0, 1.0)),
        ("Scores: 3/4", (3.0, 4.0)),
        ("5 5", (5.0, 5.0)),
    ],
)
def test_parse_reads_two_scores_on_the_first_line(text, expected):
    assert parse_judge_scores(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Assistant 1 is better.\n8 6",  # scores not on the first line: never guessed
        "8\n6",
        "8 6 7",
        "0 5",
        "11 5",
        "I'd give 8 and 6",
        "eight six",
    ],
)
def test_parse_refuses_anything_else(text):
    assert parse_judge_scores(text) is None


def test_judge_prompt_shows_both_answers_in_the_given_order():
    messages = render_judge_messages("Q?", "first answer", "second answer")
    body = str(messages[-1].content)
    assert body.index("first answer") < body.index("second answer")
    assert "Assistant 1" in body
    assert "1 to 10" in body
    assert messages[0].type == "system"


class ScriptedJudge:
    """Prefers answers containing 'good'; scripted outputs for chosen questions."""

    def __init__(self, scripts: dict[str, list[str]] | None = None) -> None:
        self.scripts = {q: list(outputs) for q, outputs in (scripts or {}).items()}
        self.calls: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, messages: list[BaseMessage]) -> AIMessage:
        body = str(messages[-1].content)
        question = body.split("[Question]\n", 1)[1].split("\n", 1)[0]
        first = body.split("Assistant 1's Answer]\n", 1)[1].split("\n[The End", 1)[0]
        second = body.split("Assistant 2's Answer]\n", 1)[1].split("\n[The End", 1)[0]
        with self.lock:
            self.calls.append((question, first, second))
            script = self.scripts.get(question)
            if script:
                return AIMessage(script.pop(0))

        def score(answer: str) -> int:
            return 8 if "good" in answer else 3

        return AIMessage(f"{score(first)} {score(second)}\nBecause.")


def make_judge(scripted: ScriptedJudge, **kwargs: Any) -> PairwiseJudge:
    return PairwiseJudge(RunnableLambda(scripted), name="scripted", **kwargs)


ITEMS = [
    PairwiseItem("p1", "p1", "q1", "a good answer", "a bad answer"),  # win
    PairwiseItem("p2", "p2", "q2", "bad", "bad too"),  # tie
    PairwiseItem("p3", "p3", "q3", "bad", "good"),  # loss
]


def test_each_pair_is_judged_in_both_orders(tmp_path):
    scripted = ScriptedJudge()
    judgements = judge_pairs(ITEMS, make_judge(scripted), tmp_path / "r.jsonl", show_progress=False)
    assert len(judgements) == 6
    assert [(j.item_id, j.order) for j in judgements[:2]] == [
        ("p1", "candidate_first"),
        ("p1", "baseline_first"),
    ]
    assert ("q1", "a good answer", "a bad answer") in scripted.calls
    assert ("q1", "a bad answer", "a good answer") in scripted.calls
    # Scores are mapped back to the candidate whatever the order.
    for j in judgements[:2]:
        assert (j.candidate_score, j.baseline_score, j.outcome) == (8.0, 3.0, "win")
    assert {j.outcome for j in judgements if j.item_id == "p2"} == {"tie"}
    assert {j.outcome for j in judgements if j.item_id == "p3"} == {"loss"}
    summary = summarize_judgements(judgements)
    assert (summary.counts.wins, summary.counts.ties, summary.counts.losses) == (2, 2, 2)
    assert summary.win_rate is not None
    assert summary.win_rate.estimate == pytest.approx(0.5)
    assert summary.win_rate.clusters == 3
    assert summary.win_rate.n == 6
    assert summary.order_agreement == 1.0
    assert summary.by_order["candidate_first"].wins == 1


def test_position_bias_shows_in_by_order_and_agreement(tmp_path):
    always_first = RunnableLambda(lambda _messages: AIMessage("9 2"))
    judgements = judge_pairs(
        ITEMS, PairwiseJudge(always_first), tmp_path / "r.jsonl", show_progress=False
    )
    summary = summarize_judgements(judgements)
    assert summary.by_order["candidate_first"].wins == 3
    assert summary.by_order["baseline_first"].losses == 3
    assert summary.order_agreement == 0.0
    assert summary.win_rate is not None
    assert summary.win_rate.estimate == pytest.approx(0.5)


def test_unparsable_output_is_retried_then_counted_never_guessed(tmp_path):
    scripted = ScriptedJudge(
        {
            "q1": ["I prefer the first.", "8 3\nok"],  # parses on the second attempt
            "q2": ["no scores", "still none", "Assistant 1: 8"],  # never parses
        }
    )
    judgements = judge_pairs(
        ITEMS[:2], make_judge(scripted, max_attempts=3), tmp_path / "r.jsonl", show_progress=False
    )
    by_key = {(j.item_id, j.order): j for j in judgements}
    retried = by_key[("p1", "candidate_first")]
    assert retried.outcome == "win"
    assert retried.attempts == 2
    assert retried.outputs == ("I prefer the first.", "8 3\nok")
    failed = by_key[("p2", "candidate_first")]
    assert failed.outcome == "unparsable"
    assert failed.candidate_score is None
    assert failed.attempts == 3
    assert len(failed.outputs) == 3
    summary = summarize_judgements(judgements)
    assert summary.counts.unparsable == 1
    # The win-rate is over parsed reviews only: p1 twice (wins), p2 once (tie).
    assert summary.win_rate is not None
    assert summary.win_rate.n == 3
    assert summary.win_rate.estimate == pytest.approx((1 + 1 + 0.5) / 3)


def test_a_judge_error_propagates_and_the_run_resumes(tmp_path):
    path = tmp_path / "r.jsonl"
    calls = {"n": 0}

    def flaky(messages):
        calls["n"] += 1
        if calls["n"] == 4:
            raise ConnectionError("judge unreachable")
        return AIMessage("7 4")

    with pytest.raises(ConnectionError):
        judge_pairs(ITEMS, PairwiseJudge(RunnableLambda(flaky)), path, show_progress=False)
    assert len(path.read_text().splitlines()) == 3  # what was judged is kept
    judgements = judge_pairs(ITEMS, PairwiseJudge(RunnableLambda(flaky)), path, show_progress=False)
    assert len(judgements) == 6
    assert calls["n"] == 4 + 3  # only the missing three were judged again


def test_resume_from_a_partial_file_with_a_truncated_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    scripted = ScriptedJudge()
    judge_pairs(ITEMS[:2], make_judge(scripted), path, show_progress=False)
    assert len(scripted.calls) == 4
    lines = path.read_text().splitlines()
    # Simulate a crash in the middle of writing the fourth line.
    path.write_text("\n".join(lines[:3]) + "\n" + lines[3][:25])
    again = ScriptedJudge()
    judgements = judge_pairs(ITEMS, make_judge(again), path, show_progress=False)
    assert len(judgements) == 6
    assert len(again.calls) == 3  # the torn judgement and the two of p3
    records = [json.loads(line) for line in path.read_text().splitlines()[:3]]
    assert [r["order"] for r in records] == ["candidate_first", "baseline_first", "candidate_first"]
    for line in path.read_text().splitlines()[4:]:
        json.loads(line)  # every new line is whole


def test_one_file_holds_several_comparisons(tmp_path):
    path = tmp_path / "r.jsonl"
    judge = make_judge(ScriptedJudge())
    first = judge_pairs(
        ITEMS, judge, path, candidate_name="a", baseline_name="b", show_progress=False
    )
    second = judge_pairs(
        ITEMS, judge, path, candidate_name="c", baseline_name="b", show_progress=False
    )
    assert len(first) == len(second) == 6
    assert {j.candidate for j in second} == {"c"}
    with pytest.raises(ValueError, match="several comparisons"):
        summarize_judgements([*first, *second])
    other_judge = PairwiseJudge(RunnableLambda(lambda _m: AIMessage("1 9")), name="harsh")
    third = judge_pairs(
        ITEMS, other_judge, path, candidate_name="a", baseline_name="b", show_progress=False
    )
    assert {j.outcome for j in third} == {"loss", "win"}  # not the first judge's results
    assert {j.judge for j in third} == {"harsh"}


def test_concurrent_judging_gives_the_same_judgements(tmp_path):
    sequential = judge_pairs(
        ITEMS, make_judge(ScriptedJudge()), tmp_path / "a.jsonl", show_progress=False
    )
    concurrent = judge_pairs(
        ITEMS,
        make_judge(ScriptedJudge()),
        tmp_path / "b.jsonl",
        max_concurrency=4,
        show_progress=False,
    )
    assert concurrent == sequential


def test_a_judge_error_in_concurrent_mode_keeps_finished_reviews(tmp_path):
    path = tmp_path / "r.jsonl"

    def flaky(messages):
        if "q3" in str(messages[-1].content):
            raise ConnectionError("judge unreachable")
        return AIMessage("7 4")

    with pytest.raises(ConnectionError):
        judge_pairs(
            ITEMS,
            PairwiseJudge(RunnableLambda(flaky)),
            path,
            max_concurrency=2,
            show_progress=False,
        )
    kept = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["item_id"] for r in kept} <= {"p1", "p2"}
    assert len(kept) >= 2


def test_any_langchain_chat_model_can_judge(tmp_path):
    model = GenericFakeChatModel(messages=iter([AIMessage("6 4\nok")] * 2))
    judgements = judge_pairs(
        ITEMS[:1], PairwiseJudge(model), tmp_path / "r.jsonl", show_progress=False
    )
    assert [j.outcome for j in judgements] == ["win", "loss"]
    assert judgements[0].judge == "GenericFakeChatModel"


def test_invalid_arguments_are_refused(tmp_path):
    judge = make_judge(ScriptedJudge())
    with pytest.raises(ValueError, match="unique"):
        judge_pairs([ITEMS[0], ITEMS[0]], judge, tmp_path / "r.jsonl", show_progress=False)
    with pytest.raises(ValueError, match="order"):
        judge_pairs(ITEMS, judge, tmp_path / "r.jsonl", orders=["left"], show_progress=False)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="max_attempts"):
        PairwiseJudge(RunnableLambda(lambda m: "1 1"), max_attempts=0)
    with pytest.raises(ValueError, match="answer_2"):
        PairwiseJudge(RunnableLambda(lambda m: "1 1"), template="{question} {answer_1}")
    assert "{answer_2}" in JUDGE_PROMPT_TEMPLATE
    with pytest.raises(ValueError, match="no judgements"):
        summarize_judgements([])
