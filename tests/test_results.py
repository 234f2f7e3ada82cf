"""The results store and the statistics printed beside results."""

import numpy as np
import pytest
import scipy.stats

import freqkit as fk
from freqkit.stats import bootstrap_ci, wilson_interval


def test_save_and_load_round_trip(tmp_path):
    p = fk.save_results(tmp_path, "02_which_frequencies", {"acc": np.array([0.5, 0.25]), "inf": float("inf")},
                        {"profile": "smoke"})
    back = fk.load_results(tmp_path, "02_which_frequencies")
    assert back["results"]["acc"] == [0.5, 0.25] and back["setting"]["profile"] == "smoke"
    assert back["results"]["inf"] == "inf"
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]  # nothing half-written left


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="run that chapter first"):
        fk.load_results(tmp_path, "03_missing")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        fk.load_results(tmp_path, "bad")
    with pytest.raises(ValueError, match="chapter"):
        fk.save_results(tmp_path, "a/b", {}, {})


def test_verdict_words():
    assert fk.verdict("H", "rule", False, {})["verdict"] == "rejected"
    assert fk.verdict("H", "rule", None, {})["verdict"] == "inconclusive"
    with pytest.raises(ValueError, match="supported"):
        fk.verdict("H", "rule", "yes", {})


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (10, 10), (512, 1000)])
def test_wilson_matches_scipy(k, n):
    ci = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(ci.low, abs=1e-4) and hi == pytest.approx(ci.high, abs=1e-4)


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
