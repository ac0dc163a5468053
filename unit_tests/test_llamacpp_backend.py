"""The llama.cpp backend's own logic, on a stand-in for `llama_cpp.Llama` (no package needed)."""

import json

import pytest

from langchain_icalign import ChatICAlign
from langchain_icalign.backends.base import Generation, GenerationParams
from langchain_icalign.backends.llamacpp import LlamaCppBackend

SCRIPT = " The answer is 42.\n\nQuestion: never shown"
STOP = ("\nQuestion:",)


class FakeLlama:
    """Tokens are bytes (+ BOS 1); completions stream a script one character a chunk."""

    model_path = "/models/fake-model.gguf"

    def __init__(self, script=SCRIPT, honour_stop=False):
        self.metadata = {"general.name": "fake-gguf"}
        self.script = script
        self.honour_stop = honour_stop
        self.calls = []
        self.produced = 0
        self.closed = False

    def n_ctx(self):
        return 2048

    def tokenize(self, text, add_bos=True, special=False):
        assert special is False  # special-token lookalikes stay plain text
        return ([1] if add_bos else []) + list(text)

    def detokenize(self, tokens, special=False):
        return {1: b"<bos>", 2: b"<eos>"}.get(tokens[0], b"")

    def token_bos(self):
        return 1

    def token_eos(self):
        return 2

    def create_completion(self, prompt, **kwargs):
        self.calls.append((prompt, kwargs))
        assert kwargs["stream"] is True
        assert isinstance(prompt, list)  # token ids, never text tokenised with specials
        text = self.script[: kwargs["max_tokens"]]
        stops = kwargs.get("stop") or []
        if self.honour_stop:
            cut = [text.find(s) for s in stops if s in text]
            text = text[: min(cut)] if cut else text
        reason = "length" if len(text) >= kwargs["max_tokens"] else "stop"

        def chunks():
            try:
                for char in text:
                    self.produced += 1
                    yield {"choices": [{"text": char, "finish_reason": None}]}
                yield {"choices": [{"text": "", "finish_reason": reason}]}
            finally:
                self.closed = True

        return chunks()


@pytest.mark.parametrize("honour_stop", [False, True])
def test_generate_cuts_at_the_stop_string_and_stops_decoding(honour_stop):
    llm = FakeLlama(honour_stop=honour_stop)
    backend = LlamaCppBackend(llm)
    result = backend.generate(
        "Question: q\n\nHere", GenerationParams(max_new_tokens=100, stop=STOP)
    )
    assert result.text.strip() == "The answer is 42."
    assert result.finish_reason == "stop"
    assert llm.produced <= SCRIPT.index("\nQuestion:") + len("\nQuestion:")
    assert llm.closed
    assert result.input_tokens == 1 + len(b"Question: q\n\nHere")


def test_stream_never_shows_the_stop_string_and_matches_generate():
    backend = LlamaCppBackend(FakeLlama())
    params = GenerationParams(max_new_tokens=100, stop=STOP, temperature=0)
    events = list(backend.stream("p", params))
    assert isinstance(events[-1], Generation)
    text = "".join(e for e in events if isinstance(e, str))
    assert text == "The answer is 42."
    assert not any("Question" in e for e in events if isinstance(e, str))
    assert backend.generate("p", params).text.strip() == text


def test_length_and_sampling_options_are_passed_through():
    llm = FakeLlama()
    backend = LlamaCppBackend(llm)
    result = backend.generate("p", GenerationParams(max_new_tokens=5, stop=STOP, temperature=0))
    assert (result.finish_reason, result.output_tokens, result.text) == ("length", 5, SCRIPT[:5])
    _, greedy = llm.calls[-1]
    assert (greedy["temperature"], greedy["top_k"], greedy["min_p"]) == (0.0, 0, 0.0)
    backend.generate(
        "p",
        GenerationParams(max_new_tokens=5, temperature=0.7, top_p=0.9, top_k=50, seed=3),
    )
    _, sampled = llm.calls[-1]
    assert (sampled["temperature"], sampled["top_p"], sampled["top_k"], sampled["seed"]) == (
        0.7,
        0.9,
        50,
        3,
    )


def test_json_answer_ends_where_the_object_closes():
    script = '{"name": "x", "age": 3} and then some rambling'
    llm = FakeLlama(script=script)
    backend = LlamaCppBackend(llm)
    result = backend.generate("p", GenerationParams(max_new_tokens=100, json_after=""))
    assert json.loads(result.text) == {"name": "x", "age": 3}
    assert llm.produced == len('{"name": "x", "age": 3}')


def test_closing_a_stream_early_stops_decoding():
    llm = FakeLlama(script="word " * 200)
    backend = LlamaCppBackend(llm)
    stream = backend.stream("x", GenerationParams(max_new_tokens=1000, stop=STOP))
    next(stream)
    stream.close()
    assert llm.closed
    assert llm.produced < 1000


def test_metadata_counts_and_special_tokens():
    backend = LlamaCppBackend(FakeLlama())
    assert backend.model_name == "fake-gguf"
    assert backend.context_window == 2048
    assert backend.count_tokens("<eos>") == 1 + len("<eos>")
    assert backend.count_text_tokens("ab") == 2
    assert set(backend.special_tokens) == {"<bos>", "<eos>"}


def test_chat_model_on_the_llamacpp_backend(store, demos):
    from langchain_icalign import AlignmentExampleSelector

    store.add_demos(demos)
    backend = LlamaCppBackend(FakeLlama())
    selector = AlignmentExampleSelector(store=store, token_counter=backend.count_text_tokens)
    chat = ChatICAlign(backend=backend, selector=selector, temperature=0, model_name="fake-gguf")
    assert chat.backend is backend
    message = chat.invoke("What is six times seven?")
    assert message.content == "The answer is 42."
    assert message.response_metadata["model_name"] == "fake-gguf"
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.response_metadata["demos"]
    assert message.usage_metadata["input_tokens"] == chat.get_num_tokens(
        chat.prepare_prompt("What is six times seven?").text
    )
    chunks = list(chat.stream("What is six times seven?"))
    assert "".join(c.content for c in chunks) == "The answer is 42."
    assert chat.batch(["a?", "b?"])[1].content == "The answer is 42."


class SlowFakeLlama(FakeLlama):
    """A character every `delay_s`."""

    def __init__(self, delay_s=0.02, **kwargs):
        super().__init__(**kwargs)
        self.delay_s = delay_s

    def create_completion(self, prompt, **kwargs):
        import time

        for chunk in super().create_completion(prompt, **kwargs):
            time.sleep(self.delay_s)
            yield chunk


def test_no_time_left_after_waiting_for_the_model_means_no_generation():
    import threading
    import time

    llm = SlowFakeLlama(script="word " * 40)
    backend = LlamaCppBackend(llm)
    first = threading.Thread(
        target=backend.generate, args=("x", GenerationParams(max_new_tokens=1000))
    )
    first.start()  # holds the model for 200 characters x 20 ms
    time.sleep(0.1)
    started = time.monotonic()
    late = backend.generate("y", GenerationParams(max_new_tokens=1000, timeout=0.3))
    waited = time.monotonic() - started
    first.join()
    assert late == Generation("", 2, 0, "timeout")
    assert waited > 0.3  # it did wait for the lock
    assert len(llm.calls) == 1  # the late call never started a completion


def test_timeout_stops_decoding_between_tokens():
    llm = SlowFakeLlama(script="word " * 40)
    backend = LlamaCppBackend(llm)
    result = backend.generate("x", GenerationParams(max_new_tokens=1000, timeout=0.2))
    assert result.finish_reason == "timeout"
    assert 0 < result.output_tokens < 200
    assert llm.closed


class ScriptedFakeLlama(FakeLlama):
    """One script per completion, in order; the grammar (GBNF text here) is recorded."""

    def __init__(self, scripts):
        super().__init__(script=scripts[0])
        self.scripts = list(scripts)

    def n_ctx(self):
        return 8192  # a character a token: room for the tool demos

    def create_completion(self, prompt, **kwargs):
        self.script = self.scripts.pop(0)
        return super().create_completion(prompt, **kwargs)


def _grammar_backend(llm, monkeypatch):
    backend = LlamaCppBackend(llm)
    monkeypatch.setattr(backend, "grammar_from_gbnf", lambda gbnf: gbnf)
    return backend


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_a_forced_call_is_decoded_under_the_requests_grammar(monkeypatch):
    llm = ScriptedFakeLlama(['{"city": "Oslo"}}</tool_call> and more'])
    backend = _grammar_backend(llm, monkeypatch)
    assert backend.supports_grammar
    chat = ChatICAlign(backend=backend, temperature=0, model_name="fake-gguf")
    message = chat.bind_tools([WEATHER], tool_choice="get_weather").invoke("Weather in Oslo?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [
        ("get_weather", {"city": "Oslo"})
    ]
    prompt, options = llm.calls[-1]
    gbnf = options["grammar"]
    assert gbnf.startswith("root ::=")
    assert '"\\"city\\": "' in gbnf
    assert bytes(prompt).decode().endswith('{"name": "get_weather", "arguments": ')  # forced


def test_under_auto_only_the_call_after_the_tag_is_constrained(monkeypatch):
    llm = ScriptedFakeLlama(
        [
            'Let me look. <tool_call>{"name": "get_weather"',
            '{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>',
        ]
    )
    backend = _grammar_backend(llm, monkeypatch)
    chat = ChatICAlign(backend=backend, temperature=0, max_new_tokens=200, model_name="fake-gguf")
    message = chat.bind_tools([WEATHER]).invoke("Weather in Oslo?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [
        ("get_weather", {"city": "Oslo"})
    ]
    (_, free), (prompt, constrained) = llm.calls
    assert "grammar" not in free
    assert constrained["grammar"].startswith("root ::=")
    assert bytes(prompt).decode().endswith("Let me look. <tool_call>")


def test_plain_answers_take_no_grammar():
    llm = FakeLlama()
    LlamaCppBackend(llm).generate("p", GenerationParams(max_new_tokens=10, stop=STOP))
    assert "grammar" not in llm.calls[-1][1]
