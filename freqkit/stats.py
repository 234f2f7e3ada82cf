"""Small statistics used to state uncertainty beside every number the book prints."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["wilson_interval", "bootstrap_ci"]


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``k / n`` (Wilson 1927).

    Better than the normal approximation near 0 or 1 and for small n, which is where the
    book's accuracies on filtered images live.  Returns ``(lo, hi)`` in [0, 1].
    """
    if n <= 0:
        raise ValueError(f"n must be > 0, got {n}")
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, n={n}], got {k}")
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_ci(values, stat=np.median, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0,
                 axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap ``(lo, hi)`` of ``stat`` over ``axis`` of ``values`` (Efron 1979)."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be an integer >= 1, got {n_boot!r}")
    v = np.asarray(values, dtype=float)
    if v.shape[axis] == 0:
        raise ValueError("values is empty")
    rng = np.random.default_rng(seed)
    n = v.shape[axis]
    idx = rng.integers(0, n, size=(n_boot, n))
    boots = np.stack([stat(np.take(v, i, axis=axis), axis=axis) for i in idx])
    return np.quantile(boots, alpha / 2, axis=0), np.quantile(boots, 1 - alpha / 2, axis=0)
