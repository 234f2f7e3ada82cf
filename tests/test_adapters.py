"""Tests of freqkit.adapters, against the libraries they adapt to.

* torchattacks 3.5.1: :class:`BandPGD` and :class:`BandAPGD` are ``Attack`` objects (modes,
  model-mode control, ``MultiAttack``); with ``band=None`` BandPGD is torchattacks' PGD /
  PGDL2 to the bit; torchattacks' PGD leaves most of its energy outside a low band while
  BandPGD stays inside (measured with :func:`freqkit.band_energy`).
* Quantus 0.6.0 (requirements-dev.txt; the tests skip without it): its pixel-flipping curve
  and its model-parameter randomisation test, run on :class:`freqkit.FrequencyModel` with
  the coefficients as the "pixels", agree with :func:`freqkit.deletion_insertion_curves` and
  :func:`freqkit.model_randomisation_check`.

(Captum adapters of :func:`freqkit.attribute`, LRP rules: test_attribution.py.)
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from freqkit.adapters import BandAPGD, BandPGD
from freqkit.attacks import pgd
from freqkit.attribution import FrequencyModel, attribute
from freqkit.faithfulness import deletion_insertion_curves, model_randomisation_check
from freqkit.models import ResNetCIFAR, SmallCNN
from freqkit.transforms import band_energy, band_masks

torchattacks = pytest.importorskip("torchattacks")

pytestmark = pytest.mark.usefixtures("one_thread")


def small_model(seed=0, width=4):
    torch.manual_seed(seed)
    return SmallCNN(width=width).eval()


def digits(n=6, seed=1):
    """(N, 1, 28, 28) images in [0, 1] with saturated black borders and a few white pixels (the box bites)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 5:23, 5:23] = torch.rand(n, 1, 18, 18, generator=g)
    x[:, :, 12:16, 12:16] = 1.0
    return x


def out_of_band_share(d, band):
    """Share of the energy of ``d`` outside ``band`` (DCT), per image."""
    return band_energy(d, basis="dct", masks=torch.stack([band, ~band]))[:, 1]


def check_constraints(x, x_adv, eps, norm, band, basis="dct"):
    d = x_adv - x
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and not x_adv.requires_grad
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    size = d.flatten(1).abs().max(1).values if norm == "linf" else d.flatten(1).norm(dim=1)
    assert bool((size <= eps + 1e-6).all()), size.max()
    if band is not None:
        share = band_energy(d, basis=basis, masks=torch.stack([band, ~band]))[:, 1]
        assert bool((share < 1e-3).all()), share.max()


# ----------------------------------------------------------------------------- BandPGD

@pytest.mark.parametrize("norm,eps,alpha", [("linf", 8 / 255, 2 / 255), ("l2", 0.5, 0.1)])
@pytest.mark.parametrize("basis", ["dct", "dft"])
def test_band_pgd_images_are_in_band_in_the_box_and_within_eps(norm, eps, alpha, basis):
    m, x = small_model(), digits()
    y = m(x).argmax(1)
    for band in band_masks(28, 28, 4, basis=basis)[[0, 3]]:
        atk = BandPGD(m, band=band, eps=eps, alpha=alpha, steps=5, norm=norm.upper(), basis=basis)
        assert isinstance(atk, torchattacks.attack.Attack) and atk.norm == norm
        check_constraints(x, atk(x, y), eps, norm, band, basis)
    atk = BandPGD(m, band=None, eps=eps, alpha=alpha, steps=3, norm=norm, random_start=False)
    check_constraints(x, atk(x, y), eps, norm, None)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_band_pgd_without_a_band_is_torchattacks_pgd(norm):
    m, x = small_model(), digits()
    y = m(x).argmax(1)
    if norm == "linf":
        theirs, kw = torchattacks.PGD(m, eps=8 / 255, alpha=2 / 255, steps=4), {"eps": 8 / 255, "alpha": 2 / 255}
    else:
        theirs, kw = torchattacks.PGDL2(m, eps=0.5, alpha=0.1, steps=4), {"eps": 0.5, "alpha": 0.1}
    torch.manual_seed(11)
    want = theirs(x, y)
    torch.manual_seed(11)
    got = BandPGD(m, band=None, steps=4, norm=norm, **kw)(x, y)
    assert torch.equal(got, want)


def test_torchattacks_pgd_leaves_the_band_and_band_pgd_stays():
    """Out-of-band energy share on a low DCT band (the lowest of 4 radial bands, 28x28, 6 images).

    The band holds 11% of the coefficients.  Measured: torchattacks' PGD (Linf 8/255, 10
    steps) 0.68 median (0.66-0.72: the saturated borders keep its steps partly inside the
    box), BandPGD at most 3.5e-5 (the guarantee is 1e-3).
    """
    m, x = small_model(), digits()
    y = m(x).argmax(1)
    low = band_masks(28, 28, 4)[0]
    torch.manual_seed(0)
    theirs = torchattacks.PGD(m, eps=8 / 255, alpha=2 / 255, steps=10)(x, y)
    ours = BandPGD(m, band=low, eps=8 / 255, alpha=2 / 255, steps=10)(x, y)
    s_theirs, s_ours = out_of_band_share(theirs - x, low), out_of_band_share(ours - x, low)
    assert bool((s_theirs > 0.5).all()), s_theirs
    assert bool((s_ours < 1e-3).all()), s_ours


def test_out_of_band_share_on_cifar10(data_root):
    """The same on 16 CIFAR-10 test images and a ResNetCIFAR (width 4, random weights).

    Measured: torchattacks' PGD (Linf 8/255, 5 steps) 0.87 median out-of-band share
    (0.86-0.90) on the lowest of 4 radial bands (11% of the coefficients); BandPGD at most
    6.9e-5.
    """
    from freqkit.data import load_dataset

    x, y = load_dataset("cifar10", split="test", n=16, root=data_root)
    torch.manual_seed(0)
    m = ResNetCIFAR(width=4).eval()
    low = band_masks(32, 32, 4)[0]
    torch.manual_seed(0)
    theirs = torchattacks.PGD(m, eps=8 / 255, alpha=2 / 255, steps=5)(x, y)
    ours = BandPGD(m, band=low, eps=8 / 255, alpha=2 / 255, steps=5)(x, y)
    check_constraints(x, ours, 8 / 255, "linf", low)
    assert float(out_of_band_share(theirs - x, low).median()) > 0.5
    assert float(out_of_band_share(ours - x, low).max()) < 1e-3


def test_band_pgd_works_in_multiattack_with_torchattacks_pgd():
    m, x = small_model(), digits(8)
    y = m(x).argmax(1)
    low = band_masks(28, 28, 4)[0]
    band_atk = BandPGD(m, band=low, eps=8 / 255, alpha=2 / 255, steps=5)
    multi = torchattacks.MultiAttack([band_atk, torchattacks.PGD(m, eps=8 / 255, alpha=2 / 255, steps=5)])
    x_adv = multi(x, y)
    check_constraints(x, x_adv, 8 / 255, "linf", None)
    # an image fooled by the band attack keeps its band-limited perturbation
    torch.manual_seed(0)
    alone = band_atk(x, y)
    fooled = m(alone).argmax(1) != y
    torch.manual_seed(0)
    x_adv = multi(x, y)
    assert torch.equal(x_adv[fooled], alone[fooled])
    with torch.no_grad():
        assert bool((m(x_adv).argmax(1) != y).sum() >= fooled.sum())


def test_band_pgd_targeted_mode_and_model_mode():
    m, x = small_model(), digits()
    y = m(x).argmax(1)
    target = (y + 1) % 10
    low = band_masks(28, 28, 4)[0]
    atk = BandPGD(m, band=low, eps=0.3, alpha=0.05, steps=10)
    atk.set_mode_targeted_by_label(quiet=True)
    assert atk.targeted
    torch.manual_seed(3)
    got = atk(x, target)
    torch.manual_seed(3)
    want = pgd(m, x, target, eps=0.3, step_size=0.05, steps=10, band=low, targeted=True, early_stop=False)
    assert torch.equal(got, want)

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
            self.modes = []

        def forward(self, z):
            self.modes.append(self.training)
            return self.net(z)

    rec = Recorder().train()
    BandPGD(rec, band=low, steps=2)(x, y)
    assert rec.modes and not any(rec.modes) and rec.training   # eval during the attack, mode restored
    rec.modes.clear()
    atk = BandPGD(rec, band=low, steps=2)
    atk.set_model_training_mode(model_training=True)
    atk(x, y)
    assert rec.modes and all(rec.modes)


def test_band_pgd_device_and_errors(capsys):
    class NoParams(nn.Module):
        def forward(self, z):
            return torch.stack([z.mean((1, 2, 3)), -z.mean((1, 2, 3))], 1)

    x = digits(2)
    atk = BandPGD(NoParams(), band=band_masks(28, 28, 2)[0], steps=1)
    assert atk.device is None   # torchattacks could not read a device: the images' is used
    assert atk(x, torch.tensor([0, 1])).device == x.device
    capsys.readouterr()
    m = small_model()
    with pytest.raises(ValueError, match="norm"):
        BandPGD(m, norm="l1")
    with pytest.raises(ValueError, match="eps"):
        BandPGD(m, eps=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        BandPGD(m, alpha=0)
    with pytest.raises(ValueError, match="steps"):
        BandPGD(m, steps=1.5)
    with pytest.raises(TypeError, match="band"):
        BandPGD(m, band=[[1, 0]])
    with pytest.raises(ValueError, match="band"):
        BandPGD(m, band=torch.ones(2, 28, 28, dtype=torch.bool))
    with pytest.raises(ValueError, match="band"):
        BandPGD(m, band=torch.zeros(28, 28, dtype=torch.bool))
    with pytest.raises(ValueError, match="basis"):
        BandPGD(m, basis="dht")
    with pytest.raises(ValueError, match="band"):   # a band of another size than the images, at the call
        BandPGD(m, band=band_masks(8, 8, 2)[0])(digits(2), torch.tensor([0, 1]))


# ----------------------------------------------------------------------------- BandAPGD

def test_band_apgd_constraints_multiattack_and_modes():
    m, x = small_model(), digits()
    y = m(x).argmax(1)
    low = band_masks(28, 28, 4)[0]
    for norm, eps in (("Linf", 8 / 255), ("L2", 0.5)):
        atk = BandAPGD(m, band=low, eps=eps, steps=5, norm=norm)
        assert isinstance(atk, torchattacks.attack.Attack)
        check_constraints(x, atk(x, y), eps, norm.lower(), low)
    atk = BandAPGD(m, band=low, eps=8 / 255, steps=5, loss="dlr-targeted", n_target_classes=2)
    check_constraints(x, atk(x, y), 8 / 255, "linf", low)
    multi = torchattacks.MultiAttack([BandAPGD(m, band=low, steps=5), BandPGD(m, band=low, steps=5)])
    check_constraints(x, multi(x, y), 8 / 255, "linf", low)
    with pytest.raises(ValueError, match="Targeted mode is not supported"):
        BandAPGD(m).set_mode_targeted_by_label(quiet=True)
    with pytest.raises(ValueError, match="loss"):
        BandAPGD(m, loss="cw")
    with pytest.raises(ValueError, match="norm"):
        BandAPGD(m, norm="l1")


# ----------------------------------------------------------------------------- Quantus parity

def _quantus():
    return pytest.importorskip("quantus", reason="Quantus is a dev requirement (requirements-dev.txt: "
                                                 "quantus==0.6.0); without it the parity tests skip")


@pytest.mark.parametrize("basis", ["dct", "dft"])
def test_quantus_pixel_flipping_on_coefficients_is_freqkit_deletion_curve(basis):
    """Quantus PixelFlipping on FrequencyModel (coefficients as "pixels") == freqkit's deletion curve.

    Setting: SmallCNN (width 4, float32, random weights), 4 images 1x28x28, signed gradient
    scores, coefficients removed in the order of the scores 49 at a time (16 steps), replaced
    by 0 (freqkit's default baseline), softmax probability of the predicted class.  Measured
    max abs difference 1.5e-8 (float32 rounding).
    """
    quantus = _quantus()
    m, x = small_model(), digits(4)
    with torch.no_grad():
        y = m(x).argmax(1)
    fm = FrequencyModel(m, basis).eval()
    scores = attribute(m, x, y, method="gradient", basis=basis).scores
    step = 49
    metric = quantus.PixelFlipping(features_in_step=step, perturb_baseline=0.0, abs=False, normalise=False,
                                   disable_warnings=True, display_progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = np.asarray(metric(model=fm, x_batch=fm.to_coeffs(x).numpy(), y_batch=y.numpy(),
                                   a_batch=scores.numpy(), channel_first=True, softmax=True, device="cpu"))
    curves = deletion_insertion_curves(m, x, y, scores, basis=basis, orders="attribution",
                                       n_points=28 * 28 // step + 1, output="prob", by="signed")
    ours = curves.deletion["attribution"][:, 1:].numpy()
    assert theirs.shape == ours.shape == (4, 16)
    assert float(np.abs(theirs - ours).max()) < 1e-6


def test_quantus_mprt_on_coefficients_is_freqkit_randomisation_check():
    """Quantus MPRT (top-down) on FrequencyModel == freqkit's randomisation check, for the top layer.

    Quantus re-seeds torch with ``seed + 1`` before re-initialising each layer; freqkit seeds
    once, so the two randomise the same weights only for the first layer: compared there
    (freqkit ``layers=["classifier.4"]``, seed 42; Quantus seed 41).  Setting: SmallCNN
    (width 4), 4 images, saliency (|gradient|) in the DCT basis, Spearman correlation of the
    original and the randomised scores per image (Quantus ``abs=False, normalise=False``:
    the saliency is already absolute).  Measured max abs difference 2.8e-17.
    """
    quantus = _quantus()
    from captum.attr import Saliency

    m, x = small_model(), digits(4)
    with torch.no_grad():
        y = m(x).argmax(1)
    fm = FrequencyModel(m, "dct").eval()

    def explain(model, inputs, targets, **kw):
        inp = torch.as_tensor(inputs).requires_grad_()
        return Saliency(model).attribute(inp, target=torch.as_tensor(targets), abs=True).detach().numpy()

    metric = quantus.MPRT(layer_order="top_down", seed=41, abs=False, normalise=False, disable_warnings=True,
                          display_progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = metric(model=fm, x_batch=fm.to_coeffs(x).numpy(), y_batch=y.numpy(), a_batch=None,
                     explain_func=explain, channel_first=True, device="cpu")
    names = [k for k in res if k != "original"]
    assert names[0] == "model.classifier.4"
    ours = model_randomisation_check(m, x, y, method="saliency", basis="dct", layers=["classifier.4"], seed=42)
    theirs = np.asarray(res["model.classifier.4"])
    assert float(np.abs(theirs - ours.spearman[0].numpy()).max()) < 1e-6
    # the original model against itself: 1 in both
    assert np.allclose(res["original"], 1.0)
