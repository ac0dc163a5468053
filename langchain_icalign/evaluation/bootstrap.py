"""Percentile bootstrap intervals for means, resampling whole clusters (prompts)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["BootstrapCI", "clustered_bootstrap_mean"]

_CHUNK = 256


@dataclass(frozen=True)
class BootstrapCI:
    """A mean and its bootstrap confidence interval.

    Attributes:
        estimate: The mean over all observations.
        low: Lower end of the interval.
        high: Upper end of the interval.
        confidence: Coverage of the interval (0.95 for 95%).
        n: Observations.
        clusters: Independent units resampled (prompts).
        resamples: Bootstrap resamples drawn.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    n: int
    clusters: int
    resamples: int

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (for JSON)."""
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


def clustered_bootstrap_mean(
    values: Sequence[float],
    clusters: Sequence[Hashable] | None = None,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> BootstrapCI:
    """Mean of `values` with a percentile bootstrap interval clustered by `clusters`.

    Observations of one cluster (for example the two judge orders of one prompt, or the
    samples of one prompt) are not independent, so the bootstrap draws whole clusters with
    replacement and takes the mean of all observations in the draw. Without `clusters`,
    each observation is its own cluster.

    Args:
        values: The observations.
        clusters: One cluster key per observation.
        confidence: Coverage of the interval.
        resamples: Bootstrap resamples.
        seed: Seed of the resampling.

    Raises:
        ValueError: For no values, mismatched lengths or a confidence outside (0, 1).
    """
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        msg = "no values to bootstrap"
        raise ValueError(msg)
    if not 0.0 < confidence < 1.0:
        msg = f"confidence must be in (0, 1), got {confidence}"
        raise ValueError(msg)
    if resamples < 1:
        msg = f"resamples must be at least 1, got {resamples}"
        raise ValueError(msg)
    keys = list(range(data.size)) if clusters is None else list(clusters)
    if len(keys) != data.size:
        msg = f"{data.size} values but {len(keys)} cluster keys"
        raise ValueError(msg)
    index: dict[Hashable, int] = {}
    codes = np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.int64)
    sums = np.bincount(codes, weights=data)
    counts = np.bincount(codes).astype(np.float64)
    n_clusters = sums.size
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, _CHUNK):
        stop = min(start + _CHUNK, resamples)
        draw = rng.integers(0, n_clusters, size=(stop - start, n_clusters))
        means[start:stop] = sums[draw].sum(axis=1) / counts[draw].sum(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return BootstrapCI(
        estimate=float(data.mean()),
        low=float(low),
        high=float(high),
        confidence=confidence,
        n=int(data.size),
        clusters=int(n_clusters),
        resamples=resamples,
    )
