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
