"""TransformersBackend on a tiny random GPT-2 whose output a logits processor scripts."""

import pytest
from langchain_huggingface import HuggingFacePipeline
from transformers import pipeline

from langchain_icalign import ChatICAlign, GenerationError
from langchain_icalign.backends.base import Generation, GenerationParams
from langchain_icalign.backends.transformers import TransformersBackend

from .conftest import ScriptedLogits

SCRIPT = " The answer is 42.\n\nQuestion: next question that must never be generated"
STOP = ("\nQuestion:",)


@pytest.fixture
def scripted(byte_tokenizer):
    return ScriptedLogits(byte_tokenizer, SCRIPT)


@pytest.fixture
def backend(tiny_lm, byte_tokenizer, scripted):
    return TransformersBackend(tiny_lm, byte_tokenizer, "tiny", logits_processors=[scripted])


def test_stop_string_ends_decoding_as_soon_as_it_appears(backend, scripted):
    result = backend.generate(
        "Question: q\n\nHere", GenerationParams(max_new_tokens=200, stop=STOP)
    )
    assert result.text == " The answer is 42.\n"[: len(result.text)]
    assert result.text.strip() == "The answer is 42."
    assert result.finish_reason == "stop"
    stop_end = SCRIPT.index("\nQuestion:") + len("\nQuestion:")
    assert result.output_tokens == stop_end  # not one token past the stop string
    assert scripted.steps == stop_end


def test_max_new_tokens_gives_finish_reason_length(backend):
    result = backend.generate("x", GenerationParams(max_new_tokens=5, stop=STOP))
    assert result.finish_reason == "length"
    assert result.output_tokens == 5
    assert result.text == SCRIPT[:5]


def test_eos_ends_generation_with_reason_stop(tiny_lm, byte_tokenizer):
    backend = TransformersBackend(
        tiny_lm, byte_tokenizer, logits_processors=[ScriptedLogits(byte_tokenizer, "short")]
    )
    result = backend.generate("x", GenerationParams(max_new_tokens=50, stop=STOP))
    assert result.text == "short"
    assert result.finish_reason == "stop"


def test_stream_matches_generate_and_hides_the_stop_string(backend, scripted):
    params = GenerationParams(max_new_tokens=200, stop=STOP, temperature=0)
    events = list(backend.stream("prompt", params))
    deltas = [e for e in events if isinstance(e, str)]
    summary = events[-1]
    assert isinstance(summary, Generation)
    assert "".join(deltas) == "The answer is 42."
    assert not any("Question" in d for d in deltas)
    scripted.reset()
    assert backend.generate("prompt", params).text.strip() == "".join(deltas)


def test_closing_a_stream_early_stops_decoding(tiny_lm, byte_tokenizer):
    scripted = ScriptedLogits(byte_tokenizer, "word " * 200)
    backend = TransformersBackend(tiny_lm, byte_tokenizer, logits_processors=[scripted])
    stream = backend.stream("x", GenerationParams(max_new_tokens=1000, stop=STOP))
    next(stream)
    stream.close()
    assert scripted.steps < 1000


def test_prompt_special_token_text_is_plain_text(backend, byte_tokenizer):
    assert backend.count_tokens("<eos>") == 1 + len("<eos>")  # BOS + one token per byte
    assert "<eos>" in backend.special_tokens


def test_seeded_sampling_is_reproducible(tiny_lm, byte_tokenizer):
    backend = TransformersBackend(tiny_lm, byte_tokenizer)
    params = GenerationParams(max_new_tokens=12, temperature=1.0, seed=7)
    assert backend.generate("abc", params).text == backend.generate("abc", params).text


def test_backend_failure_is_reported_not_hung(tiny_lm, byte_tokenizer):
    class Boom:
        def __call__(self, input_ids, scores):
            raise RuntimeError("kaboom")

    backend = TransformersBackend(tiny_lm, byte_tokenizer, logits_processors=[Boom()])
    from langchain_icalign import GenerationError

    with pytest.raises(GenerationError, match="kaboom"):
        backend.generate("x", GenerationParams(max_new_tokens=3))
    with pytest.raises(GenerationError, match="kaboom"):
        list(backend.stream("x", GenerationParams(max_new_tokens=3)))


def test_context_window_read_from_model_config(backend):
    assert backend.context_window == 4096


def test_chat_model_uses_pipeline_model_directly(tiny_lm, byte_tokenizer, monkeypatch):
    pipe = pipeline("text-generation", model=tiny_lm, tokenizer=byte_tokenizer)
    llm = HuggingFacePipeline(pipeline=pipe, model_id="tiny-gpt2")
    chat = ChatICAlign(llm=llm, max_new_tokens=100, temperature=0)
    assert isinstance(chat.backend, TransformersBackend)
    chat.backend.logits_processors.append(ScriptedLogits(byte_tokenizer, SCRIPT))
    message = chat.invoke("What is six times seven?")
    assert message.content == "The answer is 42."
    assert message.response_metadata["model_name"] == "tiny-gpt2"
    assert message.response_metadata["finish_reason"] == "stop"
    prompt_text = chat.prepare_prompt([("human", "What is six times seven?")]).text
    # The model reads the prompt's tokens plus the tokenizer's own start token, which
    # get_num_tokens (the text's tokens, as LangChain defines it) does not count.
    model_input = byte_tokenizer(prompt_text, split_special_tokens=True)["input_ids"]
    assert message.usage_metadata["input_tokens"] == len(model_input)
    assert chat.get_num_tokens(prompt_text) == len(chat.get_token_ids(prompt_text))
    assert chat.get_token_ids("ab") == list(b"ab") or len(chat.get_token_ids("ab")) == 2


def test_generation_stops_where_the_forced_json_object_closes(tiny_lm, byte_tokenizer):
    scripted = ScriptedLogits(
        byte_tokenizer, '"a": 1, "b": {"c": "}"}} trailing words that never come'
    )
    backend = TransformersBackend(tiny_lm, byte_tokenizer, logits_processors=[scripted])
    params = GenerationParams(max_new_tokens=200, answer_prefix="{", json_after="")
    result = backend.generate("x", params)
    assert result.text == '"a": 1, "b": {"c": "}"}}'
    assert result.output_tokens == len(result.text)  # stopped on the closing brace
    assert result.finish_reason == "stop"


def _tiny_chat(tiny_lm, byte_tokenizer, **kwargs):
    pipe = pipeline("text-generation", model=tiny_lm, tokenizer=byte_tokenizer)
    llm = HuggingFacePipeline(pipeline=pipe, model_id="tiny-gpt2")
    return ChatICAlign(llm=llm, temperature=0, **kwargs)


def test_max_tokens_zero_is_a_value_error_not_a_generation_error(tiny_lm, byte_tokenizer):
    scripted = ScriptedLogits(byte_tokenizer, SCRIPT)
    chat = _tiny_chat(tiny_lm, byte_tokenizer)
    chat.backend.logits_processors.append(scripted)
    with pytest.raises(ValueError, match="max_tokens") as caught:
        chat.invoke("What is six times seven?", max_tokens=0)
    assert not isinstance(caught.value, GenerationError)
    assert scripted.steps == 0  # refused before the model ran


def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


@pytest.mark.parametrize("max_tokens", [32, 8, 3])
def test_usage_of_a_several_step_answer_stays_consistent(tiny_lm, byte_tokenizer, max_tokens):
    # A forced call among two tools runs in steps (the name, then each argument), each
    # step reading the prompt again from the prefix cache.
    chat = _tiny_chat(tiny_lm, byte_tokenizer, max_new_tokens=64)
    bound = chat.bind_tools([add, get_weather], tool_choice="any")
    for _ in range(2):  # the second call also finds its prompt in the cache
        message = bound.invoke("What is two plus three?", max_tokens=max_tokens)
        usage = message.usage_metadata
        assert usage is not None
        cache_read = usage.get("input_token_details", {}).get("cache_read", 0)
        assert cache_read <= usage["input_tokens"]
        assert usage["input_tokens"] == message.response_metadata["prompt_tokens"]
        assert usage["output_tokens"] <= max_tokens
    assert cache_read == usage["input_tokens"] - 1  # all of the repeated prompt but its last


def test_usage_of_a_guided_json_answer_stays_within_max_tokens(tiny_lm, byte_tokenizer):
    schema = {
        "title": "Movie",
        "type": "object",
        "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
        "required": ["title", "year"],
    }
    for max_tokens in (1, 2, 40):
        chat = _tiny_chat(tiny_lm, byte_tokenizer, max_new_tokens=max_tokens)
        structured = chat.with_structured_output(schema, method="json_schema", include_raw=True)
        raw = structured.invoke("A film from 1979?")["raw"]
        usage = raw.usage_metadata
        assert usage["output_tokens"] <= max_tokens
        assert usage.get("input_token_details", {}).get("cache_read", 0) <= usage["input_tokens"]
