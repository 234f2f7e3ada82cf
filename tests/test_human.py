"""Human contrast sensitivity and the human-alignment score."""
import math

import pytest
import torch

import freqkit as fk
from freqkit.human import (band_sensitivity, csf_barten, csf_map, csf_mannos_sakrison, human_alignment,
                           perturbation_ssim, perturbation_visibility)


def test_csf_shape_matches_mannos_sakrison():
    f = torch.linspace(0, 60, 601, dtype=torch.float64)
    a = csf_mannos_sakrison(f)
    assert float(a.max()) == pytest.approx(1.0)
    assert 7.0 <= float(f[a.argmax()]) <= 9.0  # the published peak is near 8 cycles/degree
    raw = lambda v: 2.6 * (0.0192 + 0.114 * v) * math.exp(-(0.114 * v) ** 1.1)
    assert float(a[300] / a[100]) == pytest.approx(raw(30.0) / raw(10.0), rel=1e-9)
    with pytest.raises(ValueError, match="f_cpd"):
        csf_mannos_sakrison(torch.tensor([-1.0]))


def test_csf_map_follows_the_viewing_assumption():
    m60 = csf_map(32, 32, pixels_per_degree=60)
    m15 = csf_map(32, 32, pixels_per_degree=15)
    # the finest DCT frequency is ~21 cpd at 60 px/deg (insensitive) but ~5 cpd at 15 px/deg (sensitive)
    assert float(m60[31, 31]) < 0.5 < float(m15[31, 31])
    with pytest.raises(ValueError, match="pixels_per_degree"):
        csf_map(8, 8, pixels_per_degree=0)


def test_alignment_ranks_low_frequency_reliance_above_high():
    masks = fk.band_masks(32, 32, 8)
    s = band_sensitivity(masks)
    low, high = torch.zeros(8, dtype=torch.float64), torch.zeros(8, dtype=torch.float64)
    low[1], high[7] = 1.0, 1.0
    assert float(human_alignment(low, masks)) == pytest.approx(float(s[1]))
    assert float(human_alignment(low, masks)) > float(human_alignment(high, masks))
    both = human_alignment(torch.stack([low, high * 3]), masks)  # rows are normalised
    assert both.shape == (2,) and float(both[1]) == pytest.approx(float(s[7]))


def test_bad_input():
    masks = fk.band_masks(8, 8, 2)
    with pytest.raises(ValueError, match="has 3 bands"):
        human_alignment(torch.ones(3), masks)
    with pytest.raises(ValueError, match="non-negative"):
        human_alignment(torch.tensor([1.0, -1.0]), masks)
    with pytest.raises(ValueError, match="positive sum"):
        human_alignment(torch.zeros(2), masks)


# ---------------------------------------------------------------- absolute sensitivity and visibility

def _cos(n, u):
    xs = torch.arange(n, dtype=torch.float64)
    return torch.cos(torch.pi * u * (2 * xs + 1) / (2 * n))


def test_barten_csf_has_the_published_shape():
    f = torch.linspace(0, 80, 801, dtype=torch.float64)
    big, small, dim = csf_barten(f, 100.0, 40.0), csf_barten(f, 100.0, 0.5), csf_barten(f, 1.0, 40.0)
    assert float(big[0]) == 0.0 and bool((big[1:] > 0).all())
    peak = float(f[big.argmax()])
    assert 2.0 <= peak <= 6.0 and 300 < float(big.max()) < 1000  # human peak: a few cpd, threshold ~0.1-0.3%
    assert float(csf_barten(60.0)) < 1.0  # the acuity limit: nothing visible at 60 cpd
    assert bool((small[1:] < big[1:]).all())  # small fields lower sensitivity (spatial summation)
    assert float(f[dim.argmax()]) < peak and float(dim.max()) < float(big.max())  # low light: lower, earlier peak
    with pytest.raises(ValueError, match="luminance"):
        csf_barten(4.0, luminance=0)
    with pytest.raises(ValueError, match="f_cpd"):
        csf_barten(-1.0)


@pytest.mark.parametrize("axis", [2, 3])
def test_visibility_of_one_dct_grating_is_contrast_times_sensitivity(axis):
    n, u, amp = 32, 6, 0.01
    shape = [1, 1, 1, 1]
    shape[axis] = n
    g = _cos(n, u).view(shape).expand(1, 1, n, n)
    x = torch.full((1, 1, n, n), 0.4, dtype=torch.float64)
    v = perturbation_visibility(x, x + amp * g, pixels_per_degree=45.0, gamma=1.0)
    expected = amp / 0.4 * float(csf_barten(u / n / 2 * 45.0, field_deg=n / 45.0))
    assert float(v) == pytest.approx(expected, rel=1e-9)
    assert float(perturbation_visibility(x, x + 2 * amp * g, pixels_per_degree=45.0, gamma=1.0)) \
        == pytest.approx(2 * expected, rel=1e-9)  # linear in the perturbation


def test_a_plaid_pools_two_oblique_gratings():
    n, a = 32, 0.005
    p = (_cos(n, 3).view(n, 1) * _cos(n, 5).view(1, n)).view(1, 1, n, n)
    x = torch.full((1, 1, n, n), 0.5, dtype=torch.float64)
    for beta in (2.0, 4.0):
        v = perturbation_visibility(x, x + a * p, gamma=1.0, beta=beta)
        s = float(csf_barten(math.hypot(3 / n, 5 / n) / 2 * 60.0, field_deg=n / 60.0))
        assert float(v) == pytest.approx(2 ** (1 / beta) * (a / 0.5 / 2) * s, rel=1e-9)


def test_visibility_invariances_and_viewing_distance():
    torch.manual_seed(0)
    x = 0.2 + 0.6 * torch.rand(3, 3, 32, 32, dtype=torch.float64)
    assert perturbation_visibility(x, x).abs().max() == 0.0
    assert float(perturbation_visibility(x, x + 0.01, gamma=1.0).max()) < 1e-9  # a mean shift is no pattern
    d = 0.01 * torch.randn(3, 1, 32, 32, dtype=torch.float64)
    grey, rgb = x[:, :1], x[:, :1].expand(-1, 3, -1, -1)
    # equal change in R, G and B is a grey change (the Rec. 709 weights sum to 1)
    assert torch.allclose(perturbation_visibility(rgb, rgb + d, gamma=1.0), perturbation_visibility(grey, grey + d, gamma=1.0))
    # a fine checkerboard fades with distance; display gamma 2.2 makes dark pixels' changes smaller
    fine = 0.02 * (_cos(32, 28).view(32, 1) * _cos(32, 28).view(1, 32)).view(1, 1, 32, 32)
    g = torch.full((1, 1, 32, 32), 0.5, dtype=torch.float64)
    near, far = (float(perturbation_visibility(g, g + fine, pixels_per_degree=p)) for p in (15.0, 120.0))
    assert far < near / 10
    lin, gam = (float(perturbation_visibility(g, g + fine, gamma=gm)) for gm in (1.0, 2.2))
    assert gam == pytest.approx(2.2 * lin, rel=0.02)  # d(x^g)/x^g = g dx / x at the mean


def test_ssim_matches_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    torch.manual_seed(1)
    x = torch.rand(3, 3, 32, 32, dtype=torch.float64)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    ours = perturbation_ssim(x, y)
    ref = [skm.structural_similarity(x[i].numpy(), y[i].numpy(), channel_axis=0, data_range=1.0,
                                     gaussian_weights=True, sigma=1.5, use_sample_covariance=False, win_size=7)
           for i in range(3)]
    assert ours.tolist() == pytest.approx(ref, abs=1e-3)  # skimage crops the border differently
    assert perturbation_ssim(x, x).tolist() == pytest.approx([1.0] * 3)


def test_visibility_and_ssim_bad_input():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="x_adv"):
        perturbation_visibility(x, x[:, :1])
    with pytest.raises(ValueError, match="channels"):
        perturbation_visibility(torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match="zero mean luminance"):
        perturbation_visibility(torch.zeros(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="beta"):
        perturbation_visibility(x, x, beta=0.5)
    with pytest.raises(ValueError, match="win_size"):
        perturbation_ssim(x, x, win_size=8)


def test_residual_visibility_is_the_visibility_of_removing_the_high_frequencies():
    g = torch.Generator().manual_seed(1)
    x = (0.5 + 0.2 * torch.randn(3, 3, 16, 16, generator=g)).clamp(0, 1)
    r = fk.residual_visibility(x, [0.3, 0.7, 1.5], [20.0, 60.0])
    assert r["jnd"].shape == (3, 2, 3) and r["jnd"].dtype == torch.float64
    # one entry recomputed by hand through perturbation_visibility
    lp = fk.low_pass(x, 0.7).clamp(0, 1)
    assert torch.allclose(r["jnd"][1, 1], fk.perturbation_visibility(x, lp, pixels_per_degree=60.0))
    # a cut-off above sqrt(2) removes nothing: invisible; a lower cut-off removes more: more visible
    assert float(r["jnd"][2].abs().max()) < 1e-3   # float32 round trip of the filter only
    assert bool((r["jnd"][0] > r["jnd"][1]).all())
    assert r["median"][0][0] == pytest.approx(float(r["jnd"][0, 0].median()))
    assert r["share_visible"][2] == [0.0, 0.0]
    with pytest.raises(ValueError, match="cutoffs"):
        fk.residual_visibility(x, [], [60.0])
    with pytest.raises(ValueError, match="pixels_per_degree"):
        fk.residual_visibility(x, [0.5], [0.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fk.residual_visibility(x + 1, [0.5])
