"""Filtered-accuracy curves and the H1 rule, on models whose answer is known."""

import pytest
import torch

import freqkit as fk


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


def _high(acc_lo, energy):
    return {"mode": "high", "cutoffs": [0.25, 0.5], "accuracy": [0.9, acc_lo + 0.02], "ci_lo": [0.8, acc_lo],
            "ci_hi": [1.0, acc_lo + 0.04], "energy_kept": [0.5, energy], "n": 1000}


@pytest.mark.parametrize("acc_lo, energy, expected", [
    (0.40, 0.05, "supported"), (0.12, 0.05, "rejected"), (0.40, 0.60, "inconclusive")])
def test_h1_rule(acc_lo, energy, expected):
    v = fk.h1_verdict(_high(acc_lo, energy), cutoff=0.5, chance=0.1, margin=0.05, max_energy=0.2)
    assert v["verdict"] == expected
    assert "0.5" in v["rule"] and v["evidence"]["cutoff"] == 0.5


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
    with pytest.raises(ValueError, match="mode='high'"):
        fk.h1_verdict({"mode": "low"}, 0.5, 0.1)
