"""Fakes for unit tests: bag-of-words embeddings, a word counter, a tiny byte-level LM."""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_socket
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import LLM
from langchain_core.outputs import GenerationChunk
from pydantic import Field

from langchain_icalign import AlignmentDemo, ChatICAlign, DemoStore

_WORD = re.compile(r"\w+")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Unit tests run without the network (Unix sockets stay: asyncio's loop needs them).

    A test that serves on a local port says so with `@pytest.mark.enable_socket`.
    """
    if item.get_closest_marker("enable_socket") is None:
        pytest_socket.disable_socket(allow_unix_socket=True)


def finishes(target: Callable[[], Any], seconds: float = 20.0) -> Any:
    """Run `target` in a thread; fail (instead of hanging the suite) if it does not return."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = target()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: it hangs"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def pipeline_chat(model: Any, tokenizer: Any, **kwargs: Any) -> ChatICAlign:
    """A `ChatICAlign` over a transformers pipeline of `model` and `tokenizer`."""
    from langchain_huggingface import HuggingFacePipeline
    from transformers import pipeline

    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer)
    return ChatICAlign(llm=HuggingFacePipeline(pipeline=pipe, model_id="tiny"), **kwargs)


class BagOfWordsEmbeddings(Embeddings):
    """Deterministic embeddings whose cosine similarity follows word overlap."""

    def __init__(self, size: int = 128, model_name: str = "bag-of-words") -> None:
        self.size = size
        self.model_name = model_name
        self.calls = 0

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.size
        for word in _WORD.findall(text.lower()):
            vector[zlib.crc32(word.encode()) % self.size] += 1.0
        norm = sum(v * v for v in vector) ** 0.5 or 1.0
        return [v / norm for v in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return self._embed(text)


def count_words(text: str) -> int:
    return len(text.split())


class RecordingLLM(LLM):
    """Returns scripted answers (cycling), streams them in small pieces, records prompts."""

    responses: list[str]
    chunk_size: int = 3
    prompts: list[str] = Field(default_factory=list)
    stops: list[list[str] | None] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _next(self, prompt: str, stop: list[str] | None) -> str:
        self.prompts.append(prompt)
        self.stops.append(stop)
        return self.responses[(len(self.prompts) - 1) % len(self.responses)]

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        return self._next(prompt, stop)

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        text = self._next(prompt, stop)
        for start in range(0, len(text), self.chunk_size):
            yield GenerationChunk(text=text[start : start + self.chunk_size])


@pytest.fixture
def embeddings() -> BagOfWordsEmbeddings:
    return BagOfWordsEmbeddings()


@pytest.fixture
def store(embeddings: BagOfWordsEmbeddings) -> Iterator[DemoStore]:
    with DemoStore(embeddings, location=":memory:") as demo_store:
        yield demo_store


@pytest.fixture
def demos() -> list[AlignmentDemo]:
    return [
        AlignmentDemo(
            prompt="How do I bake sourdough bread at home?",
            response="Feed your starter, mix flour water and salt, proof overnight, bake hot.",
            metadata={"category": "advice"},
        ),
        AlignmentDemo(
            prompt="How do I bake chocolate chip cookies?",
            response="Cream butter and sugar, add eggs, fold in flour and chips, bake 10 minutes.",
            metadata={"category": "advice"},
        ),
        AlignmentDemo(
            prompt="Explain how photosynthesis works in plants.",
            response="Plants turn light, water and carbon dioxide into sugar and oxygen.",
            metadata={"category": "explanation"},
        ),
        AlignmentDemo(
            prompt="Write a Python function that reverses a string.",
            response="def reverse(text):\n    return text[::-1]",
            metadata={"category": "coding"},
        ),
        AlignmentDemo(
            prompt="What is the capital of France?",
            response="The capital of France is Paris.",
            metadata={"category": "factual"},
        ),
    ]


def build_byte_tokenizer() -> Any:
    """A byte-level tokenizer (one token per byte) with <bos>, <eos> and <pad>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    specials = ["<bos>", "<eos>", "<pad>"]
    for token in specials:
        vocab[token] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"
    )


@pytest.fixture(scope="session")
def byte_tokenizer() -> Any:
    return build_byte_tokenizer()


def build_tiny_lm(tokenizer: Any, *, n_positions: int = 4096, n_embd: int = 32) -> Any:
    """A one-layer GPT-2 with random weights (seed 0) over the byte tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=1,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="session")
def tiny_lm(byte_tokenizer: Any) -> Any:
    """A one-layer GPT-2 with random weights over the byte tokenizer."""
    return build_tiny_lm(byte_tokenizer)


class ScriptedLogits:
    """A logits processor that forces the model to write `script` (then <eos>)."""

    def __init__(self, tokenizer: Any, script: str) -> None:
        self.ids = [*tokenizer.encode(script, add_special_tokens=False), tokenizer.eos_token_id]
        self.prompt_length: int | None = None
        self.steps = 0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        position = input_ids.shape[1] - self.prompt_length
        self.steps = position + 1
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.ids[min(position, len(self.ids) - 1)]] = 0.0
        return forced

    def reset(self) -> None:
        self.prompt_length = None
        self.steps = 0
