"""freqkit.stats: the one bootstrap, Wilson intervals, medians with inf, paired comparisons,
row-wise Spearman correlations, distribution summaries."""
import math

import numpy as np
import pytest
import scipy.stats
import torch

from freqkit import stats

from freqkit.stats import (
    bootstrap_ci, distribution_summary, median_with_inf, paired_difference, paired_log_ratio, spearman_rows,
    wilson_interval,
)


# ----------------------------------------------------------------------------- Wilson

@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (10, 10), (512, 1000)])
def test_wilson_matches_scipy(k, n):
    ci = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(ci.low, abs=1e-4) and hi == pytest.approx(ci.high, abs=1e-4)


# ----------------------------------------------------------------------------- bootstrap_ci

def _by_hand(v, stat, n_boot, seed=0, ci=0.95, gen=None):
    """The resampled statistic, drawn exactly as documented: ``integers(0, n, (n_boot, n))``."""
    g = np.random.default_rng(seed) if gen is None else gen
    v = np.asarray(v, dtype=float)
    idx = g.integers(0, v.shape[0], size=(n_boot, v.shape[0]))
    return stat(v[idx], axis=1)


def test_bootstrap_ci_covers_the_median_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small, big = rng.normal(size=30), rng.normal(size=3000)
    lo_s, hi_s = bootstrap_ci(small, n_boot=500)
    lo_b, hi_b = bootstrap_ci(big, n_boot=500)
    assert lo_s <= np.median(small) <= hi_s
    assert (hi_b - lo_b) < (hi_s - lo_s)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="n_boot"):
            bootstrap_ci(small, n_boot=bad)
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci([])


@pytest.mark.parametrize("stat", [np.mean, np.median])
@pytest.mark.parametrize("ci", [0.95, 0.9, 0.5])
def test_bootstrap_linear_rule_is_numpy_quantile_of_the_resampled_statistic(stat, ci):
    v = np.random.default_rng(3).exponential(size=41)
    boots = _by_hand(v, stat, 300, seed=7)
    lo, hi = bootstrap_ci(v, stat, n_boot=300, ci=ci, seed=7)
    assert lo == pytest.approx(np.quantile(boots, (1 - ci) / 2), rel=1e-12, abs=1e-12)
    assert hi == pytest.approx(np.quantile(boots, 1 - (1 - ci) / 2), rel=1e-12, abs=1e-12)
    assert np.ndim(lo) == 0 and lo < hi
    # the default rule is "linear" and the default stat the median
    assert bootstrap_ci(v, n_boot=300, seed=7, ci=ci) == bootstrap_ci(v, np.median, 300, ci, 7, rule="linear")


def test_bootstrap_outward_rule_reads_order_statistics_and_keeps_inf():
    v = np.array([1.0, 2.0, 3.0, np.inf, np.inf, np.inf, 5.0])   # most attacks never succeeded
    n_boot = 200
    s = np.sort(_by_hand(v, median_with_inf, n_boot, seed=0))
    lo, hi = bootstrap_ci(v, median_with_inf, n_boot=n_boot, rule="outward")
    assert lo == s[math.floor(0.025 * (n_boot - 1))] and hi == s[math.ceil(0.975 * (n_boot - 1))]
    assert math.isinf(hi) and math.isfinite(lo)
    with np.errstate(invalid="ignore"):
        _, hi_linear = bootstrap_ci(v, median_with_inf, n_boot=n_boot, rule="linear")
    assert math.isnan(hi_linear)                          # interpolating between infs is what outward avoids
    # outward never lies inside the linear interval
    w = np.random.default_rng(1).normal(size=25)
    lo_o, hi_o = bootstrap_ci(w, np.mean, n_boot=101, rule="outward")
    lo_l, hi_l = bootstrap_ci(w, np.mean, n_boot=101, rule="linear")
    assert lo_o <= lo_l and hi_o >= hi_l


def test_bootstrap_rng_continues_one_stream():
    v = np.random.default_rng(5).normal(size=20)
    gen = np.random.default_rng(11)
    first = bootstrap_ci(v, np.mean, n_boot=150, rng=gen)
    second = bootstrap_ci(v, np.mean, n_boot=150, rng=gen)
    assert first == bootstrap_ci(v, np.mean, n_boot=150, seed=11)    # a fresh stream equals seed=
    assert second != first                                             # ... and the next call goes on
    ref = np.random.default_rng(11)
    _by_hand(v, np.mean, 150, gen=ref)                                 # the first draw
    boots = _by_hand(v, np.mean, 150, gen=ref)                         # the second, from the same stream
    assert second == (pytest.approx(np.quantile(boots, 0.025), abs=1e-12),
                      pytest.approx(np.quantile(boots, 0.975), abs=1e-12))
    # seed is ignored when rng is given
    assert bootstrap_ci(v, np.mean, 150, seed=0, rng=np.random.default_rng(11)) == first


def test_bootstrap_axis_on_two_dimensional_input_resamples_rows_together():
    g = np.random.default_rng(2)
    v = g.normal(size=(30, 4)) + np.arange(4)
    lo, hi = bootstrap_ci(v, np.mean, n_boot=200, seed=4)
    assert lo.shape == hi.shape == (4,)
    for j in range(4):            # one resample of the rows for every column: column j alone gives the same
        lj, hj = bootstrap_ci(v[:, j], np.mean, n_boot=200, seed=4)
        assert lo[j] == pytest.approx(lj, abs=1e-12) and hi[j] == pytest.approx(hj, abs=1e-12)
    lt, ht = bootstrap_ci(v.T, np.mean, n_boot=200, seed=4, axis=1)
    np.testing.assert_allclose(lt, lo, atol=1e-12)
    np.testing.assert_allclose(ht, hi, atol=1e-12)
    ln, hn = bootstrap_ci(v.T, np.mean, n_boot=200, seed=4, axis=-1)
    np.testing.assert_allclose(ln, lo, atol=1e-12)
    assert bool(np.all(lo < v.mean(0))) and bool(np.all(v.mean(0) < hi))
    lo3, _ = bootstrap_ci(g.normal(size=(2, 10, 3)), np.median, n_boot=50, axis=1)
    assert lo3.shape == (2, 3)


@pytest.mark.parametrize("kw, match", [
    (dict(n_boot=0), "n_boot"), (dict(n_boot=10.0), "n_boot"), (dict(n_boot=True), "n_boot"),
    (dict(ci=0.0), "ci"), (dict(ci=1.0), "ci"), (dict(ci=95), "ci"), (dict(ci=True), "ci"), (dict(ci="0.9"), "ci"),
    (dict(rule="nearest"), "rule"),
])
def test_bootstrap_ci_errors_name_the_argument(kw, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_ci([1.0, 2.0, 3.0], np.mean, **kw)


def test_bootstrap_ci_empty_values():
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci(np.zeros((3, 0)), np.mean, axis=1)
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci(5.0)
    with pytest.raises(TypeError):
        bootstrap_ci([1.0, 2.0], alpha=0.05)      # the old keyword is gone: ci=1-alpha


# ----------------------------------------------------------------------------- median_with_inf

def test_median_with_inf():
    inf = math.inf
    assert float(median_with_inf([1.0, 2.0, 3.0, 4.0])) == 2.5
    assert float(median_with_inf([3.0, 1.0, 2.0])) == 2.0
    assert float(median_with_inf([1.0, inf, inf, 2.0])) == inf        # np.median would give nan
    assert float(median_with_inf([1.0, inf, inf])) == inf
    assert float(median_with_inf([-inf, inf])) == 0.0                  # opposite infinite log-ratios tie
    assert float(median_with_inf([1.0, -inf, inf, 2.0])) == 1.5
    m = np.array([[1.0, inf, 3.0, inf], [4.0, 2.0, 1.0, 3.0]])
    np.testing.assert_array_equal(median_with_inf(m), [inf, 2.5])
    np.testing.assert_array_equal(median_with_inf(m, axis=0), [2.5, inf, 2.0, inf])
    v = np.random.default_rng(0).normal(size=(5, 9))
    np.testing.assert_allclose(median_with_inf(v), np.median(v, axis=-1))


# ----------------------------------------------------------------------------- paired comparisons

def test_paired_difference():
    d = paired_difference([1, 1, 0, 1], [0, 1, 0, 0])
    assert math.isclose(d["mean"], 0.5) and d["ci_low"] <= 0.5 <= d["ci_high"] and d["n"] == 4
    with pytest.raises(ValueError, match="equal length"):
        paired_difference([1, 2], [1])
    with pytest.raises(ValueError, match="ci"):
        paired_difference([1], [1], ci=1.5)


def test_paired_difference_is_the_bootstrap_of_the_differences():
    g = np.random.default_rng(4)
    a, b = g.normal(1.0, 1.0, 60), g.normal(0.8, 1.0, 60)
    d = paired_difference(a, b, n_boot=500, ci=0.9, seed=2)
    lo, hi = bootstrap_ci(a - b, np.mean, n_boot=500, ci=0.9, seed=2)
    assert d == {"mean": pytest.approx(float((a - b).mean())), "ci_low": float(lo), "ci_high": float(hi),
                 "ci": 0.9, "n": 60}
    # paired: a shared per-image offset cancels (the unpaired spread would be 100x wider)
    offset = g.normal(0, 100, 60)
    e = paired_difference(a + offset, b + offset, n_boot=500, ci=0.9, seed=2)
    assert e["ci_low"] == pytest.approx(d["ci_low"]) and e["ci_high"] == pytest.approx(d["ci_high"])
    assert paired_difference([True, True], [False, True])["mean"] == 0.5
    with pytest.raises(ValueError, match="non-empty"):
        paired_difference([], [])
    with pytest.raises(ValueError, match="1-D"):
        paired_difference([[1.0]], [[1.0]])


def test_paired_log_ratio_infinities_and_errors():
    out = paired_log_ratio([1.0, np.inf, np.inf, 2.0], [2.0, 1.0, np.inf, np.inf], n_boot=100)
    assert out["log_ratio"] == [pytest.approx(math.log(0.5)), math.inf, 0.0, -math.inf]
    assert out["median"] == pytest.approx(math.log(0.5) / 2)
    assert out["ci_low"] <= out["median"] <= out["ci_high"]
    with pytest.raises(ValueError, match="equal length"):
        paired_log_ratio([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=">= 0"):
        paired_log_ratio([-1.0], [1.0])


def test_paired_log_ratio_uses_the_outward_bootstrap_of_the_median():
    g = np.random.default_rng(6)
    lo_d, hi_d = np.exp(g.normal(0, 1, 30)), np.exp(g.normal(0.3, 1, 30))
    hi_d[:3] = np.inf
    out = paired_log_ratio(lo_d, hi_d, n_boot=300, ci=0.9, seed=1)
    r = np.log(lo_d) - np.log(hi_d)
    lo, hi = bootstrap_ci(r, median_with_inf, n_boot=300, ci=0.9, seed=1, rule="outward")
    assert out["ci_low"] == float(lo) and out["ci_high"] == float(hi)
    assert out["median"] == float(median_with_inf(r)) and out["ratio"] == pytest.approx(math.exp(out["median"]))
    assert out["n"] == 30 and out["ci"] == 0.9
    assert paired_log_ratio([0.0, 1.0], [0.0, 1.0], n_boot=10)["log_ratio"] == [0.0, 0.0]   # 0/0 is a tie
    with pytest.raises(ValueError, match="NaN"):
        paired_log_ratio([np.nan], [1.0])
    with pytest.raises(ValueError, match="n_boot"):
        paired_log_ratio([1.0], [1.0], n_boot=0)


# ----------------------------------------------------------------------------- spearman_rows

def test_spearman_rows_matches_scipy_with_ties_and_constant_rows():
    g = np.random.default_rng(0)
    a, b = g.normal(size=(7, 9)), g.normal(size=(7, 9))
    b[0] = 2 * a[0] + 1                 # +1
    b[1] = -a[1] ** 3                   # -1
    a[2, :4] = a[2, 0]                  # ties: average ranks
    b[3] = np.round(b[3])               # more ties
    a[4] = 1.0                          # constant: undefined
    r = spearman_rows(torch.from_numpy(a), torch.from_numpy(b))
    assert r.dtype == torch.float64 and r.shape == (7,)
    for i in range(7):
        if i == 4:
            with pytest.warns(scipy.stats.ConstantInputWarning):
                ref = scipy.stats.spearmanr(a[i], b[i]).statistic
            assert math.isnan(float(r[i])) and math.isnan(ref)
        else:
            ref = scipy.stats.spearmanr(a[i], b[i]).statistic
            assert float(r[i]) == pytest.approx(ref, rel=1e-12, abs=1e-12)
    assert float(r[0]) == pytest.approx(1.0) and float(r[1]) == pytest.approx(-1.0)
    torch.testing.assert_close(spearman_rows(a, b), r, equal_nan=True)               # numpy input
    torch.testing.assert_close(spearman_rows(torch.from_numpy(a).float(), b), r, equal_nan=True, rtol=1e-6, atol=1e-6)
    assert spearman_rows(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[3.0, 2.0, 1.0]])).tolist() == [-1.0]


# ----------------------------------------------------------------------------- distribution_summary

def test_completeness_summary_and_distribution_stats():
    d = distribution_summary([1.0, float("nan"), 3.0])
    assert d["n"] == 2 and d["n_nan"] == 1 and d["mean"] == 2.0 and d["q50"] == 2.0
    with pytest.raises(ValueError):
        distribution_summary([float("nan")])


def test_distribution_summary_keys_and_values():
    v = np.random.default_rng(1).normal(size=(10, 10))
    d = distribution_summary(torch.from_numpy(v))          # flattened, tensors accepted
    assert list(d) == ["n", "n_nan", "mean", "min", "max", "q10", "q25", "q50", "q75", "q90"]
    assert d["n"] == 100 and d["n_nan"] == 0
    assert d["mean"] == pytest.approx(v.mean()) and d["min"] == v.min() and d["max"] == v.max()
    for q in (10, 25, 50, 75, 90):
        assert d[f"q{q}"] == pytest.approx(np.quantile(v, q / 100))
    e = distribution_summary([3.0, 1.0, 2.0], quantiles=(0.0, 0.05, 1.0))
    assert (e["q00"], e["q05"], e["q100"]) == (1.0, pytest.approx(1.1), 3.0)
    with pytest.raises(ValueError, match="no \\(non-NaN\\) number"):
        distribution_summary([])


def test_hierarchical_bootstrap_widens_with_the_spread_between_seeds():
    rng = np.random.default_rng(0)
    images = rng.normal(0, 1, size=200)
    same = np.stack([images, images, images])                       # three identical seeds
    spread = np.stack([images - 1.0, images, images + 1.0])          # seeds that disagree
    a = stats.hierarchical_bootstrap_ci(same, n_boot=1000, seed=1)
    b = stats.hierarchical_bootstrap_ci(spread, n_boot=1000, seed=1)
    assert a["mean"] == pytest.approx(b["mean"]) == pytest.approx(images.mean())
    assert (b["ci_high"] - b["ci_low"]) > 2 * (a["ci_high"] - a["ci_low"])
    assert a["n_seeds"] == 3 and a["n_images"] == 200 and a["levels"] == "seeds, then images"
    one = stats.hierarchical_bootstrap_ci(images, n_boot=1000, seed=1)
    assert one["levels"] == "images (one seed)" and one["n_seeds"] == 1
    assert one["ci_low"] < images.mean() < one["ci_high"]


def test_hierarchical_bootstrap_by_hand():
    v = np.array([[0.0, 1.0], [2.0, 3.0]])
    gen = np.random.default_rng(5)
    si = gen.integers(0, 2, size=(50, 2))
    ii = gen.integers(0, 2, size=(50, 2))
    boots = np.array([v[np.ix_(x, i)].mean() for x, i in zip(si, ii)])
    r = stats.hierarchical_bootstrap_ci(v, n_boot=50, seed=5)
    assert r["ci_low"] == pytest.approx(np.quantile(boots, 0.025))
    assert r["ci_high"] == pytest.approx(np.quantile(boots, 0.975))
    assert r["seed_means"] == [0.5, 2.5]


def test_suite_difference_pairs_images_and_resamples_seeds_independently():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, size=(1, 300))
    a = base + 0.5 + rng.normal(0, 0.01, size=(3, 300))
    b = base + rng.normal(0, 0.01, size=(3, 300))
    r = stats.suite_difference(a, b, n_boot=500, seed=0)
    assert r["mean"] == pytest.approx(0.5, abs=0.01)
    assert r["ci_low"] > 0.45 and r["ci_high"] < 0.55          # paired on images: the shared base cancels
    assert r["n_seeds"] == [3, 3] and len(r["per_seed"]) == 3
    assert all(p["ci_low"] > 0 for p in r["per_seed"])
    unpaired = stats.suite_difference(a, rng.permutation(b, axis=1), n_boot=500, seed=0)
    assert (unpaired["ci_high"] - unpaired["ci_low"]) > 5 * (r["ci_high"] - r["ci_low"])


@pytest.mark.parametrize("bad", [np.zeros((0, 3)), np.zeros((2, 0)), np.array([[np.nan, 1.0]]), np.zeros((2, 2, 2))])
def test_hierarchical_inputs_are_checked(bad):
    with pytest.raises(ValueError, match="values"):
        stats.hierarchical_bootstrap_ci(bad)
    with pytest.raises(ValueError):
        stats.suite_difference(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="n_boot"):
        stats.hierarchical_bootstrap_ci([[1.0]], n_boot=0)


def test_hierarchical_bootstrap_median_keeps_inf_and_gives_per_seed_intervals():
    rng = np.random.default_rng(3)
    v = rng.normal(1.0, 0.2, size=(3, 40))
    r = stats.hierarchical_bootstrap_ci(v, n_boot=400, seed=2, stat="median")
    assert r["stat"] == "median" and r["mean"] == pytest.approx(float(np.median(v)))
    assert r["ci_low"] <= r["mean"] <= r["ci_high"]
    assert len(r["per_seed"]) == 3
    for k, p in enumerate(r["per_seed"]):
        assert p["mean"] == pytest.approx(float(np.median(v[k])))
        assert p["ci_low"] <= p["mean"] <= p["ci_high"]
    # More than half the values infinite: the median and its upper bound stay inf, never NaN.
    w = np.where(rng.random((2, 30)) < 0.7, np.inf, 1.0)
    rw = stats.hierarchical_bootstrap_ci(w, n_boot=200, stat="median")
    assert rw["mean"] == np.inf and rw["ci_high"] == np.inf and not np.isnan(rw["ci_low"])
    with pytest.raises(ValueError, match="finite"):
        stats.hierarchical_bootstrap_ci(w, n_boot=10)
    with pytest.raises(ValueError, match="stat"):
        stats.hierarchical_bootstrap_ci(v, stat="mode")
    # The mean's interval is unchanged by the per-seed intervals drawn after it.
    m = stats.hierarchical_bootstrap_ci(v, n_boot=300, seed=4)
    assert m["per_seed"][0]["ci_low"] <= m["seed_means"][0] <= m["per_seed"][0]["ci_high"]
