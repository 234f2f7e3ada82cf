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
    assert s == {"low": pytest.approx(float(hm[halves["low"]].mean())),
                 "high": pytest.approx(float(hm[halves["high"]].mean()))}
    assert HM.heatmap_summary(hm.numpy()) == s and HM.heatmap_summary(hm.tolist()) == s
    r = frequency_radius(10, 12, "dft")
    t = HM.heatmap_summary(r)                            # radius itself: the high half is larger
    assert t["high"] > t["low"]
    with pytest.raises(ValueError, match="hm"):
        HM.heatmap_summary(torch.zeros(2, 3, 3))


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
