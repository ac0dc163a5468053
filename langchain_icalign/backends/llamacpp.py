"""Generation with llama.cpp (llama-cpp-python) for GGUF models: a fast CPU backend.

Install with `pip install "langchain-icalign[llamacpp]"`. Same prompt formats, stop
handling (generation ends at the stop string; streamed text never shows any part of it),
streaming, token counts and metadata as the transformers backend:

```python
from langchain_icalign.chat_models import llamacpp_chat

chat = llamacpp_chat(temperature=0)  # the default Gemma-3-270m GGUF, built-in demos
chat.invoke("How do I make a good cup of tea?")
```

Prompts are tokenised with `special=False`: text that looks like a special token is
read as plain text, never as the token. Forced tool calls, `"auto"` calls once opened and
JSON answers are decoded under the request's grammar, as GBNF (`llama_cpp.LlamaGrammar`;
see `grammar_requests`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_icalign.backends.base import (
    FinishReason,
    Generation,
    GenerationBackend,
    GenerationParams,
    reading_chunks,
)
from langchain_icalign.backends.grammar_requests import GrammarRequests
from langchain_icalign.backends.stop_strings import truncate_answer

__all__ = ["LlamaCppBackend"]


def _require_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as error:
        msg = (
            "the llama.cpp backend needs llama-cpp-python: "
            'pip install "langchain-icalign[llamacpp]"'
        )
        raise ImportError(msg) from error
    return llama_cpp


class LlamaCppBackend(GenerationBackend):
    """Runs a `llama_cpp.Llama` (a GGUF model) on finished prompts.

    One generation runs at a time per backend (a lock), as llama.cpp's context is not
    shared between threads.

    A `timeout` counts from the call, waiting for the lock included. It is checked before
    the prompt is read (no time left: no generation, finish reason "timeout"), between the
    chunks of `prefill_chunk_tokens` in which a longer prompt is then read (the part
    llama.cpp already holds from the last call is kept), and after each generated token:
    a call overruns it by about one chunk's reading time at most.

    Args:
        llm: A `llama_cpp.Llama`.
        model_name: Name for metadata; defaults to the GGUF's `general.name` or file name.
        prefill_chunk_tokens: Under a timeout, a prompt longer than this is read in chunks
            of this many tokens, the time checked between them.
    """

    def __init__(
        self, llm: Any, model_name: str | None = None, *, prefill_chunk_tokens: int = 256
    ) -> None:
        if prefill_chunk_tokens < 1:
            msg = f"prefill_chunk_tokens must be at least 1, got {prefill_chunk_tokens}"
            raise ValueError(msg)
        self.llm = llm
        self.prefill_chunk_tokens = prefill_chunk_tokens
        metadata = getattr(llm, "metadata", None) or {}
        path = getattr(llm, "model_path", None)
        self.model_name = (
            model_name
            or metadata.get("general.name")
            or (Path(path).stem if path else None)
            or "llama.cpp"
        )
        self.context_window = int(llm.n_ctx())
        self.special_tokens = self._special_tokens()
        self.supports_grammar = True
        self._lock = threading.Lock()
        self._grammar_requests = GrammarRequests(
            run=self._run,
            free_events=lambda prompt, params: self._events(prompt, params, None),
            count_tokens=self.count_tokens,
        )

    @classmethod
    def from_path(
        cls,
        model_path: str | Path,
        *,
        n_ctx: int = 0,
        n_threads: int | None = None,
        model_name: str | None = None,
        **llama_kwargs: Any,
    ) -> LlamaCppBackend:
        """Load a GGUF file.

        Args:
            model_path: The `.gguf` file.
            n_ctx: Context size; 0 takes the model's own.
            n_threads: CPU threads (llama.cpp's default when None).
            model_name: Name for metadata.
            **llama_kwargs: Passed to `llama_cpp.Llama`.
        """
        llama_cpp = _require_llama_cpp()
        llm = llama_cpp.Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            verbose=False,
            **llama_kwargs,
        )
        return cls(llm, model_name)

    def _special_tokens(self) -> tuple[str, ...]:
        found = []
        for getter in ("token_bos", "token_eos"):
            try:
                token = getattr(self.llm, getter)()
                text = self.llm.detokenize([token], special=True).decode("utf-8", "ignore")
            except Exception:  # noqa: S112 - an older llama-cpp-python: skip the names
                continue
            if text:
                found.append(text)
        return tuple(dict.fromkeys(found))

    def _tokens(self, text: str, *, bos: bool) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=bos, special=False))

    def count_tokens(self, text: str) -> int:  # noqa: D102
        return len(self._tokens(text, bos=True))

    def count_text_tokens(self, text: str) -> int:
        """Tokens of `text` alone (no BOS): for a selector's demo costs."""
        return len(self._tokens(text, bos=False))

    def grammar_from_gbnf(self, gbnf: str) -> Any:
        """A `llama_cpp.LlamaGrammar` parsed from GBNF text."""
        return _require_llama_cpp().LlamaGrammar.from_string(gbnf, verbose=False)

    def _stream_raw(
        self, prompt_ids: list[int], params: GenerationParams, gbnf: str | None
    ) -> Iterator[dict[str, Any]]:
        # A generator, so that a failure at the call itself surfaces inside `reading_chunks`.
        greedy = params.temperature <= 0
        grammar = {} if gbnf is None else {"grammar": self.grammar_from_gbnf(gbnf)}
        yield from (
            self.llm.create_completion(
                prompt_ids,
                max_tokens=params.max_new_tokens,
                temperature=0.0 if greedy else params.temperature,
                top_p=1.0 if greedy else params.top_p,
                top_k=0 if greedy else (params.top_k or 0),
                min_p=0.0,
                repeat_penalty=params.repetition_penalty or 1.0,
                seed=params.seed,
                stop=list(params.stop) or None,
                stream=True,
                **grammar,
            )
        )

    def _events(
        self, prompt: str, params: GenerationParams, gbnf: str | None
    ) -> Generator[str | Generation, None, None]:
        """Raw text deltas, then the `Generation`; stops at a stop string or JSON end."""
        prompt_ids = self._tokens(prompt, bos=True)
        started = time.monotonic()
        raw, tokens, reason, timed_out = "", 0, None, False
        with self._lock:
            if params.timeout is not None and time.monotonic() - started >= params.timeout:
                # Out of time waiting for the model (or before): do not start reading the
                # prompt, which llama.cpp cannot stop once begun.
                yield Generation("", len(prompt_ids), 0, "timeout")
                return
            chunks = self._stream_raw(prompt_ids, params, gbnf)
            with reading_chunks(self.model_name, chunks):
                read = params.timeout is None or self._prefill(prompt_ids, started + params.timeout)
                for chunk in chunks if read else ():
                    choice = chunk["choices"][0]
                    delta = choice.get("text") or ""
                    tokens += bool(delta)  # a chunk a token; the closing one is empty
                    raw += delta
                    reason = choice.get("finish_reason") or reason
                    if delta:
                        yield delta
                    found = truncate_answer(
                        raw, params.stop, params.answer_prefix, params.json_after
                    )[1]
                    timed_out = (
                        params.timeout is not None and time.monotonic() - started >= params.timeout
                    )
                    if found or timed_out:
                        break
        text, found = truncate_answer(raw, params.stop, params.answer_prefix, params.json_after)
        finish: FinishReason = "stop"
        if not found and reason == "length":
            finish = "length"
        elif (
            not found
            and params.timeout is not None
            and time.monotonic() - started >= params.timeout
        ):
            finish = "timeout"
        yield Generation(text, len(prompt_ids), tokens, finish)

    def _prefill(self, prompt_ids: list[int], deadline: float) -> bool:
        """Read all but the prompt's last token in chunks; False when time ran out first.

        llama.cpp's completion then finds them in its context (its prefix reuse) and reads
        only the last token before sampling.
        """
        if len(prompt_ids) <= self.prefill_chunk_tokens:
            return time.monotonic() < deadline
        llm = self.llm
        held = llm.longest_token_prefix(list(llm.input_ids[: llm.n_tokens]), prompt_ids)
        llm.n_tokens = min(held, len(prompt_ids) - 1)  # `eval` drops the cache after it
        end = len(prompt_ids) - 1
        for start in range(llm.n_tokens, end, self.prefill_chunk_tokens):
            if time.monotonic() >= deadline:
                return False
            llm.eval(prompt_ids[start : min(start + self.prefill_chunk_tokens, end)])
        return time.monotonic() < deadline

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

    def generate_batch(  # noqa: D102
        self, prompts: Sequence[str], params: GenerationParams
    ) -> list[Generation]:
        return [self.generate(prompt, params) for prompt in prompts]
