"""Judge-free metric: the base model's per-token negative log-likelihood of a reference answer."""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass
from typing import Any

from langchain_icalign.formats import PromptFormat

__all__ = ["ReferenceNLL", "answer_continuation", "reference_nll"]

_SENTINEL = "\x00ANSWER\x00"


@dataclass(frozen=True)
class ReferenceNLL:
    """How likely the model finds a reference answer after a prompt.

    Attributes:
        mean_nll: Mean negative log-likelihood per reference token, in nats.
        total_nll: Sum over the scored tokens, in nats.
        tokens: Reference tokens scored.
        prompt_tokens: Tokens of the prompt (with BOS).
        truncated: Whether the reference was cut to `max_tokens`.
    """

    mean_nll: float
    total_nll: float
    tokens: int
    prompt_tokens: int
    truncated: bool

    def to_dict(self) -> dict[str, Any]:
        """As a dict (for JSON)."""
        return asdict(self)


def answer_continuation(prompt_format: PromptFormat, query: str, reference: str) -> str:
    """The text that follows a format's open prompt when `reference` is the answer.

    It is what the format puts between the end of `render_open` and the answer in a
    complete exchange (a space in Han's format, nothing in URIAL's), then the reference.

    Raises:
        ValueError: When the format's open prompt is not a prefix of its exchange.
    """
    user = prompt_format.neutralize(query)
    exchange = prompt_format.render_exchange(user, _SENTINEL)
    opening = prompt_format.render_open(user)
    if not exchange.startswith(opening) or _SENTINEL not in exchange[len(opening) :]:
        msg = (
            f"{type(prompt_format).__name__}: the open prompt is not a prefix of a rendered "
            "exchange, so the answer's place cannot be found"
        )
        raise ValueError(msg)
    lead = exchange[len(opening) : exchange.index(_SENTINEL, len(opening))]
    return lead + reference


def _keeps_logits(model: Any) -> str | None:
    params = inspect.signature(model.forward).parameters
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in params:
            return name
    return None


def reference_nll(
    model: Any,
    tokenizer: Any,
    prompt: str,
    continuation: str,
    *,
    max_tokens: int | None = None,
) -> ReferenceNLL:
    """Mean per-token NLL of `continuation` after `prompt`, in one forward pass.

    The prompt is tokenised as generation sees it (with the tokenizer's BOS, special-token
    look-alikes read as text); the continuation is tokenised on its own, without special
    tokens, so that every prompting condition scores the very same reference tokens. The
    loss is taken on the continuation's tokens only; where the model supports it, logits
    are computed for those positions only (a large vocabulary makes them the main cost).

    Args:
        model: A transformers causal LM.
        tokenizer: Its tokenizer.
        prompt: Everything before the answer.
        continuation: The answer as it follows the prompt (see `answer_continuation`).
        max_tokens: Score at most this many leading reference tokens.

    Raises:
        ValueError: When the continuation has no tokens.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    prompt_ids = tokenizer(prompt, add_special_tokens=True, split_special_tokens=True)["input_ids"]
    target_ids = tokenizer(continuation, add_special_tokens=False, split_special_tokens=True)[
        "input_ids"
    ]
    if not target_ids:
        msg = "the reference answer has no tokens"
        raise ValueError(msg)
    truncated = max_tokens is not None and len(target_ids) > max_tokens
    if max_tokens is not None:
        target_ids = target_ids[:max_tokens]
    if not prompt_ids:
        msg = "the prompt has no tokens (and the tokenizer adds no BOS)"
        raise ValueError(msg)
    device = getattr(model, "device", None)
    ids = torch.tensor([[*prompt_ids, *target_ids]], device=device)
    targets = torch.tensor(target_ids, device=device)
    count = len(target_ids)
    keep = _keeps_logits(model)
    with torch.inference_mode():
        if keep is not None:
            logits = model(input_ids=ids, **{keep: count + 1}).logits[0, :-1]
        else:
            logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1]
        total = F.cross_entropy(logits.float(), targets, reduction="sum").item()
    return ReferenceNLL(total / count, total, count, len(prompt_ids), truncated)
