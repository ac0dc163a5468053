"""`ServerBackend` against a stand-in OpenAI completions server on a local port (issue 15)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from langchain_icalign import ChatICAlign
from langchain_icalign.backends.base import Generation, GenerationParams
from langchain_icalign.backends.gbnf import matches, to_gbnf
from langchain_icalign.backends.server import ServerBackend
from langchain_icalign.errors import GenerationError, ModelServerError
from langchain_icalign.tools.grammar import Grammar, call_grammar, json_grammar

pytestmark = pytest.mark.enable_socket

WEATHER = {
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}


def _pieces(text: str) -> list[str]:
    """The stand-in's tokens: each word with the whitespace before it."""
    return re.findall(r"\s*\S+", text)


class FakeServer:
    """Answers with `answers` in turn (word by word), like llama-cpp-python's server."""

    def __init__(self) -> None:
        self.answers: list[str] = ["Paris is the capital.\nQuestion: next"]
        self.requests: list[dict] = []
        self.mode = "ok"  # "garbage", "die", "fail_once"
        self.failures = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _json(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/v1/models":
                    self._json(200, {"data": [{"id": "fake-model"}]})
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/extras/tokenize":
                    self._json(200, {"tokens": [1] + [7] * len(body["input"].split())})
                elif self.path == "/v1/completions":
                    server.requests.append(body)
                    server.complete(self, body)
                else:
                    self._json(404, {"error": "not found"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def complete(self, handler: BaseHTTPRequestHandler, body: dict) -> None:
        if self.mode == "garbage":
            data = b"<html>502 Bad Gateway</html>"
            handler.send_response(200)
            handler.send_header("Content-Type", "text/html")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
            return
        if self.mode == "fail_once" and self.failures == 0:
            self.failures += 1
            handler._json(503, {"error": "loading"})
            return
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        text, reason = "", "length"
        for count, piece in enumerate(_pieces(answer)):
            if count >= body.get("max_tokens", 16):
                break
            text += piece
            cut = min((text.find(s) for s in body.get("stop") or [] if s in text), default=-1)
            if cut >= 0:
                text, reason = text[:cut], "stop"
                break
        else:
            reason = "stop"
        used = len(_pieces(text))
        usage = {"prompt_tokens": 1 + len(body["prompt"].split()), "completion_tokens": used}
        if not body.get("stream"):
            choice = {"text": text, "index": 0, "finish_reason": reason}
            handler._json(
                200,
                {
                    "id": "c",
                    "object": "text_completion",
                    "created": 0,
                    "model": "fake-model",
                    "choices": [choice],
                    "usage": usage,
                },
            )
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        for index, piece in enumerate(_pieces(text)):
            if self.mode == "die" and index == 2:
                handler.wfile.flush()
                handler.connection.shutdown(socket.SHUT_RDWR)
                handler.connection.close()
                return
            chunk = {
                "id": "c",
                "object": "text_completion",
                "created": 0,
                "model": "fake-model",
                "choices": [{"text": piece, "index": 0, "finish_reason": None}],
            }
            handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            handler.wfile.flush()
        last = {
            "id": "c",
            "object": "text_completion",
            "created": 0,
            "model": "fake-model",
            "choices": [{"text": "", "index": 0, "finish_reason": reason}],
        }
        handler.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
        handler.wfile.flush()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    yield fake
    fake.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_generation_stops_at_the_stop_string_and_counts_with_the_server(server):
    backend = ServerBackend(server.url, context_window=2048)
    assert backend.model_name == "fake-model"
    params = GenerationParams(max_new_tokens=20, temperature=0, stop=("\nQuestion:",))
    result = backend.generate("Question: capital of France?", params)
    assert result.text == "Paris is the capital."
    assert result.finish_reason == "stop"
    assert result.input_tokens == backend.count_tokens("Question: capital of France?") == 5
    assert backend.count_text_tokens("Question: capital of France?") == 4
    assert server.requests[-1]["stop"] == ["\nQuestion:"]
    assert server.requests[-1]["max_tokens"] == 20


def test_stream_never_shows_part_of_a_stop_string(server):
    server.answers = ["One two\nQues and more"]
    backend = ServerBackend(server.url, context_window=2048)
    params = GenerationParams(max_new_tokens=20, temperature=0, stop=("\nQuestion:",))
    events = list(backend.stream("Q", params))
    assert isinstance(events[-1], Generation)
    text = "".join(e for e in events if isinstance(e, str))
    assert text == "One two\nQues and more"
    server.answers = ["One two\nQuestion: three"]
    events = list(backend.stream("Q", params))
    assert "".join(e for e in events if isinstance(e, str)) == "One two"
    assert not any(isinstance(e, str) and "Q" in e for e in events)


def test_budget_is_the_servers_max_tokens(server):
    server.answers = ["a b c d e f g h"]
    backend = ServerBackend(server.url, context_window=2048)
    result = backend.generate("Q", GenerationParams(max_new_tokens=3, temperature=0))
    assert result.finish_reason == "length"
    assert result.output_tokens == 3
    assert result.text.split() == ["a", "b", "c"]


def test_chat_model_reports_the_servers_usage(server):
    server.answers = ["Paris."]
    chat = ChatICAlign.from_server(server.url, use_demos=False, temperature=0, max_tokens=8)
    message = chat.invoke("Capital of France?")
    assert message.content == "Paris."
    request = server.requests[-1]
    assert message.usage_metadata["input_tokens"] == 1 + len(request["prompt"].split())
    assert message.usage_metadata["output_tokens"] == 1
    assert message.response_metadata["model_name"] == "fake-model"


def test_forced_tool_call_sends_its_grammar_to_the_server(server):
    server.answers = ['{"city": "Oslo"}}']
    chat = ChatICAlign.from_server(server.url, use_demos=False, temperature=0, max_tokens=32)
    bound = chat.bind_tools([{"type": "function", "function": WEATHER}], tool_choice="get_weather")
    message = bound.invoke("Weather in Oslo?")
    grammar = server.requests[-1]["grammar"]
    assert grammar.startswith("root ::=")
    assert '"\\"city\\": "' in grammar
    assert message.tool_calls[0]["name"] == "get_weather"
    assert message.tool_calls[0]["args"] == {"city": "Oslo"}


def test_without_a_grammar_field_a_failed_answer_is_checked_and_redone_once(server):
    server.answers = ['{"town": "Oslo"}}', '{"city": "Oslo"}}']
    chat = ChatICAlign.from_server(
        server.url, use_demos=False, temperature=0, max_tokens=32, grammar_field=None
    )
    bound = chat.bind_tools([{"type": "function", "function": WEATHER}], tool_choice="get_weather")
    message = bound.invoke("Weather in Oslo?")
    assert len(server.requests) == 2
    assert "grammar" not in server.requests[0]
    assert server.requests[1]["temperature"] == pytest.approx(0.7)
    assert message.tool_calls[0]["args"] == {"city": "Oslo"}


def test_a_server_that_is_down_is_named_in_the_error():
    url = f"http://127.0.0.1:{_free_port()}/v1"
    started = time.monotonic()
    with pytest.raises(ModelServerError, match=r"127\.0\.0\.1.*cannot be reached") as caught:
        ServerBackend(url, model="m", context_window=512, max_retries=0).generate(
            "Q", GenerationParams(max_new_tokens=4)
        )
    assert isinstance(caught.value, GenerationError)
    assert time.monotonic() - started < 10


def test_an_answer_that_is_not_a_completion_is_a_clear_error(server):
    server.mode = "garbage"
    backend = ServerBackend(server.url, context_window=512, max_retries=0)
    with pytest.raises(ModelServerError, match="not an OpenAI completion"):
        backend.generate("Q", GenerationParams(max_new_tokens=4))


def test_a_server_that_dies_mid_answer_raises_instead_of_hanging(server):
    server.mode = "die"
    server.answers = ["one two three four five six"]
    backend = ServerBackend(server.url, context_window=512, request_timeout=5)
    started = time.monotonic()
    with pytest.raises(ModelServerError, match=server.url):
        list(backend.stream("Q", GenerationParams(max_new_tokens=10)))
    assert time.monotonic() - started < 5


def test_failed_requests_are_retried_max_retries_times(server):
    server.mode = "fail_once"
    backend = ServerBackend(server.url, context_window=512, max_retries=0)
    with pytest.raises(ModelServerError, match="HTTP 503"):
        backend.generate("Q", GenerationParams(max_new_tokens=4))
    server.failures = 0
    backend = ServerBackend(server.url, context_window=512, max_retries=1)
    assert backend.generate("Q", GenerationParams(max_new_tokens=4, stop=("\n",))).text


def test_a_base_url_without_v1_gets_it():
    backend = ServerBackend("http://127.0.0.1:1", model="m", context_window=8)
    assert backend.base_url == "http://127.0.0.1:1/v1"
    assert backend.root_url == "http://127.0.0.1:1"


def test_gbnf_starts_after_the_forced_text():
    single = Grammar(call_grammar([WEATHER]), forced='{"name": "get_weather", "arguments": ')
    text = to_gbnf(single)
    assert text is not None
    assert text.splitlines()[0].startswith("root ::= ")
    assert "get_weather" not in text  # the name is in the prompt already
    several = Grammar(call_grammar([WEATHER, {"name": "b"}]), forced='{"name": "')
    text = to_gbnf(several)
    assert text is not None
    assert '"get_weather\\", \\"arguments\\": "' in text
    assert '"b\\", \\"arguments\\": "' in text
    assert to_gbnf(Grammar(json_grammar(None))) is not None
    assert to_gbnf(Grammar(call_grammar([WEATHER]), after="<tool_call>")) is None


def test_matches_checks_names_and_arguments():
    grammar = Grammar(call_grammar([WEATHER]), forced='{"name": "')
    assert matches(grammar, '{"name": "get_weather", "arguments": {"city": "Oslo"}}')
    assert matches(grammar, '{"name": "get_weather", "arguments": {"city": "Oslo", "days": 2}}')
    assert not matches(grammar, '{"name": "get_weathr", "arguments": {"city": "Oslo"}}')
    assert not matches(grammar, '{"name": "get_weather", "arguments": {"days": 2}}')
    assert not matches(grammar, '{"name": "get_weather", "arguments": {"city": 3}}')
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert matches(Grammar(json_grammar(schema)), '{"n": 3}')
    assert not matches(Grammar(json_grammar(schema)), '{"n": "3"}')
