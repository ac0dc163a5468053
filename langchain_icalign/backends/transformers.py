"""Generation with a transformers causal LM: stop strings end decoding as soon as they appear.

The backend runs one prompt, a batch or a stream; a long prompt is read in chunks by
`transformers_prefill`, the end and padding tokens and `GenerationConfig` come from
`transformers_settings`, and what a model supports and `StopOnStrings` from
`transformers_support`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

from langchain_icalign.backends.base import (
    BackendCapabilities,
    FinishReason,
    Generation,
    GenerationBackend,
    GenerationParams,
)
from langchain_icalign.backends.constraints import StartsWithOneOf
from langchain_icalign.backends.grammar_decoding import GrammarCache, grammar_supported
from langchain_icalign.backends.prefix_cache import PrefixCache
from langchain_icalign.backends.stop_strings import StopStringFilter, truncate_answer
from langchain_icalign.backends.transformers_prefill import prefill_in_chunks
from langchain_icalign.backends.transformers_settings import (
    eos_token_ids,
    generation_config,
    pad_token_id,
)
from langchain_icalign.backends.transformers_support import (
    CACHE_KWARG,
    StopOnStrings,
    deadline_of,
    forward_cache_kwarg,
    model_context_window,
    supports_dynamic_cache,
    takes_logits_to_keep,
)
from langchain_icalign.errors import GenerationError
from langchain_icalign.neutralizing import control_tokens

__all__ = ["StopOnStrings", "TransformersBackend"]


class TransformersBackend(GenerationBackend):
    """Runs a transformers `PreTrainedModel` and tokenizer (for example a pipeline's).

    Prompts are tokenised with `split_special_tokens=True`: text that looks like a special
    token (`<eos>`) is read as plain text, never as the token. One generation runs at a time
    per backend (a lock), which bounds memory and keeps seeded sampling reproducible.

    The key/value states of recent prompts and answers are kept (`PrefixCache`): a prompt
    that starts like an earlier one (the same system text and constant demos, or the
    conversation so far in a multi-turn chat) computes only its new part. Greedy answers
    are the same as without the cache. `generate_batch` runs several prompts together,
    left-padded.

    A long prompt is computed a chunk at a time (`prefill_chunk_tokens`), so that a
    timeout bounds the whole call: `params.timeout` counts from the call (waiting for the
    lock, reading the prompt, decoding), and a call whose time runs out between chunks
    ends there, with no tokens and finish reason "timeout" (the chunks computed so far
    stay in the prefix cache for a retry). Greedy answers are the same as with one pass.

    Args:
        model: A causal LM.
        tokenizer: Its tokenizer.
        model_name: Name for metadata; defaults to the model's `name_or_path`.
        logits_processors: Extra logits processors applied on every call (constraints).
        prefix_cache: A `PrefixCache`, True for a default one, or False for none. Models
            that cannot take a `DynamicCache` never use one.
        prefill_chunk_tokens: Most prompt tokens computed per forward pass; the timeout
            is checked between passes, and near it a pass is cut to what the pace so far
            fits in the time left, so a call overruns its timeout by about one short pass
            (at most one full one, the first). None computes the prompt in one pass (the
            timeout then acts only once decoding starts); models that cannot take a
            `DynamicCache` always do.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        model_name: str | None = None,
        logits_processors: Sequence[LogitsProcessor] = (),
        prefix_cache: PrefixCache | bool = True,
        prefill_chunk_tokens: int | None = 256,
    ) -> None:
        if prefill_chunk_tokens is not None and prefill_chunk_tokens < 1:
            msg = f"prefill_chunk_tokens must be at least 1 or None, got {prefill_chunk_tokens}"
            raise ValueError(msg)
        self.model = model
        self.prefill_chunk_tokens = prefill_chunk_tokens
        self.logits_processors = list(logits_processors)
        self.tokenizer = tokenizer
        self.model_name = model_name or getattr(model, "name_or_path", "") or "transformers"
        self.context_window = model_context_window(model, tokenizer)
        self.special_tokens = control_tokens(tokenizer)
        self._lock = threading.Lock()
        if prefix_cache is True:
            prefix_cache = PrefixCache()
        self.prefix_cache: PrefixCache | None = (
            prefix_cache
            if isinstance(prefix_cache, PrefixCache) and supports_dynamic_cache(model)
            else None
        )
        self._forward_cache = forward_cache_kwarg(model) if supports_dynamic_cache(model) else None
        self._logits_to_keep = takes_logits_to_keep(model)
        self.supports_grammar = grammar_supported(tokenizer)
        self._grammars: GrammarCache | None = None

    @property
    def capabilities(self) -> BackendCapabilities:
        """Grammars (with a fast tokenizer), constrained starts, prefix reuse and batches."""
        return BackendCapabilities(
            grammar=self.supports_grammar,
            constrained_start=True,
            prefix_reuse=self.prefix_cache is not None,
            batching=True,
        )

    def grammar_cache(self) -> GrammarCache:
        """The model's compiled grammars (and llguidance tokenizer), made on first use."""
        if self._grammars is None:
            config = getattr(self.model, "config", None)
            text_config = config.get_text_config() if config is not None else None
            vocab = getattr(text_config, "vocab_size", None) or len(self.tokenizer)
            eos = sorted(eos_token_ids(self.model, self.tokenizer))
            self._grammars = GrammarCache(self.tokenizer, int(vocab), eos)
        return self._grammars

    def _encode(self, prompt: str) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(
            prompt, return_tensors="pt", add_special_tokens=True, split_special_tokens=True
        )
        return {k: v.to(self.model.device) for k, v in encoded.items() if k != "token_type_ids"}

    def count_tokens(self, text: str) -> int:  # noqa: D102
        ids = self.tokenizer(text, add_special_tokens=True, split_special_tokens=True)["input_ids"]
        return len(ids)

    def _criteria(
        self, params: GenerationParams, prompt_length: int, cancel: threading.Event | None
    ) -> StopOnStrings:
        return StopOnStrings(
            self.tokenizer,
            params.stop,
            prompt_length,
            cancel,
            params.answer_prefix,
            params.json_after,
        )

    def _processors(self, params: GenerationParams, prompt_length: int) -> LogitsProcessorList:
        processors = list(self.logits_processors)
        if params.starts_with_one_of:
            processors.append(
                StartsWithOneOf(self.tokenizer, params.starts_with_one_of, prompt_length)
            )
        if params.grammar is not None and self.supports_grammar:
            processors.append(self.grammar_cache().processor(params.grammar, prompt_length))
        return LogitsProcessorList(processors)

    def _run(
        self,
        inputs: dict[str, torch.Tensor],
        params: GenerationParams,
        cancel: threading.Event | None = None,
        streamer: Any = None,
        deadline: float | None = None,
    ) -> tuple[torch.Tensor, int]:
        """New token ids of a one-prompt call, and the prompt tokens read from the cache.

        With a `deadline` (a `time.monotonic()` value) that passes before decoding can
        start, no token is generated.
        """
        prompt_length = inputs["input_ids"].shape[1]
        criteria = StoppingCriteriaList([self._criteria(params, prompt_length, cancel)])
        with self._lock, torch.inference_mode():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            cache, reused = None, 0
            if self.prefix_cache is not None:
                cache, reused = self.prefix_cache.take(
                    inputs["input_ids"][0], getattr(self.model, "config", None)
                )
            cache, ready = prefill_in_chunks(
                self.model,
                inputs,
                cache,
                reused,
                chunk_tokens=self.prefill_chunk_tokens,
                forward_cache=self._forward_cache,
                logits_to_keep=self._logits_to_keep,
                deadline=deadline,
                cancel=cancel,
            )
            if not ready:
                if self.prefix_cache is not None and cache is not None:
                    self.prefix_cache.put(inputs["input_ids"][0], cache)  # a retry resumes
                return inputs["input_ids"][0, prompt_length:], reused
            max_time = None if deadline is None else max(0.0, deadline - time.monotonic())
            output = self.model.generate(
                **inputs,
                generation_config=generation_config(self.model, self.tokenizer, params, max_time),
                stopping_criteria=criteria,
                logits_processor=self._processors(params, prompt_length),
                streamer=streamer,
                **({CACHE_KWARG: cache} if cache is not None else {}),
            )
            if self.prefix_cache is not None and cache is not None:
                # The cache now holds the prompt and the answer (but its last token):
                # a follow-up question starts with exactly that.
                self.prefix_cache.put(output[0], cache)
        return output[0, prompt_length:], reused

    def _finish(
        self,
        new_ids: torch.Tensor,
        params: GenerationParams,
        elapsed: float,
        prompt_tokens: int,
        cached_tokens: int = 0,
    ) -> Generation:
        raw = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        text, stopped = truncate_answer(raw, params.stop, params.answer_prefix, params.json_after)
        eos_ids = eos_token_ids(self.model, self.tokenizer)
        # An <eos> as the last allowed token still means the model ended the answer itself.
        stopped = stopped or (new_ids.shape[0] > 0 and int(new_ids[-1]) in eos_ids)
        reason: FinishReason = "stop"
        if not stopped and new_ids.shape[0] >= params.max_new_tokens:
            reason = "length"
        elif not stopped and params.timeout is not None and elapsed >= params.timeout:
            reason = "timeout"
        return Generation(text, prompt_tokens, int(new_ids.shape[0]), reason, cached_tokens)

    def generate(self, prompt: str, params: GenerationParams) -> Generation:  # noqa: D102
        started = time.monotonic()
        inputs = self._encode(prompt)
        try:
            new_ids, reused = self._run(inputs, params, deadline=deadline_of(started, params))
        except Exception as error:
            msg = f"generation failed in {self.model_name}: {error}"
            raise GenerationError(msg) from error
        prompt_tokens = inputs["input_ids"].shape[1]
        return self._finish(new_ids, params, time.monotonic() - started, prompt_tokens, reused)

    def generate_batch(  # noqa: D102
        self, prompts: Sequence[str], params: GenerationParams
    ) -> list[Generation]:
        if len(prompts) == 1:
            return [self.generate(prompts[0], params)]
        encoded = [self._encode(prompt)["input_ids"][0] for prompt in prompts]
        width = max(ids.shape[0] for ids in encoded)
        pad = pad_token_id(self.model, self.tokenizer)
        device = self.model.device
        input_ids = torch.full((len(encoded), width), pad, dtype=torch.long, device=device)
        mask = torch.zeros((len(encoded), width), dtype=torch.long, device=device)
        for row, ids in enumerate(encoded):  # left padding: every prompt ends at `width`
            input_ids[row, width - ids.shape[0] :] = ids
            mask[row, width - ids.shape[0] :] = 1
        criteria = self._criteria(params, width, None)
        config = generation_config(self.model, self.tokenizer, params)
        started = time.monotonic()
        try:
            with self._lock, torch.inference_mode():
                if params.seed is not None:
                    torch.manual_seed(params.seed)
                output = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=mask,
                    generation_config=config,
                    stopping_criteria=StoppingCriteriaList([criteria]),
                    logits_processor=self._processors(params, width),
                )
        except Exception as error:
            msg = f"generation failed in {self.model_name}: {error}"
            raise GenerationError(msg) from error
        elapsed = time.monotonic() - started
        eos_ids = eos_token_ids(self.model, self.tokenizer)
        results = []
        for row, ids in enumerate(encoded):
            new_ids = output[row, width:]
            # A finished row is padded to the longest: cut it where it ended.
            end = criteria.finished_at.get(row, new_ids.shape[0])
            for position, token in enumerate(new_ids[:end].tolist()):
                if token in eos_ids:
                    end = position + 1
                    break
            results.append(self._finish(new_ids[:end], params, elapsed, int(ids.shape[0])))
        return results

    def stream(  # noqa: D102
        self, prompt: str, params: GenerationParams
    ) -> Iterator[str | Generation]:
        started = time.monotonic()
        inputs = self._encode(prompt)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancel = threading.Event()
        result: dict[str, Any] = {}
        deadline = deadline_of(started, params)

        def work() -> None:
            try:
                result["ids"], result["reused"] = self._run(
                    inputs, params, cancel, streamer, deadline
                )
            except Exception as error:  # re-raised in the consumer
                result["error"] = error
            finally:
                streamer.end()  # the consumer must never wait forever

        thread = threading.Thread(target=work, name="icalign-generate", daemon=True)
        thread.start()
        text_filter = StopStringFilter(params.stop)
        try:
            for delta in streamer:
                safe = text_filter.feed(delta)
                if safe:
                    yield safe
                if text_filter.stopped:
                    cancel.set()
            thread.join()
            if "error" in result:
                msg = f"generation failed in {self.model_name}: {result['error']}"
                raise GenerationError(msg) from result["error"]
            rest = text_filter.flush()
            if rest:
                yield rest
            prompt_tokens = inputs["input_ids"].shape[1]
            yield self._finish(
                result["ids"],
                params,
                time.monotonic() - started,
                prompt_tokens,
                result["reused"],
            )
        finally:
            cancel.set()  # the consumer stopped early, or we are done: stop decoding
            thread.join()
