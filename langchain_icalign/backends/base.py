"""What a generation backend takes and gives, independent of the library behind it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from langchain_icalign.errors import GenerationError

__all__ = [
    "BackendCapabilities",
    "FinishReason",
    "Generation",
    "GenerationBackend",
    "GenerationParams",
    "Grammar",
    "reading_chunks",
]

FinishReason = Literal["stop", "length", "timeout"]


@dataclass(frozen=True)
class Grammar:
    """What the answer must follow where the backend can constrain decoding.

    Written by `tools.grammar` (`call_grammar`, `json_grammar`) for a tool call or a JSON
    object; followed token by token by a backend whose `capabilities.grammar` is set.

    Attributes:
        source: The llguidance grammar (Lark with inline `%json` schemas).
        forced: Text of the grammar's language that the prompt's answer prefix already
            holds (the grammar reads it before the first generated token).
        after: When set, the answer is free until it holds this text; the grammar then
            applies to what follows it (a tool call the model chose to open). None: from
            the first token.
    """

    source: str
    forced: str = ""
    after: str | None = None


@dataclass(frozen=True)
class GenerationParams:
    """Sampling and stopping for one call.

    Attributes:
        max_new_tokens: Most tokens to generate.
        temperature: 0 means greedy decoding.
        top_p: Nucleus sampling mass (1.0 disables it).
        top_k: Keep the k likeliest tokens; None or 0 disables it.
        seed: Seed for sampling; None leaves the generator as it is.
        stop: Strings that end the answer.
        timeout: Seconds the backend call may take, reading the prompt included where
            the backend can stop between parts of it (the transformers backend does);
            then the answer ends with finish reason "timeout", keeping the text so far
            (none when time ran out before the first token).
        repetition_penalty: Penalty on tokens already present (None or 1.0: off).
        answer_prefix: Text the prompt already forces the answer to start with.
        starts_with_one_of: When set, the answer must begin with one of these strings
            (enforced token by token where the backend can constrain decoding).
        json_after: When set, stop once `answer_prefix` + the answer holds a complete JSON
            object after this marker ("" for the first object): a tool call or JSON answer
            ends where its object closes.
        grammar: When set, the answer follows this grammar (a tool call or JSON object),
            token by token, on a backend that `supports_grammar`; others ignore it.
    """

    max_new_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    timeout: float | None = None
    repetition_penalty: float | None = None
    answer_prefix: str = ""
    starts_with_one_of: tuple[str, ...] = ()
    json_after: str | None = None
    grammar: Grammar | None = None


@dataclass(frozen=True)
class Generation:
    """The outcome of one call.

    Attributes:
        text: Generated text up to (not including) the first stop string, not stripped.
        input_tokens: Tokens in the prompt.
        output_tokens: Tokens generated.
        finish_reason: "stop" (stop string or end of text), "length" (`max_new_tokens`
            reached) or "timeout".
        cached_tokens: Prompt tokens whose states were reused from an earlier call (a
            prefix cache) instead of being computed.
    """

    text: str
    input_tokens: int
    output_tokens: int
    finish_reason: FinishReason
    cached_tokens: int = 0


@dataclass(frozen=True)
class BackendCapabilities:
    """What a backend does beyond generating text; the chat model asks these, never guesses.

    Attributes:
        grammar: `GenerationParams.grammar` is enforced while decoding (tool calls and JSON
            answers then come out of one call under the grammar); else it is ignored and
            such answers are guided field by field (`tools.guided_object`).
        constrained_start: `GenerationParams.starts_with_one_of` is enforced token by
            token (else the answer is free and checked afterwards).
        prefix_reuse: The states of a prompt prefix shared with an earlier call are reused
            (reported as `Generation.cached_tokens`), so several short steps on one prompt
            read it once.
        batching: `generate_batch` runs prompts together (left-padded), so a `batch` of
            chats is decoded as one; else the prompts would run one after the other anyway.
    """

    grammar: bool = False
    constrained_start: bool = False
    prefix_reuse: bool = False
    batching: bool = False


class GenerationBackend(ABC):
    """Runs a base language model on a finished prompt.

    `stream` yields text deltas that never contain any part of a stop string (see
    `StopStringFilter`), then one `Generation` summary. Closing the iterator early stops
    generation.
    """

    model_name: str = "unknown"
    context_window: int | None = None
    """Most tokens (prompt plus answer) the model takes, when known."""
    special_tokens: tuple[str, ...] = ()
    """The tokenizer's special tokens, which user text must not be able to produce."""
    supports_grammar: bool = False
    """Whether `GenerationParams.grammar` is enforced while decoding (else it is ignored)."""
    tokenizer: Any = None
    """The model's own tokenizer (with `encode`), when the backend has one."""

    @property
    def capabilities(self) -> BackendCapabilities:
        """What this backend supports; by default only a grammar, when `supports_grammar`."""
        return BackendCapabilities(grammar=self.supports_grammar)

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens in `text` as the model will see it (with any BOS the model adds)."""

    @abstractmethod
    def generate(self, prompt: str, params: GenerationParams) -> Generation:
        """Generate an answer to `prompt`."""

    @abstractmethod
    def stream(self, prompt: str, params: GenerationParams) -> Iterator[str | Generation]:
        """Stream an answer to `prompt`: safe text deltas, then a `Generation`."""

    def generate_batch(self, prompts: Sequence[str], params: GenerationParams) -> list[Generation]:
        """Answers to several prompts with the same params, in order.

        Backends that can run prompts together (the transformers one, left-padded)
        override this; by default the prompts run one after the other.
        """
        return [self.generate(prompt, params) for prompt in prompts]

    def for_steps(self) -> GenerationBackend:
        """The backend for one answer made of several calls, each reading the last one's text.

        This backend; a batching one (`batching.BatchingBackend`) leaves its batch and gives
        the backend it wraps, as steps that wait for the batch at each call would stall it.
        """
        return self


@contextmanager
def reading_chunks(model_name: str, chunks: Any) -> Iterator[None]:
    """Around a loop over a library's generation stream: errors become `GenerationError`.

    The stream is closed however the loop ends (so the library stops decoding when the
    caller stops early); closing the caller's own generator passes through untouched.
    """
    try:
        yield
    except Exception as error:
        msg = f"generation failed in {model_name}: {error}"
        raise GenerationError(msg) from error
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
