"""ChatICAlign on the real default stack: Gemma-3-270m base, MiniLM embeddings, Qdrant local."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langchain_icalign import ChatICAlign
from langchain_icalign.backends.transformers import TransformersBackend
from langchain_icalign.defaults.builtin_demos import builtin_pool, urial_set
from langchain_icalign.formats import URIALFormat

MARKERS = ("Question:", "Here\u2019s an example answer", "# Query", "# Answer", "<eos>", "<bos>")


def test_plain_question_gets_an_answer_that_stops_on_its_own(default_chat):
    message = default_chat.invoke("What is the capital of France?")
    assert isinstance(default_chat.backend, TransformersBackend)
    assert message.content.strip()
    assert "Paris" in message.content
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.usage_metadata["output_tokens"] < 256
    assert not any(marker in message.content for marker in MARKERS)
    demos = message.response_metadata["demos"]
    assert 3 <= len(demos) <= 20
    assert message.response_metadata["prompt_tokens"] <= 3000 + 100
    scores = [d["score"] for d in demos]
    assert scores[-1] == max(scores)  # most relevant demo last


def test_stream_equals_invoke_under_greedy_decoding(short_chat):
    question = "Name a primary color."
    invoked = short_chat.invoke(question)
    chunks = list(short_chat.stream(question))
    assert "".join(str(c.content) for c in chunks) == invoked.content
    assert chunks[-1].usage_metadata["output_tokens"] == invoked.usage_metadata["output_tokens"]


def test_async_invoke_and_batch(short_chat):
    async def run():
        return await asyncio.gather(
            short_chat.ainvoke("Say hello."), short_chat.ainvoke("Say bye.")
        )

    first, second = asyncio.run(run())
    assert first.content
    assert second.content
    assert len(short_chat.batch(["One word for happy?"])) == 1


def test_max_new_tokens_reached_reports_length(short_chat):
    message = short_chat.invoke("Write a long essay about the history of Rome.", max_tokens=5)
    assert message.response_metadata["finish_reason"] == "length"
    assert message.usage_metadata["output_tokens"] == 5


def test_retrieval_with_real_embeddings_finds_the_right_kind_of_demo(default_chat):
    store = default_chat.selector.store
    assert store.count() == len(builtin_pool())
    best, score = store.search("Write a Python function that checks if a number is prime", k=1)[0]
    assert best.metadata["category"] == "coding"
    assert score > 0.3
    declined, _ = store.search("How can I break into my neighbour's wifi?", k=1)[0]
    assert declined.metadata["category"] == "safety"


def test_demo_token_counts_come_from_the_model_tokenizer(default_chat):
    selector = default_chat.selector
    tokenizer = default_chat.backend.tokenizer
    prepared = default_chat.prepare_prompt("How do I learn to cook?")
    for selected in prepared.demos:
        rendered = selector.format.render_demo(selected.demo) + selector.format.separator
        assert selected.tokens == len(tokenizer.encode(rendered, add_special_tokens=False))
    assert prepared.tokens == len(tokenizer(prepared.text)["input_ids"])


def test_budget_leaves_room_for_the_answer_in_a_small_context(default_chat):
    chat = ChatICAlign(
        llm=default_chat.llm,
        selector=default_chat.selector,
        context_window=1200,
        max_new_tokens=400,
    )
    prepared = chat.prepare_prompt("How do I learn to cook?")
    assert prepared.tokens + 400 <= 1200
    assert prepared.demos


def test_urial_and_hybrid_modes_use_the_constant_set(default_chat):
    system, constant = urial_set()
    urial = ChatICAlign(
        llm=default_chat.llm,
        prompt_format="urial",
        system_prompt=system,
        constant_demos=list(constant),
    )
    prepared = urial.prepare_prompt("How do I learn to cook?")
    assert prepared.text.startswith("# Instruction\n\n")
    assert [d.id for d in prepared.constant_demos] == [d.id for d in constant]
    assert prepared.demos == ()
    hybrid = ChatICAlign(
        llm=default_chat.llm,
        selector=default_chat.selector,
        prompt_format="urial",
        system_prompt=system,
        constant_demos=list(constant),
    )
    both = hybrid.prepare_prompt("How do I learn to cook?")
    assert both.demos
    assert both.text.index(constant[-1].prompt) < both.text.index(both.demos[0].demo.prompt[:40])
    assert isinstance(hybrid.format, URIALFormat)


def test_multi_turn_conversation_renders_history(default_chat):
    prepared = default_chat.prepare_prompt(
        [
            HumanMessage("Suggest a name for a cat."),
            AIMessage("Whiskers."),
            HumanMessage("Another?"),
        ]
    )
    assert prepared.text.endswith("# Query:\n```\nAnother?\n```\n\n# Answer:\n```\n")
    assert "Whiskers." in prepared.text


def test_the_default_prompt_is_urials_header_then_retrieved_demos(default_chat):
    from langchain_icalign.defaults.builtin_demos import urial_set

    system, constant = urial_set()
    prepared = default_chat.prepare_prompt("How do I keep basil alive on a windowsill?")
    assert isinstance(default_chat.format, URIALFormat)
    assert default_chat.system_prompt == system
    assert prepared.demos  # retrieved, not the constant set
    assert not any(demo.prompt in prepared.text for demo in constant)
    assert prepared.text.index(system[:40]) < prepared.text.index("# Query:")


def test_builtin_pool_token_lengths_with_the_model_tokenizer(default_chat):
    tokenizer = default_chat.backend.tokenizer
    selector = default_chat.selector
    lengths = sorted(selector.demo_tokens(d) for d in builtin_pool())
    median = lengths[len(lengths) // 2]
    assert lengths[0] >= 20
    assert 200 <= median <= 500
    # The built-in demos fit the default cap (800, chosen for Han's format: every demo fits
    # there); URIAL's fences add a few tokens, which puts 3 of 2,154 just over it.
    over = [length for length in lengths if length > selector.max_demo_tokens]
    assert len(over) <= 3
    assert all(length <= selector.max_demo_tokens + 20 for length in over)
    assert selector.demo_tokens(builtin_pool()[0]) == len(
        tokenizer.encode(
            selector.format.render_demo(builtin_pool()[0]) + selector.format.separator,
            add_special_tokens=False,
        )
    )


@pytest.mark.slow
def test_damaged_default_store_is_rebuilt(embeddings, tmp_path, monkeypatch, caplog):
    import logging

    from langchain_icalign.defaults import default_store

    monkeypatch.setenv("ICALIGN_HOME", str(tmp_path))
    default_store(embeddings, show_progress=False).close()
    folder = tmp_path / "store"
    (storage,) = folder.glob("collection/builtin_*/storage.sqlite")
    data = storage.read_bytes()
    storage.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING):
        store = default_store(embeddings, show_progress=False)
    try:
        assert "default demo store is damaged" in caplog.text
        assert str(storage) in caplog.text
        assert store.count() == len(builtin_pool())
        best, _ = store.search("Write a Python function that checks if a number is prime", k=1)[0]
        assert best.metadata["category"] == "coding"
    finally:
        store.close()
