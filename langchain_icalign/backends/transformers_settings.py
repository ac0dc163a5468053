"""The transformers backend's generation settings: end and padding tokens, `GenerationConfig`.

The end-of-text token(s) are the model's generation config's, else the tokenizer's; the
padding token is the tokenizer's, else the (first) end-of-text token.
"""

from __future__ import annotations

from typing import Any

from transformers import GenerationConfig

from langchain_icalign.backends.base import GenerationParams

__all__ = ["eos_token_id", "eos_token_ids", "generation_config", "pad_token_id"]


def eos_token_id(model: Any, tokenizer: Any) -> int | list[int] | None:
    """The end-of-text token id(s): the model's generation config's, else the tokenizer's."""
    eos = model.generation_config.eos_token_id
    return tokenizer.eos_token_id if eos is None else eos


def eos_token_ids(model: Any, tokenizer: Any) -> set[int]:
    """The end-of-text token ids as a set (empty when neither model nor tokenizer has one)."""
    eos = eos_token_id(model, tokenizer)
    return set(eos if isinstance(eos, list) else [] if eos is None else [eos])


def pad_token_id(model: Any, tokenizer: Any) -> int:
    """The padding token id: the tokenizer's, else the (first) end-of-text token."""
    pad = tokenizer.pad_token_id
    if pad is not None:
        return int(pad)
    eos = eos_token_id(model, tokenizer)
    return int(eos[0] if isinstance(eos, list) else eos)  # type: ignore[arg-type]


def generation_config(
    model: Any, tokenizer: Any, params: GenerationParams, max_time: float | None = None
) -> GenerationConfig:
    """Settings for `model.generate`: greedy at temperature 0, else sampling.

    Args:
        model: The causal LM.
        tokenizer: Its tokenizer.
        params: The call's generation parameters.
        max_time: Seconds of decoding; defaults to `params.timeout`.
    """
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
        eos_token_id=eos_token_id(model, tokenizer),
        bos_token_id=model.generation_config.bos_token_id,
        pad_token_id=pad_token_id(model, tokenizer),
        max_time=params.timeout if max_time is None else max_time,
        repetition_penalty=params.repetition_penalty,
        **sampling,
    )
