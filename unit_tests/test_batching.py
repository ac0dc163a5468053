"""Batched generation (left padding) and `ChatICAlign.batch`: the answers of the plain path."""

import asyncio

import pytest
import torch
from langchain_huggingface import HuggingFacePipeline
from transformers import pipeline

from langchain_icalign import AlignmentExampleSelector, ChatICAlign
from langchain_icalign.backends.base import GenerationParams
from langchain_icalign.backends.batching import BatchWindow, embed_queries
from langchain_icalign.backends.transformers import TransformersBackend

from .conftest import BagOfWordsEmbeddings, count_words

GREEDY = GenerationParams(max_new_tokens=100, temperature=0, stop=("\nQuestion:",))
PROMPTS = [
    "Question: What is tea?\n\nHere’s an example answer:",
    "Question: Why?\n\nHere’s an example answer:",
    "Question: How do bees fly, and why do they buzz so loudly?\n\nHere’s an example answer:",
]


class PromptScript:
    """Forces the row of PROMPTS[i] to write scripts[i] (told apart by length: left padding safe)."""

    def __init__(self, tokenizer, scripts):
        self.tokenizer = tokenizer
        self.scripts = {
            len(tokenizer.encode(prompt)): [
                *tokenizer.encode(script, add_special_tokens=False),
                tokenizer.eos_token_id,
            ]
            for prompt, script in zip(PROMPTS, scripts, strict=True)
        }
        self.prompt_length = None

    def __call__(self, input_ids, scores):
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        position = input_ids.shape[1] - self.prompt_length
        forced = torch.full_like(scores, float("-inf"))
        pad = self.tokenizer.pad_token_id
        for row in range(input_ids.shape[0]):
            real = int((input_ids[row, : self.prompt_length] != pad).sum())
            script = self.scripts[real]
            forced[row, script[min(position, len(script) - 1)]] = 0.0
        return forced

    def reset(self):
        self.prompt_length = None


SCRIPTS = [
    " Tea is a drink.\nQuestion: never",
    " Because.",  # ends with <eos>
    " They flap fast and the air hums around them, which we hear as a buzz.\nQuestion: no",
]


@pytest.fixture
def backend(tiny_lm, byte_tokenizer):
    return TransformersBackend(tiny_lm, byte_tokenizer, prefix_cache=False)


def _plain(backend, prompts, params):
    return [backend.generate(p, params) for p in prompts]


def test_batch_of_random_model_equals_one_by_one(backend):
    params = GenerationParams(max_new_tokens=20, temperature=0)
    assert backend.generate_batch(PROMPTS, params) == _plain(backend, PROMPTS, params)


def test_batch_rows_stop_on_their_own_stop_string_or_eos(backend, byte_tokenizer):
    script = PromptScript(byte_tokenizer, SCRIPTS)
    backend.logits_processors.append(script)
    batched = backend.generate_batch(PROMPTS, GREEDY)
    plain = []
    for prompt in PROMPTS:
        script.reset()
        plain.append(backend.generate(prompt, GREEDY))
    assert batched == plain
    assert len({g.output_tokens for g in batched}) == 3
    assert all(g.finish_reason == "stop" for g in batched)
    assert not any("Question" in g.text for g in batched)


def test_batch_reports_length_for_rows_cut_by_max_new_tokens(backend, byte_tokenizer):
    script = PromptScript(byte_tokenizer, SCRIPTS)
    backend.logits_processors.append(script)
    params = GenerationParams(max_new_tokens=12, temperature=0, stop=("\nQuestion:",))
    batched = backend.generate_batch(PROMPTS, params)
    assert [g.finish_reason for g in batched] == ["length", "stop", "length"]
    assert [g.output_tokens for g in batched] == [12, len(" Because.") + 1, 12]


def test_the_default_backend_batch_runs_prompts_one_by_one():
    from langchain_icalign.backends.llm import LLMBackend

    from .conftest import RecordingLLM

    llm_backend = LLMBackend(RecordingLLM(responses=["a", "b"]))
    results = llm_backend.generate_batch(["p1", "p2"], GenerationParams())
    assert [r.text for r in results] == ["a", "b"]


@pytest.fixture
def chat(tiny_lm, byte_tokenizer, store, demos):
    store.add_demos(demos)
    selector = AlignmentExampleSelector(store=store, token_counter=count_words, max_tokens=60)
    pipe = pipeline("text-generation", model=tiny_lm, tokenizer=byte_tokenizer)
    llm = HuggingFacePipeline(pipeline=pipe, model_id="tiny-gpt2")
    model = ChatICAlign(llm=llm, selector=selector, max_new_tokens=16, temperature=0)
    model.backend.prefix_cache = None
    return model


QUESTIONS = [
    "How do I bake bread?",
    "What is the capital of France?",
    [("system", "Be brief."), ("human", "Explain photosynthesis.")],
    "Write a Python function.",
]


def _spy(chat):
    sizes = []
    original = chat.backend.generate_batch

    def spy(prompts, params):
        sizes.append(len(prompts))
        return original(prompts, params)

    chat.backend.generate_batch = spy
    return sizes


def _same(a, b):
    assert [m.content for m in a] == [m.content for m in b]
    assert [m.usage_metadata for m in a] == [m.usage_metadata for m in b]
    assert [m.response_metadata["demos"] for m in a] == [m.response_metadata["demos"] for m in b]


def test_chat_batch_decodes_together_and_answers_as_invoke(chat):
    plain = [chat.invoke(q) for q in QUESTIONS]
    sizes = _spy(chat)
    batched = chat.batch(QUESTIONS)
    _same(batched, plain)
    assert sizes == [len(QUESTIONS)]


def test_chat_batch_respects_max_concurrency(chat):
    plain = [chat.invoke(q) for q in QUESTIONS]
    sizes = _spy(chat)
    batched = chat.batch(QUESTIONS, config={"max_concurrency": 2})
    _same(batched, plain)
    assert sum(sizes) == len(QUESTIONS)
    assert max(sizes) <= 2


def test_chat_abatch_decodes_together(chat):
    plain = [chat.invoke(q) for q in QUESTIONS]
    sizes = _spy(chat)
    batched = asyncio.run(chat.abatch(QUESTIONS))
    _same(batched, plain)
    assert sizes == [len(QUESTIONS)]


def test_chat_batch_embeds_the_queries_together(chat, monkeypatch):
    embeddings = chat.selector.store.embeddings
    monkeypatch.setattr(BagOfWordsEmbeddings, "embeds_queries_as_documents", True, raising=False)
    before = embeddings.calls
    chat.batch(QUESTIONS)
    assert embeddings.calls - before == 1  # one embed_documents call for four queries


def test_chat_batch_returns_an_inputs_error_and_answers_the_rest(chat):
    too_long = "word " * 5000  # over the tiny model's 4096-token window
    plain = [chat.invoke(q) for q in QUESTIONS[:2]]
    results = chat.batch([QUESTIONS[0], too_long, QUESTIONS[1]], return_exceptions=True)
    assert isinstance(results[1], ValueError)
    _same([results[0], results[2]], plain)


def test_window_runs_without_an_input_that_never_arrives(backend):
    window = BatchWindow(backend, expected=2, wait_s=0.05)
    result = window.submit(PROMPTS[0], GenerationParams(max_new_tokens=3, temperature=0))
    assert result.output_tokens == 3
    assert window.batch_sizes == [1]


def test_embed_queries_keeps_order_and_duplicates(embeddings):
    vectors = embed_queries(embeddings, ["a b", "c", "a b"])
    assert vectors[0] == vectors[2] == embeddings.embed_query("a b")
    assert vectors[1] == embeddings.embed_query("c")


class _RecordingBatchBackend:
    """Answers each prompt with "ok"; records the prompts and params of each batch."""

    def __init__(self):
        self.batches = []

    def count_tokens(self, text):
        return len(text.split())

    def generate_batch(self, prompts, params):
        from langchain_icalign.backends.base import Generation

        self.batches.append((list(prompts), params))
        return [Generation("ok", self.count_tokens(p), 1, "stop") for p in prompts]


def test_window_counts_the_time_before_the_batch_and_skips_inputs_out_of_time():
    import threading
    import time

    backend = _RecordingBatchBackend()
    window = BatchWindow(backend, expected=3, wait_s=5)
    params = GenerationParams(max_new_tokens=3, timeout=1.0)
    now = time.monotonic()
    started = {"late": now - 2.0, "early": now - 0.6, "fresh": now}
    results = {}

    def run(name):
        results[name] = window.submit(f"{name} prompt", params, started[name])

    threads = [threading.Thread(target=run, args=(name,)) for name in started]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results["late"].finish_reason == "timeout"
    assert (results["late"].text, results["late"].input_tokens) == ("", 2)
    assert results["early"].text == results["fresh"].text == "ok"
    [(prompts, run_params)] = backend.batches
    assert sorted(prompts) == ["early prompt", "fresh prompt"]  # the late one never ran
    assert run_params.timeout is not None
    assert run_params.timeout <= 0.4  # what the earliest deadline leaves, not 1.0


def test_chat_batch_counts_preparation_against_the_timeout(chat, monkeypatch):
    import time

    prepare = chat._prepare

    def slow_prepare(*args, **kwargs):
        time.sleep(0.3)
        return prepare(*args, **kwargs)

    monkeypatch.setattr(chat, "_prepare", slow_prepare)
    answers = chat.batch(QUESTIONS[:2], timeout=0.2)
    assert [a.response_metadata["finish_reason"] for a in answers] == ["timeout", "timeout"]
    assert [a.content for a in answers] == ["", ""]
