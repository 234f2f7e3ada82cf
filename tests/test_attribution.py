"""Tests of freqkit.attribution: parity with Captum, completeness, ground truth, attribution of
perturbations, bad input.  (Deletion/insertion and the randomisation check: test_faithfulness.py;
planted_band_share: test_planted.py.)

Every model is tiny and built here with a fixed seed; most run in float64 so parity and
completeness can be checked to near machine precision.
"""
from __future__ import annotations


import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.fft import dctn, idctn
from torch import nn

from freqkit.attribution import (
    FrequencyAttribution, FrequencyModel, attribute, band_feature_mask, band_pixel_attribution, band_shares,
    perturbation_attribution, radial_attribution_profile, topk_reconstruction,
)
from freqkit.planted import planted_band_share
from freqkit.transforms import (
    band_energy, band_masks, dct2, dht2, equal_count_band_masks, filter_band, from_basis, radial_profile,
    ring_band_masks, to_basis,
)

captum_attr = pytest.importorskip("captum.attr")

pytestmark = pytest.mark.usefixtures("one_thread")

HYP = settings(max_examples=12, deadline=None, derandomize=True)


# ----------------------------------------------------------------------------- tiny models

def tiny_cnn(ch=3, n_classes=5, seed=0, act=nn.Tanh, dtype=torch.float64):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(ch, 4, 3, padding=1), act(), nn.Conv2d(4, 4, 3, padding=1, stride=2), act(),
                      nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, n_classes))
    return m.to(dtype).eval()


def images(n=3, ch=3, h=8, w=8, seed=1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, ch, h, w, generator=g, dtype=dtype)


class BandEnergyModel(nn.Module):
    """Class-0 logit = sum_k a_k E_k(x), E_k the energy of band k: Shapley values are known."""

    def __init__(self, masks, a, basis="dct", interaction=False):
        super().__init__()
        self.masks, self.a, self.basis, self.interaction = masks, a, basis, interaction

    def energies(self, x):
        return radial_profile((to_basis(x, self.basis) ** 2).sum(1), self.masks)

    def forward(self, x):
        e = self.energies(x)
        z = e[:, 0] * e[:, 1] if self.interaction else e @ self.a.to(e.dtype)
        return torch.stack([z, -z, 0.1 * z], 1)


class OneBandModel(nn.Module):
    """A CNN that only ever sees band j of the DCT (a planted ground truth)."""

    def __init__(self, mask, seed=0):
        super().__init__()
        self.mask = mask
        self.net = tiny_cnn(seed=seed)

    def forward(self, x):
        return self.net(from_basis(to_basis(x, "dct") * self.mask.to(x.dtype), "dct"))


def band_index_map(masks):
    return band_feature_mask(masks)


def test_band_feature_mask_names_each_coefficients_band():
    masks = band_masks(8, 8, 3)
    fmap = band_feature_mask(masks)
    assert fmap.shape == (1, 1, 8, 8) and fmap.dtype == torch.long
    for k in range(3):
        assert torch.equal(fmap[0, 0] == k, masks[k])
    with pytest.raises(ValueError, match="disjoint"):
        band_feature_mask(torch.ones(2, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="masks"):
        band_feature_mask(masks.float())


# ----------------------------------------------------------------------------- the wrapper

@pytest.mark.parametrize("basis", ["dct", "dft"])
def test_frequency_model_is_model_of_inverse(basis):
    m, x = tiny_cnn(), images()
    fm = FrequencyModel(m, basis)
    c = fm.to_coeffs(x)
    torch.testing.assert_close(fm(c), m(from_basis(c, basis)), rtol=0, atol=0)
    torch.testing.assert_close(fm(c), m(x), rtol=1e-10, atol=1e-10)
    assert fm.model is m and "basis" in repr(fm)


# ----------------------------------------------------------------------------- IG

@pytest.mark.parametrize("basis", ["dct", "dft"])
@pytest.mark.parametrize("ig_method", ["gausslegendre", "riemann_trapezoid"])
def test_ig_matches_captum_on_wrapped_model(basis, ig_method):
    m, x = tiny_cnn(), images()
    b = images(seed=7) * 0.3
    t = torch.tensor([0, 3, 1])
    fm = FrequencyModel(m, basis)
    ref = captum_attr.IntegratedGradients(fm).attribute(
        fm.to_coeffs(x), baselines=fm.to_coeffs(b), target=t, n_steps=24, method=ig_method)
    for ibs in (None, 2):  # 2 < N forces freqkit's own image chunking on top of Captum's
        r = attribute(m, x, t, method="ig", basis=basis, n_steps=24, baseline=b,
                      ig_method=ig_method, internal_batch_size=ibs)
        torch.testing.assert_close(r.scores, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("basis", ["dct", "dft"])
def test_ig_in_frequency_is_basis_change_of_pixel_ig(basis):
    """Orthonormality: freq IG = B(integrated pixel gradient) * (c - c_b); same total as pixel IG."""
    m, x = tiny_cnn(), images()
    b = torch.full_like(x, 0.5)
    t = torch.tensor([2, 2, 4])
    g = captum_attr.IntegratedGradients(m, multiply_by_inputs=False).attribute(x, baselines=b, target=t, n_steps=32)
    pix = captum_attr.IntegratedGradients(m).attribute(x, baselines=b, target=t, n_steps=32)
    r = attribute(m, x, t, method="ig", basis=basis, n_steps=32, baseline=0.5)
    expected = to_basis(g, basis) * (to_basis(x, basis) - to_basis(b, basis))
    torch.testing.assert_close(r.scores, expected, rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(r.scores.sum((1, 2, 3)), pix.sum((1, 2, 3)), rtol=1e-8, atol=1e-12)


def test_ig_completeness_within_one_percent():
    m = tiny_cnn(act=nn.ReLU, dtype=torch.float32, seed=3)
    x = images(n=6, h=16, w=16, dtype=torch.float32)
    r = attribute(m, x, "predicted", method="ig", n_steps=64)
    with torch.no_grad():
        gap = m(x).gather(1, r.target[:, None])[:, 0] - m(torch.zeros_like(x)).gather(1, r.target[:, None])[:, 0]
    torch.testing.assert_close(r.delta, r.scores.sum((1, 2, 3)) - gap, rtol=1e-4, atol=1e-5)
    rel = r.delta.abs() / gap.abs()
    assert float(rel.max()) < 0.01, rel
    assert r.info["n_steps"] == 64 and r.output_baseline is not None


def test_ig_probability_output_and_target_forms():
    m, x = tiny_cnn(), images()
    a = attribute(m, x, 1, method="ig", n_steps=16, output="prob")
    b = attribute(m, x, [1, 1, 1], method="ig", n_steps=16, output="prob")
    c = attribute(m, x, torch.tensor(1), method="ig", n_steps=16, output="prob")
    torch.testing.assert_close(a.scores, b.scores)
    torch.testing.assert_close(a.scores, c.scores)
    with torch.no_grad():
        p = torch.softmax(m(x), 1)[:, 1] - torch.softmax(m(torch.zeros_like(x)), 1)[:, 1]
    assert float((a.scores.sum((1, 2, 3)) - p).abs().max()) < 1e-3
    pred = attribute(m, x, "predicted", method="gradient")
    assert torch.equal(pred.target, m(x).argmax(1))
    assert a.target.dtype == torch.long


# ----------------------------------------------------------------------------- gradients

@HYP
@given(h=st.integers(3, 9), w=st.integers(3, 9), seed=st.integers(0, 50), basis=st.sampled_from(["dct", "dft"]))
def test_saliency_is_basis_transform_of_pixel_gradient(h, w, seed, basis):
    m = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(3 * h * w, 4)).double().eval()
    torch.manual_seed(seed)
    x = torch.rand(2, 2, h, w, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([seed % 4, (seed + 1) % 4])
    (gx,) = torch.autograd.grad(m(x).gather(1, t[:, None]).sum(), x)
    want = dct2(gx) if basis == "dct" else dht2(gx)
    x = x.detach()
    sal = attribute(m, x, t, method="saliency", basis=basis)
    sig = attribute(m, x, t, method="gradient", basis=basis)
    torch.testing.assert_close(sig.scores, want, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(sal.scores, want.abs(), rtol=1e-9, atol=1e-12)
    gxi = attribute(m, x, t, method="grad_x_input", basis=basis)
    torch.testing.assert_close(gxi.scores, want * to_basis(x, basis), rtol=1e-9, atol=1e-12)
    # Orthonormal inner product: sum_c grad_c * c == sum_x grad_x * x.
    torch.testing.assert_close(gxi.scores.sum((1, 2, 3)), (gx * x).sum((1, 2, 3)), rtol=1e-9, atol=1e-12)
    assert sal.delta is None


def test_smoothgrad_zero_noise_is_gradient_and_seeded():
    m, x = tiny_cnn(), images()
    g = attribute(m, x, 0, method="gradient")
    s0 = attribute(m, x, 0, method="smoothgrad", stdev=0.0, n_samples=3)
    torch.testing.assert_close(s0.scores, g.scores, rtol=1e-9, atol=1e-12)
    a = attribute(m, x, 0, method="smoothgrad", n_samples=8, seed=5, internal_batch_size=6)
    b = attribute(m, x, 0, method="smoothgrad", n_samples=8, seed=5, internal_batch_size=6)
    c = attribute(m, x, 0, method="smoothgrad", n_samples=8, seed=6, internal_batch_size=6)
    torch.testing.assert_close(a.scores, b.scores)
    assert not torch.allclose(a.scores, c.scores)
    state = torch.random.get_rng_state()
    attribute(m, x, 0, method="smoothgrad", n_samples=2)
    assert torch.equal(state, torch.random.get_rng_state())  # caller's RNG untouched


# ----------------------------------------------------------------------------- occlusion

@pytest.mark.parametrize("basis,kind,k", [("dct", "ring", 8), ("dct", "radial", 5), ("dft", "radial", 4),
                                          ("dft", "ring", 4)])
def test_occlusion_matches_captum_feature_ablation(basis, kind, k):
    m, x = tiny_cnn(), images()
    masks = band_masks(8, 8, k, kind=kind, basis=basis)
    for baseline in (None, 0.25):
        b = torch.zeros_like(x) if baseline is None else torch.full_like(x, baseline)
        fm = FrequencyModel(m, basis)
        ref = captum_attr.FeatureAblation(fm).attribute(
            fm.to_coeffs(x), baselines=fm.to_coeffs(b), target=torch.tensor([1, 2, 3]),
            feature_mask=band_index_map(masks), perturbations_per_eval=4)
        r = attribute(m, x, torch.tensor([1, 2, 3]), method="occlusion", basis=basis, masks=masks,
                      baseline=baseline, internal_batch_size=5)
        # Captum gives every coefficient of a band the band's score: read one per band.
        first = masks.reshape(k, -1).float().argmax(1)
        ref_bands = ref.sum(1).reshape(3, -1)[:, first] / 3
        torch.testing.assert_close(r.band_scores, ref_bands, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(r.bands(), r.band_scores)
        torch.testing.assert_close(r.scores.sum((1, 2, 3)), r.band_scores.sum(1))


def test_occlusion_reproduces_authors_rings_with_scipy():
    """Wang et al. 2020: zero ring max(u, v) = k of the DCT, score = drop of the predicted logit."""
    m, x = tiny_cnn(), images()
    r = attribute(m, x, "predicted", method="occlusion")  # default masks: the authors' rings
    assert r.masks.shape == (8, 8, 8) and torch.equal(r.masks.cpu(), ring_band_masks(8, 8, "dct"))
    xn = x.numpy()
    with torch.no_grad():
        base = m(x)
    pred = base.argmax(1)
    u, v = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    for k in range(8):
        cc = dctn(xn, axes=(-2, -1), norm="ortho")
        cc[..., np.maximum(u, v) == k] = 0
        with torch.no_grad():
            out = m(torch.from_numpy(idctn(cc, axes=(-2, -1), norm="ortho")))
        drop = base.gather(1, pred[:, None])[:, 0] - out.gather(1, pred[:, None])[:, 0]
        torch.testing.assert_close(r.band_scores[:, k], drop, rtol=1e-8, atol=1e-10)


def test_occlusion_keep_mode_and_band_scores_only_on_own_masks():
    m, x = tiny_cnn(), images()
    masks = band_masks(8, 8, 3)
    r = attribute(m, x, 0, method="occlusion", masks=masks, mode="keep")
    with torch.no_grad():
        f0 = m(torch.zeros_like(x))[:, 0]
        kept = m(from_basis(dct2(x) * masks[1].double(), "dct"))[:, 0]
    torch.testing.assert_close(r.band_scores[:, 1], kept - f0)
    with pytest.raises(ValueError, match="masks"):
        r.bands(band_masks(8, 8, 4))


# ----------------------------------------------------------------------------- Shapley

def test_exact_shapley_matches_captum_and_is_efficient():
    m, x = tiny_cnn(), images(n=2)
    masks = band_masks(8, 8, 4, kind="ring")
    t = torch.tensor([0, 4])
    r = attribute(m, x, t, method="shapley", masks=masks, baseline=0.1)
    fm = FrequencyModel(m, "dct")
    ref = captum_attr.ShapleyValues(fm).attribute(
        fm.to_coeffs(x), baselines=fm.to_coeffs(torch.full_like(x, 0.1)), target=t,
        feature_mask=band_index_map(masks), perturbations_per_eval=8)
    first = masks.reshape(4, -1).float().argmax(1)
    # Captum accumulates Shapley values in float32, whatever the model's dtype.
    torch.testing.assert_close(r.band_scores, ref.sum(1).reshape(2, -1)[:, first].double() / 3, rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        gap = m(x).gather(1, t[:, None])[:, 0] - m(torch.full_like(x, 0.1)).gather(1, t[:, None])[:, 0]
    torch.testing.assert_close(r.band_scores.sum(1), gap, rtol=1e-9, atol=1e-12)
    assert float(r.delta.abs().max()) < 1e-10 and r.info["exact"] and r.stderr is None


@pytest.mark.parametrize("basis", ["dct", "dft"])
def test_shapley_of_band_energy_model_is_known(basis):
    """For f = sum_k a_k E_k (additive over bands) phi_k = a_k (E_k(x) - E_k(b)); occlusion and IG agree."""
    masks = band_masks(8, 8, 5, basis=basis)
    a = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0], dtype=torch.float64)
    m = BandEnergyModel(masks, a, basis)
    x, b = images(), images(seed=3) * 0.2
    want = a * (m.energies(x) - m.energies(b))
    for method in ("shapley", "occlusion", "ig"):
        r = attribute(m, x, 0, method=method, basis=basis, masks=masks, baseline=b, n_steps=8)
        if method == "occlusion":  # removal of band k loses exactly its term
            torch.testing.assert_close(r.band_scores, want, rtol=1e-9, atol=1e-12)
        elif method == "shapley":
            torch.testing.assert_close(r.bands(), want, rtol=1e-9, atol=1e-12)
        else:  # IG is exact for this quadratic model; Captum's float32 quadrature weights limit it
            torch.testing.assert_close(r.bands(), want, rtol=1e-6, atol=1e-9)


def test_shapley_of_pure_interaction_splits_evenly():
    masks = band_masks(8, 8, 4)
    m = BandEnergyModel(masks, None, interaction=True)
    x = images()
    r = attribute(m, x, 0, method="shapley", masks=masks)
    e = m.energies(x)
    half = e[:, 0] * e[:, 1] / 2
    torch.testing.assert_close(r.band_scores[:, :2], torch.stack([half, half], 1))
    torch.testing.assert_close(r.band_scores[:, 2:], torch.zeros(3, 2, dtype=torch.float64))


def test_sampled_shapley_is_efficient_and_near_exact():
    m, x = tiny_cnn(seed=4), images(n=2, h=16, w=16)
    masks = band_masks(16, 16, 9, kind="ring")
    exact = attribute(m, x, 1, method="shapley", masks=masks, exact=True)
    assert exact.info["n_coalitions"] == 512
    est = attribute(m, x, 1, method="shapley", masks=masks, n_samples=64, seed=1)
    assert not est.info["exact"] and est.stderr.shape == (2, 9)
    assert float(est.delta.abs().max()) < 1e-10  # every permutation telescopes to f(x) - f(b)
    z = (est.band_scores - exact.band_scores).abs() / est.stderr.clamp_min(1e-12)
    assert float(z.max()) < 5, z
    assert float(est.stderr.max()) > 0


# ----------------------------------------------------------------------------- per-band pixel maps

@pytest.mark.parametrize("basis", ["dct", "dft"])
def test_band_pixel_attribution_sums_and_matches_frequency_ig(basis):
    m, x = tiny_cnn(), images()
    masks = band_masks(8, 8, 4, basis=basis)
    b = images(seed=9) * 0.3
    bp = band_pixel_attribution(m, x, "predicted", masks, basis=basis, n_steps=32, baseline=b)
    assert bp.maps.shape == (3, 4, 3, 8, 8) and bp.heatmaps().shape == (3, 4, 8, 8)
    torch.testing.assert_close(bp.maps.sum((2, 3, 4)), bp.band_scores)
    torch.testing.assert_close(bp.components.sum(1), x, rtol=1e-10, atol=1e-12)
    ig = attribute(m, x, bp.target, method="ig", basis=basis, n_steps=32, baseline=b)
    torch.testing.assert_close(bp.band_scores, ig.bands(masks), rtol=1e-8, atol=1e-10)
    with torch.no_grad():
        t = bp.target[:, None]
        gap = m(x).gather(1, t)[:, 0] - m(b).gather(1, t)[:, 0]
    torch.testing.assert_close(bp.delta, bp.band_scores.sum(1) - gap)
    assert float((bp.delta.abs() / gap.abs()).max()) < 1e-2


def test_band_pixel_attribution_equals_captum_with_k_inputs():
    m, x = tiny_cnn(), images(n=2)
    masks = band_masks(8, 8, 3)
    bp = band_pixel_attribution(m, x, 2, masks, n_steps=16)
    comps = tuple(bp.components[:, k] for k in range(3))
    ref = captum_attr.IntegratedGradients(lambda *cs: m(sum(cs))).attribute(
        comps, baselines=tuple(torch.zeros_like(cp) for cp in comps), target=2, n_steps=16)
    torch.testing.assert_close(bp.maps, torch.stack(ref, 1), rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- ground truth

def test_model_that_sees_one_band_gets_all_the_mass():
    masks = band_masks(8, 8, 4)
    m = OneBandModel(masks[1]).eval()
    x = images()
    for method in ("ig", "saliency", "occlusion", "shapley", "smoothgrad"):
        r = attribute(m, x, "predicted", method=method, masks=masks, n_steps=16, n_samples=4) \
            if method == "smoothgrad" else attribute(m, x, "predicted", method=method, masks=masks, n_steps=16)
        share = planted_band_share(r, masks[1])
        assert float(share.min()) > 0.999, (method, share)
        s = band_shares(r, masks)
        assert float(s[:, 1].min()) > 0.999


# ----------------------------------------------------------------------------- top-k

@HYP
@given(h=st.integers(2, 8), w=st.integers(2, 8), basis=st.sampled_from(["dct", "dft"]), seed=st.integers(0, 99))
def test_topk_fraction_one_returns_x(h, w, basis, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, h, w, generator=g, dtype=torch.float64)
    s = torch.randn(2, 3, h, w, generator=g, dtype=torch.float64)
    torch.testing.assert_close(topk_reconstruction(x, s, 1.0, basis=basis), x, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(topk_reconstruction(x, s, 0.0, basis=basis), torch.zeros_like(x), rtol=0, atol=1e-12)
    out, keep = topk_reconstruction(x, s, 0.3, basis=basis, by="signed", return_mask=True)
    k = round(0.3 * (3 * h * w))
    assert keep.reshape(2, -1).sum(1).tolist() == [k, k]
    if k:  # the kept ones are the largest signed scores
        kept_min = torch.where(keep, s, torch.inf).reshape(2, -1).min(1).values
        drop_max = torch.where(keep, -torch.inf, s).reshape(2, -1).max(1).values
        assert bool((kept_min >= drop_max).all())
    torch.testing.assert_close(to_basis(out, basis), torch.where(keep, to_basis(x, basis), 0.0), atol=1e-12, rtol=0)


# ----------------------------------------------------------------------------- data-set profile

def test_radial_attribution_profile():
    m = tiny_cnn()
    x, y = images(n=6), torch.tensor([0, 1, 0, 1, 2, 0])
    masks = band_masks(8, 8, 4)
    p = radial_attribution_profile(m, x, y, masks, method="ig", batch_size=4, n_boot=200, by_class=True,
                                   progress=False, n_steps=8)
    torch.testing.assert_close(p.per_image.sum(1), torch.ones(6, dtype=p.per_image.dtype))
    assert bool((p.ci_low <= p.mean + 1e-12).all() and (p.mean <= p.ci_high + 1e-12).all())
    assert set(p.by_class) == {0, 1, 2} and p.by_class[0]["n"] == 3
    assert torch.equal(p.targets, y)
    loader = [(x[:3], y[:3]), (x[3:], y[3:])]
    q = radial_attribution_profile(m, loader, None, masks, method="ig", n_boot=200, progress=False, n_steps=8)
    torch.testing.assert_close(q.per_image, p.per_image)
    torch.testing.assert_close(q.mean, p.mean)
    assert len(p.to_dict()["mean"]) == 4
    s = radial_attribution_profile(m, x, y, masks, method="occlusion", by="signed", n_boot=50, progress=False)
    assert bool((s.per_image.abs().sum(1) <= 1 + 1e-9).all())


# ----------------------------------------------------------------------------- batching

def test_internal_batch_size_does_not_change_results():
    m, x = tiny_cnn(), images(n=4)
    masks = band_masks(8, 8, 4)
    for method in ("ig", "occlusion", "shapley", "saliency"):
        a = attribute(m, x, "predicted", method=method, masks=masks, n_steps=8)
        b = attribute(m, x, "predicted", method=method, masks=masks, n_steps=8, internal_batch_size=3)
        torch.testing.assert_close(a.scores, b.scores, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- bad input

def test_bad_inputs_name_the_argument():
    m, x = tiny_cnn(), images()
    masks = band_masks(8, 8, 4)
    with pytest.raises(ValueError, match="method"):
        attribute(m, x, 0, method="lrp")
    with pytest.raises(ValueError, match="basis"):
        attribute(m, x, 0, basis="wavelet")
    with pytest.raises(ValueError, match="n_steps"):
        attribute(m, x, 0, n_steps=0)
    with pytest.raises(ValueError, match="baseline"):
        attribute(m, x, 0, baseline=torch.zeros(3, 3, 8, 7, dtype=torch.float64))
    with pytest.raises(ValueError, match="baseline"):
        attribute(m, x, 0, baseline=torch.zeros(2, 3, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="baseline"):
        attribute(m, x, 0, baseline=float("nan"))
    with pytest.raises(ValueError, match="masks"):
        attribute(m, x, 0, method="occlusion", masks=band_masks(8, 7, 4))
    with pytest.raises(ValueError, match="masks"):
        band_pixel_attribution(m, x, 0, masks[:2])  # not a partition
    with pytest.raises(ValueError, match="masks"):
        attribute(m, x, 0, method="shapley", masks=masks[:3])
    with pytest.raises(ValueError, match="masks"):
        attribute(m, x, 0, method="occlusion", masks=torch.cat([masks, masks[:1]]))  # overlap
    with pytest.raises(ValueError, match="target"):
        attribute(m, x, 5)
    with pytest.raises(ValueError, match="target"):
        attribute(m, x, [0, -1, 2])
    with pytest.raises(ValueError, match="target"):
        attribute(m, x, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="target"):
        attribute(m, x, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="target"):
        attribute(m, x, "most likely")
    bad = x.clone()
    bad[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="x"):
        attribute(m, bad, 0)
    with pytest.raises(ValueError, match="x"):
        attribute(m, x[0], 0)
    with pytest.raises(TypeError, match="stdev|n_sample|option"):
        attribute(m, x, 0, method="ig", stdev=0.1)
    with pytest.raises(ValueError, match="internal_batch_size"):
        attribute(m, x, 0, internal_batch_size=0)
    with pytest.raises(ValueError, match="fraction"):
        topk_reconstruction(x, x, 1.5)
    with pytest.raises(ValueError, match="scores"):
        topk_reconstruction(x, x[:, :1], 0.5)
    with pytest.raises(ValueError, match="model"):
        attribute(lambda z: z.sum((1, 2, 3)), x, 0)
    with pytest.raises(TypeError, match="model"):
        attribute(FrequencyModel(m), x, 0)
    r = attribute(m, x, 0, method="gradient")
    with pytest.raises(ValueError, match="masks"):
        r.bands()
    assert isinstance(r, FrequencyAttribution) and "gradient" in repr(r)
    with pytest.raises(ValueError, match="basis"):
        attribute(m, x, 0, basis="dht")                # "dft" is the basis name; dht2 only its real form


class _NaNModel(nn.Module):
    """A classifier whose logits are all NaN, like one loaded from a diverged checkpoint."""

    def __init__(self, c=3, h=8, k=3):
        super().__init__()
        self.lin = nn.Linear(c * h * h, k).double()

    def forward(self, x):
        return self.lin(x.flatten(1)) * float("nan")


@pytest.mark.parametrize("method", ["ig", "occlusion", "saliency", "shapley", "smoothgrad"])
def test_nan_logits_are_an_error_naming_the_model(method):
    x = images()
    kw = {"n_steps": 4} if method == "ig" else {"n_samples": 2} if method == "smoothgrad" else {}
    with pytest.raises(ValueError, match=r"_NaNModel.*non-finite"):
        attribute(_NaNModel(), x, 0, method=method, **kw)
    with pytest.raises(ValueError, match=r"_NaNModel.*non-finite"):
        attribute(_NaNModel(), x, "predicted", method=method, **kw)


def test_nan_logits_in_band_pixel_attribution_and_perturbation_attribution():
    x = images()
    with pytest.raises(ValueError, match=r"_NaNModel.*non-finite"):
        band_pixel_attribution(_NaNModel(), x, 0, band_masks(8, 8, 2), n_steps=4)
    with pytest.raises(ValueError, match=r"_NaNModel.*non-finite"):
        perturbation_attribution(_NaNModel(), x, (x + 0.01).clamp(0, 1), torch.tensor([0, 1, 2]),
                                 band_masks(8, 8, 2), n_steps=4)


def _mixed_mode_net():
    """A CNN in train mode with BatchNorm and dropout, whose second BatchNorm is deliberately frozen (eval)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Tanh(), nn.Dropout(0.5),
                        nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    net = net.double().train()
    net[5].eval()
    return net


def _mode_calls():
    x, masks = images(), band_masks(8, 8, 2)
    return {
        "saliency": lambda m: attribute(m, x, 0, method="saliency"),
        "ig": lambda m: attribute(m, x, "predicted", method="ig", n_steps=4),
        "smoothgrad": lambda m: attribute(m, x, 0, method="smoothgrad", n_samples=2),
        "occlusion": lambda m: attribute(m, x, 0, method="occlusion", masks=masks),
        "shapley": lambda m: attribute(m, x, 0, method="shapley", masks=masks),
        "band_pixel_attribution": lambda m: band_pixel_attribution(m, x, 0, masks, n_steps=4),
        "radial_attribution_profile": lambda m: radial_attribution_profile(
            m, x, torch.tensor([0, 1, 2]), masks, n_steps=4, n_boot=10, progress=False),
        "perturbation_attribution": lambda m: perturbation_attribution(
            m, x, (x + 0.01).clamp(0, 1), torch.tensor([0, 1, 2]), masks, n_steps=4),
    }


@pytest.mark.parametrize("name", list(_mode_calls()))
def test_attribution_leaves_every_submodules_mode_and_batchnorm_statistics_alone(name):
    net = _mixed_mode_net()
    modes = {n: m.training for n, m in net.named_modules()}
    state = {k: v.clone() for k, v in net.state_dict().items()}
    import warnings as _w
    with _w.catch_warnings():
        _w.simplefilter("error")                   # nothing to warn about: the mode is handled
        _mode_calls()[name](net)
    assert {n: m.training for n, m in net.named_modules()} == modes
    for k, v in state.items():
        assert torch.equal(net.state_dict()[k], v), k


def test_a_training_mode_model_gets_its_eval_mode_attribution():
    net = _mixed_mode_net()
    x = images()
    r_train = attribute(net, x, 0, method="ig", n_steps=8)
    r_eval = attribute(net.eval(), x, 0, method="ig", n_steps=8)
    torch.testing.assert_close(r_train.scores, r_eval.scores)


@pytest.mark.parametrize("method", ["saliency", "gradient", "grad_x_input", "ig", "smoothgrad", "occlusion",
                                    "shapley"])
def test_an_empty_batch_is_refused_naming_x(method):
    m = tiny_cnn()
    x = images()[:0]
    with pytest.raises(ValueError, match=r"x holds no images \(N = 0\)"):
        attribute(m, x, 0, method=method)
    with pytest.raises(ValueError, match=r"x holds no images \(N = 0\)"):
        band_pixel_attribution(m, x, 0, band_masks(8, 8, 2))
    with pytest.raises(ValueError, match=r"x holds no images \(N = 0\)"):
        radial_attribution_profile(m, x, torch.zeros(0, dtype=torch.long), band_masks(8, 8, 2), progress=False)


@pytest.mark.parametrize("method", ["saliency", "ig", "occlusion", "shapley"])
def test_attribute_takes_a_plain_function_as_model(method):
    m, x = tiny_cnn(), images()
    a = attribute(lambda z: m(z), x, "predicted", method=method, n_steps=8)
    b = attribute(m, x, "predicted", method=method, n_steps=8)
    torch.testing.assert_close(a.scores, b.scores)


def test_sampled_antithetic_shapley_needs_two_pairs_for_a_standard_error():
    m, x = tiny_cnn(), images()
    masks = band_masks(8, 8, 3)
    for ns in (2, 3):
        with pytest.raises(ValueError, match="n_samples"):
            attribute(m, x, 0, method="shapley", masks=masks, exact=False, n_samples=ns)
    r = attribute(m, x, 0, method="shapley", masks=masks, exact=False, n_samples=4)
    assert r.info["n_permutations"] == 4 and bool(torch.isfinite(r.stderr).all())
    r = attribute(m, x, 0, method="shapley", masks=masks, exact=False, n_samples=2, antithetic=False)
    assert bool(torch.isfinite(r.stderr).all())


# ----------------------------------------------------------------------------- perturbations

class _Linear(nn.Module):
    """logits = W x (flattened): IG is exact and closed-form."""

    def __init__(self, c, h, w, k=3, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(k, c, h, w, generator=g, dtype=torch.float64))

    def forward(self, x):
        return torch.einsum("nchw,kchw->nk", x.to(self.w.dtype), self.w)


def test_perturbation_attribution_is_exact_for_a_linear_model():
    h = 8
    g = torch.Generator().manual_seed(1)
    x = (0.3 + 0.4 * torch.rand(3, 1, h, h, generator=g)).double()
    delta = 0.1 * torch.randn(3, 1, h, h, generator=g, dtype=torch.float64)
    xa = (x + delta).clamp(0, 1)
    model = _Linear(1, h, h)
    y = torch.tensor([0, 1, 2])
    masks = equal_count_band_masks(h, h, 3)
    out = perturbation_attribution(model, x, xa, y, masks, n_steps=4)
    # IG of a linear model: dct(w_y) * dct(x_adv - x), summed per band
    prod = (dct2(model.w.detach()[y]) * dct2(xa - x)).sum(1)
    expect = torch.stack([prod[:, m].sum(1) for m in masks], 1)
    assert torch.allclose(out["band_change"], expect, atol=1e-8)
    assert torch.allclose(out["logit_change"], expect.sum(1), atol=1e-8)
    assert torch.allclose(out["change_share"].sum(1), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(out["energy_share"], band_energy(xa - x, masks=masks))
    assert float(out["completeness_error"].abs().max()) < 1e-8
    with pytest.raises(ValueError, match="x_adv"):
        perturbation_attribution(model, x, xa[:2], y[:2], masks)


def test_band_limited_perturbation_is_attributed_to_its_band():
    h = 8
    masks = equal_count_band_masks(h, h, 4)
    g = torch.Generator().manual_seed(2)
    x = (0.4 + 0.2 * torch.rand(2, 1, h, h, generator=g)).double()
    d = filter_band(0.05 * torch.randn(2, 1, h, h, generator=g, dtype=torch.float64), masks[2], "dct")
    out = perturbation_attribution(_Linear(1, h, h), x, x + d, torch.tensor([0, 1]), masks, n_steps=4)
    assert torch.allclose(out["change_share"][:, 2], torch.ones(2, dtype=torch.float64))
    assert torch.allclose(out["energy_share"][:, 2], torch.ones(2, dtype=torch.float64))


# ----------------------------------------------------------------------------- any Captum method, LRP

def _freqkit_model(kind="small", seed=0, bias_free=False):
    """A small freqkit model in float64 (random weights; BatchNorm with non-trivial statistics)."""
    from freqkit.models import AirNet, PlantedCNN, SmallCNN

    torch.manual_seed(seed)
    m = {"small": lambda: SmallCNN(width=4), "planted": lambda: PlantedCNN(width=4),
         "airnet": lambda: AirNet(width=4, head_scale=1.0)}[kind]()
    m = m.double().eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
            if bias_free:
                if isinstance(getattr(mod, "bias", None), torch.Tensor):
                    mod.bias.zero_()
                if isinstance(mod, nn.BatchNorm2d):
                    mod.running_mean.zero_()
    return m


def _digits(n=3, seed=1):
    """(N, 1, 28, 28) float64 images in [0, 1] with a black border, as MNIST digits have."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 28, 28, dtype=torch.float64)
    x[:, :, 6:22, 6:22] = torch.rand(n, 1, 16, 16, generator=g, dtype=torch.float64)
    return x


def _by_hand(fm, c, t, make, seed=None, **kw):
    """The Captum method run by hand on FrequencyModel, seeded as attribute(seed=) seeds it."""
    if seed is not None:
        torch.manual_seed(seed)
        np.random.seed(seed)
    return make(fm).attribute(c.clone().requires_grad_(), target=t, **kw)


@pytest.mark.parametrize("basis", ["dct", "dft"])
def test_any_captum_method_matches_captum_by_hand_on_frequency_model(basis):
    """DeepLift, GradientShap (seeded), NoiseTunnel(Saliency) and LRP: attribute() == Captum on FrequencyModel.

    Setting: SmallCNN (width 4, float64, random weights), 3 images 1x28x28, predicted class,
    black baseline.  Measured max abs difference: 0.0 for all four (the same Captum calls).
    """
    from captum.attr import LRP, DeepLift, GradientShap, NoiseTunnel, Saliency

    m, x = _freqkit_model(), _digits()
    t = m(x).argmax(1)
    fm = FrequencyModel(m, basis)
    c, cb = fm.to_coeffs(x), torch.zeros_like(x)
    cases = [
        (DeepLift, {}, lambda: _by_hand(fm, c, t, DeepLift, baselines=cb, return_convergence_delta=True)),
        (GradientShap, {"n_samples": 6, "stdevs": 0.05, "seed": 7},
         lambda: _by_hand(fm, c, t, GradientShap, seed=7, baselines=cb, n_samples=6, stdevs=0.05,
                          return_convergence_delta=True)),
        (lambda f: NoiseTunnel(Saliency(f)), {"nt_type": "smoothgrad", "nt_samples": 5, "stdevs": 0.1, "seed": 3},
         lambda: (_by_hand(fm, c, t, lambda f: NoiseTunnel(Saliency(f)), seed=3, nt_type="smoothgrad",
                           nt_samples=5, stdevs=0.1), None)),
        (LRP, {}, lambda: _by_hand(fm, c, t, LRP, return_convergence_delta=True)),
    ]
    for method, kw, hand in cases:
        r = attribute(m, x, t, method=method, basis=basis, **kw)
        want, want_delta = hand()
        assert r.scores.shape == x.shape and r.scores.dtype == x.dtype
        assert float((r.scores - want).abs().max()) == 0.0, r.method
        assert float(r.scores.abs().max()) > 0, r.method
        if want_delta is None:
            assert r.delta is None
        else:
            assert torch.equal(r.delta, want_delta.detach()), r.method
        assert torch.equal(r.target, t)
    assert r.method == "LRP"
    nt = attribute(m, x, t, method=lambda f: NoiseTunnel(Saliency(f)), basis=basis, nt_samples=2, stdevs=0.1, seed=0)
    assert nt.method == "NoiseTunnel(Saliency)" and nt.info["captum"] == "NoiseTunnel(Saliency)"


def test_captum_method_deltas_bands_and_baselines():
    from captum.attr import DeepLift, DeepLiftShap, FeatureAblation, GradientShap, IntegratedGradients

    m, x = _freqkit_model(), _digits()
    masks = band_masks(28, 28, 4)
    # DeepLift: Captum's delta is sum(scores) - (f(x) - f(baseline)); band sums partition it
    r = attribute(m, x, "predicted", method=DeepLift, masks=masks, baseline=0.5)
    total = r.output_x - r.output_baseline
    assert torch.allclose(r.scores.sum((1, 2, 3)) - total, r.delta, atol=1e-10)
    assert torch.allclose(r.bands().sum(1), r.scores.sum((1, 2, 3)), atol=1e-10)
    assert torch.allclose(r.baseline_coeffs, to_basis(torch.full_like(x, 0.5), "dct"))
    # a Captum class that takes n_steps gets attribute()'s n_steps; same numbers as method="ig"
    ig = attribute(m, x, "predicted", method=IntegratedGradients, n_steps=16)
    ours = attribute(m, x, "predicted", method="ig", n_steps=16)
    assert torch.allclose(ig.scores, ours.scores, atol=1e-12) and ig.info["n_steps"] == 16
    # FeatureAblation with the bands as feature mask: every coefficient of band k holds band occlusion's score
    fa = attribute(m, x, "predicted", method=FeatureAblation, feature_mask=band_feature_mask(masks), masks=masks)
    occ = attribute(m, x, "predicted", method="occlusion", masks=masks)
    for k in range(4):
        vals = fa.scores[:, 0][:, masks[k]]
        assert torch.allclose(vals, occ.band_scores[:, k:k + 1].expand_as(vals), atol=1e-10)
    # GradientShap: one delta per random sample; a baseline distribution of any size M
    gs = attribute(m, x, "predicted", method=GradientShap, n_samples=4, seed=0, baseline=torch.rand(5, 1, 28, 28))
    assert gs.delta.shape == (12,) and gs.baseline_coeffs.shape == (5, 1, 28, 28) and gs.output_baseline is None
    dls = attribute(m, x, "predicted", method=DeepLiftShap, baseline=torch.rand(2, 1, 28, 28).double())
    assert dls.scores.shape == x.shape and dls.delta.shape == (6,)
    # the seed reproduces and leaves the caller's random streams alone
    torch.manual_seed(123)
    np.random.seed(123)
    a = attribute(m, x, "predicted", method=GradientShap, n_samples=3, seed=5)
    after_t, after_np = torch.rand(1), np.random.rand()
    torch.manual_seed(123)
    np.random.seed(123)
    assert torch.equal(torch.rand(1), after_t) and np.random.rand() == after_np
    assert torch.equal(a.scores, attribute(m, x, "predicted", method=GradientShap, n_samples=3, seed=5).scores)


def test_captum_method_errors_name_the_argument():
    from captum.attr import LRP, LayerGradCam, NeuronGradient, Saliency

    m, x = _freqkit_model(), _digits(2)
    with pytest.raises(TypeError, match="method.*instance"):
        attribute(m, x, 0, method=Saliency(m))
    with pytest.raises(TypeError, match="method.*class nn|method.*got the class"):
        attribute(m, x, 0, method=nn.Linear)
    with pytest.raises(TypeError, match="method"):
        attribute(m, x, 0, method=3)
    with pytest.raises(TypeError, match="method=NeuronGradient.*factory"):
        attribute(m, x, 0, method=NeuronGradient)
    with pytest.raises(TypeError, match="factory must return"):
        attribute(m, x, 0, method=lambda fm: fm)
    with pytest.raises(ValueError, match="not one per coefficient"):
        attribute(m, x, 0, method=lambda fm: LayerGradCam(fm, fm.f.model.features[1][0]))
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['n_step'\] for method=LRP"):
        attribute(m, x, 0, method=LRP, n_step=3)
    with pytest.raises(TypeError, match="baselines is set by attribute"):
        attribute(m, x, 0, method=LRP, baselines=x)
    with pytest.raises(TypeError, match="baseline must be None for method=Saliency"):
        attribute(m, x, 0, method=Saliency, baseline=0.5)
    with pytest.raises(ValueError, match="seed"):
        attribute(m, x, 0, method=Saliency, seed=1.5)
    with pytest.raises(ValueError, match="method"):
        attribute(m, x, 0, method="deeplift")


@pytest.mark.parametrize("kind", ["small", "planted", "airnet"])
def test_lrp_conserves_relevance_from_output_to_coefficients(kind):
    """LRP on a bias-free freqkit model: relevances sum to the target logit.

    Setting: SmallCNN / PlantedCNN / AirNet (width 4, float64; AirNet with head_scale 1) with
    every bias and BatchNorm shift set to 0, 3 images with black borders.  Tolerance:
    relative 1e-6 (measured 7e-8, 9e-8 and 2e-8, from the epsilon stabiliser 1e-9 of
    Captum's rules).  Pixel LRP and coefficient LRP carry the same
    total: the inverse transform's rule conserves relevance.
    """
    from captum.attr import LRP

    from freqkit.attribution import register_lrp_rules

    m, x = _freqkit_model(kind, bias_free=True), _digits(3)
    if kind != "small":
        x = nn.functional.pad(x, (2, 2, 2, 2))
    if kind == "airnet":
        x = x.expand(-1, 3, -1, -1).contiguous()
    t = m(x).argmax(1)
    out = m(x).gather(1, t[:, None])[:, 0]
    for basis in ("dct", "dft"):
        r = attribute(m, x, t, method=LRP, basis=basis)
        assert torch.allclose(r.scores.sum((1, 2, 3)), out, rtol=1e-6, atol=0)
        assert float(r.delta.abs().max()) <= 1e-6 * float(out.abs().max())
        assert float(r.scores.abs().max()) < 10 * float(out.abs().max())   # no division by black pixels
    register_lrp_rules()
    pix = LRP(m).attribute(x.clone().requires_grad_(), target=t)
    assert torch.allclose(pix.sum((1, 2, 3)), out, rtol=1e-6, atol=0)


def test_lrp_rules_for_freqkit_layers_and_the_root_of_the_inverse_transform():
    from captum.attr import LRP
    from captum.attr._core.lrp import SUPPORTED_LAYERS_WITH_RULES
    from captum.attr._utils.lrp_rules import EpsilonRule, IdentityRule

    from freqkit.attribution import FromBasis, register_lrp_rules
    from freqkit.models import AirNet, Normalize, PatchWhitening, ResNetCIFAR

    rules = register_lrp_rules()
    assert rules[Normalize] is IdentityRule and SUPPORTED_LAYERS_WITH_RULES[Normalize] is IdentityRule
    assert issubclass(rules[FromBasis], EpsilonRule) and register_lrp_rules() == rules   # idempotent
    m, x = _freqkit_model(bias_free=True), _digits(2)
    t = m(x).argmax(1)
    fm = FrequencyModel(m, "dct")
    c = fm.to_coeffs(x)
    good = LRP(fm).attribute(c.clone().requires_grad_(), target=t)
    assert fm.inverse.rule is not None    # made again after Captum deleted it
    # rooted at 0 (plain LRP-epsilon, set by hand: Captum keeps a rule set on the module for one call),
    # relevance of black pixels is divided by a pixel value of ~0: scores explode
    fm.inverse.rule = EpsilonRule()
    bad = LRP(fm).attribute(c.clone().requires_grad_(), target=t)
    assert float(bad.abs().max()) > 1e3 * float(good.abs().max())
    again = LRP(fm).attribute(c.clone().requires_grad_(), target=t)
    assert torch.equal(again, good)
    # ResNetCIFAR (functional residual sum, head scale) and AirNet (head scale): LRP runs, finite;
    # relevance is not conserved there (documented)
    torch.manual_seed(0)
    for net in (ResNetCIFAR(width=2), AirNet(width=2)):
        r = attribute(net.double().eval(), torch.rand(2, 3, 32, 32, dtype=torch.float64), 0, method=LRP)
        assert bool(torch.isfinite(r.scores).all())
    assert rules[PatchWhitening] is EpsilonRule


def test_frequency_model_has_the_inverse_transform_as_a_layer():
    from freqkit.attribution import FromBasis

    m = tiny_cnn()
    fm = FrequencyModel(m, "dft")
    assert isinstance(fm.inverse, FromBasis) and fm.inverse.basis == "dft"
    assert list(fm.state_dict()) == [f"model.{k}" for k in m.state_dict()]   # the layer adds no state
    x = images()
    assert torch.allclose(fm(fm.to_coeffs(x)), m(x), atol=1e-10)
    assert "pixel_model" not in dict(fm.inverse.named_modules()) and len(list(fm.inverse.parameters())) == 0
    with pytest.raises(ValueError, match="basis"):
        FromBasis("dht")


# ----------------------------------------------------------------------------- issue 15: streaming, 224 x 224

def test_radial_attribution_profile_of_uneven_batches_keeps_image_order():
    m = tiny_cnn()
    x, y = images(n=7), torch.tensor([0, 1, 0, 1, 2, 0, 2])
    masks = band_masks(8, 8, 3)
    p = radial_attribution_profile(m, x, y, masks, batch_size=3, n_boot=60, by_class=True, progress=False, n_steps=6)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=2)
    for data in (loader, [(x[:1], y[:1]), (x[1:6], y[1:6]), (x[6:], y[6:])]):
        q = radial_attribution_profile(m, data, None, masks, n_boot=60, by_class=True, progress=False, n_steps=6)
        torch.testing.assert_close(q.per_image, p.per_image)
        assert torch.equal(q.labels, y) and torch.equal(q.targets, p.targets)
        torch.testing.assert_close(q.ci_low, p.ci_low)
        torch.testing.assert_close(q.by_class[2]["mean"], p.by_class[2]["mean"])
    with pytest.raises(ValueError, match="x holds no images"):
        radial_attribution_profile(m, [], None, masks, progress=False)


def test_ig_at_224x224_never_runs_more_than_internal_batch_size_images_at_once():
    """Frequency IG at ImageNet size: internal_batch_size bounds every forward pass (hence memory)."""
    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 7, stride=4)
            self.head = nn.Linear(2, 4)

        def forward(self, z):
            seen.append(z.shape[0])
            return self.head(torch.relu(self.conv(z)).mean((2, 3)))

    torch.manual_seed(0)
    x = torch.rand(3, 3, 224, 224)
    r = attribute(Probe(), x, target=1, method="ig", n_steps=10, internal_batch_size=4)
    assert r.scores.shape == x.shape and max(seen) <= 4 and sum(seen) >= 3 * 10
    assert float(r.delta.abs().max()) < 1e-2 * float(r.scores.abs().sum((1, 2, 3)).max() + 1e-6) + 1e-3


# ----------------------------------------------------------------- issue 13: named baselines (Sturmfels et al. 2020)

def test_named_baselines_are_what_they_say():
    from scipy.ndimage import gaussian_filter

    from freqkit.attribution import NAMED_BASELINES, baseline_image

    assert NAMED_BASELINES == ("black", "blur", "uniform")
    x = images(n=2, h=12, w=10)
    assert torch.equal(baseline_image(x, "black"), torch.zeros_like(x))
    assert torch.equal(baseline_image(x, None), torch.zeros_like(x))
    assert torch.equal(baseline_image(x, 0.5), torch.full_like(x, 0.5))
    # blur: scipy's Gaussian filter with mirrored ("reflect") borders, computed in the DCT basis
    for sigma in (1.5, 3.0):
        ref = gaussian_filter(x.numpy(), sigma=(0, 0, sigma, sigma), mode="reflect", truncate=10)
        np.testing.assert_allclose(baseline_image(x, "blur", sigma=sigma).numpy(), ref, atol=1e-5)
    blur = baseline_image(x, "blur")                      # default sigma = min(H, W) / 16
    torch.testing.assert_close(blur, baseline_image(x, "blur", sigma=10 / 16))
    c, cb = dct2(x), dct2(blur)
    torch.testing.assert_close(cb[..., 0, 0], c[..., 0, 0])          # the mean is kept exactly
    assert float((c - cb)[..., 6:, 6:].abs().sum()) > float((c - cb)[..., :2, :2].abs().sum())
    # uniform: seeded, in [0, 1], independent of the image, torch's global stream untouched
    state = torch.random.get_rng_state()
    u = baseline_image(x, "uniform")
    assert torch.equal(state, torch.random.get_rng_state())
    assert torch.equal(u, baseline_image(x + 0.1, "uniform")) and u.dtype == x.dtype
    assert float(u.min()) >= 0 and float(u.max()) <= 1 and float(u.std()) > 0.2
    assert not torch.equal(u, baseline_image(x, "uniform", seed=1))
    assert torch.equal(baseline_image(x.float(), "uniform"), u.float())


@pytest.mark.parametrize("name", ["blur", "uniform", "black"])
def test_ig_completeness_holds_with_named_baselines(name):
    from freqkit.attribution import baseline_image

    m, x = tiny_cnn(), images(n=3)
    r = attribute(m, x, "predicted", method="ig", n_steps=64, baseline=name)
    gap = r.output_x - r.output_baseline
    assert float(gap.abs().min()) > 1e-4                      # a change to explain
    assert float((r.delta.abs() / gap.abs()).max()) < 1e-6    # completeness (Gauss-Legendre, 64 steps)
    torch.testing.assert_close(r.baseline_coeffs, dct2(baseline_image(x, name)))
    assert r.info["baseline"] == name
    same = attribute(m, x, r.target, method="ig", n_steps=64, baseline=baseline_image(x, name))
    torch.testing.assert_close(r.scores, same.scores)
    if name == "blur":
        # x - blur(x) has no mean: IG cannot give the DC coefficient anything, by construction
        assert float(r.scores[..., 0, 0].abs().max()) < 1e-12
    occ = attribute(m, x, r.target, method="occlusion", baseline=name, masks=band_masks(8, 8, 4))
    torch.testing.assert_close(occ.output_baseline, r.output_baseline)
    pix = band_pixel_attribution(m, x, r.target, band_masks(8, 8, 4), n_steps=64, baseline=name)
    torch.testing.assert_close(pix.band_scores, r.bands(band_masks(8, 8, 4)))


def test_named_baselines_refuse_bad_input_by_name():
    from freqkit.attribution import baseline_image

    m, x = tiny_cnn(), images(n=2)
    with pytest.raises(ValueError, match="baseline"):
        attribute(m, x, 0, method="ig", baseline="grey")
    with pytest.raises(ValueError, match="sigma"):
        baseline_image(x, "blur", sigma=0.0)
    with pytest.raises(ValueError, match="sigma"):
        baseline_image(x, "blur", sigma=float("nan"))
    with pytest.raises(ValueError, match="sigma"):
        baseline_image(x, "uniform", sigma=2.0)
    with pytest.raises(ValueError, match="seed"):
        baseline_image(x, "uniform", seed=1.5)
    with pytest.raises(ValueError, match="x"):
        baseline_image(x[0], "blur")
    with pytest.raises(ValueError, match="baseline"):
        topk_reconstruction(x, x, 0.5, baseline="gray")
