"""Auto-PGD in a band (freqkit.apgd): parity with the reference implementation (pyautoattack),
the DLR losses by hand, exact feasibility (box, ball, band) of every returned image, the band
AutoAttack ensemble, bad input.

Everything runs on tiny synthetic problems (no downloads) on one CPU thread.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from freqkit.apgd import apgd, band_autoattack, dlr_loss, dlr_loss_targeted
from freqkit.attacks import band_projector
from freqkit.transforms import band_masks, low_high_masks

try:  # the reference AutoAttack (requirements-dev.txt; the 'attacks' extra)
    from pyautoattack import AutoAttack
    from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted
except ImportError:  # pragma: no cover
    AutoAttack = None
needs_reference = pytest.mark.skipif(AutoAttack is None, reason="pyautoattack is not installed")

pytestmark = pytest.mark.usefixtures("one_thread")
H = 16


def _synthetic10(n: int, seed: int, h: int = H, k: int = 10):
    """A 10-class problem on 3 x h x h images: class c is a grating of its own frequency under
    smoothed noise, clipped to [0, 1] (so some pixels saturate)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(h).float(), indexing="ij")
    freqs = [(a, b) for a in range(4) for b in range(4) if (a, b) != (0, 0)][:k]
    pat = torch.stack([torch.cos(2 * math.pi * (a * yy + b * xx) / h) for a, b in freqs])
    noise = F.avg_pool2d(F.pad(torch.randn(n, 3, h, h, generator=g), (1, 1, 1, 1), mode="circular"), 3, stride=1)
    amp = 0.08 + 0.1 * torch.rand(n, 1, 1, 1, generator=g)
    x = 0.5 + amp * pat[y][:, None] + 0.35 * noise + 0.1 * torch.randn(n, 1, 1, 1, generator=g)
    return x.clamp(0, 1), y


def _cnn(k: int = 10, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(128, k))


@pytest.fixture(scope="module")
def trained():
    """A tiny CNN trained for ~2 s on the 10-class synthetic problem, and 160 held-out images."""
    xtr, ytr = _synthetic10(4096, seed=1)
    model = _cnn()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(250):
        i = torch.randint(0, xtr.shape[0], (128,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(xtr[i]), ytr[i]).backward()
        opt.step()
    model.eval()
    x, y = _synthetic10(160, seed=2)
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.9, "the fixture model did not learn the problem"
    return model, x, y


RANDOM_MODEL = _cnn(seed=5).eval()


def _saturated(n, h, seed, frac=0.4):
    """Images where ``frac`` of the pixels are exactly 0 or 1, in blobs."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, h, h, generator=g)
    blob = F.avg_pool2d(torch.rand(n, 1, h + 2, h + 2, generator=g), 3, stride=1)
    lo = torch.quantile(blob.flatten(1), frac / 2, dim=1).view(-1, 1, 1, 1)
    hi = torch.quantile(blob.flatten(1), 1 - frac / 2, dim=1).view(-1, 1, 1, 1)
    x = torch.where(blob <= lo, torch.zeros_like(x), x)
    return torch.where(blob >= hi, torch.ones_like(x), x)


def _assert_feasible(x, x_adv, eps, norm, band=None, basis="dct"):
    assert x_adv.shape == x.shape and float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    d = (x_adv - x).flatten(1)
    size = d.norm(dim=1) if norm == "l2" else d.abs().amax(1)
    assert float(size.max()) <= eps + 1e-5, (norm, float(size.max()), eps)
    if band is not None:
        delta = x_adv - x
        e_all = delta.flatten(1).pow(2).sum(1)
        e_out = (delta - band_projector(band, basis)(delta)).flatten(1).pow(2).sum(1)
        share = torch.where(e_all > 0, e_out / e_all.clamp_min(1e-30), torch.zeros_like(e_all))
        assert float(share.max()) < 1e-3, f"out-of-band share {float(share.max()):.2e}"
        return share
    return None


# ----------------------------------------------------------------------------- the DLR losses by hand

def test_dlr_loss_by_hand():
    z = torch.tensor([[4.0, 1.0, 0.5, -2.0], [0.0, 3.0, 1.0, 2.0]])
    y = torch.tensor([0, 0])
    # image 0 correct: -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3) = -(4 - 1) / (4 - 0.5)
    # image 1 wrong:   -(0 - 3) / (3 - 1) = 1.5 > 0
    assert torch.allclose(dlr_loss(z, y), torch.tensor([-3.0 / 3.5, 1.5]))
    # invariant under a shift and a positive scale of the logits
    assert torch.allclose(dlr_loss(2.5 * z + 7.0, y), dlr_loss(z, y), atol=1e-6)
    # targeted: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)
    t = torch.tensor([1, 3])
    expect = torch.tensor([-(4.0 - 1.0) / (4.0 - (0.5 - 2.0) / 2), -(0.0 - 2.0) / (3.0 - (1.0 + 0.0) / 2)])
    assert torch.allclose(dlr_loss_targeted(z, y, t), expect)
    assert torch.allclose(dlr_loss_targeted(3 * z - 1, y, t), expect, atol=1e-6)
    # differentiable
    zz = z.clone().requires_grad_(True)
    dlr_loss(zz, y).sum().backward()
    assert zz.grad is not None and torch.isfinite(zz.grad).all()


def test_dlr_loss_refuses_too_few_classes_and_bad_labels():
    with pytest.raises(ValueError, match="at least 3 classes"):
        dlr_loss(torch.randn(2, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="at least 4 classes"):
        dlr_loss_targeted(torch.randn(2, 3), torch.tensor([0, 1]), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"y must hold class indices"):
        dlr_loss(torch.randn(2, 4), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"target must hold class indices"):
        dlr_loss_targeted(torch.randn(2, 4), torch.tensor([0, 1]), torch.tensor([0, 9]))


# ----------------------------------------------------------------------------- parity with the reference

@needs_reference
@pytest.mark.parametrize("loss", ["ce", "dlr"])
@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l2", 0.4)])
def test_band_none_is_the_reference_apgd_step_for_step(trained, norm, eps, loss):
    """Same seed, no early stop: the reference's adversarial images, restarts included."""
    model, x, y = trained
    ref = APGDAttack(model, n_iter=20, norm="Linf" if norm == "linf" else "L2", eps=eps, seed=3, loss=loss,
                     n_restarts=2, device="cpu")
    x_ref = ref.perturb(x, y).detach()
    x_fk, info = apgd(model, x, y, eps, norm=norm, loss=loss, steps=20, restarts=2, seed=3, early_stop=False,
                        return_info=True)
    with torch.no_grad():
        robust_ref = model(x_ref).argmax(1) == y
    robust_fk = ~info["success"]
    assert 0.1 < float(robust_ref.float().mean()) < 0.9, "uninformative eps"
    assert torch.equal(robust_ref, robust_fk)
    fooled = ~robust_ref
    assert (x_fk[fooled] - x_ref[fooled]).abs().max() < 1e-6     # the same adversarial images


@needs_reference
@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l2", 0.4)])
def test_targeted_dlr_is_the_reference_apgd_t(trained, norm, eps):
    model, x, y = trained
    x, y = x[:80], y[:80]
    ref = APGDAttack_targeted(model, n_iter=15, norm="Linf" if norm == "linf" else "L2", eps=eps, seed=1,
                              n_target_classes=3, device="cpu")
    x_ref = ref.perturb(x, y).detach()
    _, info = apgd(model, x, y, eps, norm=norm, loss="dlr-targeted", steps=15, n_target_classes=3, seed=1,
                     early_stop=False, return_info=True)
    with torch.no_grad():
        assert torch.equal(model(x_ref).argmax(1) == y, ~info["success"])


@needs_reference
def test_early_stop_keeps_the_reference_robust_accuracy(trained):
    """Early stop drops fooled images from the batch: the same images end robust (float
    rounding of smaller batches could flip a near-tie: the tolerance is one image)."""
    model, x, y = trained
    ref = APGDAttack(model, n_iter=25, norm="Linf", eps=8 / 255, seed=0, loss="ce", device="cpu")
    with torch.no_grad():
        robust_ref = model(ref.perturb(x, y).detach()).argmax(1) == y
    x_fk, info = apgd(model, x, y, 8 / 255, steps=25, seed=0, return_info=True)
    assert int((robust_ref != ~info["success"]).sum()) <= 1
    with torch.no_grad():
        assert torch.equal(model(x_fk).argmax(1) != y, info["success"])        # the returned images fool it
    _assert_feasible(x, x_fk, 8 / 255, "linf")


@needs_reference
def test_band_autoattack_without_a_band_is_the_reference_ensemble(trained):
    """band_autoattack(band=None, 'standard') = the reference AutoAttack with APGD-CE + APGD-T."""
    model, x, y = trained
    x, y = x[:100], y[:100]
    aa = AutoAttack(model, norm="Linf", eps=8 / 255, seed=0, version="custom", attacks=["apgd-ce", "apgd-t"],
                    device="cpu")
    aa.apgd.n_restarts, aa.apgd_targeted.n_target_classes = 1, 9
    aa.apgd.n_iter = aa.apgd_targeted.n_iter = 10
    for a in (aa.apgd, aa.apgd_targeted):       # the checkpoint schedule follows n_iter
        a.n_iter_2, a.n_iter_min, a.size_decr = max(int(0.22 * 10), 1), max(int(0.06 * 10), 1), max(int(0.03 * 10), 1)
    aa.verbose = False
    x_ref, _ = aa.run_standard_evaluation(x, y, batch_size=500)
    with torch.no_grad():
        robust_ref = model(x_ref).argmax(1) == y
    r = band_autoattack(model, x, y, 8 / 255, version="standard", steps=10, seed=0, early_stop=False)
    assert torch.equal(robust_ref, r["robust"])
    # count / n, compared as such: a float32 mean of 52 of 100 reads 0.5199999809
    assert r["accuracy"] == int(robust_ref.sum()) / robust_ref.numel() and r["attacks"] == ("apgd-ce", "apgd-t")


# ----------------------------------------------------------------------------- exact feasibility

@pytest.mark.parametrize("basis", ["dct", "dft"])
@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l2", 0.5)])
@pytest.mark.parametrize("band_idx", [0, 3])
@pytest.mark.parametrize("loss", ["ce", "dlr-targeted"])
def test_every_band_apgd_image_is_in_box_ball_and_band(basis, norm, eps, band_idx, loss):
    x = _saturated(6, H, seed=band_idx)
    y = RANDOM_MODEL(x).argmax(1).detach()
    band = band_masks(H, H, 4, "radial", basis)[band_idx]
    x_adv, info = apgd(RANDOM_MODEL, x, y, eps, norm=norm, loss=loss, steps=8, n_target_classes=2, band=band,
                         basis=basis, seed=0, return_info=True)
    share = _assert_feasible(x, x_adv, eps, norm, band, basis)
    assert torch.allclose(info["out_of_band"], share, atol=1e-6)
    assert set(info) >= {"success", "clean_correct", "l2", "linf", "out_of_band", "projection", "iterations",
                         "logits"}


@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l2", 0.4)])
def test_band_apgd_on_a_trained_model_is_feasible_and_fools_some(trained, norm, eps):
    model, x, y = trained
    low = band_masks(H, H, 4, "radial", "dct")[0]
    x_adv, info = apgd(model, x, y, eps, norm=norm, steps=20, band=low, seed=0, return_info=True)
    _assert_feasible(x, x_adv, eps, norm, low)
    assert 0 < int(info["success"].sum()) < x.shape[0]
    full = apgd(model, x, y, eps, norm=norm, steps=20, seed=0, return_info=True)[1]
    # confining the perturbation to a band cannot make the attack stronger than the full one by much
    assert int(info["success"].sum()) <= int(full["success"].sum()) + 2


def test_band_autoattack_is_feasible_per_image_and_monotone(trained):
    model, x, y = trained
    x, y = x[:60], y[:60]
    low = low_high_masks(H, H)["low"]
    r = band_autoattack(model, x, y, 8 / 255, "linf", band=low, version="standard", steps=10, seed=0)
    _assert_feasible(x, r["x_adv"], 8 / 255, "linf", low)
    assert r["robust"].dtype == torch.bool and r["robust"].shape == (60,)
    assert r["after"]["apgd-t"] <= r["after"]["apgd-ce"] <= r["clean_accuracy"]
    assert r["accuracy"] == int(r["robust"].sum()) / 60 and r["ci_lo"] <= r["accuracy"] <= r["ci_hi"]
    assert set(r["not_band_limited"]) == {"fab-t", "square"} and r["out_of_band_max"] < 1e-3
    with torch.no_grad():          # robust images are classified correctly at the returned point
        pred = model(r["x_adv"]).argmax(1)
    assert bool((pred[r["robust"]] == y[r["robust"]]).all())
    plus = band_autoattack(model, x, y, 8 / 255, "linf", band=low, version=["apgd-ce", "apgd-dlr"], steps=5)
    assert plus["attacks"] == ("apgd-ce", "apgd-dlr") and plus["not_band_limited"] == {}


# ----------------------------------------------------------------------------- behaviour

def test_seed_is_reproducible_and_leaves_the_global_rng_alone(trained):
    model, x, y = trained
    x, y = x[:20], y[:20]
    state = torch.get_rng_state()
    a = apgd(model, x, y, 8 / 255, steps=5, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    b = apgd(model, x, y, 8 / 255, steps=5, seed=4)
    assert torch.equal(a, b)


def test_model_mode_and_statistics_are_left_alone():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 64, 5)).train()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(4, 3, 8, 8)
    y = torch.tensor([0, 1, 2, 3])
    apgd(net, x, y, 0.1, steps=3, band=low_high_masks(8, 8)["low"])
    band_autoattack(net, x, y, 0.1, steps=2)
    assert net.training and all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())


def test_images_misclassified_clean_are_returned_unchanged(trained):
    model, x, y = trained
    y_wrong = (y[:10] + 1) % 10
    x_adv, info = apgd(model, x[:10], y_wrong, 8 / 255, steps=3, return_info=True)
    assert torch.equal(x_adv, x[:10]) and bool(info["success"].all()) and not bool(info["clean_correct"].any())


def test_eot_iterations_average_a_random_models_gradient():
    class Noisy(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _cnn(5, seed=2)

        def forward(self, x):
            return self.net(x + 0.01 * torch.randn_like(x))

    x = torch.rand(4, 3, 8, 8)
    x_adv = apgd(Noisy().eval(), x, torch.tensor([0, 1, 2, 3]), 0.05, steps=3, eot_iter=3)
    _assert_feasible(x, x_adv, 0.05, "linf")


# ----------------------------------------------------------------------------- bad input

def _bad_cases():
    x, y = torch.rand(2, 3, 8, 8), torch.tensor([0, 1])
    m = RANDOM_MODEL
    return [
        (lambda: apgd(m, x, y, 0.1, loss="hinge"), ValueError, "loss"),
        (lambda: apgd(m, x, y, 0.1, norm="l1"), ValueError, "norm"),
        (lambda: apgd(m, x, y, -0.1), ValueError, "eps"),
        (lambda: apgd(m, x, y, 0.1, steps=0), ValueError, "steps"),
        (lambda: apgd(m, x, y, 0.1, restarts=0), ValueError, "restarts"),
        (lambda: apgd(m, x, y, 0.1, rho=1.5), ValueError, "rho"),
        (lambda: apgd(m, x, y, 0.1, eot_iter=0), ValueError, "eot_iter"),
        (lambda: apgd(m, x, y, 0.1, proj_iters=0), ValueError, "proj_iters"),
        (lambda: apgd(m, x, y, 0.1, early_stop="yes"), ValueError, "early_stop"),
        (lambda: apgd(m, x, y, 0.1, seed=1.5), ValueError, "seed"),
        (lambda: apgd(m, x * 2, y, 0.1), ValueError, r"\[0, 1\]"),
        (lambda: apgd(m, x, y.float(), 0.1), TypeError, "y"),
        (lambda: apgd(m, x, torch.tensor([0, 20]), 0.1), ValueError, "y must hold class indices"),
        (lambda: apgd(m, x, y, 0.1, band=torch.zeros(8, 8)), ValueError, "band"),
        (lambda: apgd(m, x, y, 0.1, band=torch.ones(4, 4)), ValueError, "band"),
        (lambda: apgd(m, x[:0], y[:0], 0.1), ValueError, r"x holds no images"),
        (lambda: band_autoattack(m, x, y, 0.1, version="fast"), ValueError, "version"),
        (lambda: band_autoattack(m, x, y, 0.1, version=["apgd-ce", "square"]), ValueError, "not band-limited"),
        (lambda: band_autoattack(m, x, y, 0.0), ValueError, "eps"),
        (lambda: band_autoattack(m, x, y, 0.1, batch_size=0), ValueError, "batch_size"),
    ]


@pytest.mark.parametrize("k", range(len(_bad_cases())))
def test_bad_input_errors_name_the_argument(k):
    fn, exc, match = _bad_cases()[k]
    with pytest.raises(exc, match=match):
        fn()


def test_dlr_attacks_refuse_models_with_too_few_classes():
    three = _cnn(3, seed=1).eval()
    x, y = torch.rand(2, 3, 8, 8), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="at least 3 classes"):
        apgd(_cnn(2).eval(), x, y, 0.1, loss="dlr")
    with pytest.raises(ValueError, match="at least 4 classes"):
        apgd(three, x, y, 0.1, loss="dlr-targeted")
    with pytest.raises(ValueError, match=r"apgd-t.*needs at least 4 classes"):
        band_autoattack(three, x, y, 0.1)
