"""Grammar-constrained answers on engines that take a GBNF grammar with each request.

llama.cpp, in process (`llama_cpp.LlamaGrammar`) or as a server (its `grammar` field),
constrains a whole request, not a part of one. So an answer under a `Grammar`:

- with forced text (a forced call, a JSON answer) is one request under the grammar's GBNF
  (`gbnf.to_gbnf`), the prompt already ending with the forced text;
- under `"auto"` (`Grammar.after`, the `<tool_call>` marker) is free text until the model
  writes the marker, then one more request, under the grammar, for the rest;
- on an engine that cannot take a grammar, is checked once finished (`gbnf.matches`) and,
  when it fails, generated once more, sampled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

from langchain_icalign.backends.base import Generation, GenerationParams, Grammar
from langchain_icalign.backends.gbnf import matches, to_gbnf
from langchain_icalign.backends.stop_strings import without_stop_strings

__all__ = ["RETRY_TEMPERATURE", "GrammarRequests"]

RETRY_TEMPERATURE = 0.7
"""The sampling temperature of the one retry of an answer that failed its grammar."""

Run = Callable[[str, GenerationParams, "str | None"], Generation]
FreeEvents = Callable[[str, GenerationParams], Generator["str | Generation", None, None]]


@dataclass(frozen=True)
class GrammarRequests:
    """Constrained answers from an engine's requests.

    Attributes:
        run: One request to its end: prompt, parameters, the GBNF grammar (None: free).
        free_events: One unconstrained request as raw text deltas, then its `Generation`
            (closing the generator stops decoding).
        count_tokens: The prompt's token count, for a `Generation` built here.
        takes_grammar: Whether the engine enforces a GBNF grammar (else answers are
            checked and redone once).
    """

    run: Run
    free_events: FreeEvents
    count_tokens: Callable[[str], int]
    takes_grammar: bool = True

    def answer(self, prompt: str, params: GenerationParams) -> Generation:
        """The whole answer: under `params.grammar` when set, else one free request."""
        if params.grammar is not None:
            return self.generate(prompt, params, params.grammar)
        return self.run(prompt, params, None)

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[str | Generation]:
        """Text as it comes (never part of a stop string), then the `Generation`.

        A constrained answer is only meaningful whole: it comes as one piece.
        """
        if params.grammar is not None:
            result = self.answer(prompt, params)
            if result.text:
                yield result.text
            yield result
            return
        yield from without_stop_strings(self.free_events(prompt, params), params.stop)

    def generate(self, prompt: str, params: GenerationParams, grammar: Grammar) -> Generation:
        """The answer to `prompt` under `grammar` (see the module notes)."""
        if grammar.after is not None:
            return self._after_marker(prompt, params, grammar)
        gbnf = to_gbnf(grammar) if self.takes_grammar else None
        result = self.run(prompt, params, gbnf)
        # The grammar starts at its forced text (the answer prefix may hold more: a tag).
        if result.finish_reason != "stop" or matches(grammar, grammar.forced + result.text):
            return result
        retry = dataclasses.replace(
            params,
            temperature=max(params.temperature, RETRY_TEMPERATURE),
            seed=None if params.seed is None else params.seed + 1,
        )
        again = self.run(prompt, retry, gbnf)
        return dataclasses.replace(
            again,
            output_tokens=min(result.output_tokens + again.output_tokens, params.max_new_tokens),
        )

    def _after_marker(self, prompt: str, params: GenerationParams, grammar: Grammar) -> Generation:
        """Free text until the model writes `grammar.after`, then the rest under the grammar."""
        marker = grammar.after or ""
        events = self.free_events(prompt, dataclasses.replace(params, grammar=None))
        raw, tokens = "", 0
        first: Generation | None = None
        try:
            for event in events:
                if isinstance(event, Generation):
                    first = event
                    break
                raw += event
                tokens += 1
                if marker in params.answer_prefix + raw:
                    break
        finally:
            events.close()
        if first is not None or marker not in params.answer_prefix + raw:
            return first or Generation(raw, self.count_tokens(prompt), tokens, "stop")
        cut = (params.answer_prefix + raw).index(marker) + len(marker) - len(params.answer_prefix)
        head = raw[:cut]
        budget = params.max_new_tokens - tokens
        if budget <= 0:
            return Generation(head, self.count_tokens(prompt), tokens, "length")
        rest = self.generate(
            prompt + head,
            dataclasses.replace(
                params, max_new_tokens=budget, answer_prefix=params.answer_prefix + head
            ),
            dataclasses.replace(grammar, after=None),
        )
        return Generation(
            head + rest.text,
            self.count_tokens(prompt),
            tokens + rest.output_tokens,
            rest.finish_reason,
        )
