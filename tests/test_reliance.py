"""freqkit.reliance: filtered-accuracy curves and attribution (alignment) profiles, on models
whose answer is known.  (The H1 rule: test_hypotheses.py.)"""

import pytest
import torch

import freqkit as fk
from freqkit import reliance as RL
from freqkit.planted import train_planted_model


class MeanBrightness(torch.nn.Module):
    """Class 1 if the mean pixel is above 0.5: uses only the DC coefficient."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        m = x.mean((1, 2, 3))
        return torch.stack([0.5 - m, m - 0.5], 1)


def _bright_dark(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    base = torch.where(y[:, None, None, None] == 1, 0.7, 0.3)
    x = (base + 0.2 * (torch.rand(n, 1, 8, 8, generator=g) - 0.5)).clamp(0, 1)
    return x, y


def test_a_dc_only_model_survives_low_pass_and_fails_high_pass():
    x, y = _bright_dark()
    model = MeanBrightness()
    cut = [0.0, 0.3, 1.0]
    low = fk.filtered_accuracy(model, x, y, cut, mode="low")
    high = fk.filtered_accuracy(model, x, y, cut, mode="high")
    assert low["accuracy"] == [1.0, 1.0, 1.0]
    # high-pass removes the mean, the model then predicts class 0 for every image
    assert high["accuracy"] == [0.5, 0.5, 0.5]
    assert low["energy_kept"][0] == pytest.approx(0.0, abs=1e-12)
    assert high["energy_kept"][0] == pytest.approx(1.0, abs=1e-5)
    assert all(lo <= a <= hi for a, lo, hi in zip(high["accuracy"], high["ci_lo"], high["ci_hi"]))
    # the energy kept by the two filters at one cut-off adds up to all of it
    for a, b in zip(low["energy_kept"], high["energy_kept"]):
        assert a + b == pytest.approx(1.0, abs=1e-5)


def test_high_frequency_energy_matches_filtered_accuracy():
    x, _ = _bright_dark()
    e = fk.high_frequency_energy(x, 0.5)
    assert e.shape == (x.shape[0],) and bool(((e >= 0) & (e <= 1)).all())
    high = fk.filtered_accuracy(MeanBrightness(), x, torch.zeros(len(x), dtype=torch.long), [0.5], mode="high")
    assert high["energy_kept"][0] == pytest.approx(float(e.mean()), rel=1e-5)


def test_bad_input():
    x, y = _bright_dark()
    m = MeanBrightness()
    with pytest.raises(ValueError, match="mode must be one of"):
        fk.filtered_accuracy(m, x, y, [0.1], mode="band")
    with pytest.raises(ValueError, match="one label per image"):
        fk.filtered_accuracy(m, x, y[:-1], [0.1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fk.filtered_accuracy(m, x * 3, y, [0.1])
    with pytest.raises(ValueError, match="cutoffs"):
        fk.filtered_accuracy(m, x, y, [])


# ----------------------------------------------------------------------------- alignment profiles, on trained models

@pytest.fixture(scope="module")
def planted_low(one_thread):
    """A tiny CNN trained in ~2 s on planted LOW-frequency signal (radial band 1 of 8, 16x16)."""
    return train_planted_model(band=1, n_train=2000, n_test=200, epochs=8, size=16, n_bands=8, amplitude=2.0)


@pytest.fixture(scope="module")
def planted_high(one_thread):
    """The same, trained on planted HIGH-frequency signal (band 6 of 8)."""
    return train_planted_model(band=6, n_train=2000, n_test=200, epochs=8, size=16, n_bands=8, amplitude=2.0)


def test_alignment_ranks_low_frequency_model_above_high(planted_low, planted_high):
    assert planted_low.test_accuracy > 0.9 and planted_high.test_accuracy > 0.9
    scores = {}
    for name, t in (("low", planted_low), ("high", planted_high)):
        prof = fk.radial_attribution_profile(t.model, t.x_test[:100], t.y_test[:100], t.masks, method="ig",
                                             n_boot=50, progress=False, n_steps=16)
        scores[name] = float(fk.human_alignment(prof.per_image, t.masks).mean())
    assert scores["low"] > scores["high"] + 0.1, scores
    # alignment_profile gives the same ordering with its own (8 equal-width) bands.
    a = RL.alignment_profile(planted_low.model, planted_low.x_test[:40], planted_low.y_test[:40], n_boot=50,
                             n_steps=8)
    b = RL.alignment_profile(planted_high.model, planted_high.x_test[:40], planted_high.y_test[:40], n_boot=50,
                             n_steps=8)
    assert a["score"]["mean"] > b["score"]["mean"] and a["low_share"]["mean"] > b["low_share"]["mean"]
    assert len(a["per_image_score"]) == 40 and abs(sum(a["shares"]["mean"]) - 1) < 1e-6


# ----------------------------------------------------------------- issue 11: a broken model, mode, empty input

class _NaNModel(torch.nn.Module):
    """A classifier whose logits are all NaN, like one loaded from a diverged checkpoint."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(64, 2)

    def forward(self, x):
        return self.lin(x.flatten(1)) * float("nan")


def _mixed_mode_net():
    """A CNN in train mode whose second BatchNorm is deliberately frozen (eval)."""
    torch.manual_seed(0)
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Tanh(), nn.Conv2d(4, 4, 3, padding=1),
                        nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 8 * 8, 2)).train()
    net[4].eval()
    return net


def test_nan_logits_are_an_error_naming_the_model():
    x, y = _bright_dark(8)
    with pytest.raises(ValueError, match=r"_NaNModel.*non-finite"):
        fk.filtered_accuracy(_NaNModel(), x, y, [0.5])
    with pytest.raises(ValueError, match=r"_NaNModel.*non-finite"):
        RL.alignment_profile(_NaNModel(), x, y, n_boot=10, n_steps=4)


@pytest.mark.parametrize("call", ["filtered_accuracy", "alignment_profile"])
def test_reliance_leaves_every_submodules_mode_and_batchnorm_statistics_alone(call):
    x, y = _bright_dark(8)
    net = _mixed_mode_net()
    modes = {n: m.training for n, m in net.named_modules()}
    state = {k: v.clone() for k, v in net.state_dict().items()}
    if call == "filtered_accuracy":
        fk.filtered_accuracy(net, x, y, [0.3, 1.0])
    else:
        RL.alignment_profile(net, x, y, n_boot=10, n_steps=4)
    assert net.training                               # filtered_accuracy used to leave it in eval mode
    assert {n: m.training for n, m in net.named_modules()} == modes
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())


def test_filtered_accuracy_takes_a_plain_function_and_refuses_an_empty_batch():
    x, y = _bright_dark(8)
    m = MeanBrightness()
    assert fk.filtered_accuracy(lambda z: m(z), x, y, [0.3]) == fk.filtered_accuracy(m, x, y, [0.3])
    with pytest.raises(ValueError, match=r"x holds no images \(N = 0\)"):
        fk.filtered_accuracy(m, x[:0], y[:0], [0.3])
    with pytest.raises(ValueError, match=r"x holds no images \(N = 0\)"):
        RL.alignment_profile(m, x[:0], y[:0], n_boot=10)


# ----------------------------------------------------------------- issue 15: streamed batches (DataLoader)

def _tiny_net():
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(12, 2)).eval()


def test_filtered_accuracy_of_a_dataloader_equals_that_of_tensors():
    x, y = _bright_dark(11)
    net = _tiny_net()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    for mode in ("low", "high"):
        ref = fk.filtered_accuracy(net, x, y, [0.1, 0.5, 1.0], mode=mode, batch_size=3)
        for data in (loader, [(x[:5], y[:5]), (x[5:], y[5:])]):
            got = fk.filtered_accuracy(net, data, None, [0.1, 0.5, 1.0], mode=mode, batch_size=2)
            assert {k: v for k, v in got.items() if k != "energy_kept"} == \
                {k: v for k, v in ref.items() if k != "energy_kept"}
            assert got["energy_kept"] == pytest.approx(ref["energy_kept"], rel=1e-9)
    with pytest.raises(ValueError, match="y must be None"):
        fk.filtered_accuracy(net, loader, y, [0.5])
    with pytest.raises(ValueError, match=r"batch at image 5.*\[0, 1\]"):
        fk.filtered_accuracy(net, [(x[:5], y[:5]), (x[5:] * 3, y[5:])], None, [0.5])
    with pytest.raises(ValueError, match=r"x holds no images \(N = 0\)"):
        fk.filtered_accuracy(net, [], None, [0.5])


def test_alignment_profile_of_a_dataloader_equals_that_of_tensors():
    x, y = _bright_dark(9)
    net = _tiny_net()
    ref = RL.alignment_profile(net, x, y, n_bands=3, n_boot=40, batch_size=4, n_steps=4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=2)
    got = RL.alignment_profile(net, loader, None, n_bands=3, n_boot=40, n_steps=4)
    assert got["n"] == ref["n"] == 9
    for key in ("per_image_score", "per_image_low_share", "band_sensitivity", "edges"):
        assert got[key] == pytest.approx(ref[key], rel=1e-6, abs=1e-9)
    for key in ("shares", "score", "low_share"):
        for part in ("mean", "ci_low", "ci_high"):
            assert got[key][part] == pytest.approx(ref[key][part], rel=1e-6, abs=1e-9)
    with pytest.raises(ValueError, match="one shape"):
        RL.alignment_profile(net, [(x[:2], y[:2]), (x[2:, :, :4, :4], y[2:])], None, n_boot=10, n_steps=2)


# ----------------------------------------------------------------- issue 13 (H4): model-only reliance measures

class _Filtered(torch.nn.Module):
    """A fixed filter keeping the frequencies ``keep`` (in ``basis``), then a small MLP: a model that
    sees only one part of the spectrum, whatever it is trained on."""

    def __init__(self, keep, basis="dct", c=1, h=16, w=16, k=3, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.register_buffer("keep", keep.to(torch.float64))
        self.basis = basis
        self.net = torch.nn.Sequential(torch.nn.Linear(c * h * w, 8), torch.nn.Tanh(), torch.nn.Linear(8, k)).double()

    def forward(self, x):
        xf = fk.from_basis(fk.to_basis(x.double(), self.basis) * self.keep, self.basis)
        return self.net(xf.flatten(1))


def _pass_models(basis):
    r = fk.frequency_radius(16, 16, basis)
    halves = fk.low_high_masks(16, 16, basis)
    low, high = r <= 0.5, r > 1.0
    assert bool((low <= halves["low"]).all()) and bool((high <= halves["high"]).all())
    return _Filtered(low, basis), _Filtered(high, basis)


def _grey_images(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (0.3 + 0.4 * torch.rand(n, 1, 16, 16, generator=g, dtype=torch.float64)), torch.arange(n) % 3


@pytest.mark.parametrize("basis", ["dct", "dft"])
def test_low_pass_model_has_low_share_one_and_high_pass_model_zero(basis):
    x, y = _grey_images()
    low_model, high_model = _pass_models(basis)
    for of in ("loss", "logit"):
        lo = RL.input_gradient_spectrum(low_model, x, y, of=of, basis=basis)
        hi = RL.input_gradient_spectrum(high_model, x, y, of=of, basis=basis)
        torch.testing.assert_close(lo["low_share"], torch.ones(6, dtype=torch.float64), atol=1e-9, rtol=0)
        torch.testing.assert_close(hi["low_share"], torch.zeros(6, dtype=torch.float64), atol=1e-9, rtol=0)
        assert lo["n_zero"] == 0 and float(lo["grad_norm"].min()) > 0
        # the radial profile: all power inside radius 0.5 (the first two of 8 bands of width 0.177)
        assert float(lo["profile"][:3].sum()) == pytest.approx(1.0) and float(hi["profile"][:5].sum()) < 1e-9
    occ_lo = RL.band_occlusion_shares(low_model, x, y, basis=basis)
    occ_hi = RL.band_occlusion_shares(high_model, x, y, basis=basis)
    torch.testing.assert_close(occ_lo["low_share"], torch.ones(6, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(occ_hi["low_share"], torch.zeros(6, dtype=torch.float64), atol=1e-9, rtol=0)
    assert float(occ_lo["drops"][:, 1].abs().max()) < 1e-12 < float(occ_lo["drops"][:, 0].abs().min())


def test_input_gradient_spectrum_by_hand_on_a_linear_model():
    torch.manual_seed(0)
    lin = torch.nn.Linear(2 * 8 * 8, 3).double()
    model = torch.nn.Sequential(torch.nn.Flatten(), lin)
    x = torch.rand(4, 2, 8, 8, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1])
    wts = lin.weight.detach().view(3, 2, 8, 8)
    p = torch.softmax(model(x), 1).detach()
    grads = {"logit": wts[y], "loss": torch.einsum("nk,kchw->nchw", p - torch.eye(3, dtype=p.dtype)[y], wts)}
    halves = fk.low_high_masks(8, 8)
    for of, g in grads.items():
        r = RL.input_gradient_spectrum(model, x, y, of=of, n_bands=4, batch_size=3)
        power = (fk.dct2(g) ** 2).sum(1)
        torch.testing.assert_close(r["low_share"], power[:, halves["low"]].sum(1) / power.sum((1, 2)))
        masks = fk.band_masks(8, 8, 4)
        want = torch.stack([power[:, m].sum(1) for m in masks], 1) / power.sum((1, 2))[:, None]
        torch.testing.assert_close(r["band_shares"], want)
        torch.testing.assert_close(r["profile"], want.mean(0))
        torch.testing.assert_close(r["grad_norm"], g.flatten(1).norm(dim=1))
        assert r["of"] == of and r["basis"] == "dct" and len(r["edges"]) == 5
    assert lin.weight.grad is None                      # only the input got gradients


def test_band_occlusion_shares_are_normalised_occlusion_drops():
    x, y = _grey_images(5)
    model = _Filtered(fk.frequency_radius(16, 16) < 2, "dct")   # sees everything
    masks = fk.band_masks(16, 16, 3)
    r = RL.band_occlusion_shares(model, x, y, masks=masks, output="prob", baseline="blur")
    occ = fk.attribute(model, x, y, method="occlusion", masks=masks, output="prob", baseline="blur")
    torch.testing.assert_close(r["drops"], occ.band_scores.double())
    torch.testing.assert_close(r["shares"], occ.band_scores.abs() / occ.band_scores.abs().sum(1, keepdim=True))
    signed = RL.band_occlusion_shares(model, x, y, masks=masks, output="prob", baseline="blur", by="signed")
    torch.testing.assert_close(signed["shares"], occ.band_scores / occ.band_scores.abs().sum(1, keepdim=True))
    assert r["low_share"] is None and r["output"] == "prob"           # only the default halves have one
    # the DC coefficient: a model of brightness alone relies on the low half; without the DC on nothing
    xb, yb = _bright_dark(6)
    for dtype in (torch.float32, torch.float64):
        d = RL.band_occlusion_shares(MeanBrightness(), xb.to(dtype), yb)
        torch.testing.assert_close(d["low_share"], torch.ones(6, dtype=torch.float64), atol=1e-12, rtol=0)
        k = RL.band_occlusion_shares(MeanBrightness(), xb.to(dtype), yb, keep_dc=True)
        # the drops left are rounding (~1e-7 in float32): no share, not a share of noise
        assert float(k["drops"].abs().max()) < 1e-6 and bool(torch.isnan(k["low_share"]).all())


def test_model_only_measures_rank_the_planted_models(planted_low, planted_high):
    shares = {}
    for name, t in (("low", planted_low), ("high", planted_high)):
        x, y = t.x_test[:60], t.y_test[:60]
        shares[name] = (float(RL.input_gradient_spectrum(t.model, x, y)["low_share"].mean()),
                        float(RL.band_occlusion_shares(t.model, x, y, keep_dc=True)["low_share"].nanmean()))
    assert shares["low"][0] > shares["high"][0] + 0.2, shares
    assert shares["low"][1] > shares["high"][1] + 0.2, shares


def test_model_only_measures_refuse_bad_input_and_leave_the_model_alone():
    x, y = _bright_dark(8)
    net = _mixed_mode_net()
    modes = {n: m.training for n, m in net.named_modules()}
    state = {k: v.clone() for k, v in net.state_dict().items()}
    RL.input_gradient_spectrum(net, x, y)
    RL.band_occlusion_shares(net, x, y)
    assert {n: m.training for n, m in net.named_modules()} == modes
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())
    assert all(p.grad is None for p in net.parameters())
    for call, match in ((lambda: RL.input_gradient_spectrum(net, x, y, of="prob"), "of"),
                        (lambda: RL.input_gradient_spectrum(net, x, y[:3]), "y"),
                        (lambda: RL.input_gradient_spectrum(net, x, y + 5), "y"),
                        (lambda: RL.input_gradient_spectrum(net, x, y, n_bands=1), "n_bands"),
                        (lambda: RL.input_gradient_spectrum(net, x, y, basis="dht"), "basis"),
                        (lambda: RL.input_gradient_spectrum(net, x[:0], y[:0]), r"x holds no images"),
                        (lambda: RL.input_gradient_spectrum(_NaNModel(), x, y), r"_NaNModel.*non-finite"),
                        (lambda: RL.band_occlusion_shares(net, x, y, by="rank"), "by"),
                        (lambda: RL.band_occlusion_shares(net, x, y, masks=fk.band_masks(8, 8, 1)), "masks"),
                        (lambda: RL.band_occlusion_shares(net, x, y, baseline="grey"), "baseline"),
                        (lambda: RL.band_occlusion_shares(_NaNModel(), x, y), r"_NaNModel.*non-finite")):
        with pytest.raises(ValueError, match=match):
            call()
    # a model whose output does not depend on the image: no gradient, no share
    flat = RL.input_gradient_spectrum(lambda z: z.flatten(1)[:, :2] * 0.0, x, y)
    assert flat["n_zero"] == 8 and bool(torch.isnan(flat["low_share"]).all())
    assert bool(torch.isnan(flat["profile"]).all())


def test_suite_reliance_stacks_each_measure_per_seed_and_ranks_low_and_high_pass_suites():
    x, y = _grey_images(6)
    lows = [_Filtered(fk.low_high_masks(16, 16)["low"] & (fk.frequency_radius(16, 16) < 0.5), seed=s) for s in (0, 1)]
    highs = [_Filtered(fk.low_high_masks(16, 16)["high"], seed=s) for s in (0, 1)]
    xh, yh = x[:3], y[:3]
    lo = RL.suite_reliance(lows, x, y, n_bands=4, lowpass_cutoff=0.5, heatmap_x=xh, heatmap_y=yh, heatmap_eps=2.0,
                           batch_size=4, seed=3)
    hi = RL.suite_reliance(highs, x, y, n_bands=4, batch_size=4)
    # a suite that sees only the lower half relies on it by every measure, one that sees the upper half not at all
    for name in ("gradient_low_share", "occlusion_low_share"):
        assert lo[name].shape == (2, 6) and hi[name].shape == (2, 6)
        assert abs(lo[name] - 1).max() < 1e-9 and abs(hi[name]).max() < 1e-9, name
    # a model that sees only frequencies below r = 0.5 classifies the low-pass copy exactly as the image
    assert abs(lo["lowpass_retention"]).max() == 0 and "lowpass_retention" not in hi
    assert lo["n_seeds"] == 2 and hi["heatmaps"] is None and "heatmap_low_minus_high" not in hi
    # each row is the single-model measure of that seed
    for s, m in enumerate(lows):
        g = RL.input_gradient_spectrum(m, x, y, n_bands=4, batch_size=4)
        torch.testing.assert_close(torch.from_numpy(lo["gradient_low_share"][s]), g["low_share"])
        torch.testing.assert_close(lo["gradient_band_shares"][s], g["band_shares"])
        hm = fk.fourier_heatmap(m, xh, yh, eps=2.0, seed=3, per_image=True, progress=False).cpu()
        torch.testing.assert_close(torch.from_numpy(lo["heatmap_low_minus_high"][s]),
                                   torch.as_tensor(fk.heatmap_summary(hm)["low_minus_high"]).double())
        torch.testing.assert_close(lo["heatmaps"][s], hm.mean(0))
    assert lo["gradient_edges"] == g["edges"] and lo["heatmaps"].shape == (2, 16, 16)


def test_suite_reliance_refuses_bad_input():
    x, y = _grey_images(4)
    m = _Filtered(fk.low_high_masks(16, 16)["low"])
    with pytest.raises(ValueError, match="models must hold at least one"):
        RL.suite_reliance([], x, y)
    with pytest.raises(ValueError, match="heatmap_x, heatmap_y and heatmap_eps go together"):
        RL.suite_reliance([m], x, y, heatmap_x=x)
    with pytest.raises(ValueError, match="lowpass_cutoff"):
        RL.suite_reliance([m], x, y, lowpass_cutoff=-1.0)
    with pytest.raises(ValueError, match="n_bands"):
        RL.suite_reliance([m], x, y, n_bands=0)
