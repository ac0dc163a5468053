"""Generation with a transformers causal LM: stop strings end decoding as soon as they appear."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

from langchain_icalign.errors import GenerationError
from langchain_icalign.generation import (
    FinishReason,
    Generation,
    GenerationBackend,
    GenerationParams,
)
from langchain_icalign.stop_strings import StopStringFilter, truncate_answer

__all__ = ["StopOnStrings", "TransformersBackend"]

_CONTEXT_ATTRS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length")


class StopOnStrings(StoppingCriteria):
    """Stops a row once its generated text contains a stop string, or on cancellation.

    Each step decodes only the last few generated tokens (enough to hold the longest stop
    string), so the cost does not grow with the answer nor with the vocabulary, unlike
    transformers' `stop_strings`, whose set-up scans the whole vocabulary on every call.
    """

    def __init__(
        self,
        tokenizer: Any,
        stops: Sequence[str],
        prompt_length: int,
        cancel: threading.Event | None = None,
        answer_prefix: str = "",
        json_after: str | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.stops = tuple(s for s in stops if s)
        self.prompt_length = prompt_length
        self.cancel = cancel
        self.window = max((len(s) for s in self.stops), default=0) + 8
        self.answer_prefix = answer_prefix
        self.json_after = json_after

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        """One flag per row: whether that row should stop."""
        if self.cancel is not None and self.cancel.is_set():
            return torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]
        flags = []
        for row in input_ids:
            tail = row[max(self.prompt_length, row.shape[0] - self.window) :]
            text = self.tokenizer.decode(tail, skip_special_tokens=True)
            done = any(stop in text for stop in self.stops)
            if not done and self.json_after is not None:
                # Tool calls and JSON answers are short: decoding all of it is cheap.
                answer = self.tokenizer.decode(row[self.prompt_length :], skip_special_tokens=True)
                done = truncate_answer(answer, (), self.answer_prefix, self.json_after)[1]
            flags.append(done)
        return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


def _context_window(model: Any, tokenizer: Any) -> int | None:
    config = getattr(model, "config", None)
    text_config = getattr(config, "text_config", None) or config
    for attr in _CONTEXT_ATTRS:
        value = getattr(text_config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 10_000_000 else None


class TransformersBackend(GenerationBackend):
    """Runs a transformers `PreTrainedModel` and tokenizer (for example a pipeline's).

    Prompts are tokenised with `split_special_tokens=True`: text that looks like a special
    token (`<eos>`) is read as plain text, never as the token. One generation runs at a time
    per backend (a lock), which bounds memory and keeps seeded sampling reproducible.

    Args:
        model: A causal LM.
        tokenizer: Its tokenizer.
        model_name: Name for metadata; defaults to the model's `name_or_path`.
        logits_processors: Extra logits processors applied on every call (constraints).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        model_name: str | None = None,
        logits_processors: Sequence[LogitsProcessor] = (),
    ) -> None:
        self.model = model
        self.logits_processors = list(logits_processors)
        self.tokenizer = tokenizer
        self.model_name = model_name or getattr(model, "name_or_path", "") or "transformers"
        self.context_window = _context_window(model, tokenizer)
        self.special_tokens = tuple(getattr(tokenizer, "all_special_tokens", ()))
        self._lock = threading.Lock()

    def _encode(self, prompt: str) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(
            prompt, return_tensors="pt", add_special_tokens=True, split_special_tokens=True
        )
        return {k: v.to(self.model.device) for k, v in encoded.items() if k != "token_type_ids"}

    def count_tokens(self, text: str) -> int:  # noqa: D102
        ids = self.tokenizer(text, add_special_tokens=True, split_special_tokens=True)["input_ids"]
        return len(ids)

    def _config(self, params: GenerationParams) -> GenerationConfig:
        defaults = self.model.generation_config
        pad = self.tokenizer.pad_token_id
        eos = (
            defaults.eos_token_id
            if defaults.eos_token_id is not None
            else (self.tokenizer.eos_token_id)
        )
        sampling: dict[str, Any] = {"do_sample": False}
        if params.temperature > 0:
            sampling = {
                "do_sample": True,
                "temperature": params.temperature,
                "top_p": params.top_p,
                "top_k": params.top_k or 0,
            }
        return GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            eos_token_id=eos,
            bos_token_id=defaults.bos_token_id,
            pad_token_id=pad if pad is not None else (eos[0] if isinstance(eos, list) else eos),
            max_time=params.timeout,
            **sampling,
        )

    def _run(
        self,
        inputs: dict[str, torch.Tensor],
        params: GenerationParams,
        cancel: threading.Event | None = None,
        streamer: Any = None,
    ) -> torch.Tensor:
        prompt_length = inputs["input_ids"].shape[1]
        criteria = StoppingCriteriaList(
            [
                StopOnStrings(
                    self.tokenizer,
                    params.stop,
                    prompt_length,
                    cancel,
                    params.answer_prefix,
                    params.json_after,
                )
            ]
        )
        with self._lock, torch.inference_mode():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            output = self.model.generate(
                **inputs,
                generation_config=self._config(params),
                stopping_criteria=criteria,
                logits_processor=LogitsProcessorList(self.logits_processors),
                streamer=streamer,
            )
        return output[0, prompt_length:]

    def _finish(
        self, new_ids: torch.Tensor, params: GenerationParams, elapsed: float, prompt_tokens: int
    ) -> Generation:
        raw = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        text, stopped = truncate_answer(raw, params.stop, params.answer_prefix, params.json_after)
        reason: FinishReason = "stop"
        if not stopped and new_ids.shape[0] >= params.max_new_tokens:
            reason = "length"
        elif not stopped and params.timeout is not None and elapsed >= params.timeout:
            reason = "timeout"
        return Generation(text, prompt_tokens, int(new_ids.shape[0]), reason)

    def generate(self, prompt: str, params: GenerationParams) -> Generation:  # noqa: D102
        inputs = self._encode(prompt)
        started = time.monotonic()
        try:
            new_ids = self._run(inputs, params)
        except Exception as error:
            msg = f"generation failed in {self.model_name}: {error}"
            raise GenerationError(msg) from error
        prompt_tokens = inputs["input_ids"].shape[1]
        return self._finish(new_ids, params, time.monotonic() - started, prompt_tokens)

    def stream(  # noqa: D102
        self, prompt: str, params: GenerationParams
    ) -> Iterator[str | Generation]:
        inputs = self._encode(prompt)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancel = threading.Event()
        result: dict[str, Any] = {}
        started = time.monotonic()

        def work() -> None:
            try:
                result["ids"] = self._run(inputs, params, cancel, streamer)
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
            yield self._finish(result["ids"], params, time.monotonic() - started, prompt_tokens)
        finally:
            cancel.set()  # the consumer stopped early, or we are done: stop decoding
            thread.join()
