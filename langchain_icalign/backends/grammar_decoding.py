"""Grammar-constrained decoding for transformers models, through llguidance.

`GrammarCache` holds, per model, the llguidance tokenizer (built once: a few seconds for a
262k-token vocabulary) and each grammar compiled once (a matcher that has read the
grammar's forced text, copied per row of every call). `GrammarProcessor` is the logits
processor: before each decoding step it masks every token the grammar does not allow next,
so the answer always follows it (benchmarks/grammar_libs.py measures the cost).
"""

from __future__ import annotations

import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import LogitsProcessor

from langchain_icalign.backends.base import Grammar

__all__ = ["GrammarCache", "GrammarProcessor", "grammar_supported"]

_MAX_GRAMMARS = 64


def grammar_supported(tokenizer: Any) -> bool:
    """Whether grammars apply with this tokenizer (llguidance installed, a fast tokenizer)."""
    if importlib.util.find_spec("llguidance") is None:
        return False
    return getattr(tokenizer, "backend_tokenizer", None) is not None


class GrammarCache:
    """The llguidance tokenizer of one model and the grammars compiled for it.

    Args:
        tokenizer: The model's (fast) Hugging Face tokenizer.
        vocab_size: Rows of the model's logits (may exceed the tokenizer's size).
        eos_ids: The ids that end an answer; the grammar allows them once it is complete.
    """

    def __init__(self, tokenizer: Any, vocab_size: int, eos_ids: Sequence[int]) -> None:
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.eos_ids = list(eos_ids)
        self._lock = threading.Lock()
        self._lltokenizer: Any = None
        self._matchers: OrderedDict[Grammar, Any] = OrderedDict()

    @property
    def lltokenizer(self) -> Any:
        """The llguidance tokenizer, built on first use."""
        with self._lock:
            if self._lltokenizer is None:
                import llguidance.hf

                self._lltokenizer = llguidance.hf.from_tokenizer(
                    self.tokenizer, n_vocab=self.vocab_size, eos_token=self.eos_ids or None
                )
            return self._lltokenizer

    def matcher(self, grammar: Grammar) -> Any:
        """A fresh matcher for `grammar`, its forced text read (compiled once per grammar).

        Raises:
            ValueError: When the grammar does not compile, or its forced text does not fit it.
        """
        import llguidance

        lltokenizer = self.lltokenizer
        with self._lock:
            template = self._matchers.get(grammar)
            if template is not None:
                self._matchers.move_to_end(grammar)
                return template.deep_copy()
        template = llguidance.LLMatcher(lltokenizer, grammar.source, log_level=0)
        if grammar.forced and not template.is_error():
            template.consume_tokens(lltokenizer.tokenize_str(grammar.forced))
        if template.is_error():
            msg = f"the grammar cannot be used: {template.get_error()}"
            raise ValueError(msg)
        with self._lock:
            self._matchers[grammar] = template
            while len(self._matchers) > _MAX_GRAMMARS:
                self._matchers.popitem(last=False)
        return template.deep_copy()

    def processor(self, grammar: Grammar, prompt_length: int) -> GrammarProcessor:
        """A logits processor for one `generate` call whose prompts are `prompt_length` long."""
        return GrammarProcessor(self, grammar, prompt_length)


class GrammarProcessor(LogitsProcessor):
    """Masks the tokens the grammar does not allow next, row by row.

    With `grammar.after`, a row is free until its generated text holds that text; the
    grammar then reads what follows it in the row and applies from there. A row whose
    matcher fails (text the grammar cannot read, such as a stop the grammar did not expect)
    is left free: the answer is checked after generation as without a grammar.

    Args:
        cache: The model's `GrammarCache`.
        grammar: The grammar of every row.
        prompt_length: Prompt tokens before the answer (padded width in a batch).
    """

    def __init__(self, cache: GrammarCache, grammar: Grammar, prompt_length: int) -> None:
        self.cache = cache
        self.grammar = grammar
        self.prompt_length = prompt_length
        self.matchers: dict[int, Any] = {}
        self.consumed: dict[int, int] = {}
        self._blocked = torch.tensor(float("-inf"))
        self.seconds = 0.0
        """Time spent computing and applying masks (for benchmarks)."""
        self.steps = 0

    def _start(self, row: int, generated: torch.Tensor) -> Any:
        """The row's matcher once the grammar applies to it, else None."""
        matcher = self.matchers.get(row)
        if matcher is not None:
            return matcher
        after = self.grammar.after
        if after is None:
            matcher = self.cache.matcher(self.grammar)
        else:
            text = self.cache.tokenizer.decode(generated, skip_special_tokens=True)
            if after not in text:
                return None
            matcher = self.cache.matcher(self.grammar)
            tail = text.split(after, 1)[1]
            if tail:
                matcher.consume_tokens(self.cache.lltokenizer.tokenize_str(tail))
        self.matchers[row] = matcher
        self.consumed[row] = int(generated.shape[0])
        return matcher

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Scores with the disallowed tokens at -inf."""
        import time

        began = time.perf_counter()
        for row in range(input_ids.shape[0]):
            generated = input_ids[row, self.prompt_length :]
            known = row in self.matchers
            matcher = self._start(row, generated)
            if matcher is None:
                continue
            if known:
                new = generated[self.consumed[row] :].tolist()
                self.consumed[row] = int(generated.shape[0])
                if new and not matcher.is_stopped():
                    matcher.consume_tokens(new)
            if matcher.is_error():
                continue
            bits = np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8)
            if not bits.any():
                continue  # nothing allowed (should not happen): leave the row free
            allowed = torch.from_numpy(np.unpackbits(bits, bitorder="little").view(np.bool_))
            width = min(scores.shape[1], allowed.shape[0])
            allowed = allowed[:width].to(scores.device)
            scores[row, :width] = torch.where(allowed, scores[row, :width], self._blocked)
            scores[row, width:] = float("-inf")
        self.seconds += time.perf_counter() - began
        self.steps += 1
        return scores
