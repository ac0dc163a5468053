"""Reuse of the KV cache of a prompt's beginning across calls (prefix caching).

Every request of a chat repeats most of the previous prompt: the system text and the
constant demos, and in a multi-turn chat the whole conversation so far (the previous
prompt plus the answer just given). `PrefixCache` keeps the key/value states of recent
token sequences (prompt and answer) and hands back, for a new prompt, a cache that holds
the longest prefix it shares with one of them, so that the model computes only the rest.

The states of a prefix do not depend on what follows it, so reusing them gives the same
logits as recomputing them, up to floating-point summation order. Caches are
`DynamicCache`s whose layers keep every position (sliding-window layers record their
past but attend to their window only), so they can be cut back to any prefix.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["PrefixCache", "PrefixCacheStats"]


@dataclass
class PrefixCacheStats:
    """What the cache has saved so far.

    Attributes:
        lookups: Prompts looked up.
        hits: Prompts that reused a cached prefix.
        reused_tokens: Prompt tokens whose states came from the cache.
        prompt_tokens: Prompt tokens looked up in all.
    """

    lookups: int = 0
    hits: int = 0
    reused_tokens: int = 0
    prompt_tokens: int = 0


@dataclass(eq=False)
class _Entry:
    ids: torch.Tensor  # 1-D token ids the states belong to
    cache: Any  # DynamicCache holding states for exactly `ids`
    nbytes: int = 0
    uses: int = field(default=0)


def _nbytes(cache: Any) -> int:
    total = 0
    for layer in getattr(cache, "layers", ()):
        for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()
    return total


def _common_prefix(a: torch.Tensor, b: torch.Tensor) -> int:
    n = min(a.shape[0], b.shape[0])
    if n == 0:
        return 0
    different = (a[:n] != b[:n]).nonzero()
    return int(different[0, 0]) if different.numel() else n


def _empty_cache(config: Any = None) -> Any:
    """A cache whose every layer keeps all its states, so it can be cut to any prefix.

    With a model config, sliding-window layers stay sliding-window layers that record
    their past: attention still reads only the window (as without the cache, same cost
    and same numbers), while the states before it are kept for later prefixes.
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    if config is None:
        return DynamicCache()
    try:
        cache = DynamicCache(config=config)
    except (AttributeError, TypeError, ValueError):  # an unusual config
        return DynamicCache()
    layers: list[Any] = list(cache.layers)
    if not layers or not all(isinstance(layer, DynamicLayer) for layer in layers):
        return DynamicCache()  # linear attention, shared layers...: plain full layers
    for layer in layers:
        if getattr(layer, "is_sliding", False):
            if not hasattr(layer, "activate_past_recording"):
                return DynamicCache()
            layer.activate_past_recording()
    return cache


def _copy_prefix(cache: Any, length: int, config: Any = None) -> Any:
    copy = _empty_cache(config)
    if len(copy.layers) not in (0, len(cache.layers)):
        copy = _empty_cache(None)
    for index, layer in enumerate(cache.layers):
        keys, values = layer.keys[..., :length, :], layer.values[..., :length, :]
        copy.update(keys.clone(), values.clone(), index)
    return copy


class PrefixCache:
    """The KV states of recent token sequences, reused for prompts that start alike.

    Args:
        max_entries: Sequences kept (least recently used dropped first).
        min_tokens: Shortest shared prefix worth reusing.
        max_tokens: Most tokens kept over all entries.
        max_bytes: Most memory the kept states take (a token takes about 37 KB for
            Gemma-3-270m in fp32, 0.5 MB for Llama-2-7B in fp16). Default 1 GiB.
    """

    def __init__(
        self,
        max_entries: int = 4,
        min_tokens: int = 16,
        max_tokens: int = 65_536,
        max_bytes: int = 1 << 30,
    ) -> None:
        if max_entries < 1:
            msg = "max_entries must be at least 1"
            raise ValueError(msg)
        self.max_entries = max_entries
        self.min_tokens = min_tokens
        self.max_tokens = max_tokens
        self.max_bytes = max_bytes
        self.stats = PrefixCacheStats()
        self._entries: list[_Entry] = []  # most recently used last
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()

    def new_cache(self, config: Any = None) -> Any:
        """An empty cache that can later be cut back to any prefix (see `take`)."""
        return _empty_cache(config)

    def take(self, ids: Sequence[int] | torch.Tensor, config: Any = None) -> tuple[Any, int]:
        """A cache holding the longest cached prefix of `ids`, and its length.

        At least the last token of `ids` is left to compute (the model must see one to
        give the next token's logits). An entry wholly contained in `ids` is handed over
        (it is about to be extended); otherwise its shared part is copied. Without a
        useful prefix the cache is empty and the length 0.

        Args:
            ids: The prompt's token ids.
            config: The model's config: sliding-window layers then keep reading only
                their window (without it every layer attends to all positions, which
                gives the same answers but slower decoding on such models).
        """
        ids = torch.as_tensor(ids).reshape(-1).cpu()
        with self._lock:
            self.stats.lookups += 1
            self.stats.prompt_tokens += int(ids.shape[0])
            best, best_length = None, 0
            for entry in self._entries:
                length = min(_common_prefix(entry.ids, ids), int(ids.shape[0]) - 1)
                if length > best_length:
                    best, best_length = entry, length
            if best is None or best_length < self.min_tokens:
                return self.new_cache(config), 0
            self.stats.hits += 1
            self.stats.reused_tokens += best_length
            if best_length == best.ids.shape[0]:
                self._entries.remove(best)
                return best.cache, best_length
            best.uses += 1
            self._entries.remove(best)
            self._entries.append(best)
            return _copy_prefix(best.cache, best_length, config), best_length

    def put(self, ids: Sequence[int] | torch.Tensor, cache: Any) -> None:
        """Keep `cache`, which holds the states of the first tokens of `ids`."""
        ids = torch.as_tensor(ids).reshape(-1).cpu()
        length = int(cache.get_seq_length())
        if length < self.min_tokens or length > ids.shape[0]:
            return
        entry = _Entry(ids[:length].clone(), cache, _nbytes(cache))
        if length > self.max_tokens or entry.nbytes > self.max_bytes:
            return  # alone over the bounds: keep what is there
        with self._lock:
            # An entry that is a prefix of the new one is now redundant.
            self._entries = [
                e
                for e in self._entries
                if not (
                    e.ids.shape[0] <= length and _common_prefix(e.ids, entry.ids) == e.ids.shape[0]
                )
            ]
            self._entries.append(entry)
            while len(self._entries) > 1 and (
                len(self._entries) > self.max_entries
                or sum(int(e.ids.shape[0]) for e in self._entries) > self.max_tokens
                or sum(e.nbytes for e in self._entries) > self.max_bytes
            ):
                self._entries.pop(0)
