"""Loading a causal LM and its tokenizer for generation (torch and transformers imported late).

After loading, `load_causal_lm` refuses weights holding NaN or infinity
(`ModelCorruptedError`); a converted default folder then loses its completion marker so that
the next start converts it again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_icalign.defaults.model_files import nonfinite_parameter, weights_file
from langchain_icalign.defaults.paths import COMPLETE_MARKER, read_marker
from langchain_icalign.errors import ModelCorruptedError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["load_causal_lm", "transformers_progress"]

logger = logging.getLogger(__name__)

_TRUTHY = {"1", "true", "yes", "on"}


@contextmanager
def transformers_progress(show: bool) -> Iterator[None]:
    """Hide transformers' own progress bars ("Loading weights") inside, unless `show`."""
    from transformers.utils import logging as hf_logging

    if show or not hf_logging.is_progress_bar_enabled():
        yield
        return
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUTHY


def _offline() -> bool:
    """Whether the Hugging Face offline switches are set (read at call time)."""
    return _env_flag("HF_HUB_OFFLINE") or _env_flag("TRANSFORMERS_OFFLINE")


def _targets_cuda(device_map: str | dict[str, Any] | None) -> bool:
    """Whether `device_map` puts (some of) the model on a CUDA device."""
    import torch

    if device_map is None or not torch.cuda.is_available():
        return False
    places = list(device_map.values()) if isinstance(device_map, dict) else [device_map]
    for place in places:
        if isinstance(place, int):
            return True
        text = str(place).lower()
        if text.startswith("cuda") or text in {"auto", "balanced", "balanced_low_0", "sequential"}:
            return True
    return False


def _resolve_dtype(
    dtype: str | torch.dtype | None, device_map: str | dict[str, Any] | None
) -> str | torch.dtype:
    """Pick the load dtype: explicit > float32 on CPU > bfloat16 (or float16) on CUDA."""
    import torch

    if dtype is None:
        if _targets_cuda(device_map):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    name = str(dtype).removeprefix("torch.")
    resolved = getattr(torch, name, None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"Unknown dtype {dtype!r}; use a torch.dtype, its name, or 'auto'.")
    return resolved


def load_causal_lm(
    model: str | Path,
    *,
    device_map: str | dict[str, Any] | None = None,
    dtype: str | torch.dtype | None = None,
    local_files_only: bool | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, ready for generation.

    Args:
        model: A Hub id or a local folder (for example the one from
            :func:`ensure_default_model`).
        device_map: Passed to ``from_pretrained`` (``"auto"``, ``"cuda"``, a dict...). None
            loads on CPU.
        dtype: Weight dtype. Defaults to float32 on CPU, and on CUDA to bfloat16 where the GPU
            supports it, else float16. ``"auto"`` is passed through (the checkpoint's dtype).
        local_files_only: Never touch the network. Defaults to True when ``HF_HUB_OFFLINE``
            (or ``TRANSFORMERS_OFFLINE``) is set, else False.

    Returns:
        ``(model, tokenizer)``; the model is in eval mode and the tokenizer has a pad token
        (the eos token when the checkpoint defines none).

    Raises:
        ValueError: If `dtype` names no torch dtype.
        ModelCorruptedError: If a weight holds NaN or infinite values (a damaged file). The
            completion marker of a folder converted by :func:`ensure_default_model` is
            removed, so that the next call converts it again.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if local_files_only is None:
        local_files_only = _offline()
    name = str(model)
    resolved_dtype = _resolve_dtype(dtype, device_map)
    tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_files_only)
    lm = AutoModelForCausalLM.from_pretrained(
        name,
        dtype=resolved_dtype,
        device_map=device_map,
        local_files_only=local_files_only,
    )
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            logger.warning("Tokenizer of %s has neither a pad nor an eos token.", name)
    bad = nonfinite_parameter(lm)
    if bad is not None:
        raise _damaged_weights(model, bad)
    generation_config = getattr(lm, "generation_config", None)
    if generation_config is not None and generation_config.pad_token_id is None:
        generation_config.pad_token_id = tokenizer.pad_token_id
    lm.eval()
    return lm, tokenizer


def _damaged_weights(model: str | Path, parameter: str) -> ModelCorruptedError:
    """The error for a weight holding NaN or infinity; a converted folder loses its marker."""
    text = (
        f"{weights_file(model, parameter)} is damaged: weight {parameter!r} holds NaN or "
        "infinite values, so every answer would be empty or garbage."
    )
    folder = Path(model)
    if folder.is_dir() and read_marker(folder) is not None:
        try:
            (folder / COMPLETE_MARKER).unlink()
            text += " The next start converts the model again."
        except OSError:
            text += f" Delete {folder} to convert the model again."
    else:
        text += " Download or convert the model again."
    return ModelCorruptedError(text)
