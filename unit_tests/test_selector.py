import pytest
from langchain_core.prompts import (
    ChatPromptTemplate,
    FewShotChatMessagePromptTemplate,
    FewShotPromptTemplate,
    PromptTemplate,
)

from langchain_icalign import AlignmentDemo, AlignmentExampleSelector
from langchain_icalign.selector import pack_demos

from .conftest import count_words


def _cands(*token_counts):
    return [
        (AlignmentDemo(prompt=f"p{i}", response="r"), 1.0 - i / 100, n)
        for i, n in enumerate(token_counts)
    ]


def test_pack_keeps_score_order_then_reverses():
    kept = pack_demos(_cands(10, 10, 10), max_tokens=100, max_demo_tokens=50)
    assert [k.demo.prompt for k in kept] == ["p2", "p1", "p0"]  # most relevant last


def test_pack_skips_over_long_demo_and_continues():
    kept = pack_demos(_cands(10, 60, 10), max_tokens=100, max_demo_tokens=50)
    assert [k.demo.prompt for k in kept] == ["p2", "p0"]


def test_pack_stops_at_first_demo_that_overflows_the_budget():
    # p1 would pass the budget: stop there, even though p2 would fit (Han's rule).
    kept = pack_demos(_cands(40, 50, 5), max_tokens=60, max_demo_tokens=100)
    assert [k.demo.prompt for k in kept] == ["p0"]


def test_pack_exact_budget_and_empty_inputs():
    assert len(pack_demos(_cands(30, 30), max_tokens=60, max_demo_tokens=100)) == 2
    assert pack_demos([], max_tokens=60, max_demo_tokens=100) == []
    assert pack_demos(_cands(10), max_tokens=0, max_demo_tokens=100) == []
    kept = pack_demos(_cands(1, 2), max_tokens=10, max_demo_tokens=10, most_relevant_last=False)
    assert [k.demo.prompt for k in kept] == ["p0", "p1"]


def test_demo_cost_is_the_rendered_demo_with_its_separator(store, demos):
    selector = AlignmentExampleSelector(store=store, token_counter=count_words)
    rendered = selector.format.render_demo(demos[0]) + "\n\n"
    assert selector.demo_tokens(demos[0]) == count_words(rendered)


def test_select_examples_most_relevant_last_with_ids_and_scores(store, demos):
    store.add_demos(demos)
    selector = AlignmentExampleSelector(store=store, token_counter=count_words, max_k=3)
    examples = selector.select_examples({"input": "how to bake sourdough bread"})
    assert len(examples) == 3
    assert examples[-1]["input"] == demos[0].prompt
    assert examples[-1]["output"] == demos[0].response
    assert set(examples[-1]) == {"input", "output", "id", "score"}
    scores = [e["score"] for e in examples]
    assert scores == sorted(scores)


def test_budget_and_per_call_budget(store, demos):
    store.add_demos(demos)
    selector = AlignmentExampleSelector(store=store, token_counter=count_words, max_tokens=40)
    full = selector.select_demos("bake bread")
    assert sum(s.tokens for s in full) <= 40
    tighter = selector.select_demos("bake bread", max_tokens=20)
    assert sum(s.tokens for s in tighter) <= 20
    assert len(tighter) < len(full)


def test_max_demo_tokens_skips_long_demos(store, demos):
    long_demo = AlignmentDemo(prompt="bake bread sourdough " * 3, response="word " * 200)
    store.add_demos([*demos, long_demo])
    selector = AlignmentExampleSelector(store=store, token_counter=count_words, max_demo_tokens=50)
    assert long_demo.id not in {s.demo.id for s in selector.select_demos("bake sourdough bread")}


def test_token_counts_are_cached_per_demo(store, demos):
    store.add_demos(demos)
    calls = []

    def counter(text):
        calls.append(text)
        return count_words(text)

    selector = AlignmentExampleSelector(store=store, token_counter=counter)
    selector.select_demos("bake bread")
    first = len(calls)
    assert first == len(demos)
    selector.select_demos("capital of France")
    assert len(calls) == first  # no candidate re-tokenised


def test_threshold_filter_and_near_duplicates(store, demos):
    near = AlignmentDemo(prompt=demos[0].prompt + "!", response=demos[0].response)
    store.add_demos([*demos, near])
    selector = AlignmentExampleSelector(store=store, token_counter=count_words)
    ids = [s.demo.id for s in selector.select_demos("bake sourdough bread")]
    assert (near.id in ids) != (demos[0].id in ids)  # one of the two near-identical demos
    keep_all = AlignmentExampleSelector(
        store=store, token_counter=count_words, dedup_threshold=None
    )
    assert len(keep_all.select_demos("bake sourdough bread")) == 6
    strict = AlignmentExampleSelector(store=store, token_counter=count_words, score_threshold=0.3)
    assert all(s.score >= 0.3 for s in strict.select_demos("bake sourdough bread"))
    coding = AlignmentExampleSelector(
        store=store, token_counter=count_words, filter={"category": "coding"}
    )
    assert [s.demo.metadata["category"] for s in coding.select_demos("bake")] == ["coding"]


def test_mmr_returns_diverse_demos_in_score_order(store, demos):
    store.add_demos(demos)
    selector = AlignmentExampleSelector(
        store=store, token_counter=count_words, max_k=2, mmr_lambda=0.1
    )
    chosen = selector.select_demos("how do I bake bread and cookies")
    assert len(chosen) == 2
    assert chosen[0].score <= chosen[1].score


def test_empty_store_selects_nothing(store):
    selector = AlignmentExampleSelector(store=store, token_counter=count_words)
    assert selector.select_examples({"input": "anything"}) == []


def test_missing_input_key_names_the_keys(store):
    selector = AlignmentExampleSelector(store=store, token_counter=count_words)
    with pytest.raises(KeyError, match="'question'.*input_key"):
        selector.select_examples({"question": "x"})


def test_add_example_and_async(store):
    selector = AlignmentExampleSelector(store=store, token_counter=count_words)
    demo_id = selector.add_example({"input": "What is 2+2?", "output": "4", "category": "math"})
    assert store.get([demo_id])[0].metadata == {"category": "math"}


async def test_async_select_and_add(store, demos):
    selector = AlignmentExampleSelector(store=store, token_counter=count_words)
    await selector.aadd_example({"input": demos[0].prompt, "output": demos[0].response})
    examples = await selector.aselect_examples({"input": "sourdough"})
    assert examples[-1]["input"] == demos[0].prompt


def test_tokenizer_as_counter(store, demos, byte_tokenizer):
    store.add_demos(demos)
    selector = AlignmentExampleSelector(store=store, token_counter=byte_tokenizer)
    chosen = selector.select_demos("bake")
    rendered = selector.format.render_demo(chosen[-1].demo) + "\n\n"
    assert chosen[-1].tokens == len(rendered.encode())  # one byte, one token


def test_inside_few_shot_chat_message_prompt_template(store, demos):
    store.add_demos(demos)
    selector = AlignmentExampleSelector(store=store, token_counter=count_words, max_k=2)
    few_shot = FewShotChatMessagePromptTemplate(
        example_selector=selector,
        example_prompt=ChatPromptTemplate.from_messages([("human", "{input}"), ("ai", "{output}")]),
        input_variables=["input"],
    )
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Be helpful."), few_shot, ("human", "{input}")]
    )
    messages = prompt.invoke({"input": "bake sourdough bread"}).to_messages()
    assert [m.type for m in messages] == ["system", "human", "ai", "human", "ai", "human"]
    assert messages[3].content == demos[0].prompt  # most relevant next to the query
    assert messages[-1].content == "bake sourdough bread"


def test_inside_string_few_shot_prompt_template(store, demos):
    store.add_demos(demos)
    selector = AlignmentExampleSelector(store=store, token_counter=count_words, max_k=1)
    template = FewShotPromptTemplate(
        example_selector=selector,
        example_prompt=PromptTemplate.from_template("Q: {input}\nA: {output}"),
        suffix="Q: {input}\nA:",
        input_variables=["input"],
    )
    text = template.format(input="capital of France")
    assert text == f"Q: {demos[4].prompt}\nA: {demos[4].response}\n\nQ: capital of France\nA:"
