"""Tests of freqkit.faithfulness: the summaries chapters 3-4 report, deletion/insertion curves and
the model-randomisation check, checked by hand.  (The H2 rule: test_hypotheses.py.)"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau, spearmanr
from torch import nn

from freqkit.attribution import attribute
from freqkit.attribution import baseline_image
from freqkit.faithfulness import (
    NullComparison, RandomisationCheck, attribution_vs_nulls, auc_table, band_rank_agreement, band_share_profile,
    captum_parity, compare_methods, completeness_summary, deletion_insertion_curves, input_rank_correlation,
    model_randomisation_check, randomisation_summary, relative_completeness, topk_series,
)
from freqkit.stats import bootstrap_ci, paired_difference
from freqkit.transforms import band_masks, dct2, equal_count_band_masks, frequency_radius, idct2, radial_profile

pytest.importorskip("captum.attr")

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_cnn(seed=0, dtype=torch.float64, act=nn.Tanh):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), act(), nn.Conv2d(4, 4, 3, padding=1, stride=2), act(),
                      nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5))
    return m.to(dtype).eval()


def images(n=4, seed=1, dtype=torch.float64):
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_compare_methods_shares_target_and_options():
    m, x = tiny_cnn(), images()
    masks = band_masks(8, 8, 4)
    rings = band_masks(8, 8, 8, kind="ring")
    res = compare_methods(m, x, "predicted", ["ig", "occlusion"], masks=masks, n_steps=8)
    assert list(res) == ["ig", "occlusion"]
    assert torch.equal(res["ig"].target, m(x).argmax(1))
    assert torch.equal(res["occlusion"].target, res["ig"].target)
    assert res["ig"].info["n_steps"] == 8 and res["occlusion"].band_scores.shape == (4, 4)
    res2 = compare_methods(m, x, 1, {"rings": {"method": "occlusion", "masks": rings},
                                     "sg": {"method": "smoothgrad", "n_samples": 2}}, masks=masks)
    assert res2["rings"].band_scores.shape == (4, 8) and res2["sg"].scores.shape == x.shape
    with pytest.raises(ValueError, match="method"):
        compare_methods(m, x, 0, ["nope"])
    with pytest.raises(ValueError, match="empty"):
        compare_methods(m, x, 0, [])
    with pytest.raises(ValueError, match="method"):
        compare_methods(m, x, 0, {"a": {"n_steps": 3}})


def test_relative_completeness_by_hand():
    m, x = tiny_cnn(act=nn.ReLU), images()
    r = attribute(m, x, 2, method="ig", n_steps=4)
    with torch.no_grad():
        gap = m(x)[:, 2] - m(torch.zeros_like(x))[:, 2]
    want = (r.scores.sum((1, 2, 3)) - gap).abs() / gap.abs()
    torch.testing.assert_close(relative_completeness(r), want.cpu(), rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="completeness"):
        relative_completeness(attribute(m, x, 2, method="saliency"))
    with pytest.raises(TypeError):
        relative_completeness(torch.zeros(3))


def test_completeness_summary_and_distribution():
    s = completeness_summary(torch.tensor([0.001, 0.002, 0.02, 0.5]), tol=0.01)
    assert s["share_within"] == 0.5 and s["n"] == 4 and s["max"] == 0.5
    assert math.isclose(s["median"], float(np.median([0.001, 0.002, 0.02, 0.5])), rel_tol=1e-6)
    with pytest.raises(ValueError, match="tol"):
        completeness_summary([0.1], tol=0)


def test_band_rank_agreement_matches_scipy():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 7, generator=g), torch.randn(6, 7, generator=g)
    b[0] = a[0] * 3 + 1          # perfect agreement
    b[1] = -a[1]                 # perfect disagreement
    a[2, :3] = a[2, 0]           # ties
    r = band_rank_agreement(a, b)
    for i in range(6):
        assert math.isclose(float(r[i]), spearmanr(a[i], b[i]).statistic, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(float(r[0]), 1.0) and math.isclose(float(r[1]), -1.0)
    k = band_rank_agreement(a, b, method="kendall")
    assert math.isclose(float(k[3]), kendalltau(a[3], b[3]).statistic, rel_tol=1e-9)
    const = band_rank_agreement(torch.ones(1, 4), torch.arange(4.0)[None])
    assert torch.isnan(const).all()
    with pytest.raises(ValueError, match="same shape"):
        band_rank_agreement(a, b[:, :3])


@pytest.mark.parametrize("basis", ["dct", "dft"])
def test_captum_parity_is_tiny(basis):
    m, x = tiny_cnn(), images(n=3)
    masks = band_masks(8, 8, 4, basis=basis)
    p = captum_parity(m, x, "predicted", masks, basis=basis, n_steps=8, baseline=0.2)
    assert p["ig_max_abs_diff"] < 1e-10 and p["occlusion_max_abs_diff"] < 1e-10
    assert p["ig_max_abs_score"] > 0 and p["occlusion_max_abs_score"] > 0 and p["n_bands"] == 4


def test_captum_parity_detects_a_difference():
    """Parity must not be vacuous: a different model for Captum shows up as a difference."""
    m, x = tiny_cnn(), images(n=2)
    masks = band_masks(8, 8, 3)
    p_ok = captum_parity(m, x, 0, masks, n_steps=4)
    m2 = tiny_cnn(seed=5)

    class Swap(nn.Module):  # freqkit sees m the first time it is called, Captum sees m2 afterwards
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, z):
            self.calls += 1
            return m(z) if self.calls <= 4 else m2(z)

    p_bad = captum_parity(Swap(), x, 0, masks, n_steps=4)
    assert p_ok["ig_max_abs_diff"] < 1e-10
    assert p_bad["ig_max_abs_diff"] > 1e-6 or p_bad["occlusion_max_abs_diff"] > 1e-6


def test_auc_table_by_hand():
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)).double().eval()
    x = images()
    r = attribute(lin, x, "predicted", method="ig", n_steps=4)
    cur = deletion_insertion_curves(lin, x, r.target, r, output="logit", n_points=5)
    t = auc_table(cur, n_boot=200)
    for kind, aucs in (("deletion", cur.auc_deletion), ("insertion", cur.auc_insertion)):
        for o, v in aucs.items():
            assert math.isclose(t[kind][o]["mean"], float(v.mean()), rel_tol=1e-9)
            lo, hi = t[kind][o]["ci"]
            assert float(v.min()) - 1e-9 <= lo <= t[kind][o]["mean"] <= hi <= float(v.max()) + 1e-9
    want = float((cur.auc_deletion["attribution"] < cur.auc_deletion["random"]).double().mean())
    assert t["beats_random"]["deletion"] == want and t["n"] == 4
    with pytest.raises(TypeError):
        auc_table({"deletion": {}})


def test_topk_series_reports_model_output_on_reconstructions():
    from freqkit.attribution import topk_reconstruction

    m, x = tiny_cnn(), images(3)
    r = attribute(m, x, "predicted", method="ig", n_steps=4)
    s = topk_series(m, x, r.target, r, [0.0, 0.1, 1.0], batch_size=2)
    assert s["prob"].shape == (3, 3) and s["pred"].shape == (3, 3) and len(s["images"]) == 3
    torch.testing.assert_close(s["images"][1], topk_reconstruction(x, r, 0.1))
    with torch.no_grad():
        p_full = torch.softmax(m(x), 1).gather(1, r.target[:, None])[:, 0]
    torch.testing.assert_close(s["prob"][2], p_full, rtol=1e-6, atol=1e-8)
    assert torch.equal(s["pred"][2], m(x).argmax(1))
    with pytest.raises(ValueError, match="fractions"):
        topk_series(m, x, 0, r, [])


def test_input_rank_correlation():
    m, x = tiny_cnn(), images(3)
    gxi = attribute(m, x, 0, method="grad_x_input")
    r = input_rank_correlation(gxi)
    c = gxi.coeffs.abs().reshape(3, -1)
    for i in range(3):
        assert math.isclose(float(r[i]), spearmanr(gxi.scores[i].abs().flatten(), c[i]).statistic, rel_tol=1e-9)
    # a method whose scores *are* |c - c_b| correlates perfectly
    fake = attribute(m, x, 0, method="grad_x_input")
    fake.scores = (fake.coeffs - fake.baseline_coeffs).abs() * 2
    assert torch.allclose(input_rank_correlation(fake), torch.ones(3, dtype=torch.float64))
    with pytest.raises(TypeError):
        input_rank_correlation(x)


def test_randomisation_summary_reads_the_top_and_bottom_layer_rows():
    m, x = tiny_cnn(), images(n=3)
    checks = {"IG": model_randomisation_check(m, x, "predicted", method="ig", mode="cascading", n_steps=4),
              "saliency": model_randomisation_check(m, x, "predicted", method="saliency", mode="cascading")}
    s = randomisation_summary(checks)
    assert list(s) == ["IG", "saliency"]
    for k, c in checks.items():
        assert s[k]["spearman_abs"] == pytest.approx(float(np.nanmean(c.spearman_abs[-1].numpy())))
        assert s[k]["spearman_abs_top_layer"] == pytest.approx(float(np.nanmean(c.spearman_abs[0].numpy())))
        assert s[k]["spearman"] == pytest.approx(float(np.nanmean(c.spearman[-1].numpy())))
        assert s[k]["spearman_with_input"] == pytest.approx(
            float(np.nanmean(input_rank_correlation(c.original).numpy())))
    assert s["IG"]["spearman_abs_top_layer"] != s["IG"]["spearman_abs"]  # two different rows are read


def test_band_share_profile_is_the_mean_share_with_a_bootstrap_ci():
    from freqkit.attribution import band_shares
    from freqkit.stats import bootstrap_ci
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(12, 3, 8, 8, generator=g, dtype=torch.float64)
    masks = band_masks(8, 8, 4)
    mean, lo, hi = band_share_profile(scores, masks, n_boot=200, seed=3)
    sh = band_shares(scores, masks, by="signed").numpy()
    np.testing.assert_allclose(mean, sh.mean(0))
    ref_lo, ref_hi = bootstrap_ci(sh, stat=np.mean, n_boot=200, seed=3)
    np.testing.assert_allclose(lo, ref_lo)
    np.testing.assert_allclose(hi, ref_hi)
    assert mean.shape == (4,) and np.all(lo <= mean) and np.all(mean <= hi)
    a_mean, _, _ = band_share_profile(scores, masks, by="abs", n_boot=50)
    assert a_mean.sum() == pytest.approx(1.0)  # |shares| of a partition sum to 1


def test_summaries_refuse_bad_input_by_name():
    masks = band_masks(8, 8, 2)
    with pytest.raises(ValueError, match="n_boot"):
        band_share_profile(torch.rand(2, 1, 8, 8), masks, n_boot=0)
    with pytest.raises(ValueError, match="by"):
        band_share_profile(torch.rand(2, 1, 8, 8), masks, by="mean")
    with pytest.raises(TypeError, match=r"checks\['a'\] must be a RandomisationCheck"):
        randomisation_summary({"a": 3})
    with pytest.raises(ValueError, match="non-empty"):
        randomisation_summary({})


# ----------------------------------------------------------------------------- deletion / insertion

def test_deletion_insertion_on_linear_model():
    """For a model linear in the coefficients, deleting by signed IG score is the steepest descent."""
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)).double().eval()
    x = images(n=3)
    r = attribute(lin, x, "predicted", method="ig", n_steps=4)
    cur = deletion_insertion_curves(lin, x, r.target, r, output="logit", n_points=9)
    with torch.no_grad():
        fx = lin(x).gather(1, r.target[:, None])[:, 0]
        f0 = lin(torch.zeros_like(x)).gather(1, r.target[:, None])[:, 0]
    for o in ("attribution", "random", "low_to_high", "high_to_low"):
        assert cur.deletion[o].shape == (3, 9)
        torch.testing.assert_close(cur.deletion[o][:, 0], fx)
        torch.testing.assert_close(cur.deletion[o][:, -1], f0)
        torch.testing.assert_close(cur.insertion[o][:, 0], f0)
        torch.testing.assert_close(cur.insertion[o][:, -1], fx)
        assert bool((cur.deletion["attribution"] <= cur.deletion[o] + 1e-9).all())
        assert bool((cur.insertion["attribution"] >= cur.insertion[o] - 1e-9).all())
    summ = cur.summary()
    assert summ["deletion"]["attribution"] <= summ["deletion"]["random"]
    assert summ["insertion"]["attribution"] >= summ["insertion"]["random"]
    p = deletion_insertion_curves(lin, x, r.target, r.scores, orders="random", n_points=3, internal_batch_size=2)
    assert set(p.deletion) == {"random"} and float(p.deletion["random"].max()) <= 1.0


# ----------------------------------------------------------------------------- randomisation check

@pytest.mark.parametrize("mode", ["cascading", "independent", "all"])
def test_model_randomisation_check(mode):
    m, x = tiny_cnn(), images(n=3)
    before = [p.clone() for p in m.parameters()]
    rng = torch.random.get_rng_state()
    res = model_randomisation_check(m, x, "predicted", method="ig", mode=mode, n_steps=8)
    assert isinstance(res, RandomisationCheck)
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))  # original untouched
    assert torch.equal(rng, torch.random.get_rng_state())
    n_layers = 1 if mode == "all" else 3
    assert res.spearman.shape == (n_layers, 3) and res.randomised_scores.shape == (n_layers, 3, 3, 8, 8)
    if mode != "all":
        assert res.layers == ["6", "2", "0"]  # top (output) layer first
    assert float(res.spearman.max()) < 0.99  # randomised weights change the explanation
    again = model_randomisation_check(m, x, "predicted", method="ig", mode=mode, n_steps=8)
    torch.testing.assert_close(res.spearman, again.spearman, equal_nan=True)  # seeded


def test_bad_inputs_name_the_argument_faithfulness():
    m, x = tiny_cnn(), images(n=3)
    with pytest.raises(ValueError, match="orders"):
        deletion_insertion_curves(m, x, 0, x, orders=("sideways",))
    with pytest.raises(ValueError, match="mode"):
        model_randomisation_check(m, x, 0, mode="some")


# ----------------------------------------------------------------- issue 11: a broken model, mode, empty input

class _NaNModel(nn.Module):
    """A classifier whose logits are all NaN, like one loaded from a diverged checkpoint."""

    def __init__(self, c=3, h=8, k=5):
        super().__init__()
        self.lin = nn.Linear(c * h * h, k).double()

    def forward(self, x):
        return self.lin(x.flatten(1)) * float("nan")


def _calls():
    x, masks = images(n=3), band_masks(8, 8, 2)
    scores = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return {
        "compare_methods": lambda m, x=x: compare_methods(m, x, 0, ["ig", "occlusion"], masks=masks, n_steps=4),
        "captum_parity": lambda m, x=x: captum_parity(m, x, 0, masks, n_steps=4),
        "deletion_insertion_curves": lambda m, x=x: deletion_insertion_curves(m, x, 0, scores[:x.shape[0]],
                                                                              n_points=3),
        "topk_series": lambda m, x=x: topk_series(m, x, "predicted", scores[:x.shape[0]], [0.5, 1.0]),
        "model_randomisation_check": lambda m, x=x: model_randomisation_check(m, x, 0, method="ig", n_steps=4),
        "attribution_vs_nulls": lambda m, x=x: attribution_vs_nulls(m, x, 0, band_masks(8, 8, 3), n_steps=4),
    }


@pytest.mark.parametrize("name", list(_calls()))
def test_nan_logits_are_an_error_naming_the_model(name):
    with pytest.raises(ValueError, match=r"_NaNModel.*non-finite"):
        _calls()[name](_NaNModel())


@pytest.mark.parametrize("name", list(_calls()))
def test_faithfulness_checks_leave_every_submodules_mode_and_batchnorm_statistics_alone(name):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Tanh(), nn.Conv2d(4, 4, 3, padding=1),
                        nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 8 * 8, 5)).double().train()
    net[4].eval()
    modes = {n: m.training for n, m in net.named_modules()}
    state = {k: v.clone() for k, v in net.state_dict().items()}
    import warnings as _w
    with _w.catch_warnings():
        _w.simplefilter("error")
        _calls()[name](net)
    assert {n: m.training for n, m in net.named_modules()} == modes
    for k, v in state.items():
        assert torch.equal(net.state_dict()[k], v), k


@pytest.mark.parametrize("name", list(_calls()))
def test_an_empty_batch_is_refused_naming_x(name):
    with pytest.raises(ValueError, match=r"x holds no images \(N = 0\)"):
        _calls()[name](tiny_cnn(), x=images(n=3)[:0])


def test_topk_series_and_deletion_curves_take_a_plain_function():
    m, x = tiny_cnn(), images(n=3)
    s = torch.rand(3, 3, 8, 8, dtype=torch.float64)
    a = topk_series(lambda z: m(z), x, "predicted", s, [0.5])
    b = topk_series(m, x, "predicted", s, [0.5])
    assert torch.equal(a["prob"], b["prob"])
    c = deletion_insertion_curves(lambda z: m(z), x, 0, s, n_points=3)
    d = deletion_insertion_curves(m, x, 0, s, n_points=3)
    assert torch.equal(c.auc_deletion["random"], d.auc_deletion["random"])


def test_completeness_summary_treats_inf_as_larger_than_any_error():
    s = completeness_summary([0.0, 0.001, float("inf")], tol=0.01)
    assert s["median"] == s["q50"] == 0.001
    assert s["q75"] == float("inf") and s["q90"] == float("inf") and s["max"] == float("inf")
    assert s["q25"] == pytest.approx(0.0005) and s["q10"] == pytest.approx(0.0002)
    assert s["share_within"] == pytest.approx(2 / 3) and s["n"] == 3
    s2 = completeness_summary([0.0, float("inf"), float("inf"), float("nan")])
    assert s2["median"] == float("inf") and s2["n_nan"] == 1 and s2["share_within"] == 0.25
    # finite samples keep numpy's linear quantiles
    v = np.array([0.3, 0.001, 0.02, 0.5, 0.0])
    s3 = completeness_summary(v)
    for q in (10, 25, 50, 75, 90):
        assert s3[f"q{q}"] == pytest.approx(float(np.quantile(v, q / 100)))


# ----------------------------------------------------------------- issue 13: agreement with occlusion against nulls

class _LinearHigh(nn.Module):
    """logits = <W_k, x>, W_k's DCT weights growing with frequency: reliance on high bands."""

    def __init__(self, c=3, h=8, w=8, k=3, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        r = frequency_radius(h, w, "dct").to(torch.float64)
        wc = (0.2 + r) ** 3 * (1 + 0.1 * torch.rand(k, c, h, w, generator=g, dtype=torch.float64))
        self.lin = nn.Linear(c * h * w, k, bias=False).double()
        with torch.no_grad():
            self.lin.weight.copy_(idct2(wc).reshape(k, -1))

    def forward(self, x):
        return self.lin(x.flatten(1))


def test_attribution_vs_nulls_null_a_is_the_band_energy_by_hand_and_pairs_add_up():
    m, x = tiny_cnn(), images(n=4)
    masks = band_masks(8, 8, 4)
    for baseline in (None, "blur"):
        r = attribution_vs_nulls(m, x, "predicted", masks, n_steps=8, baseline=baseline)
        assert isinstance(r, NullComparison)
        c = dct2(x - baseline_image(x, baseline))
        by_hand = torch.stack([(c ** 2 * mk).sum((1, 2, 3)) for mk in masks.double()], 1)
        torch.testing.assert_close(r.energy_bands, by_hand)
        occ = attribute(m, x, r.target, method="occlusion", masks=masks, baseline=baseline_image(x, baseline))
        ig = attribute(m, x, r.target, method="ig", n_steps=8, baseline=baseline_image(x, baseline))
        torch.testing.assert_close(r.occlusion_bands, occ.band_scores)
        torch.testing.assert_close(r.method_bands, ig.bands(masks))
        torch.testing.assert_close(r.spearman, band_rank_agreement(ig.bands(masks), occ.band_scores))
        torch.testing.assert_close(r.spearman_energy, band_rank_agreement(by_hand, occ.band_scores))
        torch.testing.assert_close(r.diff_energy, r.spearman - r.spearman_energy, equal_nan=True)
        torch.testing.assert_close(r.diff_randomised, r.spearman - r.spearman_randomised, equal_nan=True)
    assert r.baseline == "blur" and r.layers == ["6", "2", "0"] and r.target.shape == (4,)


def test_attribution_vs_nulls_randomised_null_is_the_randomised_models_attribution():
    m, x = tiny_cnn(), images(n=3)
    masks = band_masks(8, 8, 4)
    before = [p.clone() for p in m.parameters()]
    state = torch.random.get_rng_state()
    r = attribution_vs_nulls(m, x, 1, masks, n_steps=8, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))
    assert torch.equal(state, torch.random.get_rng_state())
    chk = model_randomisation_check(m, x, 1, method="ig", mode="all", seed=3, n_steps=8, masks=masks)
    torch.testing.assert_close(r.randomised_bands, radial_profile(chk.randomised_scores[-1].sum(1), masks))
    assert float((r.randomised_bands - r.method_bands).abs().max()) > 1e-3    # the null differs
    again = attribution_vs_nulls(m, x, 1, masks, n_steps=8, seed=3)
    torch.testing.assert_close(again.randomised_bands, r.randomised_bands)       # seeded
    other = attribution_vs_nulls(m, x, 1, masks, n_steps=8, seed=4)
    assert not torch.allclose(other.randomised_bands, r.randomised_bands)


def _one_over_f_images(n=6, seed=2):
    """Grey images with a 1/f amplitude spectrum, like natural images (in [0.25, 0.8])."""
    g = torch.Generator().manual_seed(seed)
    r = frequency_radius(8, 8, "dct").to(torch.float64)
    c = 0.05 * torch.randn(n, 3, 8, 8, generator=g, dtype=torch.float64) / (0.1 + r)
    c[..., 0, 0] = 4.0
    return idct2(c)


def test_ig_beats_the_energy_null_on_a_model_that_uses_high_frequencies():
    # For a linear model with a black baseline, IG band scores ARE the occlusion drops (rho = 1);
    # the image's energy falls with frequency while this model's weights grow: the null disagrees.
    m, x = _LinearHigh(), _one_over_f_images()
    r = attribution_vs_nulls(m, x, "predicted", equal_count_band_masks(8, 8, 5), n_steps=4, by="abs")
    assert bool((r.energy_bands[:, 1:].mean(0).diff() < 0).all())     # the null follows the 1/f spectrum
    torch.testing.assert_close(r.spearman, torch.ones(6, dtype=torch.float64))
    assert float(r.spearman_energy.max()) < 0
    assert bool((r.diff_energy > 1.0).all())
    s = r.summary(n_boot=200, seed=1)
    ok = torch.isfinite(r.spearman_randomised)
    want = paired_difference(r.spearman[ok].numpy(), r.spearman_randomised[ok].numpy(), n_boot=200, seed=1)
    assert {k: s["vs_randomised"][k] for k in want} == pytest.approx(want)
    d = (r.spearman - r.spearman_energy).numpy()
    lo, hi = bootstrap_ci(d, np.median, n_boot=200, seed=1)
    assert s["vs_energy"]["median_ci_low"] == pytest.approx(float(lo))
    assert s["vs_energy"]["median_ci_high"] == pytest.approx(float(hi))
    assert s["vs_energy"]["share_positive"] == 1.0 and s["spearman"]["method"]["mean"] == pytest.approx(1.0)
    assert s["n"] == 6 and s["method"] == "ig"


def test_attribution_vs_nulls_refuses_bad_input_by_name():
    m, x = tiny_cnn(), images(n=2)
    with pytest.raises(TypeError, match="model"):
        attribution_vs_nulls(lambda z: m(z), x, 0, band_masks(8, 8, 3))
    with pytest.raises(ValueError, match="by"):
        attribution_vs_nulls(m, x, 0, band_masks(8, 8, 3), by="rank")
    with pytest.raises(ValueError, match="masks"):
        attribution_vs_nulls(m, x, 0, band_masks(8, 8, 1), n_steps=2)
    with pytest.raises(ValueError, match="method"):
        attribution_vs_nulls(m, x, 0, band_masks(8, 8, 3), method="lime")
    with pytest.raises(ValueError, match="baseline"):
        attribution_vs_nulls(m, x, 0, band_masks(8, 8, 3), baseline="grey")
    with pytest.raises(ValueError, match="layers"):
        attribution_vs_nulls(m, x, 0, band_masks(8, 8, 3), layers=["9"], n_steps=2)
