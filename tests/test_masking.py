"""Gradient-masking checks (freqkit.masking): SimBA-DCT stays in the threat model and uses no
gradient; the checks pass an honest model and flag a masked one (a quantiser without BPDA:
the white-box attack fails, the black-box and transfer attacks do not); bad input.

Tiny synthetic problems, no downloads, one CPU thread.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import freqkit.masking as M
from freqkit.attacks import band_projector
from freqkit.defense import DCTQuantize, defended
from freqkit.transforms import band_masks

pytestmark = pytest.mark.usefixtures("one_thread")
H = 16


def _synthetic10(n: int, seed: int, h: int = H, k: int = 10):
    """10 classes of gratings under smoothed noise, 3 x h x h, clipped to [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(h).float(), indexing="ij")
    freqs = [(a, b) for a in range(4) for b in range(4) if (a, b) != (0, 0)][:k]
    pat = torch.stack([torch.cos(2 * math.pi * (a * yy + b * xx) / h) for a, b in freqs])
    noise = F.avg_pool2d(F.pad(torch.randn(n, 3, h, h, generator=g), (1, 1, 1, 1), mode="circular"), 3, stride=1)
    amp = 0.08 + 0.1 * torch.rand(n, 1, 1, 1, generator=g)
    x = 0.5 + amp * pat[y][:, None] + 0.35 * noise + 0.1 * torch.randn(n, 1, 1, 1, generator=g)
    return x.clamp(0, 1), y


def _train(seed: int, iters: int = 150) -> nn.Module:
    xtr, ytr = _synthetic10(2048, seed=1)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(iters):
        i = torch.randint(0, xtr.shape[0], (128,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(xtr[i]), ytr[i]).backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def models():
    """An honest model, the same model behind JPEG-like quantisation without BPDA (its gradient
    is exactly zero: masked), a second, independently trained standard model (the transfer
    source), and 40 test images."""
    honest, source = _train(0), _train(1)
    masked = defended(honest, DCTQuantize(quality=50, bpda=False)).eval()
    x, y = _synthetic10(40, seed=2)
    return honest, masked, source, x, y


EPS_LIST = [0.0, 4 / 255, 16 / 255, 64 / 255, 1.0]


def _checks(model, source, x, y):
    return M.masking_checks(model, x, y, 8 / 255, source_model=source, eps_list=EPS_LIST, steps=10, curve_steps=10,
                            simba_iters=200, seed=0)


def test_an_honest_model_passes_every_check(models):
    honest, _, source, x, y = models
    r = _checks(honest, source, x, y)
    assert r["passed"] and r["failed"] == []
    c = r["checks"]
    curve = c["accuracy_to_zero"]
    assert curve["accuracy"][0] > 0.9 and curve["accuracy"][-1] <= 0.05 and curve["monotone"]
    assert curve["eps_below_threshold"] is not None and curve["eps_below_threshold"] <= 64 / 255
    assert c["blackbox"]["blackbox_accuracy"] >= r["whitebox"]["accuracy"]
    assert c["transfer"]["transfer_accuracy"] >= r["whitebox"]["accuracy"]
    assert 0 < r["whitebox"]["accuracy"] < 0.9          # an informative radius
    import json
    json.dumps(r)                                        # JSON-ready


def test_a_model_behind_a_quantiser_without_bpda_is_flagged(models):
    """Zero gradients: the white-box attack cannot move; random search and transfer can."""
    _, masked, source, x, y = models
    r = _checks(masked, source, x, y)
    assert not r["passed"]
    assert set(r["failed"]) == {"accuracy_to_zero", "blackbox", "transfer"}
    c = r["checks"]
    assert r["whitebox"]["accuracy"] > 0.9                      # "robust" to the white-box attack
    assert c["blackbox"]["fooled_only_by_blackbox"] > 0 and c["transfer"]["fooled_only_by_transfer"] > 0
    assert c["accuracy_to_zero"]["accuracy"][-2] > 0.5          # still "robust" at eps 64/255


def test_transfer_is_reported_as_skipped_without_a_source(models):
    honest, _, _, x, y = models
    r = M.masking_checks(honest, x[:8], y[:8], 8 / 255, eps_list=[0.0, 1.0], steps=3, curve_steps=3, simba_iters=10)
    assert r["checks"]["transfer"] == {"skipped": "no source model given", "passed": None}
    assert "transfer" not in r["failed"]


# ----------------------------------------------------------------------------- SimBA-DCT

def test_simba_order_goes_from_low_to_high_frequencies_and_respects_a_band():
    o = M.simba_order(2, 8, 8, freq_dims=2, stride=2, seed=0)
    assert sorted(o.tolist()) == list(range(2 * 64))
    u, v = (o % 64) // 8, o % 8
    ring = torch.maximum(u, v)
    level = torch.where(ring < 2, 0, 1 + (ring - 2) // 2)
    assert bool((level[1:] >= level[:-1]).all())                # non-decreasing rings
    assert sorted(o[:8].tolist()) == sorted([c * 64 + a * 8 + b for c in range(2) for a in range(2) for b in range(2)])
    low = band_masks(8, 8, 2, "radial", "dct")[0]
    ob = M.simba_order(2, 8, 8, 2, 2, seed=0, band=low)
    assert ob.numel() == 2 * int(low.sum()) and bool(low.reshape(-1).repeat(2)[ob].all())
    assert not torch.equal(o, M.simba_order(2, 8, 8, 2, 2, seed=1))


@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l2", 0.5)])
@pytest.mark.parametrize("with_band", [False, True])
def test_simba_stays_in_the_threat_model_and_in_the_band(models, norm, eps, with_band):
    honest, _, _, x, y = models
    band = band_masks(H, H, 4, "radial", "dct")[0] if with_band else None
    x_adv, info = M.simba_dct(honest, x[:12], y[:12], eps, norm=norm, max_iters=100, band=band, return_info=True)
    d = (x_adv - x[:12]).flatten(1)
    size = d.norm(dim=1) if norm == "l2" else d.abs().amax(1)
    assert float(size.max()) <= eps + 1e-5 and float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    assert bool((info["queries"] >= 1).all()) and bool((info["queries"] <= 1 + 2 * 100).all())
    if with_band:
        delta = x_adv - x[:12]
        out = (delta - band_projector(band)(delta)).flatten(1).pow(2).sum(1)
        assert float((out / delta.flatten(1).pow(2).sum(1).clamp_min(1e-30)).max()) < 1e-6


def test_simba_is_black_box():
    """SimBA only queries outputs: a model that refuses to run with gradients enabled works."""
    class NoGrad(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3 * 8 * 8, 4)

        def forward(self, x):
            assert not torch.is_grad_enabled(), "a gradient was asked for"
            return self.lin(x.flatten(1))

    torch.manual_seed(0)
    net = NoGrad().eval()
    x = torch.rand(5, 3, 8, 8)
    with torch.no_grad():
        y = net(x).argmax(1)
    x_adv, info = M.simba_dct(net, x, y, 0.2, max_iters=64, return_info=True)
    assert int(info["success"].sum()) > 0


def test_accuracy_vs_eps_reports_a_rise_as_not_monotone(monkeypatch):
    """An attack that fools every image at a small radius and none at a large one (what an
    attack lost in a flat region does): the rise is reported and the check fails."""
    def fake_apgd(model, x, y, eps, **kw):
        ok = torch.full((x.shape[0],), eps < 0.2)
        return x, {"success": ok}

    monkeypatch.setattr(M, "apgd", fake_apgd)
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5)).eval()
    x = torch.rand(4, 3, 8, 8)
    with torch.no_grad():
        y = m(x).argmax(1)
    r = M.accuracy_vs_eps(m, x, y, "linf", eps_list=[0.0, 0.1, 0.3], steps=5)
    assert r["accuracy"] == [1.0, 0.0, 1.0] and r["eps_below_threshold"] == 0.1
    assert not r["monotone"] and not r["passed"] and r["max_rise"] == 1.0


@pytest.mark.parametrize("call, match", [
    (lambda m, x, y: M.accuracy_vs_eps(m, x, y, eps_list=[0.1]), "eps_list"),
    (lambda m, x, y: M.accuracy_vs_eps(m, x, y, eps_list=[0.2, 0.1]), "eps_list"),
    (lambda m, x, y: M.accuracy_vs_eps(m, x, y, threshold=1.5), "threshold"),
    (lambda m, x, y: M.simba_dct(m, x, y, 0.0), "eps"),
    (lambda m, x, y: M.simba_dct(m, x, y, 0.1, max_iters=0), "max_iters"),
    (lambda m, x, y: M.simba_dct(m, x, y, 0.1, norm="l1"), "norm"),
    (lambda m, x, y: M.blackbox_check(m, x, y, 0.1, whitebox_robust=torch.ones(3, dtype=torch.bool)),
     "whitebox_robust"),
    (lambda m, x, y: M.blackbox_check(m, x, y, 0.1, tolerance=-0.1), "tolerance"),
    (lambda m, x, y: M.transfer_check(m, "not a model", x, y, 0.1), "source_model"),
    (lambda m, x, y: M.simba_order(1, 8, 8, 0, 1), "freq_dims"),
])
def test_bad_input_errors_name_the_argument(call, match):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5)).eval()
    x, y = torch.rand(2, 3, 8, 8), torch.tensor([0, 1])
    with pytest.raises((ValueError, TypeError), match=match):
        call(m, x, y)
