"""Tests of freqkit.planted: the planted-frequency data set, the planted task, the share of
attribution on the planted band and the ground-truth table.  (PlantedCNN: test_models.py;
train_on_tensors: test_training.py; the ground-truth verdict: test_hypotheses.py.)"""
from __future__ import annotations

import math

import pytest
import torch

from freqkit.attribution import attribute
from freqkit.hypotheses import decide_ground_truth
from freqkit.planted import ground_truth_table, planted_band_share, planted_frequency_dataset, train_planted_model
from freqkit.transforms import band_masks, dct2

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- the planted-frequency data set

def _band_energy(x, masks):
    """(N, K) energy of each band in the DCT of x - 0.5, summed over channels."""
    c2 = dct2((x - 0.5).double()).pow(2).sum(1)  # (N, H, W)
    return torch.einsum("nhw,khw->nk", c2, masks.double())


def _class_mean_gap(e, y, k):
    """Largest standardised gap between the class means of band k's log energy."""
    le = e[:, k].log()
    means = [le[y == c].mean() for c in y.unique()]
    ses = [le[y == c].std() / (y == c).sum().sqrt() for c in y.unique()]
    return max(abs(float(a - b)) / float((sa ** 2 + sb ** 2).sqrt())
               for i, (a, sa) in enumerate(zip(means, ses)) for b, sb in zip(means[i + 1:], ses[i + 1:]))


def test_planted_shapes_range_and_info():
    x, y, info = planted_frequency_dataset(101, n_classes=3, size=16, channels=3, n_bands=6, seed=2)
    assert x.shape == (101, 3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.bincount(y).tolist() == [34, 34, 33]
    assert info["bands"] == [1, 2, 4] and info["masks"].shape == (6, 16, 16)
    for c, b in enumerate(info["bands"]):
        assert torch.equal(info["planted_masks"][c], info["masks"][b])
    assert info["n_clipped"] == 0 and info["class_names"][0] == "band 1"
    x2, y2, _ = planted_frequency_dataset(101, n_classes=3, size=16, channels=3, n_bands=6, seed=2)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _, _ = planted_frequency_dataset(101, n_classes=3, size=16, channels=3, n_bands=6, seed=3)
    assert not torch.equal(x, x3)


def test_planted_band_energy_separates_and_outside_is_class_independent():
    n = 2000
    x, y, info = planted_frequency_dataset(n, n_classes=2, size=32, bands=[1, 6], n_bands=8, seed=0)
    masks = info["masks"]
    e = _band_energy(x, masks)
    # The planted bands: energy grows by 1 + amplitude^2 = 2 in the planted class.
    for c, b in enumerate(info["bands"]):
        ratio = float(e[y == c, b].mean() / e[y != c, b].mean())
        assert 1.8 < ratio < 2.2
    # A one-feature classifier (log energy ratio of the two planted bands, threshold at
    # the midpoint of the class means) separates the classes.
    f = (e[:, 1] / e[:, 6]).log()
    thr = 0.5 * float(f[y == 0].mean() + f[y == 1].mean())
    acc = float(((f > thr).long() == (y == 0).long()).float().mean())
    assert acc > 0.97
    # Outside the planted bands every band's energy has the same distribution in both
    # classes: class means agree within sampling error...
    others = [k for k in range(masks.shape[0]) if k not in info["bands"]]
    for k in others:
        assert _class_mean_gap(e, y, k) < 4.0, k
    # ... and a nearest-class-mean classifier on all outside-band log energies is at chance.
    le = e[:, others].log()
    mu = torch.stack([le[y == c].mean(0) for c in (0, 1)])
    sd = le.std(0)
    pred = (((le[:, None, :] - mu[None]) / sd).pow(2).sum(-1)).argmin(1)
    assert float((pred == y).float().mean()) < 0.58
    # Control: a per-image rescale (what clipping or max-normalisation would do) leaks
    # the class into the other bands, and the same statistic catches it.
    leaky = 0.5 + (x - 0.5) / (x - 0.5).abs().amax((1, 2, 3), keepdim=True) * 0.5
    el = _band_energy(leaky, masks)
    assert max(_class_mean_gap(el, y, k) for k in others) > 6.0


def test_planted_options_ring_background_class_and_noise():
    x, y, info = planted_frequency_dataset(600, n_classes=2, size=16, bands=[None, 3], kind="ring",
                                             n_bands=8, amplitude=2.0, noise=0.2, seed=1)
    assert info["class_names"] == ["background", "band 3"] and not info["planted_masks"][0].any()
    e = _band_energy(x, info["masks"])
    ratio = float(e[y == 1, 3].mean() / e[y == 0, 3].mean())
    assert 3.5 < ratio < 6.5  # (1 + noise' + 4) / (1 + noise'): below 5 because of the white noise
    assert torch.equal(info["masks"], band_masks(16, 16, 8, kind="ring"))
    # coef_std describes the data: empirical per-coefficient std in the planted band.
    std_emp = dct2(x[y == 1] - 0.5).std(0)[0]
    m = info["planted_masks"][1]
    assert torch.allclose(std_emp[m].mean(), info["coef_std"][1][m].mean(), rtol=0.1)


@pytest.mark.parametrize("kw, match", [
    (dict(n=0), "n must be"),
    (dict(n_classes=1), "n_classes"),
    (dict(bands=[2, 2]), "distinct"),
    (dict(bands=[1]), "one band per class"),
    (dict(bands=[1, 8]), "band indices in 0..7"),
    (dict(amplitude=0.0), "amplitude"),
    (dict(noise=-1.0), "noise"),
    (dict(noise=float("nan")), "noise"),
    (dict(basis="dft"), "basis"),
    (dict(kind="square"), "kind"),
    (dict(n_classes=9), "needs bands= explicitly"),
])
def test_planted_bad_input(kw, match):
    args = dict(n=10)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        planted_frequency_dataset(**args)


# ----------------------------------------------------------------------------- the planted task

def test_planted_model_learns_and_attribution_finds_the_band():
    """End to end, small: the trained model is accurate and IG/occlusion point at the planted band."""
    task = train_planted_model(2, n_train=800, n_test=100, size=16, n_bands=4, amplitude=2.0, width=8,
                               epochs=10, seed=0)
    assert task.test_accuracy > 0.9, task.test_accuracy
    assert task.band == 2 and task.truth.shape == (16, 16) and torch.equal(task.truth, task.masks[2])
    s = task.setting()
    assert s["n_test"] == 100 and s["band"] == task.band and s["bands"] == [None, 2]
    x, y = task.x_test[:16], task.y_test[:16]
    res = {m: attribute(task.model, x, y, method=m, masks=task.masks, n_steps=16, baseline=0.5)
           for m in ("ig", "occlusion")}
    table = ground_truth_table(res, task.masks, task.truth, n_boot=100)
    for t in table.values():
        assert t["top_band"] == task.band and t["share"] > t["coefficient_share"]
    assert decide_ground_truth({"band 2": table})["verdict"] == "supported"


def test_train_planted_model_args():
    with pytest.raises(ValueError, match="band"):
        train_planted_model(None)
    with pytest.raises(TypeError, match="n_classes"):
        train_planted_model(2, n_classes=3)


# ----------------------------------------------------------------------------- shares on the planted band

def test_planted_band_share_by_hand():
    s = torch.zeros(2, 1, 2, 2)
    s[0, 0, 0, 0], s[0, 0, 1, 1] = 3.0, -1.0
    s[1, 0, 1, 0] = 2.0
    planted = torch.tensor([[[True, False], [False, False]], [[False, False], [True, True]]])
    torch.testing.assert_close(planted_band_share(s, planted), torch.tensor([0.75, 1.0]))
    torch.testing.assert_close(planted_band_share(s, planted[0]), torch.tensor([0.75, 0.0]))


def test_bad_inputs_name_the_argument_planted():
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match="planted_masks"):
        planted_band_share(x, torch.ones(2, 8, 8, dtype=torch.bool))


def test_ground_truth_table_by_hand():
    masks = band_masks(4, 4, 2, kind="ring")           # band 0: max(u, v) < 2 (4 cells), band 1: the rest
    truth = masks[1]
    s = torch.zeros(2, 1, 4, 4)
    s[0, 0, 3, 3] = 3.0       # on truth
    s[0, 0, 0, 0] = -1.0      # off truth
    s[1, 0, 0, 1] = 2.0       # off truth only
    t = ground_truth_table({"m": s}, masks, truth, n_boot=50)["m"]
    assert math.isclose(t["share"], (0.75 + 0.0) / 2)
    assert math.isclose(t["share_median"], 0.375)
    assert math.isclose(t["coefficient_share"], 12 / 16)
    assert t["truth_bands"] == [1]
    assert [round(v, 6) for v in t["band_shares"]] == [0.625, 0.375] and t["top_band"] == 0
    lo, hi = t["share_ci"]
    assert 0.0 <= lo <= t["share"] <= hi <= 0.75
    with pytest.raises(ValueError, match="whole bands"):
        ground_truth_table({"m": s}, masks, torch.eye(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="non-empty"):
        ground_truth_table({}, masks, truth)


def test_train_planted_model_refuses_to_score_a_model_with_nan_logits(monkeypatch):
    """A training run that ended with NaN weights (a divergence the loss check missed) is not scored."""
    import freqkit.planted as P

    def diverged(model, x, y, **kw):
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float("nan"))
        return {"n_train": int(x.shape[0]), "train_seconds": 0.0, "history": []}

    monkeypatch.setattr(P, "train_on_tensors", diverged)
    with pytest.raises(ValueError, match=r"PlantedCNN.*non-finite"):
        train_planted_model(band=1, n_train=8, n_test=8, size=8, n_bands=4, epochs=1)
