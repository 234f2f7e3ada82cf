"""Attacks: torchattacks parity, exact feasibility in band/ball/box, minimal distortion
against closed forms, box-limited failures and band comparisons, equal-budget examples and
their spectra, smooth PGD, bad input.  (Fourier heat maps: test_heatmaps.py.)

Everything runs on tiny synthetic problems (no downloads) and keeps to a single CPU core.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import freqkit.attacks as A
from freqkit.transforms import band_masks, check_dft_symmetric, dct2, dft2, equal_count_band_masks, filter_band, idct2

try:  # a test dependency only (installed with --no-deps: it pins an old requests)
    import torchattacks
except ImportError:  # pragma: no cover
    torchattacks = None
needs_torchattacks = pytest.mark.skipif(torchattacks is None, reason="torchattacks is not installed")

H = 16


# ----------------------------------------------------------------------------- fixtures

def _mirror(m: torch.Tensor) -> torch.Tensor:
    """``m`` reflected through the centre of the centred DFT grid (``f -> -f``)."""
    h, w = m.shape
    iu = ((-(torch.arange(h) - h // 2)) % h + h // 2) % h
    iv = ((-(torch.arange(w) - w // 2)) % w + w // 2) % w
    return m[iu][:, iv]


def _synthetic(n: int, seed: int, h: int = H):
    """A 3-class problem on 3 x h x h images: class k carries an oriented grating of its own
    frequency under 1/f-ish noise; contrast stretched so that ~10% of pixels saturate."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(h).float(), indexing="ij")
    freqs = [(1.0, 0.0), (0.0, 2.0), (2.0, 2.0)]
    pat = torch.stack([torch.cos(2 * math.pi * (a * yy + b * xx) / h) for a, b in freqs])
    noise = torch.randn(n, 3, h, h, generator=g)
    noise = F.avg_pool2d(F.pad(noise, (1, 1, 1, 1), mode="circular"), 3, stride=1)
    amp = 0.06 + 0.1 * torch.rand(n, 1, 1, 1, generator=g)
    x = 0.5 + amp * pat[y][:, None] + 0.45 * noise + 0.1 * torch.randn(n, 1, 1, 1, generator=g)
    return x.clamp(0, 1), y


def _tiny_cnn(c: int = 3, k: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(c, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, k))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained():
    """A tiny CNN trained for ~2 s on the synthetic problem, and 600 held-out images it
    classifies correctly (so that attack success rates are about the attack)."""
    xtr, ytr = _synthetic(1024, seed=1)
    model = _tiny_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        i = torch.randint(0, xtr.shape[0], (128,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(xtr[i]), ytr[i]).backward()
        opt.step()
    model.eval()
    x, y = _synthetic(900, seed=2)
    with torch.no_grad():
        ok = model(x).argmax(1) == y
    assert ok.float().mean() > 0.8, "the fixture model did not learn the synthetic problem"
    return model, x[ok][:600], y[ok][:600]


RANDOM_MODEL = _tiny_cnn(seed=5).eval()


def _saturated(n, c, h, w, seed, frac=0.4):
    """Images where ``frac`` of the pixels are exactly 0 or 1 (in blobs, like real images)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, h, w, generator=g)
    blob = F.avg_pool2d(torch.rand(n, 1, h + 2, w + 2, generator=g), 3, stride=1)
    lo, hi = torch.quantile(blob.flatten(1), frac / 2, dim=1), torch.quantile(blob.flatten(1), 1 - frac / 2, dim=1)
    x = torch.where(blob <= lo.view(-1, 1, 1, 1), torch.zeros_like(x), x)
    x = torch.where(blob >= hi.view(-1, 1, 1, 1), torch.ones_like(x), x)
    return x


def _assert_feasible(x, x_adv, eps, norm, band, basis, info=None):
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    d = (x_adv - x).flatten(1)
    size = d.norm(dim=1) if norm == "l2" else d.abs().amax(1)
    assert float(size.max()) <= eps + 1e-5, f"{norm} {float(size.max())} > eps {eps}"
    if band is not None:
        proj = A.band_projector(band, basis)
        delta = x_adv - x
        e_all = delta.flatten(1).pow(2).sum(1)
        e_out = (delta - proj(delta)).flatten(1).pow(2).sum(1)
        share = torch.where(e_all > 0, e_out / e_all.clamp_min(1e-30), torch.zeros_like(e_all))
        assert float(share.max()) < 1e-3, f"out-of-band share {float(share.max()):.2e}"
        if info is not None:
            assert torch.allclose(info["out_of_band"], share, atol=1e-6)


# ----------------------------------------------------------------------------- torchattacks parity

@needs_torchattacks
@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l2", 0.75)])
def test_band_none_is_torchattacks_step_for_step(trained, norm, eps):
    """Without early stop, the same seed gives torchattacks' adversarial images exactly."""
    model, x, y = trained
    x, y = x[:200], y[:200]
    alpha = eps / 4
    torch.manual_seed(11)
    atk = (torchattacks.PGD if norm == "linf" else torchattacks.PGDL2)(model, eps=eps, alpha=alpha, steps=10)
    x_ta = atk(x, y)
    x_fk = A.pgd(model, x, y, eps, norm=norm, steps=10, step_size=alpha, seed=11, early_stop=False)
    assert (x_fk - x_ta).abs().max() < 1e-6


@needs_torchattacks
@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l2", 0.75)])
def test_band_none_success_rate_matches_torchattacks(trained, norm, eps):
    """With early stop (the default) the success rate matches torchattacks' within 1 pp."""
    model, x, y = trained
    alpha = eps / 4
    torch.manual_seed(7)
    atk = (torchattacks.PGD if norm == "linf" else torchattacks.PGDL2)(model, eps=eps, alpha=alpha, steps=10)
    x_ta = atk(x, y)
    with torch.no_grad():
        rate_ta = (model(x_ta).argmax(1) != y).float().mean().item()
    _, info = A.pgd(model, x, y, eps, norm=norm, steps=10, step_size=alpha, seed=7, return_info=True)
    rate_fk = info["success"].float().mean().item()
    assert 0.1 < rate_ta < 0.9, f"eps gives an uninformative success rate {rate_ta}"
    assert abs(rate_fk - rate_ta) <= 0.01, (rate_fk, rate_ta)
    # early stop can only keep successes that the plain iteration might lose later
    assert rate_fk >= rate_ta - 1e-9


# ----------------------------------------------------------------------------- feasibility

@pytest.mark.parametrize("basis", ["dct", "dft"])
@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l2", 0.5)])
@pytest.mark.parametrize("band_idx", [0, 1, 3])
def test_band_pgd_result_in_box_ball_and_band_with_saturated_pixels(basis, norm, eps, band_idx):
    x = _saturated(6, 3, H, H, seed=band_idx)
    assert float(((x == 0) | (x == 1)).float().mean()) > 0.3
    band = band_masks(H, H, 4, "radial", basis)[band_idx]
    with torch.no_grad():
        y = RANDOM_MODEL(x).argmax(1)
    x_adv, info = A.pgd(RANDOM_MODEL, x, y, eps, norm=norm, steps=5, band=band, basis=basis, seed=0,
                        return_info=True)
    _assert_feasible(x, x_adv, eps, norm, band, basis, info)
    if band_idx < 3:
        # (the top band can hardly move an image with large saturated blobs inside [0, 1]:
        # the projection onto band, ball and box is then almost 0, and so may the result be)
        assert float(info["l2"].max()) > 0.1 * eps
    assert set(info) >= {"success", "l2", "linf", "out_of_band", "iterations", "projection"}


@st.composite
def _band_case(draw):
    h = draw(st.integers(4, 12))
    w = draw(st.integers(4, 12))
    basis = draw(st.sampled_from(["dct", "dft"]))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(h, w, generator=g) < draw(st.floats(0.05, 0.9))
    if basis == "dft":
        m = m | _mirror(m)
    if not bool(m.any()):
        m[h // 2, w // 2] = True
    return h, w, basis, m, seed


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_band_case(), norm=st.sampled_from(["linf", "l2"]), eps=st.floats(0.0, 1.5),
       c=st.integers(1, 3), frac=st.floats(0.0, 0.9), random_start=st.booleans())
def test_property_band_pgd_always_feasible(case, norm, eps, c, frac, random_start):
    h, w, basis, band, seed = case
    if norm == "linf":
        eps = eps / 10
    x = _saturated(3, c, h, w, seed, frac)
    model = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 4))
    torch.manual_seed(seed)
    y = torch.randint(0, 4, (3,))
    x_adv, info = A.pgd(model, x, y, eps, norm=norm, steps=3, band=band, basis=basis, seed=seed,
                        random_start=random_start, return_info=True)
    _assert_feasible(x, x_adv, eps, norm, band, basis, info)


def test_dft_band_attack_is_real_and_symmetric_spectrum():
    x = _saturated(4, 3, H, H, seed=3, frac=0.1)
    band = band_masks(H, H, 4, "radial", "dft")[1]
    with torch.no_grad():
        y = RANDOM_MODEL(x).argmax(1)
    x_adv = A.pgd(RANDOM_MODEL, x, y, 0.5, norm="l2", steps=5, band=band, basis="dft", seed=0)
    spec = dft2(x_adv - x).abs() ** 2
    e_out = spec[..., ~band].sum()
    assert float(e_out / spec.sum()) < 1e-3


def test_band_attack_is_no_stronger_than_full_band(trained):
    model, x, y = trained
    x, y = x[:300], y[:300]
    full = A.pgd(model, x, y, 1.0, norm="l2", steps=10, seed=0, return_info=True)[1]["success"].float().mean()
    assert full > 0.3
    for band in band_masks(H, H, 3, "radial", "dct"):
        rate = A.pgd(model, x, y, 1.0, norm="l2", steps=10, band=band, seed=0,
                     return_info=True)[1]["success"].float().mean()
        assert rate <= full + 0.02, (float(rate), float(full))


def test_early_stop_keeps_successes_and_counts_iterations(trained):
    model, x, y = trained
    x, y = x[:100], y[:100]
    x_adv, info = A.pgd(model, x, y, 16 / 255, steps=10, seed=0, return_info=True)
    with torch.no_grad():
        pred = model(x_adv).argmax(1)
    assert torch.equal(info["success"], pred != y)
    assert int(info["iterations"].max()) <= 10
    assert bool((info["iterations"][info["success"]] < 10).any())
    # restarts never lose a success of the first restart (it is the same run)
    _, info3 = A.pgd(model, x, y, 16 / 255, steps=10, seed=0, restarts=3, return_info=True)
    assert bool((info3["success"] | ~info["success"]).all())


def test_targeted_attack_reaches_targets(trained):
    model, x, y = trained
    x = x[:64]
    target = (y[:64] + 1) % 3
    x_adv, info = A.pgd(model, x, target, 0.25, norm="linf", steps=20, targeted=True, seed=0, return_info=True)
    with torch.no_grad():
        pred = model(x_adv).argmax(1)
    assert torch.equal(info["success"], pred == target)
    assert info["success"].float().mean() > 0.5


def test_seed_is_reproducible_and_leaves_global_rng_alone(trained):
    model, x, y = trained
    x, y = x[:32], y[:32]
    band = band_masks(H, H, 3, "radial", "dct")[0]
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = A.pgd(model, x, y, 0.5, norm="l2", steps=3, band=band, seed=5)
    after = torch.rand(1)
    b = A.pgd(model, x, y, 0.5, norm="l2", steps=3, band=band, seed=5)
    assert torch.equal(a, b) and torch.equal(before, after)


def test_model_mode_is_restored(trained):
    model, x, y = trained
    model.train()
    try:
        A.pgd(model, x[:8], y[:8], 0.1, steps=2, seed=0)
        assert model.training
    finally:
        model.eval()


def test_per_image_eps_and_zero_eps(trained):
    model, x, y = trained
    x, y = x[:8], y[:8]
    eps = torch.linspace(0, 0.5, 8)
    band = band_masks(H, H, 3, "radial", "dct")[0]
    x_adv, info = A.pgd(model, x, y, eps, norm="l2", steps=3, band=band, seed=0, return_info=True)
    assert bool((info["l2"] <= eps + 1e-5).all()) and float(info["l2"][0]) == 0.0


# ----------------------------------------------------------------------------- minimal distortion

class _Linear(nn.Module):
    """Two-class linear model: logits ``(0, w.x + b)``."""

    def __init__(self, w, b):
        super().__init__()
        self.w, self.b = w, b

    def forward(self, x):
        s = (x * self.w).flatten(1).sum(1) + self.b
        return torch.stack([torch.zeros_like(s), s], 1)


def _linear_problem(seed=0, n=12):
    g = torch.Generator().manual_seed(seed)
    w = 0.1 * torch.randn(3, H, H, generator=g, dtype=torch.float64)
    x = 0.4 + 0.2 * torch.rand(n, 3, H, H, generator=g, dtype=torch.float64)
    b = -float((x * w).flatten(1).sum(1).mean())
    model = _Linear(w, b)
    with torch.no_grad():
        y = model(x).argmax(1)
    s = (x * w).flatten(1).sum(1) + b
    return model, x, y, w, s


@pytest.mark.parametrize("basis, band_idx", [("dct", 0), ("dct", 2), ("dft", 1), (None, None)])
def test_minimal_l2_distortion_matches_closed_form(basis, band_idx):
    """For a linear model the smallest in-band L2 perturbation is |w.x + b| / ||P_band w||."""
    model, x, y, w, s = _linear_problem()
    band = None if basis is None else band_masks(H, H, 4, "radial", basis)[band_idx]
    pw = w if band is None else A.band_projector(band, basis, torch.float64)(w)
    true = s.abs() / pw.norm()
    eps_max = float(true.max()) * 4
    d = A.minimal_distortion(model, x, y, band=band, norm="l2", basis=basis or "dct", eps_max=eps_max,
                             eps_min=float(true.min()) / 4, progress=False)
    assert torch.all(d >= true * (1 - 1e-6))  # a valid perturbation is never below the optimum
    assert float(((d - true) / true).abs().max()) < 0.01


def test_minimal_linf_distortion_matches_closed_form():
    model, x, y, w, s = _linear_problem(seed=1)
    true = s.abs() / w.abs().sum()
    d = A.minimal_distortion(model, x, y, norm="linf", eps_max=float(true.max()) * 4,
                             eps_min=float(true.min()) / 4, progress=False)
    assert float(((d - true) / true).abs().max()) < 0.01


def test_minimal_distortion_inf_when_out_of_reach_and_success_curve_monotone():
    model, x, y, w, s = _linear_problem(seed=2, n=10)
    true = s.abs() / w.norm()
    d = A.minimal_distortion(model, x, y, norm="l2", eps_max=float(true.median()), progress=False)
    assert torch.equal(torch.isinf(d), true > float(true.median()) * 1.001) or \
        int(torch.isinf(d).sum()) >= int((true > float(true.median()) * 1.01).sum())
    eps_list = [0.0] + sorted((true * 1.01).tolist())
    curve = A.success_curve(model, x, y, eps_list, norm="l2", random_start=False, progress=False)
    rates = curve["success_rate"]
    assert float(rates[0]) == 0.0 and bool((rates[1:] >= rates[:-1]).all())
    assert float(rates[-1]) == 1.0


def test_compare_bands_tidy_record(trained):
    model, x, y = trained
    x, y = x[:24], y[:24]
    masks = band_masks(H, H, 2, "radial", "dct")
    out = A.compare_bands(model, x, y, masks, norm="l2", eps_list=[0.0, 0.5, 2.0], steps=5, search_steps=4,
                          eps_max=4.0, n_boot=200, progress=False)
    assert list(out) == ["band0", "band1", "full"]
    for rec in out.values():
        assert rec["eps"] == [0.0, 0.5, 2.0] and len(rec["success_rate"]) == 3
        assert rec["success_rate"][0] == 0.0
        assert rec["ci_low"] <= rec["median_distortion"] <= rec["ci_high"]
        assert len(rec["distortions"]) == 24 and rec["out_of_band_max"] < 1e-3
    assert out["full"]["n_coefficients"] == H * H
    named = A.compare_bands(model, x[:8], y[:8], {"low": masks[0]}, eps_list=[1.0], steps=3, search_steps=2,
                            eps_max=4.0, n_boot=50, include_full=False, progress=False)
    assert list(named) == ["low"] and named["low"]["n_coefficients"] == int(masks[0].sum())


def test_minimal_distortion_returns_the_adversarial_images(trained):
    model, x, y = trained
    x, y = x[:16], y[:16]
    band = band_masks(H, H, 3, "radial", "dft")[0]
    d, info = A.minimal_distortion(model, x, y, band=band, basis="dft", norm="l2", eps_max=4.0, search_steps=4,
                                   pgd_steps=5, progress=False, return_info=True)
    ok = info["success"]
    assert torch.equal(ok, torch.isfinite(d)) and bool(ok.any())
    with torch.no_grad():
        assert bool((model(info["x_adv"][ok]).argmax(1) != y[ok]).all())
    _assert_feasible(x[ok], info["x_adv"][ok], 4.0, "l2", band, "dft")
    sizes = (info["x_adv"] - x).flatten(1).norm(dim=1)
    assert torch.allclose(sizes[ok], d[ok], atol=1e-5)


# ----------------------------------------------------------------------------- box-limited failures, band comparisons

class _LinearK(nn.Module):
    """logits = W x (flattened): k classes, float64."""

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


def test_box_limited_on_black_images_and_not_on_grey_ones():
    h = 8
    masks = band_masks(h, h, 4, basis="dct")
    high = masks[1:].any(0)                       # everything but the band with the mean
    model = _Unfoolable()
    y = torch.zeros(3, dtype=torch.long)
    black = torch.zeros(3, 1, h, h)               # a zero-mean perturbation >= 0 is 0
    b = A.box_limited(model, black, y, high, eps=1.0, norm="l2", steps=5)
    assert not b["success"].any() and b["limited"].all() and float(b["used"].max()) < 1e-6
    grey = torch.full((3, 1, h, h), 0.5)
    g = A.box_limited(model, grey, y, high, eps=1.0, norm="l2", steps=5)
    assert not g["success"].any() and not g["limited"].any()
    assert float(g["used"].min()) > 0.9             # (a few pixels of the pattern reach the box)
    with pytest.raises(ValueError, match="threshold"):
        A.box_limited(model, grey, y, high, eps=1.0, threshold=0)
    with pytest.raises(ValueError, match="eps"):
        A.box_limited(model, grey, y, high, eps=-1.0)


def test_band_comparison_adds_box_fields_and_keeps_compare_bands_numbers():
    h = 8
    masks = band_masks(h, h, 2, basis="dct")
    model = _Unfoolable()
    x = torch.cat([torch.zeros(2, 1, h, h), torch.full((2, 1, h, h), 0.5)])
    y = torch.zeros(4, dtype=torch.long)
    recs = A.band_comparison(model, x, y, masks, norm="l2", eps_list=[0.0, 1.0], steps=3, search_steps=2,
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


# ----------------------------------------------------------------------------- equal-budget examples and their spectra

def test_band_examples_equal_budget_feasible_and_in_band():
    h = 8
    g = torch.Generator().manual_seed(0)
    x = 0.3 + 0.4 * torch.rand(4, 3, h, h, generator=g)
    model = _LinearK(3, h, h).float()
    y = torch.zeros(4, dtype=torch.long)
    masks = equal_count_band_masks(h, h, 2)
    ex = A.band_examples(model, x, y, masks, eps=0.5, norm="l2", steps=5, smooth={"cg_iters": 10})
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


def test_example_spectra_and_smooth_summary_follow_the_perturbations():
    h = 8
    fk_band = equal_count_band_masks(h, h, 2)
    # a perturbation entirely in band 0 and one entirely in band 1, built in the DCT domain
    c = torch.randn(3, 1, h, h)
    d0, d1 = idct2(c * fk_band[0]), idct2(c * fk_band[1])
    ok = torch.tensor([True, False, True])
    ex = {"band0": {"delta": d0, "success": ok}, "full": {"delta": d0 + d1, "success": ok},
          "smooth": {"delta": d0, "success": ~ok, "dirichlet": torch.tensor([1.0, 2.0, 3.0])}}
    spectra, centres = A.example_spectra(ex, {"band0": "low", "full": "all"}, n_bands=4)
    assert len(centres) == 4 and centres == sorted(centres)
    assert sum(spectra["low"]) == pytest.approx(1.0) and sum(spectra["all"]) == pytest.approx(1.0)
    assert spectra["low"][0] > spectra["all"][0]  # band-0 energy sits at low radii
    s = A.smooth_summary(ex, fk_band)
    assert s["lowest_band_energy_share"]["band0"] == pytest.approx(1.0, abs=1e-5)
    assert 0 < s["lowest_band_energy_share"]["full"] < 1
    assert s["dirichlet_smooth"] == pytest.approx(2.0)
    assert s["success_band0"] == pytest.approx(2 / 3) and s["success_smooth"] == pytest.approx(1 / 3)


def test_chapter_helpers_refuse_bad_input_by_name_examples():
    ex = {"full": {"delta": torch.zeros(2, 1, 8, 8), "success": torch.ones(2, dtype=torch.bool)}}
    with pytest.raises(ValueError, match="no example named 'band0'"):
        A.example_spectra(ex, {"band0": "low"}, 4)
    with pytest.raises(ValueError, match="no example named 'smooth'"):
        A.smooth_summary(ex, torch.ones(1, 8, 8, dtype=torch.bool), variants=("full",))


# ----------------------------------------------------------------------------- smooth adversarial examples

def test_laplacian_smoothing_solves_its_system_and_is_symmetric():
    x = _saturated(2, 3, 12, 12, seed=0, frac=0.2)
    sm = A.LaplacianSmoothing(x.double(), alpha=0.9, cg_iters=200, tol=1e-10)
    g = torch.Generator().manual_seed(1)
    u, v = torch.randn(2, 2, 3, 12, 12, generator=g, dtype=torch.float64)
    r = sm(u)
    assert torch.allclose(sm.laplacian(r), u, atol=1e-7)
    assert torch.allclose((sm(u) * v).sum(), (u * sm(v)).sum(), rtol=1e-7)
    # smoothing reduces the graph Dirichlet energy
    assert bool((sm.dirichlet_energy(r) < sm.dirichlet_energy(u)).all())


def test_smooth_pgd_is_feasible_and_smoother_than_pgd(trained):
    model, x, y = trained
    x, y = x[:32], y[:32]
    xs, info = A.smooth_pgd(model, x, y, 1.0, steps=10, seed=0, return_info=True)
    _assert_feasible(x, xs, 1.0, "l2", None, "dct")
    xp = A.pgd(model, x, y, 1.0, norm="l2", steps=10, seed=0)
    sm = A.LaplacianSmoothing(x)
    moved = info["l2"] > 0
    assert float(info["dirichlet"][moved].mean()) < 0.5 * float(sm.dirichlet_energy(xp - x)[moved].mean())
    assert info["success"].float().mean() > 0.2
    xl = A.smooth_pgd(model, x, y, 8 / 255, norm="linf", steps=5, seed=0, random_start=True)
    _assert_feasible(x, xl, 8 / 255, "linf", None, "dct")


# ----------------------------------------------------------------------------- bad input

def _bad_cases():
    x = torch.rand(2, 3, H, H)
    y = torch.tensor([0, 1])
    m = RANDOM_MODEL
    asym = torch.zeros(H, H, dtype=torch.bool)
    asym[1, 2] = True
    return [
        (lambda: A.pgd(m, x, y, -0.1), "eps"),
        (lambda: A.pgd(m, x, y, float("nan")), "eps"),
        (lambda: A.pgd(m, x, y, torch.tensor([0.1, -0.1])), "eps"),
        (lambda: A.pgd(m, x, y, 0.1, norm="l3"), "norm"),
        (lambda: A.pgd(m, x, y, 0.1, basis="wavelet"), "basis"),
        (lambda: A.pgd(m, x, y, 0.1, band=torch.ones(8, 8, dtype=torch.bool)), "band"),
        (lambda: A.pgd(m, x, y, 0.1, band=torch.zeros(H, H, dtype=torch.bool)), "band"),
        (lambda: A.pgd(m, x, y, 0.1, band=asym, basis="dft"), "band"),
        (lambda: A.pgd(m, x, torch.tensor([0, 3]), 0.1, steps=1), "y"),
        (lambda: A.pgd(m, x, torch.tensor([0, -1]), 0.1, steps=0), "y"),
        (lambda: A.pgd(m, x, torch.tensor([0, 1, 2]), 0.1), "y"),
        (lambda: A.pgd(m, x, torch.tensor([0.0, 1.0]), 0.1), "y"),
        (lambda: A.pgd(m, x * 2, y, 0.1), "x"),
        (lambda: A.pgd(m, x[0], y, 0.1), "x"),
        (lambda: A.pgd(m, x, y, 0.1, steps=-1), "steps"),
        (lambda: A.pgd(m, x, y, 0.1, step_size=0.0), "step_size"),
        (lambda: A.minimal_distortion(m, x, y, eps_max=-1.0), "eps_max"),
        (lambda: A.minimal_distortion(m, x, y, band=torch.ones(3, 3, dtype=torch.bool)), "band"),
        (lambda: A.smooth_pgd(m, x, y, 0.5, alpha=1.0), "alpha"),
        (lambda: A.smooth_pgd(m, x, y, -0.5), "eps"),
        (lambda: A.compare_bands(m, x, y, torch.zeros(2, H, H, dtype=torch.bool), progress=False), "masks"),
        (lambda: A.pgd(m, x, y, 0.1, basis="dht"), "basis"),
        (lambda: A.minimal_distortion(m, x, y, basis="dht"), "basis"),
    ]


@pytest.mark.parametrize("k", range(len(_bad_cases())))
def test_bad_input_errors_name_the_argument(k):
    call, name = _bad_cases()[k]
    with pytest.raises((ValueError, TypeError)) as e:
        call()
    assert name in str(e.value), str(e.value)


def test_dft_band_helper_agrees_with_transforms_check():
    band = band_masks(H, H, 4, "radial", "dft")[2]
    check_dft_symmetric(band)  # the masks we hand to pgd are valid
    asym = band.clone()
    asym[0, 1] = ~asym[0, 1]
    with pytest.raises(ValueError, match="band"):
        A.band_projector(asym, "dft")


@pytest.mark.parametrize("h, w", [(16, 16), (15, 17), (28, 28), (8, 12)])
@pytest.mark.parametrize("basis", ["dct", "dft"])
def test_band_projector_fast_paths_are_the_exact_projection(h, w, basis):
    """The separable projection restricted to the band's rows and columns (DCT; DFT masks
    symmetric in each axis, through the real Fourier basis), the FFT fallback for other DFT
    masks, and the buffer-writing ``into`` used inside the attacks: all equal filter_band."""
    torch.manual_seed(0)
    v = torch.randn(3, 2, h, w, dtype=torch.float64)
    masks = list(band_masks(h, w, 4, "radial", basis)) + list(band_masks(h, w, 3, "ring", basis))
    if basis == "dft":                       # symmetric under f -> -f, not under each axis flip alone
        diag = torch.zeros(h, w, dtype=torch.bool)
        diag[h // 2 + 1, w // 2 + 2] = diag[h // 2 - 1, w // 2 - 2] = True
        masks.append(diag)
    for m in masks:
        proj = A.band_projector(m, basis, dtype=torch.float64)
        ref = filter_band(v, m, basis)
        assert torch.allclose(proj(v), ref, atol=1e-10)
        out = torch.empty_like(v)
        assert proj.into(v, out) is out and torch.allclose(out, ref, atol=1e-10)
        assert torch.allclose(proj(proj(v)), proj(v), atol=1e-10)          # idempotent


# ----------------------------------------------------------------- issue 11: a broken model, mode, empty input

class _NaNModel(nn.Module):
    """A classifier whose logits are all NaN, like one loaded from a diverged checkpoint."""

    def __init__(self, c=3, h=H, k=3):
        super().__init__()
        self.lin = nn.Linear(c * h * h, k)

    def forward(self, x):
        return self.lin(x.flatten(1)) * float("nan")


class _Counting(nn.Module):
    """Counts its forward passes (to show that a bad argument is refused before any attack runs)."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


def _nan_calls():
    x = torch.rand(4, 3, H, H, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 0])
    low = band_masks(H, H, 2)[0]
    m = _NaNModel()
    return {
        "pgd-linf": lambda: A.pgd(m, x, y, 8 / 255, norm="linf", steps=3, seed=0),
        "pgd-l2": lambda: A.pgd(m, x, y, 0.5, norm="l2", steps=3, seed=0, return_info=True),
        "pgd-linf-band": lambda: A.pgd(m, x, y, 8 / 255, norm="linf", steps=3, band=low, seed=0),
        "pgd-l2-band": lambda: A.pgd(m, x, y, 0.5, norm="l2", steps=3, band=low, seed=0, return_info=True),
        "pgd-no-steps": lambda: A.pgd(m, x, y, 0.5, steps=0, return_info=True),
        "pgd-restarts": lambda: A.pgd(m, x, y, 0.5, norm="l2", steps=1, restarts=2, early_stop=False),
        "minimal_distortion": lambda: A.minimal_distortion(m, x, y, search_steps=2, pgd_steps=2, progress=False),
        "success_curve": lambda: A.success_curve(m, x, y, [0.0, 0.5], steps=2, progress=False),
        "smooth_pgd": lambda: A.smooth_pgd(m, x, y, 0.5, steps=2),
        "smooth_pgd-info": lambda: A.smooth_pgd(m, x, y, 0.5, steps=0, return_info=True),
    }


@pytest.mark.parametrize("name", list(_nan_calls()))
def test_nan_logits_are_an_error_naming_the_model(name):
    with pytest.raises(ValueError, match=r"_NaNModel.*non-finite"):
        _nan_calls()[name]()


def _mixed_mode_net(seed=0):
    """A CNN in train mode whose second BatchNorm is deliberately frozen (eval)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                        nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * H * H, 3))
    net.train()
    net[4].eval()
    return net


def _state(net):
    return ({n: m.training for n, m in net.named_modules()},
            {k: v.detach().clone() for k, v in net.state_dict().items()})


def _mode_calls():
    x = torch.rand(4, 3, H, H, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0])
    low = band_masks(H, H, 2)[0]
    return {
        "pgd": lambda m: A.pgd(m, x, y, 0.5, norm="l2", steps=2, band=low, restarts=2, return_info=True),
        "minimal_distortion": lambda m: A.minimal_distortion(m, x, y, search_steps=1, pgd_steps=2, progress=False),
        "smooth_pgd": lambda m: A.smooth_pgd(m, x, y, 0.5, steps=2, return_info=True),
        "band_examples": lambda m: A.band_examples(m, x, y, band_masks(H, H, 2), 0.5, steps=2, smooth={}),
    }


@pytest.mark.parametrize("name", list(_mode_calls()))
def test_attacks_leave_every_submodules_mode_and_batchnorm_statistics_alone(name):
    net = _mixed_mode_net()
    modes, state = _state(net)
    _mode_calls()[name](net)
    modes_after, state_after = _state(net)
    assert modes_after == modes
    for k, v in state.items():
        assert torch.equal(state_after[k], v), k


def _empty_calls():
    x = torch.rand(0, 3, H, H)
    y = torch.zeros(0, dtype=torch.long)
    m = RANDOM_MODEL
    return {
        "pgd": lambda: A.pgd(m, x, y, 0.1),
        "minimal_distortion": lambda: A.minimal_distortion(m, x, y, progress=False),
        "success_curve": lambda: A.success_curve(m, x, y, [0.1], progress=False),
        "smooth_pgd": lambda: A.smooth_pgd(m, x, y, 0.5),
        "box_limited": lambda: A.box_limited(m, x, y, None, 0.5),
        "compare_bands": lambda: A.compare_bands(m, x, y, band_masks(H, H, 2), progress=False),
        "band_examples": lambda: A.band_examples(m, x, y, band_masks(H, H, 2), 0.5),
    }


@pytest.mark.parametrize("name", list(_empty_calls()))
def test_an_empty_batch_is_refused_naming_x(name):
    with pytest.raises(ValueError, match=r"x holds no images \(N = 0\)"):
        _empty_calls()[name]()


def test_attacks_take_a_plain_function_as_model(trained):
    model, x, y = trained
    x, y = x[:6], y[:6]

    def f(z):
        return model(z)

    xa, info = A.pgd(f, x, y, 0.5, norm="l2", steps=3, seed=0, restarts=2, return_info=True)
    ref = A.pgd(model, x, y, 0.5, norm="l2", steps=3, seed=0, restarts=2)
    assert torch.equal(xa, ref) and info["success"].shape == (6,)
    d = A.minimal_distortion(f, x, y, search_steps=2, pgd_steps=3, progress=False)
    assert torch.equal(d, A.minimal_distortion(model, x, y, search_steps=2, pgd_steps=3, progress=False))
    xs = A.smooth_pgd(f, x, y, 0.5, steps=2)
    assert torch.equal(xs, A.smooth_pgd(model, x, y, 0.5, steps=2))


def test_success_curve_refuses_zero_steps_for_a_positive_radius():
    x, y = torch.rand(2, 3, H, H), torch.tensor([0, 1])
    counting = _Counting(RANDOM_MODEL)
    with pytest.raises(ValueError, match="steps"):
        A.success_curve(counting, x, y, [0.0, 0.5], steps=0, progress=False)
    assert counting.calls == 0
    r = A.success_curve(RANDOM_MODEL, x, y, [0.0], steps=0, progress=False)   # radius 0 needs no step
    assert r["success"].shape == (1, 2)


@pytest.mark.parametrize("kw, name", [({"n_boot": 0}, "n_boot"), ({"eps_max": -1.0}, "eps_max"),
                                      ({"eps_max": float("inf")}, "eps_max"), ({"search_steps": -1}, "search_steps")])
def test_compare_bands_validates_before_attacking(kw, name):
    x, y = torch.rand(2, 3, H, H), torch.tensor([0, 1])
    counting = _Counting(RANDOM_MODEL)
    with pytest.raises(ValueError, match=name):
        A.compare_bands(counting, x, y, band_masks(H, H, 2), steps=2, progress=False,
                        **{"n_boot": 10, "search_steps": 1, **kw})
    assert counting.calls == 0


@pytest.mark.parametrize("thr", [0.0, 1.5, float("nan"), "half"])
def test_band_comparison_checks_box_threshold_up_front(thr):
    # a model every image fools at once: no image resists, so box_limited never runs
    x, y = torch.rand(2, 3, H, H), torch.tensor([0, 1])
    counting = _Counting(RANDOM_MODEL)
    with pytest.raises(ValueError, match="box_threshold"):
        A.band_comparison(counting, x, y, band_masks(H, H, 2), steps=2, search_steps=1, n_boot=10,
                          box_threshold=thr)
    assert counting.calls == 0


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("band", [False, True])
def test_random_start_does_not_depend_on_the_memory_format(norm, band):
    x = torch.rand(3, 3, H, H, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([0, 1, 2])
    m = band_masks(H, H, 2)[0] if band else None
    eps = 8 / 255 if norm == "linf" else 0.5
    xc = x.contiguous(memory_format=torch.channels_last)
    for steps in (0, 2):
        a = A.pgd(RANDOM_MODEL, x, y, eps, norm=norm, steps=steps, band=m, seed=0, early_stop=False)
        b = A.pgd(RANDOM_MODEL, xc, y, eps, norm=norm, steps=steps, band=m, seed=0, early_stop=False)
        assert torch.allclose(a, b, atol=1e-6), float((a - b).abs().max())
        assert float((a - x).abs().max()) > 0                   # the random start moved the images
    s1 = A.smooth_pgd(RANDOM_MODEL, x, y, eps, norm=norm, steps=0, random_start=True, seed=0)
    s2 = A.smooth_pgd(RANDOM_MODEL, xc, y, eps, norm=norm, steps=0, random_start=True, seed=0)
    assert torch.allclose(s1, s2, atol=1e-6)


# ----------------------------------------------------------------------------- the [0, 1] box relaxed

def _share_out_of_band(delta, band, basis="dct"):
    proj = A.band_projector(band, basis, delta.dtype)
    e_all = delta.flatten(1).pow(2).sum(1)
    e_out = (delta - proj(delta)).flatten(1).pow(2).sum(1)
    return e_out / e_all.clamp_min(1e-30)


@pytest.mark.parametrize("norm, eps", [("l2", 2.0), ("linf", 0.1)])
@pytest.mark.parametrize("band_idx", [0, 3, None])
def test_box_relaxed_pgd_leaves_the_box_but_stays_in_band_and_ball(trained, norm, eps, band_idx):
    model = trained[0]
    x = _saturated(6, 3, H, H, seed=8)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    band = None if band_idx is None else equal_count_band_masks(H, H, 4, exclude_dc=True)[band_idx]
    kw = {"norm": norm, "steps": 6, "band": band, "early_stop": False, "random_start": False, "return_info": True}
    xa, info = A.pgd(model, x, y, eps, box=False, **kw)
    d = xa - x
    # saturated pixels pushed further: the attack used its freedom outside [0, 1]
    assert float(xa.min()) < -1e-3 or float(xa.max()) > 1 + 1e-3
    size = d.flatten(1).norm(dim=1) if norm == "l2" else d.flatten(1).abs().amax(1)
    assert float(size.max()) <= eps + 1e-5
    if band is not None:
        share = _share_out_of_band(d, band)
        assert float(share.max()) < (1e-6 if norm == "l2" else 1e-3)       # L2 without box: exact projection
        assert torch.allclose(info["out_of_band"], share, atol=1e-6)
        if norm == "l2":
            assert float(d.mean((-2, -1)).abs().max()) < 1e-5               # DC-free band: the mean stays
    xb, info_b = A.pgd(model, x, y, eps, box=True, **kw)
    _assert_feasible(x, xb, eps, norm, band, "dct", info_b)


@pytest.mark.parametrize("norm, eps", [("l2", 0.3), ("linf", 0.02)])
@pytest.mark.parametrize("band_idx", [1, None])
def test_box_relaxed_pgd_is_the_same_attack_where_the_box_does_not_bind(trained, norm, eps, band_idx):
    model, x, y = trained
    x, y = 0.4 + 0.2 * x[:8], y[:8]                                          # far from 0 and 1
    band = None if band_idx is None else equal_count_band_masks(H, H, 4, exclude_dc=True)[band_idx]
    kw = {"norm": norm, "steps": 5, "band": band, "seed": 1, "return_info": True}
    a, ia = A.pgd(model, x, y, eps, box=True, **kw)
    b, ib = A.pgd(model, x, y, eps, box=False, **kw)
    assert torch.allclose(a, b, atol=1e-5) and torch.equal(ia["success"], ib["success"])


def _saturated_linear_problem(n=12):
    g = torch.Generator().manual_seed(0)
    w = 0.1 * torch.randn(3, H, H, generator=g, dtype=torch.float64)
    x = _saturated(n, 3, H, H, seed=4).double()
    s0 = (x * w).flatten(1).sum(1)
    model = _Linear(w, -float(s0.mean()))
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y, w, s0 - float(s0.mean())


def test_minimal_distortion_without_box_is_the_closed_form_and_the_box_costs_more():
    """Linear model on images with 40% saturated pixels: without the box the smallest in-band
    L2 perturbation is |w.x + b| / ||P w|| exactly; with the box it is never smaller and here
    clearly larger (saturated pixels cannot follow P w)."""
    model, x, y, w, s = _saturated_linear_problem()
    band = equal_count_band_masks(H, H, 4, exclude_dc=True)[0]
    true = s.abs() / A.band_projector(band, "dct", torch.float64)(w).norm()
    kw = {"band": band, "eps_max": float(true.max()) * 4, "eps_min": float(true.min()) / 4, "progress": False,
          "return_info": True}
    free, info = A.minimal_distortion(model, x, y, box=False, **kw)
    assert torch.all(free >= true * (1 - 1e-6)) and float((free / true - 1).max()) < 0.01
    xa = info["x_adv"]
    assert float(xa.min()) < 0 or float(xa.max()) > 1                      # the optimum leaves the box
    assert float(_share_out_of_band(xa - x, band).max()) < 1e-6
    boxed, info_b = A.minimal_distortion(model, x, y, box=True, **kw)
    assert torch.all(boxed >= true * (1 - 1e-6)) and bool((boxed > 1.1 * true).all())
    assert float(info_b["x_adv"].min()) >= 0 and float(info_b["x_adv"].max()) <= 1


def test_band_comparison_without_box_finds_what_the_box_forbids():
    """Black images and a DC-free band: with the box no perturbation exists (zero mean and >= 0
    means 0), so every image is box-limited; without it the closed form is found."""
    h = 8
    g = torch.Generator().manual_seed(1)
    w = torch.randn(1, h, h, generator=g, dtype=torch.float64)
    model = _Linear(w, 0.05)
    x = torch.zeros(3, 1, h, h, dtype=torch.float64)
    y = torch.ones(3, dtype=torch.long)
    masks = {"dcfree": equal_count_band_masks(h, h, 2, exclude_dc=True)[0]}
    true = 0.05 / float(A.band_projector(masks["dcfree"], "dct", torch.float64)(w).norm())
    common = {"norm": "l2", "eps_list": [0.0, 1.0], "steps": 5, "search_steps": 8, "eps_max": 1.0, "n_boot": 20,
              "include_full": False}
    boxed = A.band_comparison(model, x, y, masks, **common)["dcfree"]
    assert boxed["box"] is True and boxed["median_distortion"] == math.inf
    assert boxed["box_limited"] == [True] * 3
    free = A.band_comparison(model, x, y, masks, box=False, **common)["dcfree"]
    assert free["box"] is False and free["box_limited"] == [False] * 3
    assert all(math.isnan(u) for u in free["budget_used"])
    assert all(true * (1 - 1e-6) <= d < true * 1.02 for d in free["distortions"])
    assert free["success_rate"][-1] == 1.0 and boxed["success_rate"][-1] == 0.0


# ----------------------------------------------------------------------------- convergence of the minimal distortion

def test_convergence_on_a_linear_model_is_immediate_and_the_records_are_complete():
    model, x, y, w, s = _linear_problem(seed=3, n=8)
    bands = equal_count_band_masks(H, H, 3, exclude_dc=True)
    trues = [s.abs() / A.band_projector(b, "dct", torch.float64)(w).norm() for b in bands]
    eps_max = float(max(t.max() for t in trues)) * 4
    rec = A.minimal_distortion_convergence(model, x, y, bands, settings=[(5, 1), (10, 2)], eps_max=eps_max,
                                           eps_min=eps_max / 400, n_boot=50)
    assert list(rec) == ["band0", "band1", "band2"]
    json.dumps(rec)                                                          # plain Python values
    for k, (name, r) in enumerate(rec.items()):
        true = trues[k].numpy()
        assert r["settings"] == [[5, 1], [10, 2]] and len(r["medians"]) == 2 and len(r["seconds"]) == 2
        assert len(r["distortions"]) == 2 and all(len(d) == 8 for d in r["distortions"])
        d = np.array(r["distortions"])
        assert (d >= true * (1 - 1e-6)).all() and (d <= true * 1.01).all()
        best = np.array(r["best"])
        assert (best == d.min(0)).all()
        assert math.isclose(r["median_best"], float(np.median(best)))
        for m, lo, hi in zip(r["medians"], r["ci_low"], r["ci_high"]):
            assert lo <= m <= hi
        m0, m1 = r["medians"]
        assert math.isclose(r["relative_change"], abs(m1 - m0) / m0)
        assert r["converged"] is True and r["relative_change"] <= r["tol"] == 0.05
        assert r["share_improved"] == 0.0
        assert r["best_summary"]["n"] == 8 and math.isclose(r["best_summary"]["q50"], r["median_best"])
        assert r["n_coefficients"] == int(bands[k].sum()) and r["box"] is True and r["n"] == 8


def test_convergence_keeps_the_minimum_over_restarts_and_reuses_searches(trained):
    model, x, y = trained
    x, y = x[:8], y[:8]
    low = equal_count_band_masks(H, H, 4, exclude_dc=True)[0]
    counting = _Counting(model)
    rec = A.minimal_distortion_convergence(counting, x, y, {"low": low}, settings=[(3, 1), (3, 3)], eps_max=8.0,
                                           search_steps=3, n_boot=20, tol=0.2)["low"]
    # the searches by hand: restart 0 deterministic, restarts 1 and 2 from random starts
    by_hand = _Counting(model)
    runs = [A.minimal_distortion(by_hand, x, y, band=low, eps_max=8.0, search_steps=3, pgd_steps=3,
                                 random_start=r > 0, seed=r, progress=False).double().numpy() for r in range(3)]
    assert counting.calls == by_hand.calls                  # (3, 3) reused (3, 1)'s search: 3 searches, not 4
    d = np.array(rec["distortions"])
    assert np.allclose(d[0], runs[0]) and np.allclose(d[1], np.min(runs, axis=0))
    assert (d[1] <= d[0]).all() and (np.array(rec["best"]) == d.min(0)).all()
    assert rec["converged"] == (rec["relative_change"] <= 0.2)
    full = A.minimal_distortion_convergence(model, x[:2], y[:2], {"full": None}, settings=[(2, 1), (3, 1)],
                                            eps_max=8.0, search_steps=2, n_boot=10)
    assert full["full"]["n_coefficients"] == H * H


def test_convergence_of_an_unfoolable_model_is_inf_and_stable():
    h = 8
    x = torch.full((3, 1, h, h), 0.5)
    y = torch.zeros(3, dtype=torch.long)
    rec = A.minimal_distortion_convergence(_Unfoolable(), x, y, band_masks(h, h, 2), settings=[(2, 1), (3, 1)],
                                           eps_max=1.0, search_steps=1, n_boot=10, box=False)
    for r in rec.values():
        assert r["medians"] == [math.inf, math.inf] and r["median_best"] == math.inf
        assert r["relative_change"] == 0.0 and r["converged"] is True and r["box"] is False


@pytest.mark.parametrize("kw, name", [
    ({"settings": [(5, 1)]}, "settings"),
    ({"settings": [(5, 2), (5, 1)]}, "settings"),
    ({"settings": [(5, 1), (5, 1)]}, "settings"),
    ({"settings": [(5, 0), (6, 1)]}, "settings"),
    ({"settings": [(5.0, 1), (6, 1)]}, "settings"),
    ({"settings": [(5, 1, 1), (6, 1, 1)]}, "settings"),
    ({"settings": 5}, "settings"),
    ({"tol": 0.0}, "tol"),
    ({"tol": 1.5}, "tol"),
    ({"box": "no"}, "box"),
    ({"n_boot": 0}, "n_boot"),
    ({"ci": 1.0}, "ci"),
    ({"eps_max": -1.0}, "eps_max"),
])
def test_convergence_refuses_bad_input_before_attacking(kw, name):
    x, y = torch.rand(2, 3, H, H), torch.tensor([0, 1])
    counting = _Counting(RANDOM_MODEL)
    with pytest.raises(ValueError, match=name):
        A.minimal_distortion_convergence(counting, x, y, band_masks(H, H, 2),
                                         **{"settings": [(2, 1), (3, 1)], "n_boot": 10, **kw})
    assert counting.calls == 0


@pytest.mark.parametrize("call", [
    lambda m, x, y: A.pgd(m, x, y, 0.1, box=None),
    lambda m, x, y: A.minimal_distortion(m, x, y, box=1, progress=False),
    lambda m, x, y: A.success_curve(m, x, y, [0.1], box="yes", progress=False),
    lambda m, x, y: A.compare_bands(m, x, y, band_masks(H, H, 2), box=0, progress=False),
    lambda m, x, y: A.band_comparison(m, x, y, band_masks(H, H, 2), box="false"),
])
def test_box_must_be_a_bool(call):
    x, y = torch.rand(2, 3, H, H), torch.tensor([0, 1])
    counting = _Counting(RANDOM_MODEL)
    with pytest.raises(ValueError, match="box must be a bool"):
        call(counting, x, y)
    assert counting.calls == 0


# ----------------------------------------------------------------------------- DDN, the minimal-norm alternative

def test_ddn_matches_the_closed_form_of_a_linear_model_in_band():
    model, x, y, w, s = _linear_problem(seed=4, n=8)
    band = equal_count_band_masks(H, H, 3, exclude_dc=True)[1]
    true = s.abs() / A.band_projector(band, "dct", torch.float64)(w).norm()
    d, info = A.minimal_distortion_ddn(model, x, y, band=band, steps=100, init_norm=float(true.median()),
                                       return_info=True)
    assert bool(info["success"].all())
    assert torch.all(d >= true * (1 - 1e-6)) and float((d / true - 1).max()) < 0.06   # within about gamma
    xa = info["x_adv"]
    assert float(xa.min()) >= 0 and float(xa.max()) <= 1
    assert float(_share_out_of_band(xa - x, band).max()) < 1e-3
    assert torch.allclose((xa - x).flatten(1).norm(dim=1), d)


@pytest.mark.parametrize("band_idx", [0, 3, None])
def test_ddn_is_no_worse_than_the_binary_search_on_a_trained_model(trained, band_idx):
    model, x, y = trained
    x, y = x[:10], y[:10]
    band = None if band_idx is None else equal_count_band_masks(H, H, 4, exclude_dc=True)[band_idx]
    ref = A.minimal_distortion(model, x, y, band=band, eps_max=8.0, search_steps=8, progress=False)
    d, info = A.minimal_distortion_ddn(model, x, y, band=band, steps=100, return_info=True)
    fin = torch.isfinite(ref)
    assert bool(fin.any())
    assert bool(torch.isfinite(d[fin]).all()) and bool((d[fin] <= 1.1 * ref[fin]).all())
    ok = info["success"]
    assert torch.equal(ok, torch.isfinite(d))
    with torch.no_grad():
        assert bool((model(info["x_adv"][ok]).argmax(1) != y[ok]).all())
    _assert_feasible(x[ok], info["x_adv"][ok], float(d[ok].max()) + 1e-5, "l2", band, "dct")
    assert torch.equal(info["x_adv"][~ok], x[~ok])


def test_ddn_without_box_leaves_it_and_stays_in_band():
    model, x, y, w, s = _saturated_linear_problem(n=8)
    band = equal_count_band_masks(H, H, 4, exclude_dc=True)[0]
    true = s.abs() / A.band_projector(band, "dct", torch.float64)(w).norm()
    free, info = A.minimal_distortion_ddn(model, x, y, band=band, steps=100, init_norm=float(true.median()),
                                          box=False, return_info=True)
    assert bool(info["success"].all()) and float((free / true - 1).max()) < 0.06
    xa = info["x_adv"]
    assert float(xa.min()) < 0 or float(xa.max()) > 1
    assert float(_share_out_of_band(xa - x, band).max()) < 1e-6
    boxed = A.minimal_distortion_ddn(model, x, y, band=band, steps=100, init_norm=float(true.median()))
    assert bool((boxed[torch.isfinite(boxed)] > 1.1 * true[torch.isfinite(boxed)]).all())


@pytest.mark.parametrize("kw, name", [({"steps": 0}, "steps"), ({"gamma": 1.0}, "gamma"), ({"gamma": 0.0}, "gamma"),
                                      ({"init_norm": -1.0}, "init_norm"), ({"alpha": float("nan")}, "alpha"),
                                      ({"alpha_min": 2.0}, "alpha_min"), ({"box": None}, "box"),
                                      ({"band": torch.ones(3, 3, dtype=torch.bool)}, "band"),
                                      ({"basis": "dht"}, "basis"), ({"proj_iters": 0}, "proj_iters")])
def test_ddn_refuses_bad_input_by_name_before_attacking(kw, name):
    x, y = torch.rand(2, 3, H, H), torch.tensor([0, 1])
    counting = _Counting(RANDOM_MODEL)
    with pytest.raises(ValueError, match=name):
        A.minimal_distortion_ddn(counting, x, y, **kw)
    assert counting.calls == 0


def test_suite_band_distortion_is_the_convergence_search_per_seed_plus_the_relaxed_box():
    # two linear "seeds" on mid-grey images: closed-form minimal distortions, nothing box-limited
    (m0, x, y, _, _), (m1, _, _, _, _) = _linear_problem(seed=3, n=6), _linear_problem(seed=4, n=6)
    y1 = m1(x).argmax(1)
    keep = y1 == y
    x, y = x[keep], y[keep]
    bands = {"low": equal_count_band_masks(H, H, 3, exclude_dc=True)[0],
             "high": equal_count_band_masks(H, H, 3, exclude_dc=True)[-1]}
    r = A.suite_band_distortion([m0, m1], x, y, bands, settings=[(5, 1), (10, 2)], eps_max=8.0, search_steps=6)
    for s, m in enumerate((m0, m1)):
        rec = A.minimal_distortion_convergence(m, x, y, bands, settings=[(5, 1), (10, 2)], eps_max=8.0,
                                               search_steps=6)
        for b in bands:
            assert np.array_equal(r["best"][b][s], np.array(rec[b]["best"]))
            assert r["medians"][b][s] == rec[b]["medians"] and r["converged"][b][s] == rec[b]["converged"]
    for b in bands:
        assert r["best"][b].shape == (2, len(y)) and np.isfinite(r["best"][b]).all()
        assert r["relative_change"][b] == max(r["relative_change_per_seed"][b])
        free = A.minimal_distortion(m0, x, y, bands[b], eps_max=8.0, search_steps=6, pgd_steps=10, box=False,
                                    progress=False).numpy()
        assert np.array_equal(r["relaxed"][b], free) and r["relaxed_median"][b] == float(np.median(free))
        assert r["box_limited_share"][b] == 0.0
    # black images and a DC-free band: no perturbation in the box, the closed form without it
    g = torch.Generator().manual_seed(1)
    w = torch.randn(1, 8, 8, generator=g, dtype=torch.float64)
    xb, yb = torch.zeros(3, 1, 8, 8, dtype=torch.float64), torch.ones(3, dtype=torch.long)
    dcfree = {"dcfree": equal_count_band_masks(8, 8, 2, exclude_dc=True)[0]}
    rb = A.suite_band_distortion([_Linear(w, 0.05)], xb, yb, dcfree, settings=[(3, 1), (5, 1)], eps_max=1.0,
                                 search_steps=8)
    assert np.isinf(rb["best"]["dcfree"]).all() and rb["box_limited_share"]["dcfree"] == 1.0
    with pytest.raises(ValueError, match="models must hold at least one"):
        A.suite_band_distortion([], x, y, bands)
    with pytest.raises(ValueError, match="bands must be a non-empty dict"):
        A.suite_band_distortion([m0], x, y, {})
