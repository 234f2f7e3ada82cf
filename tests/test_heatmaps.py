"""freqkit.heatmaps: Fourier heat maps (Yin et al. 2019) against models whose answer is known,
their radial profiles, summaries and the chapter report.

Tiny synthetic problems only (no downloads), one CPU thread.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from freqkit import heatmaps as HM
from freqkit.transforms import dft2, frequency_radius, idht2

pytestmark = pytest.mark.usefixtures("one_thread")


def _mirror(m: torch.Tensor) -> torch.Tensor:
    """``m`` reflected through the centre of the centred DFT grid (``f -> -f``)."""
    h, w = m.shape
    iu = ((-(torch.arange(h) - h // 2)) % h + h // 2) % h
    iv = ((-(torch.arange(w) - w // 2)) % w + w // 2) % w
    return m[iu][:, iv]


def _saturated(n, c, h, w, seed, frac=0.4):
    """Images where ``frac`` of the pixels are exactly 0 or 1 (in blobs, like real images)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, h, w, generator=g)
    blob = F.avg_pool2d(torch.rand(n, 1, h + 2, w + 2, generator=g), 3, stride=1)
    lo, hi = torch.quantile(blob.flatten(1), frac / 2, dim=1), torch.quantile(blob.flatten(1), 1 - frac / 2, dim=1)
    x = torch.where(blob <= lo.view(-1, 1, 1, 1), torch.zeros_like(x), x)
    x = torch.where(blob >= hi.view(-1, 1, 1, 1), torch.ones_like(x), x)
    return x


class _Linear(nn.Module):
    """logits = W x (flattened): k classes, float64."""

    def __init__(self, c, h, w, k=3, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(k, c, h, w, generator=g, dtype=torch.float64))

    def forward(self, x):
        return torch.einsum("nchw,kchw->nk", x.to(self.w.dtype), self.w)


RANDOM_MODEL = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                             nn.Linear(32, 3)).eval()


# ----------------------------------------------------------------------------- Fourier heat map

class _OneFrequency(nn.Module):
    """Sensitive only to the energy at DFT frequency ``(u, v)`` (and its mirror): class 1
    when the energy of the projection onto that Fourier pair exceeds ``thr``."""

    def __init__(self, h, w, u, v, thr):
        super().__init__()
        e = torch.zeros(2, h, w)
        e[0, u, v] = 1
        e[1][_mirror(e[0] > 0)] = 1
        self.register_buffer("basis", idht2(e))  # orthonormal pair spanning the frequency
        self.thr = thr

    def forward(self, x):
        c = torch.einsum("nchw,khw->nck", x, self.basis)
        energy = c.pow(2).sum((1, 2))
        return torch.stack([self.thr - energy, energy - self.thr], 1)


@pytest.mark.parametrize("h, w, u, v", [(16, 16, 5, 11), (12, 15, 2, 9), (8, 8, 4, 1)])
def test_fourier_heatmap_peaks_at_the_only_sensitive_direction(h, w, u, v):
    eps = 1.0
    model = _OneFrequency(h, w, u, v, thr=eps ** 2 / 2)
    g = torch.Generator().manual_seed(0)
    x = 0.35 + 0.3 * torch.rand(6, 3, h, w, generator=g)
    c = torch.einsum("nchw,khw->nck", x, model.basis)
    x = x - torch.einsum("nck,khw->nchw", c, model.basis)  # no energy at (u, v): class 0
    assert float(x.min()) >= 0 and float(x.max()) <= 1  # no clamping can interfere
    y = torch.zeros(6, dtype=torch.long)
    hm = HM.fourier_heatmap(model, x, y, eps=eps, batch_size=64, progress=False)
    assert hm.shape == (h, w)
    peak = torch.zeros(h, w, dtype=torch.bool)
    peak[u, v] = True
    peak = peak | _mirror(peak)
    assert torch.equal(hm > 0.5, peak)
    assert torch.allclose(hm[peak], torch.ones(int(peak.sum())))
    assert float(hm[~peak].abs().max()) == 0.0
    lc = HM.fourier_heatmap(model, x, y, eps=eps, metric="logit_change", progress=False)
    assert torch.equal(lc == lc.max(), peak)


def test_fourier_heatmap_is_symmetric_and_independent_of_batch_size():
    x = _saturated(5, 3, 9, 10, seed=1, frac=0.1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(270, 3))
    torch.manual_seed(0)
    y = torch.randint(0, 3, (5,))
    a = HM.fourier_heatmap(model, x, y, eps=2.0, batch_size=7, progress=False, metric="logit_change")
    b = HM.fourier_heatmap(model, x, y, eps=2.0, batch_size=1000, progress=False, metric="logit_change")
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(a, _mirror(a))
    assert float(a.abs().sum()) > 0


def test_fourier_basis_images_are_unit_norm_and_on_their_frequency():
    idx = torch.arange(0, 64, 7)
    b = HM.fourier_basis_images(8, 8, idx, torch.float64)
    assert torch.allclose(b.flatten(1).norm(dim=1), torch.ones(len(idx), dtype=torch.float64))
    spec = dft2(b).abs()
    for k, i in enumerate(idx.tolist()):
        m = torch.zeros(64, dtype=torch.bool)
        m[i] = True
        m = m.reshape(8, 8)
        m = m | _mirror(m)
        assert float(spec[k][~m].max()) < 1e-12


def test_fourier_heatmap_tuple_of_metrics_in_one_pass():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(4, 1, 6, 7, generator=g)
    model = nn.Sequential(nn.Flatten(), nn.Linear(42, 3))
    y = torch.tensor([0, 1, 2, 0])
    both = HM.fourier_heatmap(model, x, y, eps=1.5, metric=("error", "logit_change"), progress=False)
    assert set(both) == {"error", "logit_change"}
    for m in ("error", "logit_change"):
        assert torch.allclose(both[m], HM.fourier_heatmap(model, x, y, eps=1.5, metric=m, progress=False))
    with pytest.raises(ValueError, match="metric"):
        HM.fourier_heatmap(model, x, y, metric=("error", "accuracy"))
    with pytest.raises(ValueError, match="metric"):
        HM.fourier_heatmap(model, x, y, metric=())


@pytest.mark.parametrize("h, w", [(32, 32), (28, 28), (9, 10), (7, 7)])
def test_n_fourier_directions_counts_conjugate_pairs(h, w):
    n = HM.n_fourier_directions(h, w)
    # brute force: frequencies f of the centred grid, identified with -f
    seen = set()
    for u in range(h):
        for v in range(w):
            fu, fv = u - h // 2, v - w // 2
            a = ((fu) % h, (fv) % w)
            b = ((-fu) % h, (-fv) % w)
            seen.add(min(a, b))
    assert n == len(seen)


# ----------------------------------------------------------------------------- profiles, summaries, the report

def test_heatmap_radial_profile():
    h, w = 16, 16
    c, v = HM.heatmap_radial_profile(torch.full((h, w), 0.25))
    assert np.allclose(v, 0.25) and len(c) == len(v) <= 8
    r = frequency_radius(h, w, "dft")
    c, v = HM.heatmap_radial_profile(r.float(), n_bins=5)
    assert np.allclose(c, v, atol=1e-6)                   # the mean radius per ring is the ring's centre
    assert np.all(np.diff(c) > 0)
    with pytest.raises(ValueError, match="hm"):
        HM.heatmap_radial_profile(torch.zeros(3, 4, 4))


def test_robustness_rows_and_heatmap_summary_heatmap_summary():
    hm = torch.zeros(8, 8)
    hm[4, 4] = 1.0                                     # the zero frequency of the centred grid
    s = HM.heatmap_summary(hm)
    assert s["low"] > 0 and s["high"] == 0


def test_heatmap_summary_is_the_mean_over_equal_count_halves():
    from freqkit.transforms import low_high_masks

    g = torch.Generator().manual_seed(4)
    hm = torch.rand(10, 12, generator=g, dtype=torch.float64)
    halves = low_high_masks(10, 12, "dft")
    s = HM.heatmap_summary(hm)
    low, high = float(hm[halves["low"]].mean()), float(hm[halves["high"]].mean())
    assert s == {"low": pytest.approx(low), "high": pytest.approx(high), "low_minus_high": pytest.approx(low - high)}
    assert HM.heatmap_summary(hm.numpy()) == s and HM.heatmap_summary(hm.tolist()) == s
    r = frequency_radius(10, 12, "dft")
    t = HM.heatmap_summary(r)                            # radius itself: the high half is larger
    assert t["high"] > t["low"] and t["low_minus_high"] < 0
    for bad in (torch.zeros(2, 2, 3, 3), torch.zeros(5), torch.zeros(0, 4, 4)):
        with pytest.raises(ValueError, match="hm"):
            HM.heatmap_summary(bad)


def test_heatmap_report_matches_fourier_heatmap_and_its_parts():
    torch.manual_seed(0)
    m = _Linear(1, 8, 8, k=2).float()
    x = torch.rand(5, 1, 8, 8)
    y = m(x).argmax(1)
    rep = HM.heatmap_report(m, x, y, eps=2.0, batch_size=64, seed=3, n_radial_bins=3)
    ref = HM.fourier_heatmap(m, x, y, eps=2.0, batch_size=64, seed=3, metric=("error", "logit_change"),
                             progress=False)
    for k in ("error", "logit_change"):
        torch.testing.assert_close(rep["maps"][k], ref[k])
        c, v = HM.heatmap_radial_profile(ref[k], 3)
        np.testing.assert_allclose(rep["radial"][k][1], v)
    assert rep["clean_error"] == 0.0                    # labels are the model's own predictions
    assert rep["timing"]["n_directions"] == HM.n_fourier_directions(8, 8)
    assert rep["timing"]["n_images"] == 5 and rep["timing"]["seconds"] > 0
    one = HM.heatmap_report(m, x, (y + 1) % 2, eps=2.0, metrics=("error",))
    assert list(one["maps"]) == ["error"] and one["clean_error"] == 1.0
    with pytest.raises(ValueError, match="y"):
        HM.heatmap_report(m, x, y[:2], eps=2.0)


def test_chapter_helpers_refuse_bad_input_by_name_heatmap_report():
    m = _Linear(1, 8, 8, k=2).float()
    x = torch.rand(3, 1, 8, 8)
    y = torch.zeros(3, dtype=torch.long)
    for kw, match in ((dict(eps=-1.0), "eps"), (dict(eps=float("nan")), "eps"), (dict(eps=1.0, metrics=()), "metrics"),
                      (dict(eps=1.0, metrics=("bogus",)), "metric"), (dict(eps=1.0, n_radial_bins=0), "n_bins")):
        with pytest.raises(ValueError, match=match):
            HM.heatmap_report(m, x, y, **kw)
    with pytest.raises(ValueError, match="non-finite"):
        HM.heatmap_report(m, x * float("nan"), y, eps=1.0)


def _bad_cases():
    x = torch.rand(2, 3, 16, 16)
    y = torch.tensor([0, 1])
    m = RANDOM_MODEL
    return [
        (lambda: HM.fourier_heatmap(m, x, y, eps=-1.0), "eps"),
        (lambda: HM.fourier_heatmap(m, x, y, metric="accuracy"), "metric"),
        (lambda: HM.fourier_heatmap(m, x, torch.tensor([0, 5]), progress=False), "y"),
        (lambda: HM.n_fourier_directions(0, 4), "h"),
        (lambda: HM.heatmap_radial_profile(torch.zeros(4, 4), n_bins=0), "n_bins"),
    ]


@pytest.mark.parametrize("k", range(len(_bad_cases())))
def test_bad_input_errors_name_the_argument_heatmaps(k):
    call, name = _bad_cases()[k]
    with pytest.raises((ValueError, TypeError)) as e:
        call()
    assert name in str(e.value), str(e.value)


# ----------------------------------------------------------------- issue 11: a broken model, mode, empty input

class _NaNModel(nn.Module):
    """A classifier whose logits are all NaN, like one loaded from a diverged checkpoint."""

    def __init__(self, c=3, h=8, k=3):
        super().__init__()
        self.lin = nn.Linear(c * h * h, k)

    def forward(self, x):
        return self.lin(x.flatten(1)) * float("nan")


@pytest.mark.parametrize("metric", ["error", "logit_change", ("error", "logit_change")])
def test_fourier_heatmap_refuses_nan_logits_naming_the_model(metric):
    x, y = torch.rand(3, 3, 8, 8), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match=r"_NaNModel.*non-finite"):
        HM.fourier_heatmap(_NaNModel(), x, y, eps=1.0, metric=metric, progress=False)
    with pytest.raises(ValueError, match=r"_NaNModel.*non-finite"):
        HM.heatmap_report(_NaNModel(), x, y, eps=1.0)


def test_fourier_heatmap_leaves_every_submodules_mode_and_batchnorm_statistics_alone():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                        nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    net.train()
    net[4].eval()
    modes = {n: m.training for n, m in net.named_modules()}
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.rand(3, 3, 8, 8), torch.tensor([0, 1, 2])
    HM.fourier_heatmap(net, x, y, eps=1.0, metric=("error", "logit_change"), progress=False)
    HM.heatmap_report(net, x, y, eps=1.0)
    assert {n: m.training for n, m in net.named_modules()} == modes
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())


def test_fourier_heatmap_refuses_an_empty_batch_naming_x_and_takes_a_plain_function():
    x0, y0 = torch.rand(0, 3, 8, 8), torch.zeros(0, dtype=torch.long)
    with pytest.raises(ValueError, match=r"x holds no images \(N = 0\)"):
        HM.fourier_heatmap(RANDOM_MODEL, x0, y0, progress=False)
    with pytest.raises(ValueError, match=r"x holds no images \(N = 0\)"):
        HM.heatmap_report(RANDOM_MODEL, x0, y0, eps=1.0)
    x, y = torch.rand(3, 3, 8, 8), torch.tensor([0, 1, 2])
    hm = HM.fourier_heatmap(lambda z: RANDOM_MODEL(z), x, y, eps=1.0, progress=False)
    assert torch.equal(hm, HM.fourier_heatmap(RANDOM_MODEL, x, y, eps=1.0, progress=False))


# ----------------------------------------------------------------- issue 15: sub-grids, streamed data, per-layer maps

def _small_problem(n=5, h=10, w=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = 0.2 + 0.6 * torch.rand(n, 3, h, w, generator=g)
    return RANDOM_MODEL, x, torch.randint(0, 3, (n,), generator=g)


@pytest.mark.parametrize("signs", ["stream", "hashed"])
@pytest.mark.parametrize("directions", [2, 3, "radial", "indices"])
def test_subgrid_maps_equal_the_full_map_at_the_sampled_frequencies(signs, directions):
    model, x, y = _small_problem()
    full = HM.fourier_heatmap(model, x, y, eps=3.0, batch_size=64, metric=("error", "logit_change"), signs=signs,
                              progress=False)
    if directions == "radial":
        directions = HM.fourier_directions(10, 10, radii=[0.2, 0.7, 1.3], n_angles=6)
    elif directions == "indices":
        directions = torch.tensor([0, 55, 99, 45, 13])          # any members of their conjugate pairs
    sub = HM.fourier_heatmap(model, x, y, eps=3.0, batch_size=17, metric=("error", "logit_change"), signs=signs,
                             directions=directions, progress=False)
    for k in ("error", "logit_change"):
        seen = ~torch.isnan(sub[k])
        assert torch.equal(seen, _mirror(seen)) and 0 < int(seen.sum()) < 100
        torch.testing.assert_close(sub[k][seen], full[k][seen], rtol=1e-5, atol=1e-6)
    if isinstance(directions, torch.Tensor) and directions.numel() == 5:
        assert bool(seen.flatten()[directions].all())


def test_fourier_directions_step_and_radial_sampling():
    n = HM.n_fourier_directions(32, 32)
    for h, w in ((32, 32), (9, 10), (224, 224)):
        assert torch.equal(HM.fourier_directions(h, w, step=1), HM._conjugate_pairs(h, w)[0])
    d = HM.fourier_directions(32, 32, step=4)
    assert d.numel() == 34 and d.numel() < n / 4
    grid = torch.zeros(32 * 32, dtype=torch.bool)
    grid[d] = True
    grid = grid.reshape(32, 32)
    grid = grid | _mirror(grid)
    assert bool(grid[16, 16]) and bool(grid[16, 20]) and not bool(grid[16, 17])    # DC, every 4th only
    r = HM.fourier_directions(224, 224, radii=[0.1, 0.5, 1.0], n_angles=12)
    assert 12 < r.numel() <= 36
    with pytest.raises(ValueError, match="either step"):
        HM.fourier_directions(8, 8)
    with pytest.raises(ValueError, match="step"):
        HM.fourier_directions(8, 8, step=0)
    with pytest.raises(ValueError, match="n_angles"):
        HM.fourier_directions(8, 8, radii=[0.5])
    with pytest.raises(ValueError, match="radii"):
        HM.fourier_directions(8, 8, radii=[2.0], n_angles=4)


def test_streamed_batches_equal_tensors_with_hashed_signs():
    model, x, y = _small_problem(n=7)
    ref = HM.fourier_heatmap(model, x, y, eps=2.0, metric=("error", "logit_change"), signs="hashed", progress=False)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=3)
    got = HM.fourier_heatmap(model, loader, eps=2.0, metric=("error", "logit_change"), progress=False)
    listed = HM.fourier_heatmap(model, [(x[:4], y[:4]), (x[4:], y[4:])], eps=2.0, metric="logit_change",
                                batch_size=5, progress=False)
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(listed, ref["logit_change"], rtol=1e-5, atol=1e-6)
    rep = HM.heatmap_report(model, loader, eps=2.0, directions=2)
    rep_t = HM.heatmap_report(model, x, y, eps=2.0, directions=2, signs="hashed")
    assert rep["clean_error"] == pytest.approx(rep_t["clean_error"]) and rep["timing"]["n_images"] == 7
    torch.testing.assert_close(rep["maps"]["error"], rep_t["maps"]["error"], equal_nan=True)
    # the random stream of the tensor path differs from the hashed signs, both are fair coins
    s = HM._hashed_signs(0, torch.arange(500), torch.arange(40), 3, torch.float32, "cpu")
    assert set(s.unique().tolist()) == {-1.0, 1.0} and abs(float(s.mean())) < 0.02
    assert not torch.equal(s, HM._hashed_signs(1, torch.arange(500), torch.arange(40), 3, torch.float32, "cpu"))


def test_streamed_batches_refuse_bad_input_by_name():
    model, x, y = _small_problem(n=4)
    loader = [(x[:2], y[:2]), (x[2:], y[2:])]
    with pytest.raises(ValueError, match="signs='stream'"):
        HM.fourier_heatmap(model, loader, signs="stream", progress=False)
    with pytest.raises(ValueError, match="y must be None"):
        HM.fourier_heatmap(model, loader, y, progress=False)
    with pytest.raises(ValueError, match=r"\(images, labels\)"):
        HM.fourier_heatmap(model, [x], progress=False)
    with pytest.raises(ValueError, match="one shape"):
        HM.fourier_heatmap(model, [(x[:2], y[:2]), (x[2:, :, :8, :8], y[2:])], progress=False)
    with pytest.raises(ValueError, match=r"batch at image 2.*\[0, 1\]"):
        HM.fourier_heatmap(model, [(x[:2], y[:2]), (x[2:] + 1, y[2:])], progress=False)
    with pytest.raises(ValueError, match=r"x holds no images \(N = 0\)"):
        HM.fourier_heatmap(model, [], progress=False)
    with pytest.raises(ValueError, match="signs"):
        HM.fourier_heatmap(model, x, y, signs="random", progress=False)
    for bad, err in ((0, ValueError), (torch.tensor([]), ValueError), (torch.tensor([0.5]), ValueError),
                     (torch.tensor([10 ** 6]), ValueError), ("every", TypeError)):
        with pytest.raises(err, match="directions|step"):
            HM.fourier_heatmap(model, x, y, directions=bad, progress=False)


class _Scale(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        return self.k * x


def test_layer_heatmap_checked_by_hand():
    """Layer "0" doubles the image: its activations move by 2 eps for every direction (unit-norm
    basis images, no clamping).  Layer "1" averages the doubled image: only the zero frequency
    (the constant basis image 1/sqrt(HW)) moves the mean, by 2 eps / sqrt(HW)."""
    h = w = 4
    eps = 0.1
    model = nn.Sequential(_Scale(2.0), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2))
    x = 0.4 + 0.2 * torch.rand(3, 1, h, w, generator=torch.Generator().manual_seed(0))
    maps = HM.fourier_layer_heatmap(model, x, ["0", "1"], eps=eps, batch_size=7, progress=False)
    torch.testing.assert_close(maps["0"], torch.full((h, w), 2 * eps))
    expect = torch.zeros(h, w)
    expect[h // 2, w // 2] = 2 * eps / (h * w) ** 0.5
    torch.testing.assert_close(maps["1"], expect, atol=1e-6, rtol=1e-5)
    rel = HM.fourier_layer_heatmap(model, x, "1", eps=eps, relative_scale=True, directions=2, progress=False)
    assert float(rel["1"][h // 2, w // 2]) == pytest.approx(1.0) and int(torch.isnan(rel["1"]).sum()) == 12
    rep = HM.heatmap_report(model, x, torch.zeros(3, dtype=torch.long), eps=eps, layers=["0"])
    torch.testing.assert_close(rep["layer_maps"]["0"], maps["0"])
    with pytest.raises(ValueError, match="no submodule 'layer9'"):
        HM.fourier_layer_heatmap(model, x, ["layer9"], progress=False)
    with pytest.raises(ValueError, match="layers"):
        HM.fourier_layer_heatmap(model, x, [], progress=False)
    with pytest.raises(TypeError, match="nn.Module"):
        HM.fourier_layer_heatmap(lambda z: model(z), x, ["0"], progress=False)


def test_profile_and_summary_of_a_subgrid_map_skip_the_frequencies_not_evaluated():
    hm = frequency_radius(16, 16, "dft").float()
    sub = hm.clone()
    keep = torch.zeros(16, 16, dtype=torch.bool)
    keep[::2, ::2] = True
    sub[~keep] = float("nan")
    c, v = HM.heatmap_radial_profile(sub, 4)
    assert np.isfinite(v).all() and (np.diff(v) > 0).all()
    s = HM.heatmap_summary(sub)
    assert s["low"] < s["high"]
    with pytest.raises(ValueError, match="inf"):
        HM.heatmap_summary(torch.full((4, 4), float("inf")))
    with pytest.raises(ValueError, match="only NaN"):
        HM.heatmap_radial_profile(torch.full((4, 4), float("nan")))


# ----------------------------------------------------------------- issue 13 (H4): per-image maps and their halves

@pytest.mark.parametrize("directions", [None, 2])
def test_per_image_maps_average_to_the_map_and_summaries_agree(directions):
    model, x, y = _small_problem(n=6)
    kw = dict(eps=3.0, metric=("error", "logit_change"), directions=directions, progress=False)
    mean = HM.fourier_heatmap(model, x, y, batch_size=64, **kw)
    per = HM.fourier_heatmap(model, x, y, batch_size=13, per_image=True, **kw)
    for k in ("error", "logit_change"):
        assert per[k].shape == (6, 10, 10)
        torch.testing.assert_close(per[k].mean(0), mean[k], rtol=1e-5, atol=1e-6, equal_nan=True)
        torch.testing.assert_close(per[k], torch.stack([_mirror(m) for m in per[k]]), equal_nan=True)
        s, one = HM.heatmap_summary(per[k]), HM.heatmap_summary(mean[k])
        for part in ("low", "high", "low_minus_high"):
            assert s[part].shape == (6,) and float(s[part].mean()) == pytest.approx(one[part], rel=1e-5, abs=1e-6)
        # each image's own map: its summary is the summary of that map alone
        s2 = HM.heatmap_summary(per[k][2])
        assert s2 == {p: pytest.approx(float(s[p][2])) for p in s}
    seen = ~torch.isnan(per["error"])
    assert set(per["error"][seen].unique().tolist()) <= {0.0, 1.0}      # per image, error is 0 or 1
    single = HM.fourier_heatmap(model, x, y, per_image=True, metric="error", eps=3.0, directions=directions,
                                progress=False)
    torch.testing.assert_close(single, per["error"], equal_nan=True)


def test_per_image_halves_find_a_model_that_is_sensitive_to_low_frequencies_only():
    h = w = 8
    model = _OneFrequency(h, w, 4, 5, thr=0.5)              # one low frequency next to the centre (4, 4)
    g = torch.Generator().manual_seed(0)
    x = 0.35 + 0.3 * torch.rand(4, 1, h, w, generator=g)
    c = torch.einsum("nchw,khw->nck", x, model.basis)
    x = x - torch.einsum("nck,khw->nchw", c, model.basis)
    per = HM.fourier_heatmap(model, x, torch.zeros(4, dtype=torch.long), eps=1.0, per_image=True, progress=False)
    s = HM.heatmap_summary(per)
    assert bool((s["low"] > 0).all()) and bool((s["high"] == 0).all()) and bool((s["low_minus_high"] > 0).all())


def test_per_image_refuses_an_iterable_by_name():
    model, x, y = _small_problem(n=3)
    with pytest.raises(ValueError, match="per_image"):
        HM.fourier_heatmap(model, [(x, y)], eps=1.0, per_image=True, progress=False)
