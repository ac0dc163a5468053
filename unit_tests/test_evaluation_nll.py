"""Reference NLL on the tiny byte-level GPT-2, and the prompting conditions around it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from langchain_core.messages import HumanMessage
from langchain_huggingface import HuggingFacePipeline
from transformers import pipeline

from langchain_icalign import AlignmentDemo, AlignmentExampleSelector, HanFormat, URIALFormat
from langchain_icalign.evaluation import (
    CONDITIONS,
    EvalItem,
    RandomDemoSelector,
    ResultLog,
    ZeroShotFormat,
    answer_continuation,
    build_condition_chats,
    reference_nll,
    run_generations,
    run_reference_nll,
)
from langchain_icalign.evaluation.runs import GENERATION_KEY, NLL_KEY

PROMPT = "Question: How do I bake bread?\n\nAnswer:"
CONTINUATION = " Mix flour, water, salt and yeast; knead; proof; bake."


def by_hand(model, tokenizer, prompt, continuation, limit=None):
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    target = tokenizer(continuation, add_special_tokens=False)["input_ids"][:limit]
    ids = torch.tensor([prompt_ids + target])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    start = len(prompt_ids)
    loss = F.cross_entropy(logits[start - 1 : -1], torch.tensor(target))
    return loss.item(), len(target), len(prompt_ids)


def test_reference_nll_equals_cross_entropy_by_hand(tiny_lm, byte_tokenizer):
    expected, tokens, prompt_tokens = by_hand(tiny_lm, byte_tokenizer, PROMPT, CONTINUATION)
    result = reference_nll(tiny_lm, byte_tokenizer, PROMPT, CONTINUATION)
    assert result.mean_nll == pytest.approx(expected, rel=1e-5)
    assert result.total_nll == pytest.approx(expected * tokens, rel=1e-5)
    assert result.tokens == tokens == len(CONTINUATION.encode())
    assert result.prompt_tokens == prompt_tokens == len(PROMPT.encode()) + 1  # with <bos>
    assert not result.truncated


def test_reference_nll_scores_only_the_leading_tokens_when_capped(tiny_lm, byte_tokenizer):
    expected, tokens, _ = by_hand(tiny_lm, byte_tokenizer, PROMPT, CONTINUATION, limit=7)
    result = reference_nll(tiny_lm, byte_tokenizer, PROMPT, CONTINUATION, max_tokens=7)
    assert result.tokens == tokens == 7
    assert result.truncated
    assert result.mean_nll == pytest.approx(expected, rel=1e-5)


def test_reference_nll_without_logits_to_keep(tiny_lm, byte_tokenizer):
    class PlainForward(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids):
            return self.model(input_ids=input_ids)

    expected = reference_nll(tiny_lm, byte_tokenizer, PROMPT, CONTINUATION)
    plain = reference_nll(PlainForward(tiny_lm), byte_tokenizer, PROMPT, CONTINUATION)
    assert plain.mean_nll == pytest.approx(expected.mean_nll, rel=1e-5)


def test_reference_nll_depends_on_the_prompt(tiny_lm, byte_tokenizer):
    a = reference_nll(tiny_lm, byte_tokenizer, PROMPT, CONTINUATION)
    b = reference_nll(tiny_lm, byte_tokenizer, "Something else entirely:", CONTINUATION)
    assert a.tokens == b.tokens
    assert a.mean_nll != pytest.approx(b.mean_nll, rel=1e-6)
    with pytest.raises(ValueError, match="no tokens"):
        reference_nll(tiny_lm, byte_tokenizer, PROMPT, "")


def test_answer_continuation_follows_each_format():
    assert answer_continuation(HanFormat(), "q", "ref") == " ref"
    assert answer_continuation(ZeroShotFormat(), "q", "ref") == " ref"
    assert answer_continuation(URIALFormat(), "q", "ref") == "ref"

    class Broken(HanFormat):
        def render_open(self, user):
            return f"Q: {user}\nA:"

    with pytest.raises(ValueError, match="prefix"):
        answer_continuation(Broken(), "q", "ref")


def test_zero_shot_format_is_hans_baseline():
    fmt = ZeroShotFormat()
    assert fmt.render_open("Why?") == "Question: Why?\n\nAnswer:"
    assert fmt.stop == ("\nQuestion:",)
    assert "\nAnswer:" not in fmt.neutralize("x\nAnswer: y")


# -- conditions on the tiny model ----------------------------------------------------------


@pytest.fixture
def tiny_llm(tiny_lm, byte_tokenizer):
    pipe = pipeline("text-generation", model=tiny_lm, tokenizer=byte_tokenizer)
    return HuggingFacePipeline(pipeline=pipe, model_id="tiny-gpt2")


@pytest.fixture
def selector(store, demos, byte_tokenizer):
    store.add_demos(demos)
    return AlignmentExampleSelector(
        store=store, token_counter=byte_tokenizer, max_k=5, max_tokens=400, max_demo_tokens=300
    )


SHORT_SET = (
    "You are a helpful assistant.",
    [AlignmentDemo(prompt="Say hi.", response="Hi! How can I help?")],
)
ITEMS = [
    EvalItem("i1", "How do I bake bread at home?", "Mix, knead, proof and bake it."),
    EvalItem("i2", "What is the capital of France?", "Paris is the capital of France."),
]


def test_each_condition_prompts_as_the_package_would(tiny_llm, selector):
    chats = build_condition_chats(tiny_llm, selector, constant_set=SHORT_SET)
    assert list(chats) == list(CONDITIONS)
    query = [HumanMessage(ITEMS[0].prompt)]
    zero = chats["zero_shot"].prepare_prompt(query)
    assert zero.text == "Question: How do I bake bread at home?\n\nAnswer:"
    retrieved = chats["retrieved"].prepare_prompt(query)
    assert retrieved.demos
    assert retrieved.demos[-1].demo.prompt.startswith("How do I bake")
    assert retrieved.text.endswith("Here’s an example answer:")
    random_demos = chats["random"].prepare_prompt(query)
    assert random_demos.demos
    assert all(s.score == 0.0 for s in random_demos.demos)
    assert sum(s.tokens for s in random_demos.demos) <= 400
    constant = chats["constant"].prepare_prompt(query)
    assert constant.text.startswith("# Instruction\n\nYou are a helpful assistant.")
    assert "# Query:" in constant.text
    assert not constant.demos
    hybrid = chats["hybrid"].prepare_prompt(query)
    assert hybrid.constant_demos == tuple(SHORT_SET[1])
    assert [s.demo.id for s in hybrid.demos] == [s.demo.id for s in retrieved.demos]
    assert hybrid.text.index("Say hi.") < hybrid.text.index(retrieved.demos[0].demo.prompt)
    han_alone = build_condition_chats(tiny_llm, selector, ["han_zero_shot"])["han_zero_shot"]
    assert han_alone.prepare_prompt(query).text == (
        "Question: How do I bake bread at home?\n\nHere’s an example answer:"
    )
    with pytest.raises(ValueError, match="unknown condition"):
        build_condition_chats(tiny_llm, selector, ["best"])  # type: ignore[list-item]


def test_random_selector_is_seeded_per_query(store, demos, byte_tokenizer):
    store.add_demos(demos)
    drawer = RandomDemoSelector(
        store=store, token_counter=byte_tokenizer, max_k=3, max_tokens=10_000, seed=1
    )
    first = [s.demo.id for s in drawer.select_demos("query one")]
    assert first == [s.demo.id for s in drawer.select_demos("query one")]
    draws = {tuple(s.demo.id for s in drawer.select_demos(f"query {i}")) for i in range(10)}
    assert len(draws) > 1
    assert len(first) == 3
    tight = RandomDemoSelector(store=store, token_counter=byte_tokenizer, max_tokens=150)
    assert sum(s.tokens for s in tight.select_demos("q")) <= 150
    with pytest.raises(ValueError, match="filters"):
        drawer.select_demos("q", filter={"category": "advice"})


def test_run_reference_nll_scores_the_prepared_prompts_and_resumes(
    tiny_llm, selector, tiny_lm, byte_tokenizer, tmp_path
):
    chats = build_condition_chats(tiny_llm, selector, constant_set=SHORT_SET)
    log = ResultLog(tmp_path / "nll.jsonl", NLL_KEY)
    records = run_reference_nll(chats, ITEMS, log, max_reference_tokens=20, show_progress=False)
    assert len(records) == len(ITEMS) * len(CONDITIONS)
    row = next(r for r in records if r["item_id"] == "i1" and r["condition"] == "retrieved")
    chat = chats["retrieved"]
    prepared = chat.prepare_prompt([HumanMessage(ITEMS[0].prompt)], max_new_tokens=20)
    expected = reference_nll(
        tiny_lm,
        byte_tokenizer,
        prepared.text,
        answer_continuation(chat.format, ITEMS[0].prompt, ITEMS[0].reference or ""),
        max_tokens=20,
    )
    assert row["mean_nll"] == pytest.approx(expected.mean_nll)
    assert row["demo_ids"] == [s.demo.id for s in prepared.demos]
    assert {r["tokens"] for r in records} == {20}
    assert {r["truncated"] for r in records} == {True}
    # A second run finds everything done and computes nothing.
    size = (tmp_path / "nll.jsonl").stat().st_size
    again = run_reference_nll(
        chats, ITEMS, ResultLog(tmp_path / "nll.jsonl", NLL_KEY), show_progress=False
    )
    assert len(again) == len(records)
    assert (tmp_path / "nll.jsonl").stat().st_size == size


def test_run_reference_nll_needs_references(tiny_llm, selector, tmp_path):
    chats = build_condition_chats(tiny_llm, selector, ["zero_shot"])
    log = ResultLog(tmp_path / "nll.jsonl", NLL_KEY)
    with pytest.raises(ValueError, match="reference"):
        run_reference_nll(chats, [EvalItem("x", "q")], log, show_progress=False)


def test_run_generations_records_finish_reason_and_is_reproducible(tiny_llm, selector, tmp_path):
    chats = build_condition_chats(tiny_llm, selector, ["zero_shot", "retrieved"], temperature=0.7)
    first = run_generations(
        chats,
        ITEMS,
        ResultLog(tmp_path / "a.jsonl", GENERATION_KEY),
        max_new_tokens=6,
        show_progress=False,
    )
    assert len(first) == 4
    for record in first:
        assert record["finish_reason"] in ("stop", "length")
        assert record["output_tokens"] <= 6
    retrieved = [r for r in first if r["condition"] == "retrieved"]
    assert all(r["demo_ids"] for r in retrieved)
    second = run_generations(
        chats,
        ITEMS,
        ResultLog(tmp_path / "b.jsonl", GENERATION_KEY),
        max_new_tokens=6,
        show_progress=False,
    )
    assert [r["text"] for r in second] == [r["text"] for r in first]
