"""Generation on a model server that speaks OpenAI's completions API (llama.cpp, vLLM, TGI).

Install with `pip install "langchain-icalign[server]"` (the `openai` client). The prompt is
rendered here, as for the in-process backends; the server only continues it:

```python
from langchain_icalign import ChatICAlign

chat = ChatICAlign.from_server("http://127.0.0.1:8080/v1", temperature=0)
chat.invoke("How do I make a good cup of tea?")
```

What each guarantee becomes on a server:

- Stop strings go with the request; the answer is cut at them again here, and streamed
  text never shows any part of one (`StopStringFilter`).
- Token budgets are exact: `max_tokens` is the server's, and prompts are counted by the
  server's own tokenizer (`/tokenize` of llama.cpp's server and vLLM, `/extras/tokenize` of
  llama-cpp-python's) or by a local tokenizer folder given as `tokenizer=` (never a hub
  download). Usage comes from the server where it reports it.
- Forced tool calls and JSON answers are decoded under the request's grammar as GBNF
  (`grammar_field`, "grammar" for llama.cpp's servers), so they keep their guarantee. A
  server that cannot take a grammar (`grammar_field=None`) has the answer checked against
  the grammar and generated once more, sampled, when it fails (`gbnf.matches`).
- Timeouts: `request_timeout` bounds each request (connecting, and each wait for data), a
  call's `timeout` the whole answer. A server that is down, stops mid-answer or answers
  what is not a completion raises `ModelServerError` naming its URL. Requests that fail
  before an answer starts are retried `max_retries` times (the `openai` client's backoff);
  a stream that breaks is not (its text was shown already).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from langchain_icalign.backends.base import (
    FinishReason,
    Generation,
    GenerationBackend,
    GenerationParams,
)
from langchain_icalign.backends.grammar_requests import GrammarRequests
from langchain_icalign.backends.server_tokens import ServerTokenCounter
from langchain_icalign.backends.stop_strings import truncate_answer
from langchain_icalign.errors import ModelServerError
from langchain_icalign.neutralizing import control_tokens

__all__ = ["ServerBackend"]


def _require_openai() -> Any:
    try:
        import openai
    except ImportError as error:
        msg = 'the server backend needs the openai client: pip install "langchain-icalign[server]"'
        raise ImportError(msg) from error
    return openai


def _split_url(base_url: str) -> tuple[str, str]:
    """The API's base URL (ending in /v1) and the server's root URL."""
    parts = urlsplit(base_url.rstrip("/"))
    if not parts.scheme or not parts.netloc:
        msg = f"base_url must be an http(s) URL such as http://127.0.0.1:8080/v1, got {base_url!r}"
        raise ValueError(msg)
    path = parts.path.rstrip("/")
    root_path = path.removesuffix("/v1")
    root = urlunsplit((parts.scheme, parts.netloc, root_path, "", ""))
    return root + "/v1", root


class ServerBackend(GenerationBackend):
    """Runs the prompt on an OpenAI-compatible completions server.

    Args:
        base_url: The API's URL, for example `http://127.0.0.1:8080/v1` (`/v1` is added
            when missing).
        model: The model name to request; the server's first model when None.
        tokenizer: A local tokenizer folder, a tokenizer or a counting function; None
            counts with the server's tokenize endpoint.
        api_key: Sent as a bearer token (most local servers take any).
        request_timeout: Seconds to connect, and to wait for each piece of an answer.
        max_retries: Retries of a request that failed before its answer started.
        context_window: The model's context size; asked of the server when None.
        grammar_field: The request field that takes a GBNF grammar ("grammar" for
            llama.cpp's servers, "guided_grammar" for vLLM's); None for a server without
            one (answers are then checked and generated once more when they fail).
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        tokenizer: Any = None,
        api_key: str | None = None,
        request_timeout: float = 60.0,
        max_retries: int = 2,
        context_window: int | None = None,
        grammar_field: str | None = "grammar",
    ) -> None:
        openai = _require_openai()
        self.base_url, self.root_url = _split_url(base_url)
        self.request_timeout = request_timeout
        self.max_retries = max_retries
        self.grammar_field = grammar_field
        self.supports_grammar = True  # enforced by the server, or checked and redone
        self._grammar_requests = GrammarRequests(
            run=self._run,
            free_events=lambda prompt, params: self._events(prompt, params, None),
            count_tokens=self.count_tokens,
            takes_grammar=grammar_field is not None,
        )
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or "none",
            timeout=request_timeout,
            max_retries=max_retries,
        )
        self._openai = openai
        self._model = model
        self.model_name = model or "server"
        self._tokens = ServerTokenCounter(self, tokenizer, openai.NotFoundError)
        self.tokenizer = self._tokens.tokenizer
        if self.tokenizer is not None:
            self.special_tokens = control_tokens(self.tokenizer)
        self.context_window = context_window
        if model is None or context_window is None:
            self._describe()

    # -- the server ---------------------------------------------------------------------

    def fail(self, error: Exception, doing: str) -> ModelServerError:
        """`error` (while `doing` something) as a `ModelServerError` naming the server."""
        openai = self._openai
        if isinstance(error, openai.APITimeoutError):
            reason = f"did not answer within {self.request_timeout:g} s"
        elif isinstance(error, openai.APIConnectionError):
            reason = "cannot be reached (is it running?)"
        elif isinstance(error, openai.APIStatusError):
            reason = f"refused the request with HTTP {error.status_code}: {error.message}"
        elif isinstance(error, ConnectionError) or "httpx" in type(error).__module__:
            reason = f"broke off the connection ({error})"
        else:
            reason = f"answered what is not an OpenAI completion ({type(error).__name__}: {error})"
        return ModelServerError(f"the model server at {self.base_url} {reason}, while {doing}")

    @property
    def model(self) -> str | None:
        """The model name requested (the server's first, once asked, when none was given)."""
        return self._model

    def post(self, url: str, body: dict[str, Any]) -> Any:
        """POST `body` to `url` through the client (its timeout and retries)."""
        return self._client.post(url, body=body, cast_to=object)

    def _describe(self) -> None:
        """Name the model and find its context window from what the server tells."""
        try:
            listing = self._client.get(self.base_url + "/models", cast_to=object)
            first = (listing.get("data") or [{}])[0] if isinstance(listing, dict) else {}
        except self._openai.APIStatusError:
            first = {}
        except Exception as error:
            raise self.fail(error, "listing its models") from error
        if self._model is None:
            self._model = str(first.get("id") or "default")
            self.model_name = Path(self._model).stem if "/" in self._model else self._model
        window = first.get("max_model_len") or (first.get("meta") or {}).get("n_ctx_train")
        if self.context_window is None:
            self.context_window = self._props_window() or (int(window) if window else None)

    def _props_window(self) -> int | None:
        """llama.cpp's server tells its context size under /props."""
        try:
            props = self._client.get(self.root_url + "/props", cast_to=object)
        except Exception:  # not llama.cpp's server: no /props
            return None
        settings = props.get("default_generation_settings") if isinstance(props, dict) else None
        n_ctx = (settings or {}).get("n_ctx")
        return int(n_ctx) if n_ctx else None

    def count_tokens(self, text: str) -> int:  # noqa: D102
        return self._tokens.count(text, bos=True)

    def count_text_tokens(self, text: str) -> int:
        """Tokens of `text` alone (no BOS): for a selector's demo costs."""
        return self._tokens.count(text, bos=False)

    # -- generating -----------------------------------------------------------------------

    def _request(self, prompt: str, params: GenerationParams, gbnf: str | None) -> dict[str, Any]:
        greedy = params.temperature <= 0
        extra: dict[str, Any] = {}
        if params.top_k and not greedy:
            extra["top_k"] = params.top_k
        if params.repetition_penalty not in (None, 1.0):
            extra["repeat_penalty"] = params.repetition_penalty  # llama.cpp
            extra["repetition_penalty"] = params.repetition_penalty  # vLLM, TGI
        if gbnf is not None and self.grammar_field:
            extra[self.grammar_field] = gbnf
        request: dict[str, Any] = {
            "model": self._model,
            "prompt": prompt,
            "max_tokens": params.max_new_tokens,
            "temperature": 0.0 if greedy else params.temperature,
            "top_p": 1.0 if greedy else params.top_p,
        }
        if params.seed is not None:
            request["seed"] = params.seed
        if params.stop:
            request["stop"] = list(params.stop)
        if extra:
            request["extra_body"] = extra
        return request

    def _events(
        self, prompt: str, params: GenerationParams, gbnf: str | None
    ) -> Generator[str | Generation, None, None]:
        """Raw text deltas, then the `Generation`; stops at a stop string or the JSON's end."""
        started = time.monotonic()
        deadline = None if params.timeout is None else started + params.timeout
        if deadline is not None and params.timeout is not None and params.timeout <= 0:
            yield Generation("", self.count_tokens(prompt), 0, "timeout")
            return
        client = self._client
        wait = self.request_timeout
        if deadline is not None:  # one deadline: no retry past it, no wait beyond it
            wait = min(wait, max(deadline - time.monotonic(), 0.01))
            client = client.with_options(max_retries=0, timeout=wait)
        raw, tokens, reason, usage = "", 0, None, None
        timed_out = False
        try:
            stream = client.completions.create(
                **self._request(prompt, params, gbnf),
                stream=True,
                stream_options={"include_usage": True},
            )
        except Exception as error:
            if deadline is not None and time.monotonic() >= deadline - 0.01:
                yield Generation("", self.count_tokens(prompt), 0, "timeout")
                return
            raise self.fail(error, "starting an answer") from error
        ended = False  # the server said how the answer ended (else it broke off)
        try:
            kind = stream.response.headers.get("content-type", "")
            if not kind.startswith("text/event-stream"):
                msg = f"a {kind or 'typeless'} reply instead of an event stream"
                raise ValueError(msg)
            for chunk in stream:
                if getattr(chunk, "usage", None) is not None:
                    usage = chunk.usage
                choices = chunk.choices or []
                if not choices:
                    continue
                choice = choices[0]
                delta = choice.text or ""
                tokens += bool(delta)
                raw += delta
                reason = choice.finish_reason or reason
                if delta:
                    yield delta
                found = truncate_answer(raw, params.stop, params.answer_prefix, params.json_after)[
                    1
                ]
                timed_out = deadline is not None and time.monotonic() >= deadline
                if found or timed_out:
                    break
            else:
                ended = True
            if ended and reason is None:
                msg = f"the answer broke off after {tokens} tokens, without a finish reason"
                raise ConnectionError(msg)
        except GeneratorExit:
            raise
        except Exception as error:
            if deadline is not None and time.monotonic() >= deadline - 0.01:
                timed_out = True
            else:
                raise self.fail(error, "streaming an answer") from error
        finally:
            stream.close()  # the server stops decoding when the connection closes
        text, found = truncate_answer(raw, params.stop, params.answer_prefix, params.json_after)
        finish: FinishReason = "stop"
        if not found and timed_out:
            finish = "timeout"
        elif not found and reason == "length":
            finish = "length"
        prompt_tokens = getattr(usage, "prompt_tokens", None) or self.count_tokens(prompt)
        output = getattr(usage, "completion_tokens", None) if usage is not None else None
        if output is None:
            output = params.max_new_tokens if reason == "length" else tokens
        yield Generation(text, prompt_tokens, min(int(output), params.max_new_tokens), finish)

    def _run(self, prompt: str, params: GenerationParams, gbnf: str | None) -> Generation:
        result = None
        for event in self._events(prompt, params, gbnf):
            if isinstance(event, Generation):
                result = event
        assert result is not None  # _events always ends with one
        return result

    def generate(self, prompt: str, params: GenerationParams) -> Generation:  # noqa: D102
        return self._grammar_requests.answer(prompt, params)

    def stream(  # noqa: D102
        self, prompt: str, params: GenerationParams
    ) -> Iterator[str | Generation]:
        yield from self._grammar_requests.stream(prompt, params)
