"""Generation backends: one contract (`base`), one module per library, and what they share.

- `base`: `GenerationBackend`, `GenerationParams`, `Generation`, `BackendCapabilities` (what
  a backend declares it supports: grammar, constrained starts, prefix reuse, batching).
- `transformers` (+ `transformers_support`, `prefix_cache`, `constraints`,
  `grammar_decoding`), `llm` (any LangChain LLM), `llamacpp`, `server` (+ `server_tokens`,
  `gbnf`, `grammar_rules`).
- `stop_strings` (stop handling for every backend), `batching` (a batch's prompts run as
  one `generate_batch`).

No backend imports the chat model, the defaults, the selector or the store.
"""

from langchain_icalign.backends.base import (
    BackendCapabilities,
    Generation,
    GenerationBackend,
    GenerationParams,
)

__all__ = ["BackendCapabilities", "Generation", "GenerationBackend", "GenerationParams"]
