"""freqkit.robustness: equal-count bands, box-limited failures, the H3 rule, band examples,
attribution of perturbations, radial heat-map profiles; and fourier_heatmap's one-pass
tuple of metrics.

Tiny synthetic problems only (no downloads), one CPU thread.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import freqkit.attacks as A
from freqkit import robustness as R
from freqkit.transforms import band_masks, check_dft_symmetric, dct2, frequency_radius


pytestmark = pytest.mark.usefixtures("one_thread")


class _Linear(nn.Module):
    """logits = W x (flattened): IG is exact and closed-form."""

    def __init__(self, c, h, w, k=3, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(k, c, h, w, generator=g, dtype=torch.float64))

    def forward(self, x):
        return torch.einsum("nchw,kchw->nk", x.to(self.w.dtype), self.w)


class _Unfoolable(nn.Module):
    """Class 0 by a margin of 20 (no perturbation here can flip it); a small gradient with energy
    at every frequency."""

    def forward(self, x):
        g = torch.Generator().manual_seed(7)
        pattern = torch.randn(x.shape[1:], generator=g).to(x)
        s = 0.01 * (x * pattern).flatten(1).sum(1)
        return torch.stack([20.0 + s, -s], 1)


# ----------------------------------------------------------------------------- equal-count bands

@pytest.mark.parametrize("h, w, k, basis", [(32, 32, 4, "dct"), (28, 28, 4, "dct"), (32, 32, 4, "dft"),
                                             (16, 12, 3, "dft"), (8, 8, 5, "dct")])
def test_equal_count_bands_partition_with_near_equal_counts(h, w, k, basis):
    m = R.equal_count_band_masks(h, w, k, basis=basis)
    assert m.shape == (k, h, w) and m.dtype == torch.bool
    assert torch.equal(m.sum(0), torch.ones(h, w, dtype=m.sum(0).dtype))       # a partition
    counts = m.flatten(1).sum(1).double()
    # never off by more than the largest group of coefficients that share a radius
    r = frequency_radius(h, w, basis)
    _, ties = torch.unique(r, return_counts=True)
    assert float((counts - h * w / k).abs().max()) <= int(ties.max())
    # ordered by frequency: every radius of band j is below every radius of band j + 1
    for j in range(k - 1):
        assert float(r[m[j]].max()) < float(r[m[j + 1]].min())
    if basis == "dft":
        check_dft_symmetric(m)


def test_equal_count_bands_errors():
    with pytest.raises(ValueError, match="n_bands"):
        R.equal_count_band_masks(2, 2, 10)
    with pytest.raises(ValueError, match="basis"):
        R.equal_count_band_masks(8, 8, 2, basis="wavelet")


# ----------------------------------------------------------------------------- box-limited

def test_box_limited_on_black_images_and_not_on_grey_ones():
    h = 8
    masks = band_masks(h, h, 4, basis="dct")
    high = masks[1:].any(0)                       # everything but the band with the mean
    model = _Unfoolable()
    y = torch.zeros(3, dtype=torch.long)
    black = torch.zeros(3, 1, h, h)               # a zero-mean perturbation >= 0 is 0
    b = R.box_limited(model, black, y, high, eps=1.0, norm="l2", steps=5)
    assert not b["success"].any() and b["limited"].all() and float(b["used"].max()) < 1e-6
    grey = torch.full((3, 1, h, h), 0.5)
    g = R.box_limited(model, grey, y, high, eps=1.0, norm="l2", steps=5)
    assert not g["success"].any() and not g["limited"].any()
    assert float(g["used"].min()) > 0.9             # (a few pixels of the pattern reach the box)
    with pytest.raises(ValueError, match="threshold"):
        R.box_limited(model, grey, y, high, eps=1.0, threshold=0)
    with pytest.raises(ValueError, match="eps"):
        R.box_limited(model, grey, y, high, eps=-1.0)


def test_band_comparison_adds_box_fields_and_keeps_compare_bands_numbers():
    h = 8
    masks = band_masks(h, h, 2, basis="dct")
    model = _Unfoolable()
    x = torch.cat([torch.zeros(2, 1, h, h), torch.full((2, 1, h, h), 0.5)])
    y = torch.zeros(4, dtype=torch.long)
    recs = R.band_comparison(model, x, y, masks, norm="l2", eps_list=[0.0, 1.0], steps=3, search_steps=2,
                             eps_max=1.0, n_boot=50)
    ref = A.compare_bands(model, x, y, masks, norm="l2", eps_list=[0.0, 1.0], steps=3, search_steps=2,
                          eps_max=1.0, n_boot=50, progress=False)
    assert set(recs) == {"band0", "band1", "full"}
    for k, rec in recs.items():
        assert rec["success_rate"] == ref[k]["success_rate"]
        assert rec["distortions"] == ref[k]["distortions"]
        assert len(rec["box_limited"]) == 4 and len(rec["budget_used"]) == 4
    # band1 excludes the mean: black images cannot move; grey ones use their whole budget
    assert recs["band1"]["box_limited"] == [True, True, False, False]
    assert recs["band1"]["box_limited_share"] == 0.5
    assert recs["full"]["box_limited"] == [False] * 4     # the full band can brighten black images


# ----------------------------------------------------------------------------- H3 rule

def _rec(d, box=0.0, n_coef=10):
    d = np.asarray(d, dtype=float)
    s = np.sort(d)
    return {"distortions": d.tolist(), "median_distortion": float((s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2),
            "ci_low": float(s[0]), "ci_high": float(s[-1]), "ci": 0.95, "norm": "l2", "basis": "dct",
            "n": len(d), "n_coefficients": n_coef, "box_limited_share": box}


_RNG = np.random.default_rng(0)
_BASE = np.exp(_RNG.normal(0, 1.0, 40))          # images differ a lot in how hard they are


@pytest.mark.parametrize("low, high, expected, reason", [
    (_BASE * 0.8, _BASE, "supported", "below"),                       # paired: every image 20% cheaper
    (_BASE, _BASE * 0.8, "rejected", "above"),
    (_BASE * np.exp(_RNG.normal(0, 0.5, 40)), _BASE, "inconclusive", "contains"),
    (_BASE, np.full(40, np.inf), "supported", "below"),               # the high band never succeeds
])
def test_h3_verdict_paired_rule(low, high, expected, reason):
    recs = {"band0": _rec(low), "band1": _rec(_BASE), "band2": _rec(high), "full": _rec(_BASE / 3)}
    v = R.h3_verdict(recs, dataset="toy")
    assert v["verdict"] == expected
    assert reason in v["evidence"]["reason"]
    assert v["evidence"]["band_low"] == "band0" and v["evidence"]["band_high"] == "band2"
    assert "toy" in v["hypothesis"] and "entirely below 0" in v["rule"]


def test_paired_rule_sees_what_unpaired_cis_miss():
    # each image 20% cheaper in the low band, but images differ 10x: the bands' own CIs overlap
    recs = {"band0": _rec(_BASE * 0.8), "band1": _rec(_BASE)}
    assert recs["band0"]["ci_high"] > recs["band1"]["ci_low"]
    v = R.h3_verdict(recs)
    assert v["verdict"] == "supported"
    assert v["evidence"]["median_ratio"] == pytest.approx(0.8)


def test_paired_log_ratio_infinities_and_errors():
    out = R.paired_log_ratio([1.0, np.inf, np.inf, 2.0], [2.0, 1.0, np.inf, np.inf], n_boot=100)
    assert out["log_ratio"] == [pytest.approx(math.log(0.5)), math.inf, 0.0, -math.inf]
    assert out["median"] == pytest.approx(math.log(0.5) / 2)
    assert out["ci_low"] <= out["median"] <= out["ci_high"]
    with pytest.raises(ValueError, match="equal length"):
        R.paired_log_ratio([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=">= 0"):
        R.paired_log_ratio([-1.0], [1.0])


def test_h3_verdict_box_limited_is_inconclusive():
    recs = {"band0": _rec(_BASE), "band1": _rec(np.full(40, np.inf), box=0.6)}
    v = R.h3_verdict(recs, max_box_share=0.1)
    assert v["verdict"] == "inconclusive" and v["evidence"]["reason"] == "box-limited"
    assert R.h3_verdict(recs, max_box_share=0.7)["verdict"] == "supported"
    with pytest.raises(ValueError, match="two bands"):
        R.h3_verdict({"band0": _rec(_BASE), "full": _rec(_BASE)})
    with pytest.raises(ValueError, match="band"):
        R.h3_verdict(recs, low="nope")


# ----------------------------------------------------------------------------- examples, attribution

def test_band_examples_equal_budget_feasible_and_in_band():
    h = 8
    g = torch.Generator().manual_seed(0)
    x = 0.3 + 0.4 * torch.rand(4, 3, h, h, generator=g)
    model = _Linear(3, h, h).float()
    y = torch.zeros(4, dtype=torch.long)
    masks = R.equal_count_band_masks(h, h, 2)
    ex = R.band_examples(model, x, y, masks, eps=0.5, norm="l2", steps=5, smooth={"cg_iters": 10})
    assert set(ex) == {"band0", "band1", "full", "smooth"}
    for name, rec in ex.items():
        assert rec["x_adv"].shape == x.shape and float(rec["x_adv"].min()) >= 0 and float(rec["x_adv"].max()) <= 1
        assert torch.allclose(rec["delta"], rec["x_adv"] - x)
        assert float(rec["l2"].max()) <= 0.5 + 1e-5
        assert float(rec["out_of_band"].max()) < 1e-3
    # no early stop and no box in play: every band spends its whole budget
    assert torch.allclose(ex["band0"]["l2"], torch.full((4,), 0.5), atol=1e-3)
    e = dct2(ex["band0"]["delta"]).pow(2).sum(1)
    assert float(e[:, ~masks[0]].sum()) < 1e-3 * float(e.sum())
    assert "dirichlet" in ex["smooth"]


def test_perturbation_attribution_is_exact_for_a_linear_model():
    h = 8
    g = torch.Generator().manual_seed(1)
    x = (0.3 + 0.4 * torch.rand(3, 1, h, h, generator=g)).double()
    delta = 0.1 * torch.randn(3, 1, h, h, generator=g, dtype=torch.float64)
    xa = (x + delta).clamp(0, 1)
    model = _Linear(1, h, h)
    y = torch.tensor([0, 1, 2])
    masks = R.equal_count_band_masks(h, h, 3)
    out = R.perturbation_attribution(model, x, xa, y, masks, n_steps=4)
    # IG of a linear model: dct(w_y) * dct(x_adv - x), summed per band
    prod = (dct2(model.w.detach()[y]) * dct2(xa - x)).sum(1)
    expect = torch.stack([prod[:, m].sum(1) for m in masks], 1)
    assert torch.allclose(out["band_change"], expect, atol=1e-8)
    assert torch.allclose(out["logit_change"], expect.sum(1), atol=1e-8)
    assert torch.allclose(out["change_share"].sum(1), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(out["energy_share"], A.perturbation_spectrum(xa - x, masks=masks))
    assert float(out["completeness_error"].abs().max()) < 1e-8
    with pytest.raises(ValueError, match="x_adv"):
        R.perturbation_attribution(model, x, xa[:2], y[:2], masks)


def test_band_limited_perturbation_is_attributed_to_its_band():
    h = 8
    masks = R.equal_count_band_masks(h, h, 4)
    g = torch.Generator().manual_seed(2)
    x = (0.4 + 0.2 * torch.rand(2, 1, h, h, generator=g)).double()
    from freqkit.transforms import filter_band
    d = filter_band(0.05 * torch.randn(2, 1, h, h, generator=g, dtype=torch.float64), masks[2], "dct")
    out = R.perturbation_attribution(_Linear(1, h, h), x, x + d, torch.tensor([0, 1]), masks, n_steps=4)
    assert torch.allclose(out["change_share"][:, 2], torch.ones(2, dtype=torch.float64))
    assert torch.allclose(out["energy_share"][:, 2], torch.ones(2, dtype=torch.float64))


# ----------------------------------------------------------------------------- heat maps

def test_heatmap_radial_profile():
    h, w = 16, 16
    c, v = R.heatmap_radial_profile(torch.full((h, w), 0.25))
    assert np.allclose(v, 0.25) and len(c) == len(v) <= 8
    r = frequency_radius(h, w, "dft")
    c, v = R.heatmap_radial_profile(r.float(), n_bins=5)
    assert np.allclose(c, v, atol=1e-6)                   # the mean radius per ring is the ring's centre
    assert np.all(np.diff(c) > 0)
    with pytest.raises(ValueError, match="hm"):
        R.heatmap_radial_profile(torch.zeros(3, 4, 4))


def test_fourier_heatmap_tuple_of_metrics_in_one_pass():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(4, 1, 6, 7, generator=g)
    model = nn.Sequential(nn.Flatten(), nn.Linear(42, 3))
    y = torch.tensor([0, 1, 2, 0])
    both = A.fourier_heatmap(model, x, y, eps=1.5, metric=("error", "logit_change"), progress=False)
    assert set(both) == {"error", "logit_change"}
    for m in ("error", "logit_change"):
        assert torch.allclose(both[m], A.fourier_heatmap(model, x, y, eps=1.5, metric=m, progress=False))
    with pytest.raises(ValueError, match="metric"):
        A.fourier_heatmap(model, x, y, metric=("error", "accuracy"))
    with pytest.raises(ValueError, match="metric"):
        A.fourier_heatmap(model, x, y, metric=())


@pytest.mark.parametrize("h, w", [(32, 32), (28, 28), (9, 10), (7, 7)])
def test_n_fourier_directions_counts_conjugate_pairs(h, w):
    n = R.n_fourier_directions(h, w)
    # brute force: frequencies f of the centred grid, identified with -f
    seen = set()
    for u in range(h):
        for v in range(w):
            fu, fv = u - h // 2, v - w // 2
            a = ((fu) % h, (fv) % w)
            b = ((-fu) % h, (-fv) % w)
            seen.add(min(a, b))
    assert n == len(seen)


def test_heatmap_report_matches_fourier_heatmap_and_its_parts():
    torch.manual_seed(0)
    m = _Linear(1, 8, 8, k=2).float()
    x = torch.rand(5, 1, 8, 8)
    y = m(x).argmax(1)
    rep = R.heatmap_report(m, x, y, eps=2.0, batch_size=64, seed=3, n_radial_bins=3)
    ref = A.fourier_heatmap(m, x, y, eps=2.0, batch_size=64, seed=3, metric=("error", "logit_change"),
                            progress=False)
    for k in ("error", "logit_change"):
        torch.testing.assert_close(rep["maps"][k], ref[k])
        c, v = R.heatmap_radial_profile(ref[k], 3)
        np.testing.assert_allclose(rep["radial"][k][1], v)
    assert rep["clean_error"] == 0.0                    # labels are the model's own predictions
    assert rep["timing"]["n_directions"] == R.n_fourier_directions(8, 8)
    assert rep["timing"]["n_images"] == 5 and rep["timing"]["seconds"] > 0
    one = R.heatmap_report(m, x, (y + 1) % 2, eps=2.0, metrics=("error",))
    assert list(one["maps"]) == ["error"] and one["clean_error"] == 1.0
    with pytest.raises(ValueError, match="y"):
        R.heatmap_report(m, x, y[:2], eps=2.0)


def test_band_table_has_one_row_per_band_with_its_numbers():
    rec = {"n_coefficients": 256, "success_rate": [0.0, 0.5, 1.0], "median_distortion": 0.25, "ci_low": 0.2,
           "ci_high": 0.3, "success_at_eps_max": 1.0, "box_limited_share": 0.0, "out_of_band_max": 3e-5}
    text = R.band_table({"band0": rec, "full": {**rec, "n_coefficients": 1024}}, [0.0, 0.5, 1.0])
    lines = text.splitlines()
    assert len(lines) == 3 and "success at eps = 0, 0.5, 1" in lines[0]
    assert lines[1].split()[:2] == ["band0", "256"] and "0.25 [0.2, 0.3]" in lines[1] and "3.0e-05" in lines[1]
    assert "  0%  50% 100%" in lines[1] and lines[2].split()[:2] == ["full", "1024"]


def test_h3_summary_states_verdict_rule_ratio_and_bands():
    recs = {"band0": _rec(_BASE * 0.8), "band1": _rec(_BASE), "full": _rec(_BASE / 3)}
    v = R.h3_verdict(recs, dataset="toy")
    text = R.h3_summary(v)
    lines = text.splitlines()
    assert lines[0].startswith(v["hypothesis"]) and v["verdict"].upper() in lines[0]
    assert lines[1] == "  rule: " + v["rule"]
    assert f"{float(v['evidence']['median_ratio']):.3g}" in lines[2]
    assert "band0 median" in lines[3] and "band1 median" in lines[3] and "full band" in lines[3]


def test_example_spectra_and_smooth_summary_follow_the_perturbations():
    h = 8
    fk_band = R.equal_count_band_masks(h, h, 2)
    # a perturbation entirely in band 0 and one entirely in band 1, built in the DCT domain
    from freqkit.transforms import idct2
    c = torch.randn(3, 1, h, h)
    d0, d1 = idct2(c * fk_band[0]), idct2(c * fk_band[1])
    ok = torch.tensor([True, False, True])
    ex = {"band0": {"delta": d0, "success": ok}, "full": {"delta": d0 + d1, "success": ok},
          "smooth": {"delta": d0, "success": ~ok, "dirichlet": torch.tensor([1.0, 2.0, 3.0])}}
    spectra, centres = R.example_spectra(ex, {"band0": "low", "full": "all"}, n_bands=4)
    assert len(centres) == 4 and centres == sorted(centres)
    assert sum(spectra["low"]) == pytest.approx(1.0) and sum(spectra["all"]) == pytest.approx(1.0)
    assert spectra["low"][0] > spectra["all"][0]  # band-0 energy sits at low radii
    s = R.smooth_summary(ex, fk_band)
    assert s["lowest_band_energy_share"]["band0"] == pytest.approx(1.0, abs=1e-5)
    assert 0 < s["lowest_band_energy_share"]["full"] < 1
    assert s["dirichlet_smooth"] == pytest.approx(2.0)
    assert s["success_band0"] == pytest.approx(2 / 3) and s["success_smooth"] == pytest.approx(1 / 3)


def test_chapter_helpers_refuse_bad_input_by_name():
    m = _Linear(1, 8, 8, k=2).float()
    x = torch.rand(3, 1, 8, 8)
    y = torch.zeros(3, dtype=torch.long)
    for kw, match in ((dict(eps=-1.0), "eps"), (dict(eps=float("nan")), "eps"), (dict(eps=1.0, metrics=()), "metrics"),
                      (dict(eps=1.0, metrics=("bogus",)), "metric"), (dict(eps=1.0, n_radial_bins=0), "n_bins")):
        with pytest.raises(ValueError, match=match):
            R.heatmap_report(m, x, y, **kw)
    with pytest.raises(ValueError, match="non-finite"):
        R.heatmap_report(m, x * float("nan"), y, eps=1.0)
    rec = _rec(_BASE)
    rec.update(success_rate=[0.0, 1.0], n_coefficients=4, success_at_eps_max=1.0, box_limited_share=0.0,
               out_of_band_max=0.0)
    with pytest.raises(ValueError, match="eps_list has 1"):
        R.band_table({"band0": rec}, [0.0])
    with pytest.raises(ValueError, match="records"):
        R.band_table({}, [0.0])
    with pytest.raises(ValueError, match="h3_verdict"):
        R.h3_summary({"verdict": "supported"})
    ex = {"full": {"delta": torch.zeros(2, 1, 8, 8), "success": torch.ones(2, dtype=torch.bool)}}
    with pytest.raises(ValueError, match="no example named 'band0'"):
        R.example_spectra(ex, {"band0": "low"}, 4)
    with pytest.raises(ValueError, match="no example named 'smooth'"):
        R.smooth_summary(ex, torch.ones(1, 8, 8, dtype=torch.bool), variants=("full",))
