"""Statistics that state the uncertainty beside every number freqkit reports.

One bootstrap (:func:`bootstrap_ci`) serves every interval over images: means, medians,
paired differences and paired log-ratios are all its ``stat``.  Alongside it: Wilson's
interval for proportions, medians that treat ``inf`` as "larger than anything", row-wise
Spearman correlations, and a distribution summary.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

from ._validate import check_choice, check_positive_int

__all__ = ["wilson_interval", "bootstrap_ci", "median_with_inf", "paired_difference", "paired_log_ratio",
           "spearman_rows", "distribution_summary", "hierarchical_bootstrap_ci", "suite_difference"]


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``k / n`` (Wilson 1927).

    Better than the normal approximation near 0 or 1 and for small n, which is where the
    book's accuracies on filtered images live.

    Args:
        k: successes, ``0 <= k <= n``.
        n: trials, ``> 0``.
        z: the normal quantile of the interval (1.96: 95%).

    Returns:
        ``(lo, hi)`` in ``[0, 1]``.

    Raises:
        ValueError: ``n <= 0`` or ``k`` outside ``[0, n]``.

    Example:
        >>> lo, hi = wilson_interval(50, 100)
        >>> round(lo, 3), round(hi, 3)
        (0.404, 0.596)
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


def bootstrap_ci(values, stat: Callable = np.median, n_boot: int = 1000, ci: float = 0.95, seed: int = 0,
                 axis: int = 0, rule: str = "linear", rng: np.random.Generator | None = None):
    """Percentile bootstrap interval ``(lo, hi)`` of ``stat`` over ``axis`` of ``values`` (Efron 1979).

    ``n_boot`` resamples of the ``n = values.shape[axis]`` entries (with replacement, the
    same resample for every other index, so rows of a paired or multi-band sample stay
    together); ``stat(resampled, axis=...)`` is evaluated on all of them at once and the
    interval is read off its distribution at the quantiles ``(1 - ci) / 2`` and
    ``(1 + ci) / 2``.

    Args:
        values: array-like, ``n >= 1`` entries along ``axis``.
        stat: a reduction taking ``axis=`` (``np.mean``, ``np.median``, :func:`median_with_inf`).
        n_boot: resamples, ``>= 1``.
        ci: confidence level in ``(0, 1)``.
        seed: seeds a fresh ``numpy`` generator when ``rng`` is None.
        axis: the axis that indexes the sampled units (images).
        rule: ``"linear"``: numpy's default (linearly interpolated) quantiles;
            ``"outward"``: the order statistics just outside the quantiles (floor below,
            ceil above), which never interpolate, so ``inf`` stays ``inf`` (a median of
            distortions where some attacks never succeeded).
        rng: a ``numpy.random.Generator`` to draw from instead of ``seed`` (to take several
            intervals from one stream).

    Returns:
        ``(lo, hi)``: arrays of ``stat``'s shape without ``axis`` (numpy scalars for 1-D input).

    Shape:
        ``values`` ``(..., n, ...)`` -> ``lo``, ``hi`` ``(..., ...)``.

    Raises:
        ValueError: ``n_boot < 1``, ``ci`` outside ``(0, 1)``, an unknown ``rule``, or no
            entries along ``axis``.

    Example:
        >>> lo, hi = bootstrap_ci([1.0, 2.0, 3.0, 4.0], stat=np.mean, n_boot=200)
        >>> bool(1.0 <= lo <= 2.5 <= hi <= 4.0)
        True
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be an integer >= 1, got {n_boot!r}")
    if isinstance(ci, bool) or not isinstance(ci, (int, float)) or not 0 < ci < 1:
        raise ValueError(f"ci must be a number in (0, 1), got {ci!r}")
    check_choice(rule, "rule", ("linear", "outward"))
    v = np.asarray(values, dtype=float)
    if v.ndim == 0 or v.shape[axis] == 0:
        raise ValueError("values is empty")
    axis = axis % v.ndim
    gen = np.random.default_rng(seed) if rng is None else rng
    n = v.shape[axis]
    idx = gen.integers(0, n, size=(n_boot, n))
    boots = stat(np.take(v, idx, axis=axis), axis=axis + 1)
    return _percentile_interval(boots, ci, rule, axis)


def _percentile_interval(boots: np.ndarray, ci: float, rule: str, axis: int = 0):
    """The ``ci`` percentile interval of bootstrap draws along ``axis`` (see :func:`bootstrap_ci`'s ``rule``)."""
    # Rounded so that ci=0.95 reads exactly the 2.5% and 97.5% points.
    q_lo = round((1 - ci) / 2, 12)
    q_hi = 1 - q_lo
    if rule == "linear":
        return np.quantile(boots, q_lo, axis=axis), np.quantile(boots, q_hi, axis=axis)
    m = boots.shape[axis]
    s = np.sort(boots, axis=axis)
    return (np.take(s, int(math.floor(q_lo * (m - 1))), axis=axis),
            np.take(s, int(math.ceil(q_hi * (m - 1))), axis=axis))


def median_with_inf(v, axis: int = -1) -> np.ndarray:
    """Median that treats ``inf`` as larger than anything: the mean of the two middle order statistics.

    ``np.median`` interpolates and so turns ``inf - inf`` into NaN; here the two middle values
    of ``[1, inf, inf, inf]`` give ``inf``.  A ``-inf``/``inf`` pair in the middle (a tie of
    two infinite log-ratios of opposite sign) counts as 0.

    Args:
        v: array-like; axis: the axis reduced.

    Returns:
        the medians, ``v``'s shape without ``axis``.

    Example:
        >>> float(median_with_inf([1.0, float("inf"), float("inf"), 2.0]))
        inf
    """
    s = np.sort(np.asarray(v, dtype=float), axis=axis)
    k = s.shape[axis]
    a, b = np.take(s, (k - 1) // 2, axis=axis), np.take(s, k // 2, axis=axis)
    with np.errstate(invalid="ignore"):
        m = (a + b) / 2
    return np.where(np.isnan(m), 0.0, m)


def _check_paired(a, b, names: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(f"{names} must be non-empty 1-D sequences of equal length, got shapes {a.shape} and {b.shape}")
    return a, b


def paired_difference(a, b, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> dict:
    """Mean of ``a_i - b_i`` over paired per-image values and its percentile-bootstrap CI.

    Args:
        a, b: equal-length sequences of numbers or booleans (e.g. per-image robustness of two
            models on the same images).
        n_boot, ci, seed: as :func:`bootstrap_ci`.

    Returns:
        ``{"mean", "ci_low", "ci_high", "ci", "n"}`` (floats; ``n`` the number of pairs).

    Raises:
        ValueError: empty or unequal inputs, ``ci`` outside ``(0, 1)``.
    """
    a, b = _check_paired(a, b, "a and b")
    d = a - b
    lo, hi = bootstrap_ci(d, np.mean, n_boot=n_boot, ci=ci, seed=seed)
    return {"mean": float(d.mean()), "ci_low": float(lo), "ci_high": float(hi), "ci": ci, "n": int(d.size)}


def paired_log_ratio(d_low, d_high, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> dict:
    """Per image, ``log(d_low / d_high)`` of two minimal distortions, its median and a bootstrap CI.

    The same images are attacked in both bands, so the comparison is paired: an image that
    is hard for every band does not widen the interval.  ``inf`` (not found up to
    ``eps_max``) is larger than any distortion, so one side ``inf`` gives ``-inf`` or
    ``+inf``; both ``inf`` (or both 0) is a tie, 0.  The median is :func:`median_with_inf`
    and the CI the percentile bootstrap over images with the ``"outward"`` rule.

    Args:
        d_low, d_high: ``(N,)`` distortions ``>= 0`` (``inf`` allowed, no NaN).
        n_boot, ci, seed: as :func:`bootstrap_ci`.

    Returns:
        ``{"log_ratio" (N,), "median", "ci_low", "ci_high", "ci", "ratio" (exp of the
        median), "n"}``.

    Raises:
        ValueError: unequal or empty inputs, NaN or negative distortions, ``ci`` outside ``(0, 1)``.
    """
    dl, dh = _check_paired(d_low, d_high, "d_low and d_high")
    if np.isnan(dl).any() or np.isnan(dh).any() or (dl < 0).any() or (dh < 0).any():
        raise ValueError("distortions must be >= 0 (inf allowed), without NaN")
    check_positive_int(n_boot, "n_boot")
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(dl) - np.log(dh)
    r[np.isnan(r)] = 0.0
    lo, hi = bootstrap_ci(r, median_with_inf, n_boot=n_boot, ci=ci, seed=seed, rule="outward")
    m = float(median_with_inf(r))
    return {"log_ratio": r.tolist(), "median": m, "ci_low": float(lo), "ci_high": float(hi), "ci": ci,
            "ratio": float(np.exp(m)), "n": int(r.size)}


def spearman_rows(a, b) -> torch.Tensor:
    """Spearman rank correlation of each row of ``a`` with the same row of ``b``, average ranks for ties.

    Args:
        a, b: ``(N, D)`` tensors or arrays of the same shape.

    Returns:
        ``(N,)`` float64 tensor; NaN for a row that is constant in ``a`` or ``b``.

    Example:
        >>> spearman_rows(torch.tensor([[1., 2., 3.]]), torch.tensor([[3., 2., 1.]])).tolist()
        [-1.0]
    """
    from scipy.stats import rankdata

    def rows(t):
        return t.detach().double().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=float)

    ra, rb = rankdata(rows(a), axis=1), rankdata(rows(b), axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    den = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (ra * rb).sum(1) / den
    return torch.from_numpy(r)


def distribution_summary(values, quantiles: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 0.9)) -> dict:
    """Mean, min, max and quantiles of a sample (flattened; NaNs dropped and counted).

    The quantiles are numpy's linear interpolation between order statistics, except that
    ``inf`` counts as larger than any number: a quantile between a finite value and ``inf``
    is ``inf`` (numpy's interpolation gives NaN there, ``0 * inf``), so the median of
    ``[0, 0.001, inf]`` is ``0.001``.

    Args:
        values: a tensor, array or sequence of numbers.
        quantiles: levels in ``[0, 1]``; each becomes a key ``"q10"``, ``"q25"``, ...

    Returns:
        ``{"n", "n_nan", "mean", "min", "max", "q10", ...}``.

    Raises:
        ValueError: no non-NaN value.

    Example:
        >>> s = distribution_summary([0.0, 0.001, float("inf")], quantiles=(0.5, 0.75))
        >>> s["q50"], s["q75"], s["n"]
        (0.001, inf, 3)
    """
    v = np.asarray(values.detach().cpu().double() if isinstance(values, torch.Tensor) else values, dtype=float)
    v = v.reshape(-1)
    n_nan = int(np.isnan(v).sum())
    v = v[~np.isnan(v)]
    if v.size == 0:
        raise ValueError("values holds no (non-NaN) number")
    out = {"n": int(v.size), "n_nan": n_nan, "mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
    s = np.sort(v)
    for q in quantiles:
        out[f"q{round(100 * q):02d}"] = _quantile_inf_largest(s, q)
    return out


def _quantile_inf_largest(sorted_v: np.ndarray, q: float) -> float:
    """numpy's linear quantile of a sorted sample, with ``inf`` larger than any number (no ``0 * inf``)."""
    pos = q * (sorted_v.size - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, sorted_v.size - 1)
    frac = pos - lo
    a, b = float(sorted_v[lo]), float(sorted_v[hi])
    if frac == 0 or a == b:
        return a
    if not np.isfinite(a):        # -inf below a larger value
        return a
    if not np.isfinite(b):        # between a number and +inf
        return b
    return float(np.quantile(sorted_v[lo:hi + 1], frac))     # numpy's own interpolation


def _as_seeds_by_images(values, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2 or v.shape[0] == 0 or v.shape[1] == 0:
        raise ValueError(f"{name} must be (n_seeds, n_images) with both >= 1, got shape {v.shape}")
    if np.isnan(v).any():
        raise ValueError(f"{name} holds NaN")
    return v


def hierarchical_bootstrap_ci(values, n_boot: int = 2000, ci: float = 0.95, seed: int = 0,
                              rng: np.random.Generator | None = None, stat: str = "mean") -> dict:
    """Mean (or median) over seeds and images with a two-level bootstrap interval: seeds, then images.

    A measurement on ``S`` trained models (seeds) of a method, each on the same ``N`` images,
    varies with the training run and with the images.  The interval resamples both (Davison
    & Hinkley 1997, sec. 3.8; Saravanan et al. 2020 for hierarchical bootstrap in
    neuroscience): each draw picks ``S`` seeds with replacement, then ``N`` images with
    replacement (the same images for every seed: they are the same test images), and takes
    the mean of the resampled values.  With one seed it is the percentile bootstrap over
    images (:func:`bootstrap_ci`), and says so in ``levels``.

    Args:
        values: ``(S, N)`` per seed and image (or ``(N,)``: one seed).  ``inf`` is allowed
            with ``stat="median"`` (a distortion no attack reached).
        n_boot, ci, seed, rng: as :func:`bootstrap_ci`.
        stat: ``"mean"`` or ``"median"`` of the resampled ``S x N`` values (the median
            interval uses the outward rule of :func:`bootstrap_ci`, so ``inf`` stays ``inf``).

    Returns:
        ``{"mean" (the statistic: the mean, or the median with stat="median"), "stat",
        "ci_low", "ci_high", "ci", "n_seeds", "n_images", "seed_means" (S,: the statistic
        per seed), "per_seed": [{"mean", "ci_low", "ci_high"}] (per seed, the image
        bootstrap of that seed's values), "levels"}``.

    Shape:
        - values: ``(S, N)``.

    Raises:
        ValueError: an empty or NaN input, ``n_boot < 1`` or ``ci`` outside ``(0, 1)``.

    Example:
        >>> r = hierarchical_bootstrap_ci([[0.1, 0.2, 0.3], [0.3, 0.4, 0.5]], n_boot=500)
        >>> round(r["mean"], 3), r["n_seeds"], r["ci_low"] < r["mean"] < r["ci_high"]
        (0.3, 2, True)
    """
    if stat not in ("mean", "median"):
        raise ValueError(f"stat must be 'mean' or 'median', got {stat!r}")
    v = _as_seeds_by_images(values, "values")
    if stat == "mean" and not np.isfinite(v).all():
        raise ValueError("values must be finite for stat='mean' (use stat='median' with inf)")
    check_positive_int(n_boot, "n_boot")
    if isinstance(ci, bool) or not isinstance(ci, (int, float)) or not 0 < ci < 1:
        raise ValueError(f"ci must be a number in (0, 1), got {ci!r}")
    gen = np.random.default_rng(seed) if rng is None else rng
    reduce = np.mean if stat == "mean" else median_with_inf
    rule = "linear" if stat == "mean" else "outward"
    s_count, n = v.shape
    si = gen.integers(0, s_count, size=(n_boot, s_count))
    ii = gen.integers(0, n, size=(n_boot, n))
    boots = np.array([reduce(v[np.ix_(a, b)].reshape(-1)) for a, b in zip(si, ii)])
    lo, hi = (float(e) for e in _percentile_interval(boots, ci, rule))
    per_seed = []
    for k in range(s_count):
        plo, phi = bootstrap_ci(v[k], stat=reduce, n_boot=n_boot, ci=ci, rng=gen, rule=rule)
        per_seed.append({"mean": float(reduce(v[k])), "ci_low": float(plo), "ci_high": float(phi)})
    return {"mean": float(reduce(v.reshape(-1))), "stat": stat, "ci_low": lo, "ci_high": hi, "ci": ci,
            "n_seeds": int(s_count), "n_images": int(n), "seed_means": [float(reduce(r)) for r in v], "per_seed": per_seed,
            "levels": "seeds, then images" if s_count > 1 else "images (one seed)"}


def suite_difference(a, b, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> dict:
    """Mean difference between two suites of models measured on the same images, with a two-level CI.

    ``a`` ``(S_a, N)`` and ``b`` ``(S_b, N)``: a per-image measure of ``S_a`` models of one
    method and ``S_b`` of another, all on the same ``N`` images.  Each bootstrap draw
    resamples the seeds of each suite independently (they are independent training runs) and
    the images once for both (they are the same images: the comparison is paired on images),
    and takes ``mean(a) - mean(b)``.  Beside it, per seed pair ``k`` (seeds matched by
    position, ``k < min(S_a, S_b)``), the paired difference over images with its own
    image-bootstrap CI, so that a table can say on how many seeds a decision holds.

    Args:
        a, b: per seed and image values of the two suites (``(N,)`` for one seed).
        n_boot, ci, seed: as :func:`bootstrap_ci`.

    Returns:
        ``{"mean", "ci_low", "ci_high", "ci", "n_seeds": [S_a, S_b], "n_images", "per_seed":
        [{"mean", "ci_low", "ci_high"}, ...], "levels"}``.

    Raises:
        ValueError: shapes that do not share ``N``, NaN, bad ``n_boot``/``ci``.

    Example:
        >>> r = suite_difference([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0]], [[0.0, 1.0, 2.0]], n_boot=300)
        >>> r["mean"], r["n_seeds"], len(r["per_seed"])
        (1.5, [2, 1], 1)
    """
    av, bv = _as_seeds_by_images(a, "a"), _as_seeds_by_images(b, "b")
    if av.shape[1] != bv.shape[1]:
        raise ValueError(f"a and b must be measured on the same images: {av.shape[1]} and {bv.shape[1]} images")
    check_positive_int(n_boot, "n_boot")
    if isinstance(ci, bool) or not isinstance(ci, (int, float)) or not 0 < ci < 1:
        raise ValueError(f"ci must be a number in (0, 1), got {ci!r}")
    gen = np.random.default_rng(seed)
    sa, sb, n = av.shape[0], bv.shape[0], av.shape[1]
    ai = gen.integers(0, sa, size=(n_boot, sa))
    bi = gen.integers(0, sb, size=(n_boot, sb))
    ii = gen.integers(0, n, size=(n_boot, n))
    boots = np.array([av[np.ix_(x, i)].mean() - bv[np.ix_(z, i)].mean() for x, z, i in zip(ai, bi, ii)])
    q = round((1 - ci) / 2, 12)
    per_seed = []
    for k in range(min(sa, sb)):
        d = paired_difference(av[k], bv[k], n_boot=n_boot, ci=ci, seed=seed + k)
        per_seed.append({"mean": d["mean"], "ci_low": d["ci_low"], "ci_high": d["ci_high"]})
    return {"mean": float(av.mean() - bv.mean()), "ci_low": float(np.quantile(boots, q)),
            "ci_high": float(np.quantile(boots, 1 - q)), "ci": ci, "n_seeds": [int(sa), int(sb)], "n_images": int(n),
            "per_seed": per_seed, "levels": "seeds, then images" if max(sa, sb) > 1 else "images (one seed)"}
